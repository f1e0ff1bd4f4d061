//! Link-transfer throughput against `curl`, same server, same file, same run.
//!
//! `cargo bench -p natsbridge-claimcheck-http --bench transfer [-- SIZE_MB] [--quick]`
//!
//! Starts a `FileServer` on loopback in a child process (this binary run
//! with `--serve DIR`), writes a payload file (256 MiB by default), then,
//! round by round and alternating: uploads it with `PlikUploader` in one
//! child process (`--upload`) and downloads it with `HttpDownloader` in
//! another (`--download`), file to file, and does the same with `curl`
//! (`-F file=@...` and `-o`, each under `/usr/bin/time` for its peak RSS).
//! The sender and the receiver are separate processes, so each one's peak
//! RSS (`VmHWM`) is its own: the issue's bar is 64 MB each, and 0.8x of
//! curl's throughput. Prints a markdown section, also written to
//! `$NATSBRIDGE_BENCH_OUT` (and ratio lines to `$NATSBRIDGE_BENCH_RATIOS`)
//! when set, as `cargo xtask bench` does. Run without `--bench` (as `cargo
//! test --benches` does), it moves 4 MiB once.

use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use natsbridge_claimcheck_http::{
    DownloadHandlerExt, DownloadRequest, HttpDownloader, PlikUploader, UploadHandlerExt,
};
use natsbridge_fileserver::FileServer;
use natsbridge_test_support::stats::{Stats, stats};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str| args.iter().position(|a| a == name).map(|i| &args[i + 1..]);
    if let Some(rest) = arg("--serve") {
        return serve(std::path::PathBuf::from(&rest[0]));
    }
    if let Some(rest) = arg("--upload") {
        return child(|| async {
            let uploader = PlikUploader::new(&rest[0]).unwrap();
            uploader.upload_file("payload.bin", &rest[1]).await.unwrap()
        });
    }
    if let Some(rest) = arg("--download") {
        return child(|| async {
            let size: u64 = rest[2].parse().unwrap();
            let downloader = HttpDownloader::builder().max_download_size(size).build().unwrap();
            let request = DownloadRequest::new(&rest[0], size);
            downloader.download_to_file(&request, &rest[1]).await.unwrap();
            String::new()
        });
    }
    let smoke = !args.iter().any(|a| a == "--bench");
    let quick = args.iter().any(|a| a == "--quick");
    let mb: u64 =
        if smoke { 4 } else { args.iter().skip(1).find_map(|a| a.parse().ok()).unwrap_or(256) };
    let rounds = match (smoke, quick) {
        (true, _) => 1,
        (false, true) => 3,
        (false, false) => 5,
    };
    run(mb * 1024 * 1024, rounds, smoke);
}

/// A sender or receiver child: runs `work` on a two-thread runtime and
/// prints `PEAK_RSS_MB RESULT`.
fn child<F, Fut>(work: F)
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = String>,
{
    let runtime =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let out = runtime.block_on(work());
    println!("{} {out}", peak_rss_mb());
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

/// Runs this binary as a sender or receiver child: (time from start to
/// exit, as curl's is taken, peak RSS MB, its result line).
fn ours(args: &[&str]) -> (Duration, f64, String) {
    let t = Instant::now();
    let out = Command::new(std::env::current_exe().unwrap()).args(args).output().unwrap();
    let elapsed = t.elapsed();
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    let mut parts = text.trim().splitn(2, ' ');
    let rss: f64 = parts.next().unwrap().parse().unwrap();
    (elapsed, rss, parts.next().unwrap_or("").to_owned())
}

fn run(size: u64, rounds: usize, smoke: bool) {
    let work = tempfile::tempdir().unwrap();
    let store = work.path().join("store");
    let server = Server::start(&store);
    let src = work.path().join("payload.bin");
    write_payload(&src, size);
    let src_arg = src.to_str().unwrap();
    let mb_s = |d: Duration| size as f64 / d.as_secs_f64() / 1e6;

    let (mut ou, mut od, mut cu, mut cd, mut ratio) = (vec![], vec![], vec![], vec![], vec![]);
    let (mut rss_up, mut rss_down, mut curl_rss_up, mut curl_rss_down) = (0f64, 0f64, 0f64, 0f64);
    for round in 0..rounds {
        let dest = work.path().join(format!("ours-{round}.bin"));
        let (up, rss, link) = ours(&["--upload", server.url(), src_arg]);
        rss_up = rss_up.max(rss);
        let (down, rss, _) =
            ours(&["--download", &link, dest.to_str().unwrap(), &size.to_string()]);
        rss_down = rss_down.max(rss);
        assert_eq!(std::fs::metadata(&dest).unwrap().len(), size);
        std::fs::remove_file(&dest).unwrap();

        let dest = work.path().join(format!("curl-{round}.bin"));
        let (c_up, c_down, c_rss_up, c_rss_down) = curl_round_trip(server.url(), &src, &dest);
        curl_rss_up = curl_rss_up.max(c_rss_up);
        curl_rss_down = curl_rss_down.max(c_rss_down);
        ou.push(mb_s(up));
        od.push(mb_s(down));
        cu.push(mb_s(c_up));
        cd.push(mb_s(c_down));
        // File to file: the upload and the download one after the other.
        ratio.push((c_up + c_down).as_secs_f64() / (up + down).as_secs_f64());
    }
    let (uq, dq): (Vec<f64>, Vec<f64>) =
        ou.iter().zip(&cu).map(|(o, c)| o / c).zip(od.iter().zip(&cd).map(|(o, c)| o / c)).unzip();
    let (ou, od, cu, cd) = (stats(ou), stats(od), stats(cu), stats(cd));
    let (uq, dq, ratio) = (stats(uq), stats(dq), stats(ratio));
    let f = |s: &Stats| format!("{:.0} ({:.0}-{:.0})", s.median, s.min, s.max);
    let r = |s: &Stats| format!("{:.2}x ({:.2}-{:.2})", s.median, s.min, s.max);
    let md = format!(
        "## Claim-check link transfer, file to file, against curl\n\n\
         `cargo bench -p natsbridge-claimcheck-http --bench transfer`: a {} MiB file uploaded\n\
         to the Plik-compatible `FileServer` (a separate process on loopback) and downloaded to\n\
         a file, {rounds} rounds alternating with curl (`-F file=@...`, `-o`) against the same\n\
         server. The sender (`PlikUploader::upload_file`) and the receiver\n\
         (`HttpDownloader::download_to_file`) each run in their own process, so each peak RSS\n\
         (`VmHWM`, whole process) is its own; curl's is from `/usr/bin/time`.\n\n\
         | what | natsbridge MB/s | curl MB/s | ratio | target |\n|---|---|---|---|---|\n\
         | upload (sender) | {} | {} | {} | - |\n\
         | download (receiver) | {} | {} | {} | - |\n\
         | upload + download, file to file | - | - | {} | >= 0.8x |\n\n\
         | peak RSS | natsbridge | curl | target |\n|---|---|---|---|\n\
         | sender | {rss_up:.1} MB | {curl_rss_up:.1} MB | < 64 MB |\n\
         | receiver | {rss_down:.1} MB | {curl_rss_down:.1} MB | < 64 MB |\n",
        size >> 20,
        f(&ou),
        f(&cu),
        r(&uq),
        f(&od),
        f(&cd),
        r(&dq),
        r(&ratio),
    );
    println!("{md}");
    let one = |v: f64| format!("{v}\t{v}\t{v}");
    let ratios = format!(
        "256 MB link file to file vs curl\t{}\t{}\t{}\t0.8\t>=\n\
         sender peak RSS, MB\t{}\t64\t<=\nreceiver peak RSS, MB\t{}\t64\t<=\n",
        ratio.median,
        ratio.min,
        ratio.max,
        one(rss_up),
        one(rss_down),
    );
    if let (Some(path), false) = (std::env::var_os("NATSBRIDGE_BENCH_OUT"), smoke) {
        std::fs::write(path, &md).unwrap();
    }
    if let (Some(path), false) = (std::env::var_os("NATSBRIDGE_BENCH_RATIOS"), smoke) {
        std::fs::write(path, ratios).unwrap();
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
/// Returns the upload and download times and each curl's peak RSS in MB.
fn curl_round_trip(url: &str, src: &Path, dest: &Path) -> (Duration, Duration, f64, f64) {
    let out = Command::new("curl")
        .args(["-sS", "-X", "POST", "-H", "Content-Type: application/json"])
        .args(["-d", r#"{"oneShot":true}"#, &format!("{url}/upload")])
        .output()
        .expect("curl must be installed");
    let upload: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let (id, token) = (upload["id"].as_str().unwrap(), upload["uploadToken"].as_str().unwrap());
    let rss_file = dest.with_extension("rss");
    let timed = |args: &[&str]| {
        let mut cmd = Command::new("/usr/bin/time");
        cmd.args(["-f", "%M", "-o"]).arg(&rss_file).arg("curl").args(args);
        cmd
    };

    let form = format!("file=@{}", src.display());
    let header = format!("X-UploadToken: {token}");
    let t = Instant::now();
    let out =
        timed(&["-sS", "-H", &header, "-F", &form, &format!("{url}/file/{id}")]).output().unwrap();
    let up = t.elapsed();
    let rss_up = read_kb(&rss_file);
    let file: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let link = format!("{url}/file/{id}/{}/payload.bin", file["id"].as_str().unwrap());

    let t = Instant::now();
    let status = timed(&["-sS", "-f", "-o", dest.to_str().unwrap(), &link]).status();
    let down = t.elapsed();
    assert!(status.unwrap().success());
    let rss_down = read_kb(&rss_file);
    std::fs::remove_file(dest).unwrap();
    (up, down, rss_up / 1024.0, rss_down / 1024.0)
}

fn read_kb(path: &Path) -> f64 {
    std::fs::read_to_string(path).unwrap().trim().parse().unwrap()
}
