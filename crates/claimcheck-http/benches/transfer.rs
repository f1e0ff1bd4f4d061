//! Link-transfer throughput against `curl`, same server, same file, same run.
//!
//! `cargo bench -p natsbridge-claimcheck-http --bench transfer [-- SIZE_MB]`
//!
//! Starts a `FileServer` on loopback in a child process (this binary run
//! with `--serve DIR`), writes a payload file (256 MiB by default), then,
//! five times each and alternating: uploads it with `PlikUploader` and
//! downloads it with `HttpDownloader` (file to file), and does the same with
//! `curl` (`-F file=@...` and `-o`). Prints the median throughput of each side,
//! the ratio to curl (the issue's bar is 0.8x) and this process's peak RSS,
//! which bounds both the sender's and the receiver's (the issue's bar is
//! 64 MB each). With `BENCH_MEMORY=1` it also times downloads to memory.

use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use natsbridge_claimcheck_http::{
    DownloadHandlerExt, DownloadRequest, FileServer, HttpDownloader, PlikUploader, UploadHandlerExt,
};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--serve") {
        return serve(std::path::PathBuf::from(&args[i + 1]));
    }
    let mb: u64 = std::env::args().skip(1).find_map(|a| a.parse().ok()).unwrap_or(256);
    let size = mb * 1024 * 1024;
    let runtime =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(run(size));
}

/// The child process: a file server until stdin closes.
fn serve(dir: std::path::PathBuf) {
    let runtime =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(async {
        let server = FileServer::builder().dir(&dir).bind("127.0.0.1:0").await.unwrap();
        println!("{}", server.url());
        tokio::task::spawn_blocking(|| {
            let mut sink = String::new();
            while std::io::stdin().read_line(&mut sink).map(|n| n > 0).unwrap_or(false) {}
        })
        .await
        .unwrap();
        server.shutdown().await;
    });
}

/// Peak resident memory of this process, from `/proc/self/status`.
fn peak_rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kb: f64 = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    kb / 1024.0
}

struct Server {
    child: std::process::Child,
    url: String,
}

impl Server {
    fn start(dir: &Path) -> Server {
        use std::io::BufRead;
        let mut child = Command::new(std::env::current_exe().unwrap())
            .arg("--serve")
            .arg(dir)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut url = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut url).unwrap();
        Server { child, url: url.trim().to_owned() }
    }

    fn url(&self) -> &str {
        &self.url
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.wait();
    }
}

async fn run(size: u64) {
    let work = tempfile::tempdir().unwrap();
    let store = work.path().join("store");
    let server = Server::start(&store);
    let src = work.path().join("payload.bin");
    write_payload(&src, size);
    let uploader = PlikUploader::new(server.url()).unwrap();
    let downloader = HttpDownloader::builder().max_download_size(size).build().unwrap();

    let (mut ours_up, mut ours_down, mut curl_up, mut curl_down) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for round in 0..5 {
        let dest = work.path().join(format!("ours-{round}.bin"));
        let t = Instant::now();
        let link = uploader.upload_file("payload.bin", &src).await.unwrap();
        ours_up.push(t.elapsed());
        let t = Instant::now();
        downloader.download_to_file(&DownloadRequest::new(&link, size), &dest).await.unwrap();
        ours_down.push(t.elapsed());
        std::fs::remove_file(&dest).unwrap();

        let dest = work.path().join(format!("curl-{round}.bin"));
        let url = server.url().to_owned();
        let src2 = src.clone();
        let (up, down) =
            tokio::task::spawn_blocking(move || curl_round_trip(&url, &src2, &dest)).await.unwrap();
        curl_up.push(up);
        curl_down.push(down);
    }
    let rate = |d: &mut Vec<Duration>| {
        d.sort();
        size as f64 / d[d.len() / 2].as_secs_f64() / 1e6
    };
    let (ou, od, cu, cd) =
        (rate(&mut ours_up), rate(&mut ours_down), rate(&mut curl_up), rate(&mut curl_down));
    println!("payload {} MB, medians of 5, MB/s", size / 1_000_000);
    println!("upload:   natsbridge {ou:8.1}   curl {cu:8.1}   ratio {:.2}", ou / cu);
    println!("download: natsbridge {od:8.1}   curl {cd:8.1}   ratio {:.2}", od / cd);
    println!("peak RSS of the sender and receiver process: {:.1} MB", peak_rss_mb());
    // After the RSS reading: a download to memory holds the whole payload.
    if std::env::var_os("BENCH_MEMORY").is_some() {
        let link = uploader.upload_file("payload.bin", &src).await.unwrap();
        let t = Instant::now();
        let b = downloader.download_bytes(&DownloadRequest::new(&link, size)).await.unwrap();
        println!("to memory: {:.1} MB/s", size as f64 / t.elapsed().as_secs_f64() / 1e6);
        drop(b);
    }
    drop(server);
}

fn write_payload(path: &Path, size: u64) {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let mut block = vec![0u8; 1 << 20];
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    for b in block.iter_mut() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
    let mut written = 0;
    let mut i = 0u64;
    while written < size {
        block[..8].copy_from_slice(&i.to_le_bytes());
        let n = (size - written).min(block.len() as u64) as usize;
        f.write_all(&block[..n]).unwrap();
        written += n as u64;
        i += 1;
    }
    f.flush().unwrap();
}

/// Creates the upload with curl too, but times only the file transfer.
fn curl_round_trip(url: &str, src: &Path, dest: &Path) -> (Duration, Duration) {
    let out = Command::new("curl")
        .args(["-sS", "-X", "POST", "-H", "Content-Type: application/json"])
        .args(["-d", r#"{"oneShot":true}"#, &format!("{url}/upload")])
        .output()
        .expect("curl must be installed");
    let upload: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let (id, token) = (upload["id"].as_str().unwrap(), upload["uploadToken"].as_str().unwrap());

    let t = Instant::now();
    let out = Command::new("curl")
        .args(["-sS", "-H", &format!("X-UploadToken: {token}")])
        .args(["-F", &format!("file=@{}", src.display()), &format!("{url}/file/{id}")])
        .output()
        .unwrap();
    let up = t.elapsed();
    let file: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let link = format!("{url}/file/{id}/{}/payload.bin", file["id"].as_str().unwrap());

    let t = Instant::now();
    let status = Command::new("curl").args(["-sS", "-f", "-o"]).arg(dest).arg(&link).status();
    let down = t.elapsed();
    assert!(status.unwrap().success());
    std::fs::remove_file(dest).unwrap();
    (up, down)
}
