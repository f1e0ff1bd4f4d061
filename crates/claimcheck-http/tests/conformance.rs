//! The claim-check role's exported conformance suite
//! (`natsbridge_claimcheck::conformance`, re-exported with this crate's
//! `FaultProxy` as `natsbridge_claimcheck_http::conformance`) against every
//! HTTP store: Plik and plain PUT on the file server, S3 on moto. Each store
//! is reached through a fault-injecting proxy for the fault cases.

use std::sync::Arc;
use std::time::Duration;

use natsbridge_claimcheck_http::conformance::{self, FaultProxy, Store};
use natsbridge_claimcheck_http::{
    HttpDownloader, HttpPutUploader, PlikUploader, RetryConfig, client_builder,
};

use crate::util::{Served, file_server};

/// Fast retries, and no idle connections kept: every try opens a
/// connection, so it meets the proxy's armed fault.
fn retry() -> RetryConfig {
    RetryConfig::new()
        .with_max_retries(3)
        .with_base_delay(Duration::from_millis(1))
        .with_max_delay(Duration::from_millis(10))
        .with_jitter(false)
}

fn client() -> reqwest::Client {
    client_builder().unwrap().pool_max_idle_per_host(0).build().unwrap()
}

fn downloader() -> HttpDownloader {
    HttpDownloader::builder().client(client()).retry(retry()).build().unwrap()
}

fn capped(cap: u64) -> HttpDownloader {
    HttpDownloader::builder()
        .client(client())
        .retry(retry())
        .max_download_size(cap)
        .build()
        .unwrap()
}

async fn proxied_file_server() -> (Served, FaultProxy) {
    let served = file_server().await;
    let proxy = FaultProxy::start(served.server.local_addr()).await;
    (served, proxy)
}

fn plik(base: &str, one_shot: bool) -> Store {
    let uploader =
        PlikUploader::builder(base).client(client()).retry(retry()).one_shot(one_shot).build();
    Store {
        uploader: Arc::new(uploader.unwrap()),
        downloader: Arc::new(downloader()),
        one_shot,
        missing_link: format!("{base}/file/AAAAAAAAAAAAAAAA/BBBBBBBBBBBBBBBB/missing.bin"),
    }
}

fn put(base: &str) -> Store {
    let template = format!("{base}/put/{{uuid}}/{{name}}");
    let uploader = HttpPutUploader::builder(template).client(client()).retry(retry()).build();
    Store {
        uploader: Arc::new(uploader.unwrap()),
        downloader: Arc::new(downloader()),
        one_shot: false,
        missing_link: format!("{base}/put/00000000000000000000000000000000/missing.bin"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plik_one_shot_passes_the_suite() {
    let (_served, proxy) = proxied_file_server().await;
    let store = plik(&proxy.url(), true);
    conformance::round_trips(&store).await;
    conformance::one_shot(&store).await;
    conformance::missing_object(&store).await;
    conformance::tampered(&store).await;
    conformance::oversize(&store, &capped(100_000), 100_000).await;
    conformance::transient_faults(&store, &proxy).await;
    conformance::permanent_faults(&store, &proxy).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plik_kept_files_pass_the_suite() {
    let (_served, proxy) = proxied_file_server().await;
    let store = plik(&proxy.url(), false);
    conformance::one_shot(&store).await;
    conformance::tampered(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_put_passes_the_suite() {
    let (_served, proxy) = proxied_file_server().await;
    let store = put(&proxy.url());
    conformance::round_trips(&store).await;
    conformance::one_shot(&store).await;
    conformance::missing_object(&store).await;
    conformance::tampered(&store).await;
    conformance::oversize(&store, &capped(100_000), 100_000).await;
    conformance::transient_faults(&store, &proxy).await;
    conformance::permanent_faults(&store, &proxy).await;
}

#[cfg(feature = "s3")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_on_moto_passes_the_suite() {
    let moto = crate::util::Moto::start().await;
    let upstream: std::net::SocketAddr = moto.url.trim_start_matches("http://").parse().unwrap();
    let proxy = FaultProxy::start(upstream).await;
    let uploader = natsbridge_claimcheck_http::S3Uploader::builder(crate::util::BUCKET)
        .endpoint(proxy.url())
        .region("us-east-1")
        .credentials("testing", "testing")
        .retry(retry())
        .build()
        .unwrap();
    let store = Store {
        uploader: Arc::new(uploader),
        downloader: Arc::new(downloader()),
        one_shot: false,
        missing_link: format!("{}/{}/missing-object", proxy.url(), crate::util::BUCKET),
    };
    conformance::round_trips(&store).await;
    conformance::one_shot(&store).await;
    conformance::missing_object(&store).await;
    conformance::tampered(&store).await;
    conformance::oversize(&store, &capped(100_000), 100_000).await;
    conformance::transient_faults(&store, &proxy).await;
    conformance::permanent_faults(&store, &proxy).await;
}
