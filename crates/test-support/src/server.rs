//! One nats-server process: finding the binary, configuring it
//! ([`NatsServerBuilder`]: auth, TLS, JetStream, WebSocket, cluster routes,
//! monitoring), starting it on free loopback ports, and stopping,
//! restarting and lame-ducking it by PID.

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::Tls;

/// The nats-server binary to run.
pub fn nats_server_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("NATS_SERVER_BIN") {
        return path.into();
    }
    if let Some(path) = std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join("nats-server"))
        .find(|p| p.is_file())
    {
        return path;
    }
    let venv = workspace_root().join(".venv/bin/nats-server");
    assert!(
        venv.is_file(),
        "nats-server not found (NATS_SERVER_BIN, PATH, {}): run `cargo xtask setup`",
        venv.display()
    );
    venv
}

/// The workspace's root directory.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A free TCP port on 127.0.0.1 for a server to listen on (bound, then
/// released), below the kernel's ephemeral range.
///
/// A port the kernel hands out for `:0` is one it also gives to outgoing
/// connections as their local port. Between this function releasing it and
/// a nats-server binding it (a cluster's route ports are chosen before its
/// nodes start, a restarted node comes back on its old ports), a client
/// connecting anywhere could take it, and the server would fail to start
/// (address in use). Below the ephemeral range only listeners take ports:
/// each process walks its own sequence from a start drawn from its PID and
/// the clock, and skips a port some other process holds.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    const LOW: u32 = 10_000;
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let high = ephemeral_low().clamp(LOW + 1_000, u32::from(u16::MAX));
    let span = high - LOW;
    if NEXT.load(Ordering::Relaxed) == 0 {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let seed = std::process::id().wrapping_mul(7_919).wrapping_add(nanos);
        let _ = NEXT.compare_exchange(0, seed % span + 1, Ordering::Relaxed, Ordering::Relaxed);
    }
    for _ in 0..span {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = u16::try_from(LOW + n % span).expect("below u16::MAX");
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// The first port of the kernel's ephemeral range (Linux: 32768 unless
/// configured otherwise).
fn ephemeral_low() -> u32 {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| range.split_whitespace().next()?.parse().ok())
        .unwrap_or(32_768)
}

/// How to configure a [`NatsServer`]. A builder by value.
#[derive(Clone, Debug, Default)]
#[must_use]
pub struct NatsServerBuilder {
    jetstream: bool,
    websocket: bool,
    max_payload: Option<usize>,
    token: Option<String>,
    user_password: Option<(String, String)>,
    nkey_users: Vec<String>,
    tls: Option<Tls>,
    pub(crate) cluster: Option<ClusterConfig>,
    monitoring: bool,
    extra: String,
}

#[derive(Clone, Debug)]
pub(crate) struct ClusterConfig {
    pub(crate) name: String,
    pub(crate) port: u16,
    pub(crate) routes: Vec<u16>,
}

impl NatsServerBuilder {
    /// Turns JetStream on (store in the server's temporary directory).
    pub fn jetstream(mut self) -> Self {
        self.jetstream = true;
        self
    }

    /// Opens a WebSocket listener (no TLS) on another free port.
    pub fn websocket(mut self) -> Self {
        self.websocket = true;
        self
    }

    /// Sets the server's `max_payload`.
    pub fn max_payload(mut self, bytes: usize) -> Self {
        self.max_payload = Some(bytes);
        self
    }

    /// Requires this token.
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    /// Requires this user and password.
    pub fn user_password(mut self, user: impl Into<String>, password: impl Into<String>) -> Self {
        self.user_password = Some((user.into(), password.into()));
        self
    }

    /// Accepts clients holding the seed of this nkey public key (`U...`).
    pub fn nkey_user(mut self, public_key: impl Into<String>) -> Self {
        self.nkey_users.push(public_key.into());
        self
    }

    /// Serves TLS with these files.
    pub fn tls(mut self, tls: Tls) -> Self {
        self.tls = Some(tls);
        self
    }

    /// Opens the HTTP monitoring endpoint (`/varz`, `/jsz`, `/routez`) on
    /// another free port; see [`NatsServer::monitor`].
    pub fn monitoring(mut self) -> Self {
        self.monitoring = true;
        self
    }

    /// Appends raw configuration text.
    pub fn config(mut self, text: impl Into<String>) -> Self {
        self.extra.push_str(&text.into());
        self.extra.push('\n');
        self
    }

    /// Starts the server and waits until it accepts connections.
    pub fn start(self) -> NatsServer {
        let dir = tempfile::Builder::new().prefix("natsbridge-test-nats-").tempdir().unwrap();
        let port = free_port();
        let ws_port = self.websocket.then(free_port);
        let http_port = self.monitoring.then(free_port);
        let mut server = NatsServer { config: self, dir, port, ws_port, http_port, child: None };
        server.spawn();
        server
    }

    fn render(&self, dir: &Path, port: u16, ws_port: Option<u16>, http: Option<u16>) -> String {
        let mut c = format!("listen: \"127.0.0.1:{port}\"\n");
        if let Some(http) = http {
            c += &format!("http: \"127.0.0.1:{http}\"\n");
        }
        if self.jetstream {
            c += &format!("jetstream {{ store_dir: {:?} }}\n", dir.join("jetstream"));
        }
        if let Some(ws) = ws_port {
            c += &format!("websocket {{ listen: \"127.0.0.1:{ws}\", no_tls: true }}\n");
        }
        if let Some(n) = self.max_payload {
            c += &format!("max_payload: {n}\n");
        }
        let mut users = Vec::new();
        if let Some((u, p)) = &self.user_password {
            users.push(format!("{{ user: {u:?}, password: {p:?} }}"));
        }
        for nkey in &self.nkey_users {
            users.push(format!("{{ nkey: {nkey:?} }}"));
        }
        if let Some(token) = &self.token {
            c += &format!("authorization {{ token: {token:?} }}\n");
        } else if !users.is_empty() {
            c += &format!("authorization {{ users: [ {} ] }}\n", users.join(", "));
        }
        if let Some(cluster) = &self.cluster {
            let routes: Vec<String> =
                cluster.routes.iter().map(|p| format!("\"nats-route://127.0.0.1:{p}\"")).collect();
            c += &format!(
                "server_name: {}\ncluster {{ name: natsbridge, listen: \"127.0.0.1:{}\", routes: [ {} ] }}\n",
                cluster.name,
                cluster.port,
                routes.join(", ")
            );
            // Lame duck mode as fast as the server allows: it refuses a
            // duration under 30 s, but with a handful of clients it closes
            // them about a second apart after the grace period and exits.
            c += "lame_duck_duration: \"30s\"\nlame_duck_grace_period: \"1s\"\n";
        }
        if let Some(tls) = &self.tls {
            c += &format!("tls {{ cert_file: {:?}, key_file: {:?}", tls.cert, tls.key);
            if let Some(ca) = &tls.client_ca {
                c += &format!(", ca_file: {ca:?}, verify: true");
            }
            if tls.handshake_first {
                c += ", handshake_first: true";
            }
            c += " }\n";
        }
        c += &self.extra;
        c
    }
}

/// A running nats-server, killed by PID when dropped.
#[derive(Debug)]
pub struct NatsServer {
    config: NatsServerBuilder,
    dir: tempfile::TempDir,
    port: u16,
    ws_port: Option<u16>,
    http_port: Option<u16>,
    pub(crate) child: Option<Child>,
}

impl NatsServer {
    /// A server configured by the builder's options.
    pub fn builder() -> NatsServerBuilder {
        NatsServerBuilder::default()
    }

    /// A plain server with default options.
    pub fn start() -> NatsServer {
        NatsServer::builder().start()
    }

    /// `nats://127.0.0.1:PORT` (or `tls://` when TLS is on).
    pub fn url(&self) -> String {
        let scheme = if self.config.tls.is_some() { "tls" } else { "nats" };
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    /// `ws://127.0.0.1:PORT` of the WebSocket listener.
    pub fn ws_url(&self) -> String {
        format!("ws://127.0.0.1:{}", self.ws_port.expect("started without .websocket()"))
    }

    /// The client port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The process id, while running.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("nats.log")).unwrap_or_default()
    }

    fn spawn(&mut self) {
        let conf = self.dir.path().join("nats.conf");
        std::fs::write(
            &conf,
            self.config.render(self.dir.path(), self.port, self.ws_port, self.http_port),
        )
        .unwrap();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("nats.log"))
            .unwrap();
        let child = Command::new(nats_server_binary())
            .arg("-c")
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("starting nats-server");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let up = TcpStream::connect(("127.0.0.1", self.port)).is_ok()
                && self.ws_port.is_none_or(|p| TcpStream::connect(("127.0.0.1", p)).is_ok())
                && self.http_port.is_none_or(|p| TcpStream::connect(("127.0.0.1", p)).is_ok());
            if up {
                return;
            }
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("nats-server exited at start ({status}):\n{}", self.log());
            }
            assert!(Instant::now() < deadline, "nats-server not ready in 15 s:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Stops the server (SIGKILL by PID) and waits for it to exit.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Kills the server with SIGKILL (no goodbye to clients or routes)
    /// and waits for the process to exit. The same as [`NatsServer::stop`].
    pub fn kill(&mut self) {
        self.stop();
    }

    /// Puts the server in lame duck mode (SIGUSR2 by PID): it refuses new
    /// clients at once, tells its clients (INFO with `ldm`), moves its
    /// JetStream leaders away, and after its grace period closes its
    /// clients one by one and exits. Returns at once; see
    /// [`NatsServer::wait_exit`].
    pub fn lame_duck(&mut self) {
        let pid = self.pid().expect("lame_duck: the server is not running");
        // SAFETY: kill(2) with a PID of a child we have not reaped.
        let rc = unsafe { libc::kill(pid as libc::pid_t, libc::SIGUSR2) };
        assert_eq!(rc, 0, "SIGUSR2 to nats-server {pid}: {}", std::io::Error::last_os_error());
    }

    /// Freezes the server (SIGSTOP by PID): its sockets stay open but it
    /// reads and answers nothing, as a hung or partitioned server. It
    /// stays frozen until [`NatsServer::kill`] (SIGKILL ends a stopped
    /// process).
    pub fn freeze(&mut self) {
        let pid = self.pid().expect("freeze: the server is not running");
        // SAFETY: kill(2) with a PID of a child we have not reaped.
        let rc = unsafe { libc::kill(pid as libc::pid_t, libc::SIGSTOP) };
        assert_eq!(rc, 0, "SIGSTOP to nats-server {pid}: {}", std::io::Error::last_os_error());
    }

    /// Waits up to `timeout` for the process to exit (after
    /// [`NatsServer::lame_duck`]) and returns its status; panics with the
    /// log if it is still running then.
    pub fn wait_exit(&mut self, timeout: Duration) -> std::process::ExitStatus {
        let child = self.child.as_mut().expect("wait_exit: the server is not running");
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                self.child = None;
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "nats-server still running after {timeout:?}:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Whether the process is running (not killed, not exited).
    pub fn is_running(&mut self) -> bool {
        match &mut self.child {
            None => false,
            Some(child) => child.try_wait().unwrap().is_none(),
        }
    }

    /// The server's name (`server_name`; cluster nodes are `n0`, `n1`, ...).
    pub fn name(&self) -> Option<&str> {
        self.config.cluster.as_ref().map(|c| c.name.as_str())
    }

    /// A monitoring endpoint's JSON (`"/jsz"`, `"/routez"`, with a query
    /// if wanted); `None` when the server does not answer. Needs
    /// [`NatsServerBuilder::monitoring`].
    pub fn monitor(&self, path: &str) -> Option<serde_json::Value> {
        use std::io::Read;
        let port = self.http_port.expect("monitor: started without .monitoring()");
        let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
        stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        write!(stream, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
        let mut reply = Vec::new();
        stream.read_to_end(&mut reply).ok()?;
        let reply = String::from_utf8(reply).ok()?;
        let (head, body) = reply.split_once("\r\n\r\n")?;
        if !head.starts_with("HTTP/1.0 200") && !head.starts_with("HTTP/1.1 200") {
            return None;
        }
        serde_json::from_str(body).ok()
    }

    /// Starts the same server again: same port, same JetStream store (and
    /// for a cluster node, the same name and routes).
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    /// Restarts on the same port with `max_payload` changed.
    pub fn restart_with_max_payload(&mut self, bytes: usize) {
        self.config.max_payload = Some(bytes);
        self.restart();
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.stop();
    }
}
