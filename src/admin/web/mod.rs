//! The web dashboard (§14.1) at `GET /` of the admin listener: one page, its script and its
//! style sheet, embedded in the binary (`include_str!`), served with a strict
//! Content-Security-Policy. The page reads `/status` once a second and calls
//! `POST /backends/{id}/drain|enable` with the token it asks for.

use super::reply::Reply;

const PAGE: &str = include_str!("index.html");
const SCRIPT: &str = include_str!("dashboard.js");
const STYLE: &str = include_str!("dashboard.css");
const ICON: &str = include_str!("favicon.svg");

/// SECURITY: only the page's own script, style sheet and `/status` calls may load: no inline
/// script or style (an injected `<script>` would not run even if escaping failed), no other
/// origin, no framing, no forms posting elsewhere.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// The page's files by path: content type and contents.
fn file(path: &str) -> Option<(&'static str, &'static str)> {
    match path {
        "/" | "/index.html" => Some(("text/html; charset=utf-8", PAGE)),
        "/dashboard.js" => Some(("text/javascript; charset=utf-8", SCRIPT)),
        "/dashboard.css" => Some(("text/css; charset=utf-8", STYLE)),
        "/favicon.svg" => Some(("image/svg+xml", ICON)),
        _ => None,
    }
}

/// True for the page's own files (served without the token: they hold no data).
pub fn is_asset(path: &str) -> bool {
    file(path).is_some()
}

/// The file served at `path`, if it is one of the page's.
pub fn asset(path: &str) -> Option<Reply> {
    let (content_type, body) = file(path)?;
    Some(Reply {
        status: 200,
        content_type,
        body: body.as_bytes().to_vec(),
        headers: vec![(
            "Content-Security-Policy",
            CONTENT_SECURITY_POLICY.to_string(),
        )],
    })
}

/// The bytes a browser loads for the page (page, script, style sheet, icon).
pub fn weight() -> usize {
    PAGE.len() + SCRIPT.len() + STYLE.len() + ICON.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_has_no_inline_script_or_style_and_no_other_origin() {
        assert!(
            !PAGE.contains("<script>") && !PAGE.contains(" style="),
            "inline code"
        );
        assert!(PAGE.contains(r#"<script src="/dashboard.js" defer></script>"#));
        for text in [PAGE, SCRIPT, STYLE] {
            assert!(
                !text.contains("http://") && !text.contains("https://"),
                "another origin"
            );
        }
        // (The icon's only URL is the SVG namespace, which is a name, not a fetch.)
        assert_eq!(ICON.matches("http").count(), 1);
        // Data reaches the page as text only.
        assert!(!SCRIPT.contains("innerHTML") && !SCRIPT.contains("insertAdjacentHTML"));
        assert!(!SCRIPT.contains("eval(") && !SCRIPT.contains("document.write"));
        let reply = asset("/").expect("the page");
        assert_eq!(reply.headers[0].1, CONTENT_SECURITY_POLICY);
        assert!(asset("/nope").is_none());
        assert!(weight() < 24 * 1024, "the page grew to {} bytes", weight());
    }
}
