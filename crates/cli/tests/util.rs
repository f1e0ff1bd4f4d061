//! Running the built binary.

use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, ChildStderr, ChildStdout, Command, Output, Stdio};

/// The `natsbridge` binary Cargo built for these tests.
/// `RUST_LOG` is removed so that logging is what the arguments ask for, and
/// so are natscli's variables; `XDG_CONFIG_HOME` names a directory with no
/// natscli context, so that a context selected on the machine running the
/// tests is not used.
pub(crate) fn natsbridge() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_natsbridge"));
    command.env_remove("RUST_LOG");
    for name in [
        "NATS_URL",
        "NATS_USER",
        "NATS_PASSWORD",
        "NATS_CREDS",
        "NATS_NKEY",
        "NATS_CERT",
        "NATS_KEY",
        "NATS_CA",
        "NATS_TIMEOUT",
        "NATS_CONTEXT",
        "NATSBRIDGE_FILESERVER",
    ] {
        command.env_remove(name);
    }
    command.env("XDG_CONFIG_HOME", concat!(env!("CARGO_TARGET_TMPDIR"), "/no-natscli-config"));
    command
}

/// Asks a long-running `natsbridge` (fileserver, dev) to stop as Ctrl-C
/// would, and returns whether it then exited successfully.
pub(crate) fn interrupt(child: &mut Child) -> bool {
    let status = Command::new("kill").arg("-INT").arg(child.id().to_string()).status().unwrap();
    assert!(status.success(), "kill -INT failed");
    child.wait().unwrap().success()
}

/// Sends SIGTERM (a service manager's stop) and waits; true if it exited 0.
pub(crate) fn terminate(child: &mut Child) -> bool {
    let status = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status().unwrap();
    assert!(status.success(), "kill -TERM failed");
    child.wait().unwrap().success()
}

/// Runs `natsbridge ARGS` with `stdin` piped in.
pub(crate) fn run_with_stdin(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = natsbridge()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    child.wait_with_output().unwrap()
}

/// Runs `natsbridge ARGS`.
pub(crate) fn run(args: &[&str]) -> Output {
    natsbridge().args(args).output().unwrap()
}

/// Starts a long-running `natsbridge ARGS` (`dev --json`, `fileserver
/// --json`) and returns it with the JSON line it prints once ready.
pub(crate) fn start_json<I, S>(args: I) -> (Child, serde_json::Value)
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut child =
        natsbridge().args(args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let started = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line:?}"));
    (child, started)
}

/// A running `natsbridge` and its output.
pub(crate) struct Running {
    pub(crate) child: Child,
    pub(crate) stdout: BufReader<ChildStdout>,
    pub(crate) stderr: BufReader<ChildStderr>,
}

impl Running {
    /// What it wrote on stderr after its ready line, once it has exited.
    pub(crate) fn rest_of_stderr(mut self) -> String {
        let mut rest = String::new();
        self.stderr.read_to_string(&mut rest).unwrap();
        rest
    }
}

/// Starts `natsbridge ARGS` and waits for its "listening"/"answering" line
/// on stderr, which it prints once the server has its subscription.
pub(crate) fn start_ready(args: &[&str]) -> Running {
    let mut child =
        natsbridge().args(args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    assert!(line.contains("listening on") || line.contains("answering on"), "{line}");
    let stdout = BufReader::new(child.stdout.take().unwrap());
    Running { child, stdout, stderr }
}

/// Each non-empty line of a command's output, parsed as JSON (`send`
/// prints the envelope, then with `--jetstream` the stream's ack).
pub(crate) fn json_lines(output: &[u8]) -> Vec<serde_json::Value> {
    output
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).unwrap())
        .collect()
}
