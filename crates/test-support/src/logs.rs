//! Capturing every log line of a test's thread, for the tests that check
//! no secret is ever logged.

use std::io::Write;
use std::sync::{Arc, Mutex, Once};

/// Captures everything logged on this thread, every `tracing` event and
/// every `log` record (reqwest, rustls) at TRACE level, while the returned
/// guard lives. A test on a current-thread runtime runs every task it
/// starts on its own thread, servers included; other tests' threads are
/// untouched. The secrets tests grep the text.
///
/// One global subscriber, installed at the first call, writes each event
/// to the buffer of the thread it happens on, if that thread is capturing;
/// its filter asks at every event, so no callsite is ever cached as
/// disabled. (A scoped `set_default` subscriber per test was not enough:
/// a callsite first hit on another test's thread, at the moment this
/// thread registered its subscriber, stayed cached as disabled, and the
/// secrets test saw nothing when the download-failure tests ran beside it.)
pub fn capture_logs() -> (Arc<Mutex<Vec<u8>>>, CaptureGuard) {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::{Layer, filter};
    static GLOBAL: Once = Once::new();
    GLOBAL.call_once(|| {
        tracing_log::LogTracer::init().unwrap();
        let capturing = filter::dynamic_filter_fn(|_, _| SINK.with(|s| s.borrow().is_some()));
        let layer = tracing_subscriber::fmt::layer()
            .with_ansi(false)
            .with_writer(|| ThreadSink)
            .with_filter(capturing);
        tracing::subscriber::set_global_default(tracing_subscriber::registry().with(layer))
            .expect("capture_logs installs the only global subscriber of a test binary");
    });
    let log = Arc::new(Mutex::new(Vec::new()));
    SINK.with(|s| *s.borrow_mut() = Some(log.clone()));
    (log, CaptureGuard(()))
}

thread_local! {
    /// Where this thread's events go while it captures.
    static SINK: std::cell::RefCell<Option<Arc<Mutex<Vec<u8>>>>> =
        const { std::cell::RefCell::new(None) };
}

/// Stops this thread's capture when dropped (see [`capture_logs`]).
#[derive(Debug)]
pub struct CaptureGuard(());

impl Drop for CaptureGuard {
    fn drop(&mut self) {
        SINK.with(|s| *s.borrow_mut() = None);
    }
}

/// The writer of the global subscriber: this thread's buffer, if any.
struct ThreadSink;

impl Write for ThreadSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        SINK.with(|s| {
            if let Some(log) = &*s.borrow() {
                log.lock().unwrap().extend_from_slice(buf);
            }
        });
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
