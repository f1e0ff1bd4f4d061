//! Cross-origin resource sharing: which web pages may call the file server.
//!
//! Plik sends no CORS headers, so a browser page on another origin cannot
//! upload to it without a proxy in front. This server answers CORS for the
//! origins it is told to allow, so a browser peer can use it directly:
//! tower-http's `CorsLayer`, with the origins checked by [`Cors::allows`].
//! That layer answers every `OPTIONS` request `200`; [`preflight_status`]
//! makes an allowed preflight `204 No Content` and any other `OPTIONS`
//! `405`, as Plik answers a method it does not route.

use std::time::Duration;

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use http::{Method, StatusCode, header};
use tower_http::cors::{AllowHeaders, AllowOrigin, CorsLayer};

use crate::routes::text;

/// The origins allowed to call the server from a browser. None by default.
#[derive(Clone, Debug, Default)]
pub(crate) struct Cors {
    pub(crate) any: bool,
    pub(crate) loopback: bool,
    pub(crate) origins: Vec<String>,
}

impl Cors {
    /// Whether a page served from `origin` may call the server.
    pub(crate) fn allows(&self, origin: &str) -> bool {
        self.any
            || self.origins.iter().any(|o| o.eq_ignore_ascii_case(origin))
            || (self.loopback && is_loopback_origin(origin))
    }

    /// The layer: the allowed origin echoed, the methods the routes answer,
    /// the request headers the page asks for, preflights cached 10 minutes.
    pub(crate) fn layer(self) -> CorsLayer {
        let allowed = move |origin: &http::HeaderValue, _: &_| {
            origin.to_str().is_ok_and(|origin| self.allows(origin))
        };
        CorsLayer::new()
            .allow_origin(AllowOrigin::predicate(allowed))
            .allow_methods([Method::GET, Method::HEAD, Method::POST, Method::PUT, Method::OPTIONS])
            .allow_headers(AllowHeaders::mirror_request())
            .expose_headers([header::CONTENT_LENGTH, header::CONTENT_TYPE])
            .max_age(Duration::from_secs(600))
    }
}

/// Runs outside [`Cors::layer`]: its preflight answer becomes `204` when
/// the origin is allowed, `405` when not.
pub(crate) async fn preflight_status(request: Request, next: Next) -> Response {
    if request.method() != Method::OPTIONS {
        return next.run(request).await;
    }
    let mut response = next.run(request).await;
    if !response.headers().contains_key(header::ACCESS_CONTROL_ALLOW_ORIGIN) {
        return text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed");
    }
    *response.status_mut() = StatusCode::NO_CONTENT;
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
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
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
