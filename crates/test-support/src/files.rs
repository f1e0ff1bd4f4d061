//! Test data and waiting on what a server does in the background: payload
//! bytes, the files under a directory, and [`eventually`].

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Deterministic bytes of length `len` that do not compress to nothing.
pub fn payload(len: usize) -> Vec<u8> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15 ^ len as u64;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Every file under `dir`, recursively.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = entry.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out
}

/// Waits until `condition` holds, checking every 10 ms, for at most 30
/// seconds (a bound for a stuck server, not a measure of its speed).
pub async fn eventually(mut condition: impl FnMut() -> bool) {
    eventually_with("condition", || std::future::ready(condition())).await;
}

/// [`eventually`] for a condition that makes requests; `what` names it if
/// it never holds.
pub async fn eventually_with<F: Future<Output = bool>>(
    what: &str,
    mut condition: impl FnMut() -> F,
) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !condition().await {
        assert!(Instant::now() < deadline, "{what}: never came true");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
