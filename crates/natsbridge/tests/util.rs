//! Helpers shared by the facade's tests.

use natsbridge::claimcheck::http::{HttpDownloader, PlikUploader};
use natsbridge_fileserver::FileServer;

/// A Plik-compatible file server on a free loopback port, storing in a
/// temporary directory removed on drop.
pub(crate) struct Store {
    pub(crate) server: FileServer,
    _dir: tempfile::TempDir,
}

impl Store {
    pub(crate) async fn start() -> Store {
        let dir = tempfile::tempdir().unwrap();
        let server = FileServer::builder().dir(dir.path()).bind("127.0.0.1:0").await.unwrap();
        Store { server, _dir: dir }
    }

    pub(crate) fn uploader(&self) -> PlikUploader {
        PlikUploader::new(self.server.url()).unwrap()
    }

    pub(crate) fn downloader(&self) -> HttpDownloader {
        HttpDownloader::builder().allow_origin(self.server.url()).build().unwrap()
    }
}

/// Deterministic bytes that do not compress to nothing.
pub(crate) fn bytes(n: usize, seed: u32) -> Vec<u8> {
    (0..n as u32).map(|i| (i.wrapping_mul(2_654_435_761).wrapping_add(seed) >> 11) as u8).collect()
}

/// An error and its sources joined the way a chain printer (anyhow's
/// `{:#}`, the command line's one-line form) shows them: what a user reads.
pub(crate) fn chain(err: &(dyn std::error::Error + 'static)) -> String {
    chain_links(err).join(": ")
}

/// Each message of an error's chain, the error's own first.
pub(crate) fn chain_links(err: &(dyn std::error::Error + 'static)) -> Vec<String> {
    let mut links = vec![err.to_string()];
    let mut source = err.source();
    while let Some(s) = source {
        links.push(s.to_string());
        source = s.source();
    }
    links
}
