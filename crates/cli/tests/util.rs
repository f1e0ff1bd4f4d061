//! Running the built binary.

use std::io::Write;
use std::process::{Command, Output, Stdio};

/// The `natsbridge` binary Cargo built for these tests.
pub(crate) fn natsbridge() -> Command {
    Command::new(env!("CARGO_BIN_EXE_natsbridge"))
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
