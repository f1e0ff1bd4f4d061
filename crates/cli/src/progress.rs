//! Progress bars for link payloads: the uploads and downloads of the claim
//! check. They are drawn on stderr when it is a terminal and hidden
//! otherwise, so piped output is exactly what it would be without them.
//!
//! Uploads need nothing from the library: the source handed to the upload
//! handler is wrapped in a [`Counting`] reader. Downloads use the
//! downloader's `progress` hook, keyed by the link.

use std::collections::HashMap;
use std::io::{Cursor, IsTerminal};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use natsbridge::claimcheck::{
    BoxFuture, DownloadHandler, DownloadRequest, DownloadSink, Downloaded, UploadHandler,
    UploadSource, http::HttpDownloaderBuilder,
};
use tokio::io::{AsyncRead, ReadBuf};

type Result<T> = std::result::Result<T, natsbridge::claimcheck::Error>;

/// Where the bars of one command go. Cheap to clone.
#[derive(Clone, Debug)]
pub(crate) struct Progress {
    bars: MultiProgress,
    /// The bar of each download under way, by link.
    downloads: Arc<Mutex<HashMap<String, ProgressBar>>>,
}

impl Progress {
    /// Bars on stderr if it is a terminal, else hidden ones.
    pub(crate) fn stderr() -> Progress {
        let target = if std::io::stderr().is_terminal() {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        Progress { bars: MultiProgress::with_draw_target(target), downloads: Arc::default() }
    }

    /// A bar for `len` bytes of `name` going `direction` ("up", "down");
    /// a spinner-like bar with no total when the length is not known.
    fn bar(&self, len: Option<u64>, direction: &str, name: &str) -> ProgressBar {
        // The template is a constant: it parses, and if a future indicatif
        // disagreed the default style would do.
        let style = ProgressStyle::with_template(
            "{prefix} {msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {eta}",
        )
        .map(|s| s.progress_chars("=> "))
        .unwrap_or_else(|_| ProgressStyle::default_bar());
        let bar = len
            .map_or_else(ProgressBar::no_length, ProgressBar::new)
            .with_style(style)
            .with_prefix(direction.to_string())
            .with_message(name.to_string());
        self.bars.add(bar)
    }

    /// `inner`, with a bar for every upload.
    pub(crate) fn uploader(&self, inner: Arc<dyn UploadHandler>) -> Arc<dyn UploadHandler> {
        Arc::new(ProgressUploader { inner, progress: self.clone() })
    }

    /// The downloader `builder` makes, with a bar for every download.
    pub(crate) fn downloader(
        &self,
        builder: HttpDownloaderBuilder,
    ) -> anyhow::Result<Arc<dyn DownloadHandler>> {
        let downloads = self.downloads.clone();
        let inner = builder
            .progress(move |request, received| {
                if let Some(bar) = downloads.lock().unwrap().get(&request.url) {
                    bar.set_position(received);
                }
            })
            .build()?;
        Ok(Arc::new(ProgressDownloader { inner, progress: self.clone() }))
    }
}

struct ProgressUploader {
    inner: Arc<dyn UploadHandler>,
    progress: Progress,
}

impl UploadHandler for ProgressUploader {
    fn upload<'a>(&'a self, name: &'a str, source: UploadSource) -> BoxFuture<'a, Result<String>> {
        let (reader, len): (Pin<Box<dyn AsyncRead + Send>>, u64) = match source {
            UploadSource::Bytes(bytes) => {
                let len = bytes.len() as u64;
                (Box::pin(Cursor::new(bytes)), len)
            }
            UploadSource::Reader { reader, len } => (reader, len),
            // The facade hands over bytes or readers; a file is passed on.
            other => return self.inner.upload(name, other),
        };
        let bar = self.progress.bar(Some(len), "up  ", name);
        let source = UploadSource::reader(Counting::new(reader, bar.clone()), len);
        Box::pin(async move {
            let result = self.inner.upload(name, source).await;
            bar.finish_and_clear();
            result
        })
    }
}

struct ProgressDownloader {
    inner: natsbridge::claimcheck::http::HttpDownloader,
    progress: Progress,
}

impl DownloadHandler for ProgressDownloader {
    fn download<'a>(
        &'a self,
        request: &'a DownloadRequest,
        sink: DownloadSink,
    ) -> BoxFuture<'a, Result<Downloaded>> {
        Box::pin(async move {
            // The last path segment of a link is the uploaded file name;
            // the query (a presigned signature) never shows.
            let path = request.url.split(['?', '#']).next().unwrap_or_default();
            let name = path.rsplit('/').next().unwrap_or_default();
            let bar = self.progress.bar(request.size, "down", name);
            self.progress.downloads.lock().unwrap().insert(request.url.clone(), bar.clone());
            let result = self.inner.download(request, sink).await;
            self.progress.downloads.lock().unwrap().remove(&request.url);
            bar.finish_and_clear();
            result
        })
    }
}

/// Moves a bar by every byte read through it.
struct Counting<R> {
    inner: R,
    bar: ProgressBar,
}

impl<R> Counting<R> {
    fn new(inner: R, bar: ProgressBar) -> Self {
        Counting { inner, bar }
    }
}

impl<R: AsyncRead + Unpin> AsyncRead for Counting<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = polled {
            self.bar.inc((buf.filled().len() - before) as u64);
        }
        polled
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::AsyncReadExt;

    use super::*;

    #[tokio::test]
    async fn counting_moves_the_bar_by_every_byte_read() {
        let data: Vec<u8> = (0..100_000u32).map(|i| i as u8).collect();
        let bar = ProgressBar::hidden();
        bar.set_length(data.len() as u64);
        let mut reader = Counting::new(Cursor::new(data.clone()), bar.clone());
        let mut first = [0u8; 1000];
        reader.read_exact(&mut first).await.unwrap();
        assert_eq!(bar.position(), 1000);
        let mut rest = Vec::new();
        reader.read_to_end(&mut rest).await.unwrap();
        assert_eq!(bar.position(), data.len() as u64);
        assert_eq!([&first[..], &rest[..]].concat(), data);
    }

    #[tokio::test]
    async fn an_upload_streams_every_byte_past_its_bar() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let store = natsbridge::claimcheck::upload_fn({
            let seen = seen.clone();
            move |name: String, source: UploadSource| {
                let seen = seen.clone();
                async move {
                    let UploadSource::Reader { mut reader, len } = source else {
                        panic!("bytes should arrive as a counted reader");
                    };
                    let mut got = Vec::new();
                    reader.read_to_end(&mut got).await.unwrap();
                    assert_eq!(got.len() as u64, len);
                    *seen.lock().unwrap() = got;
                    Ok(format!("http://files.invalid/{name}"))
                }
            }
        });
        let progress = Progress {
            bars: MultiProgress::with_draw_target(ProgressDrawTarget::hidden()),
            downloads: Arc::default(),
        };
        let uploader = progress.uploader(Arc::new(store));
        let link = uploader.upload("a.bin", UploadSource::Bytes(vec![7u8; 70_000].into())).await;
        assert_eq!(link.unwrap(), "http://files.invalid/a.bin");
        assert_eq!(*seen.lock().unwrap(), vec![7u8; 70_000]);
    }

    #[tokio::test]
    async fn a_download_reports_its_progress_and_arrives_whole() {
        use natsbridge::claimcheck::{
            DownloadHandlerExt, UploadHandlerExt,
            http::{HttpDownloader, PlikUploader},
        };
        use natsbridge_fileserver::FileServer;
        let dir = tempfile::tempdir().unwrap();
        let server = FileServer::builder().dir(dir.path()).bind("127.0.0.1:0").await.unwrap();
        let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        // Plik uploads are one-shot: one link per download.
        let uploader = PlikUploader::new(server.url()).unwrap();
        let link = uploader.upload_bytes("d.bin", data.clone()).await.unwrap();
        let second = uploader.upload_bytes("d.bin", data.clone()).await.unwrap();

        // The library's hook: every piece reported, the last at the full size.
        let seen = Arc::new(Mutex::new(Vec::new()));
        let downloader = HttpDownloader::builder()
            .progress({
                let seen = seen.clone();
                move |request, received| seen.lock().unwrap().push((request.size, received))
            })
            .build()
            .unwrap();
        let request = DownloadRequest::new(&link, data.len() as u64);
        assert_eq!(downloader.download_bytes(&request).await.unwrap(), data);
        let seen = seen.lock().unwrap().clone();
        assert!(seen.windows(2).all(|w| w[0].1 < w[1].1), "{seen:?}");
        assert_eq!(seen.last(), Some(&(Some(data.len() as u64), data.len() as u64)));

        // The command line's downloader, hidden bars: same bytes, no bar left.
        let progress = Progress {
            bars: MultiProgress::with_draw_target(ProgressDrawTarget::hidden()),
            downloads: Arc::default(),
        };
        let downloader = progress.downloader(HttpDownloader::builder()).unwrap();
        let request = DownloadRequest::new(&second, data.len() as u64);
        assert_eq!(downloader.download_bytes(&request).await.unwrap(), data);
        assert!(progress.downloads.lock().unwrap().is_empty());
        server.shutdown().await;
    }
}
