//! Responses Aegis writes itself (§3): the JSON body of a [`LocalReply`], the security headers of
//! §6, and nothing about internals.

use crate::reply::{LocalReply, Refusal};
use crate::security::headers::harden_response;
use pingora_http::ResponseHeader;
use pingora_proxy::Session;

/// Writes the JSON answer for `reply`. `allow` is the `Allow` header value for 405s.
pub async fn send(
    session: &mut Session,
    reply: LocalReply,
    request_id: &http::HeaderValue,
    allow: &str,
) -> pingora::Result<()> {
    let body = reply.body();
    let mut resp = ResponseHeader::build(reply.status(), Some(10))?;
    resp.insert_header("Content-Type", "application/json")?;
    resp.insert_header("Content-Length", body.len())?;
    resp.insert_header("Cache-Control", "no-store")?;
    if !request_id.is_empty() {
        resp.insert_header("X-Request-ID", request_id.clone())?;
    }
    if let Some(retry_after) = reply.retry_after() {
        resp.insert_header("Retry-After", retry_after)?;
    }
    if reply == LocalReply::Refused(Refusal::MethodNotAllowed) {
        resp.insert_header("Allow", allow)?;
    }
    harden_response(&mut resp)?;
    if reply.closes_connection() {
        resp.insert_header("Connection", "close")?;
        session.set_keepalive(None);
    }
    session.write_response_header(Box::new(resp), false).await?;
    session.write_response_body(Some(body), true).await?;
    Ok(())
}
