//! Cross-origin resource sharing: which web pages may call the file server.
//!
//! Plik sends no CORS headers, so a browser page on another origin cannot
//! upload to it without a proxy in front. This server answers CORS for the
//! origins it is told to allow, so a browser peer can use it directly.
//!
//! An axum middleware of its own rather than tower-http's `CorsLayer`:
//! that layer answers every `OPTIONS` request `200`, for origins it does not
//! allow too, where this server answers a preflight `204` and refuses one
//! from an origin it does not allow with `405` (as it always has, and its
//! tests check).

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use http::{HeaderMap, HeaderValue, Method, StatusCode, header};

use crate::routes::text;

/// The origins allowed to call the server from a browser. None by default.
#[derive(Clone, Debug, Default)]
pub(crate) struct Cors {
    pub(crate) any: bool,
    pub(crate) loopback: bool,
    pub(crate) origins: Vec<String>,
}

/// The methods the server's routes answer.
const METHODS: &str = "GET, HEAD, POST, PUT, OPTIONS";
/// Request headers a page may send when it does not list its own.
const HEADERS: &str = "Content-Type, X-UploadToken";
/// How long a browser may cache a preflight answer, in seconds.
const MAX_AGE: &str = "600";

impl Cors {
    /// Whether a page served from `origin` may call the server.
    pub(crate) fn allows(&self, origin: &str) -> bool {
        if self.any {
            return true;
        }
        if self.origins.iter().any(|o| o.eq_ignore_ascii_case(origin)) {
            return true;
        }
        self.loopback && is_loopback_origin(origin)
    }

    /// The `Origin` of a request, if it has one this server allows.
    fn allowed_origin(&self, headers: &HeaderMap) -> Option<HeaderValue> {
        let origin = headers.get(header::ORIGIN)?;
        self.allows(origin.to_str().ok()?).then(|| origin.clone())
    }
}

/// The middleware: answers preflights (`OPTIONS`) itself, and lets the
/// page of an allowed origin read the route's answer.
pub(crate) async fn answer(
    State(cors): State<Arc<Cors>>,
    request: Request,
    next: Next,
) -> Response {
    let origin = cors.allowed_origin(request.headers());
    if request.method() == Method::OPTIONS {
        let Some(origin) = origin else {
            return text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed");
        };
        let asked = request.headers().get(header::ACCESS_CONTROL_REQUEST_HEADERS).cloned();
        let mut response = Response::default();
        *response.status_mut() = StatusCode::NO_CONTENT;
        let h = response.headers_mut();
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        h.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static(METHODS));
        h.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            asked.unwrap_or(HeaderValue::from_static(HEADERS)),
        );
        h.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static(MAX_AGE));
        h.insert(header::VARY, HeaderValue::from_static("Origin"));
        return response;
    }
    let mut response = next.run(request).await;
    if let Some(origin) = origin {
        let h = response.headers_mut();
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        h.insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static("Content-Length, Content-Type"),
        );
        h.append(header::VARY, HeaderValue::from_static("Origin"));
    }
    response
}

/// `http(s)://localhost`, `127.0.0.0/8` or `[::1]`, any port.
fn is_loopback_origin(origin: &str) -> bool {
    let Some(rest) = origin.strip_prefix("http://").or_else(|| origin.strip_prefix("https://"))
    else {
        return false;
    };
    let host = match rest.strip_prefix('[') {
        Some(v6) => match v6.split_once(']') {
            Some((host, port)) if port.is_empty() || port.starts_with(':') => host,
            _ => return false,
        },
        None => rest.split(':').next().unwrap_or_default(),
    };
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_origins_and_nothing_else() {
        let cors = Cors { loopback: true, ..Cors::default() };
        for ok in
            ["http://127.0.0.1:5173", "http://localhost", "https://[::1]:8443", "http://127.9.0.1"]
        {
            assert!(cors.allows(ok), "{ok}");
        }
        for no in [
            "http://example.com",
            "http://127.0.0.1.evil.com",
            "http://localhost.evil.com:80",
            "null",
            "file://",
            "http://[::1]evil",
        ] {
            assert!(!cors.allows(no), "{no}");
        }
        assert!(!Cors::default().allows("http://127.0.0.1:1"), "none by default");
        let listed = Cors { origins: vec!["https://app.example".into()], ..Cors::default() };
        assert!(listed.allows("https://APP.example"));
        assert!(!listed.allows("https://app.example:444"));
    }
}
