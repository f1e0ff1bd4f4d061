//! `cargo xtask examples`: every program in `crates/natsbridge/examples`
//! against real local servers, and the helpers the README's quick start
//! check (`quickstart.rs`) shares with it: waiting on a child process with a
//! deadline.

use std::env;
use std::fs;
use std::io::{BufRead, BufReader};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::{Result, cargo, root, run, setup, target_dir};

/// How long one example (or the quick start) may run.
pub(crate) const PROGRAM_DEADLINE: Duration = Duration::from_secs(60);

/// Runs every program in `crates/natsbridge/examples` against real local
/// servers started here: nats-server with JetStream and `natsbridge
/// fileserver`, each on a free loopback port with its data in a temporary
/// directory, handed to the examples as `NATS_URL` and
/// `NATSBRIDGE_FILESERVER`. Each example must exit 0 within a minute.
/// Both servers are stopped by PID when done, whatever the outcome.
pub(crate) fn examples() -> Result {
    setup()?;
    run(cargo().args(["build", "-p", "natsbridge-cli"]))?;
    run(cargo().args(["build", "-p", "natsbridge", "--examples"]))?;
    let names = example_names(&root().join("crates/natsbridge/examples"))?;
    let servers = Servers::start()?;
    eprintln!(
        "examples: nats-server at {}, file server at {}",
        servers.nats_url, servers.fileserver_url
    );
    let mut failed = Vec::new();
    for name in &names {
        let mut cmd = cargo();
        cmd.args(["run", "--quiet", "-p", "natsbridge", "--example", name])
            .env("NATS_URL", &servers.nats_url)
            .env("NATSBRIDGE_FILESERVER", &servers.fileserver_url);
        let started = Instant::now();
        match run_with_deadline(&mut cmd, PROGRAM_DEADLINE)? {
            Some(status) if status.success() => {
                eprintln!("examples: {name} passed in {:.1?}", started.elapsed());
            }
            Some(status) => failed.push(format!("{name} ({status})")),
            None => failed.push(format!("{name} (killed after {PROGRAM_DEADLINE:?})")),
        }
    }
    drop(servers);
    if failed.is_empty() {
        eprintln!("examples: all {} passed", names.len());
        Ok(())
    } else {
        Err(format!("examples failed: {}", failed.join(", ")))
    }
}

/// The example names (file stems) in `dir`, sorted.
fn example_names(dir: &Path) -> Result<Vec<String>> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(|entry| {
            let name = entry.ok()?.file_name().into_string().ok()?;
            name.strip_suffix(".rs").map(str::to_string)
        })
        .collect();
    names.sort();
    Ok(names)
}

/// Starts `cmd` and waits for it to exit, for at most `deadline`: `None`
/// when it had to be killed (by PID) and reaped.
pub(crate) fn run_with_deadline(
    cmd: &mut Command,
    deadline: Duration,
) -> Result<Option<ExitStatus>> {
    eprintln!("$ {cmd:?}");
    let mut child = cmd.spawn().map_err(|e| format!("cannot start {cmd:?}: {e}"))?;
    wait_with_deadline(&mut child, deadline)
}

/// Waits for `child` to exit, for at most `deadline`; kills (by PID) and
/// reaps it past that, returning `None`.
pub(crate) fn wait_with_deadline(
    child: &mut Child,
    deadline: Duration,
) -> Result<Option<ExitStatus>> {
    let started = Instant::now();
    loop {
        match child.try_wait().map_err(|e| e.to_string())? {
            Some(status) => return Ok(Some(status)),
            None if started.elapsed() > deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Ok(None);
            }
            None => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

/// nats-server (JetStream) and `natsbridge fileserver` on free loopback
/// ports, their data in a temporary directory: killed (by PID) and reaped on
/// drop, the directory removed.
struct Servers {
    children: Vec<Child>,
    dir: PathBuf,
    nats_url: String,
    fileserver_url: String,
    /// The file server's stdout, kept open until the end so that it never
    /// writes to a closed pipe.
    _fileserver_out: Option<BufReader<ChildStdout>>,
}

impl Servers {
    fn start() -> Result<Servers> {
        let dir = env::temp_dir().join(format!("natsbridge-examples-{}", std::process::id()));
        fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let mut servers = Servers {
            children: Vec::new(),
            dir: dir.clone(),
            nats_url: String::new(),
            fileserver_url: String::new(),
            _fileserver_out: None,
        };

        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| format!("no free port: {e}"))?
            .port();
        let nats_log = fs::File::create(dir.join("nats-server.log")).map_err(|e| e.to_string())?;
        let nats = Command::new(root().join(".venv/bin/nats-server"))
            .args(["-js", "-sd"])
            .arg(dir.join("jetstream"))
            .args(["-a", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(nats_log)
            .spawn()
            .map_err(|e| format!("cannot start nats-server: {e}"))?;
        servers.children.push(nats);
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline {
                let log = fs::read_to_string(dir.join("nats-server.log")).unwrap_or_default();
                return Err(format!("nats-server did not listen on port {port}:\n{log}"));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        servers.nats_url = format!("nats://127.0.0.1:{port}");

        let mut fileserver = Command::new(target_dir().join("debug/natsbridge"))
            .args(["fileserver", "--listen", "127.0.0.1:0", "--dir"])
            .arg(dir.join("files"))
            .arg("--json")
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start natsbridge fileserver: {e}"))?;
        let stdout = fileserver.stdout.take().ok_or("natsbridge fileserver has no stdout")?;
        servers.children.push(fileserver);
        // Its first line: {"dir":"...","url":"http://127.0.0.1:PORT"}.
        let mut out = BufReader::new(stdout);
        let mut line = String::new();
        out.read_line(&mut line).map_err(|e| e.to_string())?;
        servers.fileserver_url = json_string(&line, "url")
            .ok_or_else(|| format!("natsbridge fileserver printed no url: {line:?}"))?;
        servers._fileserver_out = Some(out);
        Ok(servers)
    }
}

impl Drop for Servers {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// The string value of `"key":"..."` in a line of compact JSON that our own
/// tools print (no escapes in the values read here: URLs).
pub(crate) fn json_string(line: &str, key: &str) -> Option<String> {
    let (_, rest) = line.split_once(&format!("\"{key}\":\""))?;
    rest.split_once('"').map(|(value, _)| value.to_string())
}
