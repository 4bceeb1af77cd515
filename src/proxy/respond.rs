//! Responses Aegis writes itself (§3): the JSON body of a [`LocalReply`], the security headers of
//! §6, and nothing about internals.

use crate::reply::{LocalReply, Refusal};
use crate::security::headers::harden_response;
use pingora_core::protocols::http::ServerSession;
use pingora_http::ResponseHeader;
use pingora_proxy::Session;

/// The headers an answer may carry besides its own.
pub struct AnswerHeaders<'a> {
    pub request_id: &'a http::HeaderValue,
    /// The methods a 405 lists in `Allow`.
    pub allow: &'a [http::Method],
    /// `Strict-Transport-Security`, on TLS listeners.
    pub hsts: Option<&'a http::HeaderValue>,
    /// The `Location` of the redirect to HTTPS.
    pub location: Option<&'a str>,
}

/// Writes the JSON answer for `reply`.
pub async fn send(
    session: &mut Session,
    reply: LocalReply,
    headers: &AnswerHeaders<'_>,
) -> pingora::Result<()> {
    let body = reply.body();
    let resp = header(reply, body.len(), headers)?;
    if reply.closes_connection() {
        session.set_keepalive(None);
    }
    session.write_response_header(Box::new(resp), false).await?;
    session.write_response_body(Some(body), true).await?;
    Ok(())
}

/// The key authorization of an ACME http-01 validation (§18, `acme::http01`): 200 with the
/// bare value, the security headers, nothing cached.
pub async fn send_acme_answer(
    session: &mut Session,
    key_authorization: &str,
) -> pingora::Result<()> {
    let mut resp = ResponseHeader::build(200, Some(6))?;
    resp.insert_header("Content-Type", "application/octet-stream")?;
    resp.insert_header("Content-Length", key_authorization.len())?;
    resp.insert_header("Cache-Control", "no-store")?;
    harden_response(&mut resp)?;
    session.write_response_header(Box::new(resp), false).await?;
    session
        .write_response_body(
            Some(bytes::Bytes::copy_from_slice(key_authorization.as_bytes())),
            true,
        )
        .await?;
    Ok(())
}

/// [`send`] on a bare HTTP session, for a request no proxy session was made for (one Pingora's
/// parser refused, `proxy::refused`); the connection is closed after it. Returns the bytes of
/// body sent.
pub async fn send_bare(
    session: &mut ServerSession,
    reply: LocalReply,
    headers: &AnswerHeaders<'_>,
) -> pingora::Result<usize> {
    let body = reply.body();
    let sent = body.len();
    let mut resp = header(reply, sent, headers)?;
    if !reply.closes_connection() {
        resp.insert_header("Connection", "close")?;
    }
    session.set_keepalive(None);
    session.write_response_header(Box::new(resp)).await?;
    session.write_response_body(body, true).await?;
    session.finish_body().await?;
    Ok(sent)
}

/// The response header of `reply`: JSON, its length, no caching, the request id, `Retry-After`,
/// `Allow`, `Location` and HSTS where they apply, the security headers, and `Connection: close`
/// when the reply ends the connection.
fn header(
    reply: LocalReply,
    body_len: usize,
    headers: &AnswerHeaders<'_>,
) -> pingora::Result<ResponseHeader> {
    let mut resp = ResponseHeader::build(reply.status(), Some(10))?;
    resp.insert_header("Content-Type", "application/json")?;
    resp.insert_header("Content-Length", body_len)?;
    resp.insert_header("Cache-Control", "no-store")?;
    if !headers.request_id.is_empty() {
        resp.insert_header("X-Request-ID", headers.request_id.clone())?;
    }
    if let Some(retry_after) = reply.retry_after() {
        resp.insert_header("Retry-After", retry_after)?;
    }
    match reply {
        LocalReply::Refused(Refusal::MethodNotAllowed) => {
            let names: Vec<&str> = headers.allow.iter().map(http::Method::as_str).collect();
            resp.insert_header("Allow", names.join(", "))?;
        }
        LocalReply::Refused(Refusal::RedirectToHttps) => {
            if let Some(location) = headers.location {
                resp.insert_header("Location", location)?;
            }
        }
        _ => {}
    }
    if let Some(hsts) = headers.hsts {
        resp.insert_header(http::header::STRICT_TRANSPORT_SECURITY, hsts.clone())?;
    }
    harden_response(&mut resp)?;
    if reply.closes_connection() {
        resp.insert_header("Connection", "close")?;
    }
    Ok(resp)
}
