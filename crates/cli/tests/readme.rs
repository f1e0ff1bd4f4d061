//! The README's command-line walkthrough, run as written: each block
//! between its `<!-- readme-shell: NAME -->` marker and the end of its
//! fenced code, in a fresh `bash` of its own (no profile, no variable of
//! the test's environment but `PATH`), as a first-time operator pastes
//! them into three terminals: `dev`, then `listen` and `send` with the
//! `export` lines `dev` printed.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};

/// The README's marked shell blocks, by name.
fn blocks() -> HashMap<String, String> {
    let readme = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md");
    let text = std::fs::read_to_string(readme).unwrap();
    let mut blocks = HashMap::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        let Some(name) = line.strip_prefix("<!-- readme-shell: ") else { continue };
        let name = name.trim_end_matches(" -->").to_owned();
        assert_eq!(lines.next(), Some("```sh"), "block {name}");
        let body: Vec<&str> = lines.by_ref().take_while(|l| *l != "```").collect();
        blocks.insert(name, body.join("\n"));
    }
    blocks
}

/// A fresh shell in `dir` running `script`, `natsbridge` on its `PATH`,
/// in a process group of its own (so that Ctrl-C reaches what it runs).
fn shell(dir: &Path, script: &str) -> Command {
    let bin = Path::new(env!("CARGO_BIN_EXE_natsbridge")).parent().unwrap();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
    let mut command = Command::new("bash");
    command
        .args(["--noprofile", "--norc", "-e", "-c", script])
        .env_clear()
        .env("PATH", path)
        .env("HOME", dir)
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    command
}

#[test]
fn the_readme_command_line_runs_as_written_from_fresh_shells() {
    let blocks = blocks();
    let dir = tempfile::tempdir().unwrap();

    // Terminal 1: `natsbridge dev`, until it says how to stop it; the
    // `export` lines it prints are what the operator pastes.
    let mut dev = shell(dir.path(), &blocks["dev"]).spawn().unwrap();
    let mut exports = Vec::new();
    for line in BufReader::new(dev.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        if line.starts_with("export ") {
            exports.push(line);
        } else if line.starts_with("Ctrl-C stops them all") {
            break;
        }
    }
    let names: Vec<&str> = exports.iter().map(|l| l.split('=').next().unwrap()).collect();
    assert!(names.contains(&"export NATS_URL") && names.contains(&"export NATSBRIDGE_FILESERVER"));
    let exports = exports.join("\n");

    // Terminal 2: the listener, ready once it says so.
    let mut listen =
        shell(dir.path(), &format!("{exports}\n{}", blocks["listen"])).spawn().unwrap();
    let mut stderr = BufReader::new(listen.stderr.take().unwrap());
    let mut ready = String::new();
    stderr.read_line(&mut ready).unwrap();
    assert!(ready.contains("listening on chat.room1"), "{ready}");

    // Terminal 3: the send.
    let sent = shell(dir.path(), &format!("{exports}\n{}", blocks["send"])).output().unwrap();
    assert!(sent.status.success(), "{}", String::from_utf8_lossy(&sent.stderr));

    let mut shown = String::new();
    listen.stdout.take().unwrap().read_to_string(&mut shown).unwrap();
    let status = listen.wait().unwrap();
    let mut rest = String::new();
    stderr.read_to_string(&mut rest).unwrap();
    assert!(status.success(), "{status}: {rest}");
    for part in [
        "[0] message_text (text, 6 bytes, direct)",
        "Hello!",
        "[1] sales (arrowtable,",
        "2 rows, 2 columns",
        "[2] report (binary, 2000000 bytes, link)",
    ] {
        assert!(shown.contains(part), "{part}: {shown}");
    }

    // Ctrl-C stops dev and what it started.
    let group = format!("-{}", dev.id());
    let kill = Command::new("kill").args(["-INT", "--", &group]).status().unwrap();
    assert!(kill.success());
    assert!(dev.wait().unwrap().success());
}
