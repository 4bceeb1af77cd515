//! Backend URLs (§2.1): checks a `backends[].url` value's form and turns it into a
//! [`BackendSpec`] whose address is not yet resolved.

use super::{BackendProtocol, BackendSpec};

/// Checks a backend URL's form (§2.1): http/https, a host, no userinfo, path, query or fragment.
pub(super) fn parse_backend_url(text: &str) -> Result<BackendSpec, String> {
    let url =
        url::Url::parse(text.trim()).map_err(|e| format!("not a valid URL ({e}): {text:?}"))?;
    let scheme = url.scheme();
    let tls = match scheme {
        "http" => false,
        "https" => true,
        other => {
            return Err(format!(
                "scheme {other:?} is not allowed (use http or https)"
            ))
        }
    };
    // SECURITY: credentials in a backend URL would be sent upstream and end up in logs.
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not contain user info (user:password@)".into());
    }
    if url.path() != "/" && !url.path().is_empty() {
        return Err(format!("must not contain a path, got {:?}", url.path()));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err("must not contain a query or fragment".into());
    }
    let host = match url.host() {
        None => return Err("a host is required".into()),
        Some(url::Host::Domain("")) => return Err("a host is required".into()),
        Some(url::Host::Domain(d)) => d.to_string(),
        Some(url::Host::Ipv4(ip)) => ip.to_string(),
        Some(url::Host::Ipv6(ip)) => ip.to_string(),
    };
    let port = url
        .port_or_known_default()
        .unwrap_or(if tls { 443 } else { 80 });
    let host_in_url = url.host_str().unwrap_or_default().to_string();
    let host_header = match url.port() {
        Some(p) => format!("{host_in_url}:{p}"),
        None => host_in_url.clone(),
    };
    Ok(BackendSpec {
        url: format!("{scheme}://{host_header}"),
        tls,
        host,
        port,
        host_header,
        weight: 1,
        protocol: BackendProtocol::Http1,
        addr: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backend_url_forms() {
        let table: [(&str, Result<&str, &str>); 9] = [
            ("http://example.com", Ok("http://example.com")),
            ("https://example.com:8443", Ok("https://example.com:8443")),
            ("http://[2001:db8::1]:81", Ok("http://[2001:db8::1]:81")),
            ("http://example.com/", Ok("http://example.com")),
            ("http://example.com/api", Err("must not contain a path")),
            ("http://example.com?x=1", Err("must not contain a query")),
            ("http://u@example.com", Err("must not contain user info")),
            ("gopher://example.com", Err("scheme \"gopher\"")),
            ("example.com:80", Err("scheme")),
        ];
        for (input, want) in table {
            match (parse_backend_url(input), want) {
                (Ok(spec), Ok(url)) => assert_eq!(spec.url, url, "{input}"),
                (Err(e), Err(part)) => assert!(e.contains(part), "{input}: {e}"),
                (got, want) => panic!("{input}: got {got:?}, want {want:?}"),
            }
        }
    }
}
