//! Request and response hardening: the SSRF policy for backends, client IP masking for logs,
//! the response security headers and the hop-by-hop header rules.

pub mod headers;
pub mod mask;
pub mod request;
pub mod ssrf;
