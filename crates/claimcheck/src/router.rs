//! Links routed to a download handler by their URL scheme.

use std::fmt;
use std::sync::Arc;

use crate::error::Error;
use crate::handler::{BoxFuture, DownloadHandler, DownloadRequest, DownloadSink, Downloaded};

/// A [`DownloadHandler`] that hands each link to the handler registered for
/// its URL scheme (compared case-insensitively, as schemes are), and every
/// other link to the default handler.
///
/// What a link may be depends on the handlers: an `http`/`https` URL for an
/// HTTP downloader (Plik, a PUT server, S3 presigned links), `nats-os://`
/// for the JetStream object store handler.
///
/// ```
/// use std::sync::Arc;
/// use bytes::Bytes;
/// use natsbridge_claimcheck::{
///     DownloadHandlerExt, DownloadRequest, Downloaded, Error, ErrorKind, LinkRouter, download_fn,
/// };
///
/// let http = Arc::new(download_fn(|_req: DownloadRequest, _sink| async {
///     Ok::<_, Error>(Downloaded::Bytes(Bytes::from_static(b"from http")))
/// }));
/// let store = Arc::new(download_fn(|_req: DownloadRequest, _sink| async {
///     Ok::<_, Error>(Downloaded::Bytes(Bytes::from_static(b"from the store")))
/// }));
/// let router = LinkRouter::new(http).route("nats-os", store);
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let got = router.download_bytes(&DownloadRequest::with_unknown_size("NATS-OS://b/o")).await?;
/// assert_eq!(got, "from the store");
/// let got = router.download_bytes(&DownloadRequest::with_unknown_size("https://h/f")).await?;
/// assert_eq!(got, "from http");
/// # Ok::<(), Error>(()) }).unwrap();
/// ```
#[derive(Clone)]
pub struct LinkRouter {
    routes: Vec<(String, Arc<dyn DownloadHandler>)>,
    default: Arc<dyn DownloadHandler>,
}

impl LinkRouter {
    /// Every link to `default` until schemes are routed elsewhere.
    pub fn new(default: Arc<dyn DownloadHandler>) -> LinkRouter {
        LinkRouter { routes: Vec::new(), default }
    }

    /// Links of `scheme` (without `://`) go to `handler`.
    #[must_use]
    pub fn route(mut self, scheme: &str, handler: Arc<dyn DownloadHandler>) -> LinkRouter {
        self.routes.retain(|(s, _)| !s.eq_ignore_ascii_case(scheme));
        self.routes.push((scheme.to_string(), handler));
        self
    }

    /// The handler for `url`.
    pub fn handler_for(&self, url: &str) -> &Arc<dyn DownloadHandler> {
        let scheme = url.split_once(':').map(|(s, _)| s).unwrap_or_default();
        self.routes
            .iter()
            .find(|(s, _)| s.eq_ignore_ascii_case(scheme))
            .map_or(&self.default, |(_, h)| h)
    }
}

impl DownloadHandler for LinkRouter {
    fn download<'a>(
        &'a self,
        request: &'a DownloadRequest,
        sink: DownloadSink,
    ) -> BoxFuture<'a, Result<Downloaded, Error>> {
        self.handler_for(&request.url).download(request, sink)
    }
}

impl fmt::Debug for LinkRouter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let schemes: Vec<&str> = self.routes.iter().map(|(s, _)| s.as_str()).collect();
        f.debug_struct("LinkRouter").field("schemes", &schemes).finish_non_exhaustive()
    }
}
