//! The HTTP client every handler of the crate uses unless given its own.

use std::sync::Arc;
use std::time::Duration;

use crate::error::{Error, ErrorKind};

/// The `User-Agent` sent by default.
///
/// It starts with `plik_client` because Plik answers a failed request from a
/// client name it does not know with a 301 to its web page instead of the
/// plain-text error; with this prefix it sends the error itself.
pub const USER_AGENT: &str =
    concat!("plik_client (natsbridge-claimcheck-http/", env!("CARGO_PKG_VERSION"), ")");

/// A reqwest client builder set up the way this crate's handlers use it:
/// TLS with rustls on the `ring` provider and the platform's trust store,
/// HTTP/1.1, no redirects followed, [`USER_AGENT`], a 10 s connect timeout.
///
/// Tune it (a proxy, a different User-Agent) and hand the client to a
/// handler's builder with `.client(...)`. Starting from
/// `reqwest::Client::builder()` instead would need a process-wide rustls
/// provider to be installed first: this crate builds reqwest without one
/// (to keep aws-lc out of the build) and installs none. An application that
/// installs a process-wide provider itself
/// ([`CryptoProvider::install_default`](rustls::crypto::CryptoProvider::install_default),
/// e.g. aws-lc-rs for post-quantum key exchange, which *ring* lacks) gets
/// that provider here too.
///
/// ```
/// let client = natsbridge_claimcheck_http::client_builder()?
///     .pool_max_idle_per_host(4)
///     .build()
///     .unwrap();
/// let uploader = natsbridge_claimcheck_http::PlikUploader::builder("http://localhost:8080")
///     .client(client)
///     .build()?;
/// # Ok::<(), natsbridge_claimcheck_http::Error>(())
/// ```
pub fn client_builder() -> Result<reqwest::ClientBuilder, Error> {
    let provider = match rustls::crypto::CryptoProvider::get_default() {
        Some(installed) => installed.clone(),
        None => Arc::new(ring_provider()),
    };
    let verifier = rustls_platform_verifier::Verifier::new(provider.clone())
        .map_err(|e| Error::new(ErrorKind::InvalidInput, "TLS trust store").caused_by(e))?;
    let mut tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::new(ErrorKind::InvalidInput, "TLS versions").caused_by(e))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    tls.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(USER_AGENT)
        .connect_timeout(Duration::from_secs(10)))
}

pub(crate) fn build_client() -> Result<reqwest::Client, Error> {
    client_builder()?
        .build()
        .map_err(|e| Error::new(ErrorKind::InvalidInput, "building the HTTP client").caused_by(e))
}

/// Reads at most `limit` bytes of an error body as text, for error messages.
/// Plik's errors are short plain-text bodies; anything else is cut.
pub(crate) async fn error_text(mut response: reqwest::Response, limit: usize) -> String {
    let mut text = Vec::new();
    let read = async {
        while let Ok(Some(chunk)) = response.chunk().await {
            let room = limit.saturating_sub(text.len());
            text.extend_from_slice(&chunk[..chunk.len().min(room)]);
            if text.len() >= limit {
                break;
            }
        }
    };
    // An error body that trickles must not hold the caller up.
    let _ = tokio::time::timeout(Duration::from_secs(5), read).await;
    let text = String::from_utf8_lossy(&text);
    let text: String = text.trim().chars().filter(|c| !c.is_control() || *c == ' ').collect();
    text
}

/// The link peers are given for `url`: without the user info (`user:password@`)
/// the store's URL may carry. The credentials are the uploader's own: they
/// authenticate its requests (reqwest sends them as basic auth) and are never
/// published in an envelope, where every subscriber and every stream would
/// keep them. A receiver that needs credentials for the store configures its
/// own (`HttpDownloaderBuilder::allow_origin` with user info).
pub(crate) fn published_link(mut url: reqwest::Url) -> String {
    // Both setters fail only for URLs that cannot have user info, which
    // then have none.
    let _ = url.set_username("");
    let _ = url.set_password(None);
    url.into()
}

/// rustls's *ring* provider. rustls 0.23.48 deprecated
/// `crypto::ring::default_provider` (it has no post-quantum key exchange)
/// without a replacement that stays on *ring*; the alternative is aws-lc-rs,
/// a C build this crate keeps out. So the one call is allowed here, and an
/// application wanting post-quantum key exchange installs aws-lc-rs as the
/// process default, which [`client_builder`] then uses.
#[allow(deprecated)]
fn ring_provider() -> rustls::crypto::CryptoProvider {
    rustls::crypto::ring::default_provider()
}

#[cfg(test)]
mod tests {
    #[test]
    fn user_agent_is_one_plik_recognises() {
        assert!(super::USER_AGENT.to_ascii_lowercase().starts_with("plik_client"));
        super::build_client().unwrap();
    }

    #[test]
    fn published_links_carry_no_credentials() {
        let url = reqwest::Url::parse("http://alice:s3cret@files.internal:8080/file/a/b/c.bin")
            .expect("a URL");
        assert_eq!(super::published_link(url), "http://files.internal:8080/file/a/b/c.bin");
        let plain = reqwest::Url::parse("https://files.example/x").expect("a URL");
        assert_eq!(super::published_link(plain), "https://files.example/x");
    }
}
