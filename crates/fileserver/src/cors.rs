//! Cross-origin resource sharing: which web pages may call the file server.
//!
//! Plik sends no CORS headers, so a browser page on another origin cannot
//! upload to it without a proxy in front. This server answers CORS for the
//! origins it is told to allow, so a browser peer can use it directly.

use http::{HeaderMap, HeaderValue, Response, StatusCode, header};

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
    pub(crate) fn allowed_origin(&self, headers: &HeaderMap) -> Option<HeaderValue> {
        let origin = headers.get(header::ORIGIN)?;
        self.allows(origin.to_str().ok()?).then(|| origin.clone())
    }

    /// The answer to a preflight `OPTIONS` request from `origin` (already
    /// allowed): the methods and headers the page may use.
    pub(crate) fn preflight<B: Default>(
        &self,
        origin: HeaderValue,
        request: &HeaderMap,
    ) -> Response<B> {
        let mut response = Response::new(B::default());
        *response.status_mut() = StatusCode::NO_CONTENT;
        let h = response.headers_mut();
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        h.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static(METHODS));
        let asked = request.get(header::ACCESS_CONTROL_REQUEST_HEADERS).cloned();
        h.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            asked.unwrap_or(HeaderValue::from_static(HEADERS)),
        );
        h.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static(MAX_AGE));
        h.insert(header::VARY, HeaderValue::from_static("Origin"));
        response
    }

    /// Adds the headers that let a page from `origin` read a response.
    pub(crate) fn decorate<B>(origin: HeaderValue, response: &mut Response<B>) {
        let h = response.headers_mut();
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        h.insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static("Content-Length, Content-Type"),
        );
        h.append(header::VARY, HeaderValue::from_static("Origin"));
    }
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
