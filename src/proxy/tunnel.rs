//! WebSocket handshakes (§11.4): which requests open a tunnel and the two hop-by-hop headers
//! that pass for them (pure), and what the proxy does at the handshake and at the 101. Pingora
//! does the rest: after the backend's 101 it relays bytes both ways until either side closes
//! (`proxy_h1`'s upgraded body); the idle limit is the connection's (`deadline::mark_tunnel`).
//! A backend that answers with anything but 101 has its answer passed on as any response.

use super::{deadline, AegisProxy, RequestCtx};
use crate::config::Config;
use crate::security::headers::lists_token;
use http::{HeaderMap, HeaderValue, Method, Version};
use pingora_http::{RequestHeader, ResponseHeader};
use pingora_proxy::Session;

impl AegisProxy {
    /// Whether this request goes to the backend as a WebSocket handshake.
    pub(super) fn is_websocket(&self, session: &Session, ctx: &RequestCtx) -> bool {
        ctx.config.websocket.enabled && is_websocket_handshake(session.req_header())
    }

    /// The backend's 101 to a WebSocket handshake: the client gets the two upgrade headers,
    /// the connection becomes a tunnel timed by `websocket.idle_timeout`, and it is counted.
    pub(super) fn open_tunnel(
        &self,
        session: &mut Session,
        response: &mut ResponseHeader,
        ctx: &mut RequestCtx,
    ) -> pingora_core::Result<()> {
        response.insert_header(http::header::UPGRADE, "websocket")?;
        response.insert_header(http::header::CONNECTION, "Upgrade")?;
        deadline::mark_tunnel(session.stream(), ctx.config.websocket.idle_timeout);
        ctx.tunnel = Some(self.metrics.open_tunnel());
        Ok(())
    }
}

/// A WebSocket handshake is being forwarded: until the backend answers, the connection is
/// closed after `upstream.response_header_timeout` without a byte either way, and the client's
/// reads lose their per-read limit (a tunnel's client may only listen).
pub(super) fn forwarding_handshake(session: &mut Session, config: &Config) {
    deadline::mark_tunnel(session.stream(), config.upstream.response_header_timeout);
    session.set_read_timeout(None);
}

/// Whether `error` is how an open tunnel ended on the client's side: closed for idleness, or
/// by the client. That is a tunnel's ordinary end, not an error to log (the access line has
/// it).
pub(super) fn ended_by_client(ctx: &RequestCtx, error: &pingora_core::Error) -> bool {
    ctx.tunnel.is_some() && *error.esource() == pingora_core::ErrorSource::Downstream
}

/// Whether `req` is a WebSocket handshake that may be forwarded as one: an HTTP/1.1 GET whose
/// `Upgrade` lists `websocket` and whose `Connection` lists `upgrade` (RFC 6455 §4.1).
///
/// SECURITY: only `websocket` is ever forwarded. `Upgrade: h2c` would let a client switch the
/// backend connection to HTTP/2 past every check Aegis makes (h2c smuggling); it and any other
/// token are dropped with the hop-by-hop headers.
pub fn is_websocket_handshake(req: &RequestHeader) -> bool {
    req.method == Method::GET
        && req.version == Version::HTTP_11
        && lists_token(&req.headers, http::header::UPGRADE, "websocket")
        && lists_token(&req.headers, http::header::CONNECTION, "upgrade")
}

/// Puts back, after the hop-by-hop headers went, the two a WebSocket handshake needs.
pub fn set_upgrade_headers(headers: &mut HeaderMap) {
    headers.insert(http::header::UPGRADE, HeaderValue::from_static("websocket"));
    headers.insert(
        http::header::CONNECTION,
        HeaderValue::from_static("upgrade"),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(method: &str, version: Version, headers: &[(&str, &str)]) -> RequestHeader {
        let mut req = RequestHeader::build(method, b"/chat", None).unwrap();
        req.set_version(version);
        for (k, v) in headers {
            req.append_header(k.to_string(), *v).unwrap();
        }
        req
    }

    /// Method, version, headers, whether it is a handshake.
    type Case = (
        &'static str,
        Version,
        &'static [(&'static str, &'static str)],
        bool,
    );

    #[test]
    fn only_an_http11_get_upgrading_to_websocket_is_a_handshake() {
        const WS: &[(&str, &str)] = &[("Upgrade", "websocket"), ("Connection", "Upgrade")];
        let table: [Case; 9] = [
            ("GET", Version::HTTP_11, WS, true),
            (
                "GET",
                Version::HTTP_11,
                &[
                    ("Upgrade", "WebSocket"),
                    ("Connection", "keep-alive, upgrade"),
                ],
                true,
            ),
            // A list with another token: the handshake passes with `websocket` alone.
            (
                "GET",
                Version::HTTP_11,
                &[("Upgrade", "h2c, websocket"), ("Connection", "upgrade")],
                true,
            ),
            (
                "GET",
                Version::HTTP_11,
                &[
                    ("Upgrade", "h2c"),
                    ("Connection", "Upgrade, HTTP2-Settings"),
                ],
                false,
            ),
            ("GET", Version::HTTP_11, &[("Upgrade", "websocket")], false),
            ("GET", Version::HTTP_11, &[("Connection", "upgrade")], false),
            ("POST", Version::HTTP_11, WS, false),
            ("GET", Version::HTTP_10, WS, false),
            (
                "GET",
                Version::HTTP_11,
                &[("Upgrade", "websocketx"), ("Connection", "upgrade")],
                false,
            ),
        ];
        for (method, version, headers, expected) in table {
            let req = request(method, version, headers);
            assert_eq!(
                is_websocket_handshake(&req),
                expected,
                "{method} {version:?} {headers:?}"
            );
        }
    }

    #[test]
    fn the_upgrade_headers_replace_whatever_was_there() {
        let mut headers = HeaderMap::new();
        headers.insert(http::header::UPGRADE, HeaderValue::from_static("h2c"));
        set_upgrade_headers(&mut headers);
        assert_eq!(headers.get_all(http::header::UPGRADE).iter().count(), 1);
        assert_eq!(headers[http::header::UPGRADE], "websocket");
        assert_eq!(headers[http::header::CONNECTION], "upgrade");
    }
}
