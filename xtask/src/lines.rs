//! `cargo xtask lines [REV]`: the size of the file server and the inspector
//! (`crates/fileserver/src/**` and `crates/cli/src/inspect/**`) at REV
//! (default `8f1888e`, the last hand-written hyper version) and at HEAD,
//! read from git (`git ls-tree`, `git show REV:path`), so the table in
//! `docs/architecture.md` can be regenerated.
//!
//! Two measures per tree: all lines, and code only: no blank lines, no
//! comment lines (`//`, `///`, `//!`) and no unit-test modules
//! (`#[cfg(test)]`, `#[cfg(all(test, unix))]`: the attribute, the `mod` and
//! everything to its closing brace).

use std::process::Command;

use crate::{Result, output, root};

const TREES: &[&str] = &["crates/fileserver/src", "crates/cli/src/inspect"];

pub(crate) fn lines(args: &[String]) -> Result {
    let base = args.first().map_or("8f1888e", String::as_str);
    println!("| tree | {base} all | {base} code | HEAD all | HEAD code |");
    println!("|---|---:|---:|---:|---:|");
    let mut total = [0; 4];
    for tree in TREES {
        let (a, b) = (count(base, tree)?, count("HEAD", tree)?);
        let row = [a.0, a.1, b.0, b.1];
        total.iter_mut().zip(row).for_each(|(t, n)| *t += n);
        println!("| `{tree}` | {} | {} | {} | {} |", row[0], row[1], row[2], row[3]);
    }
    println!("| both | {} | {} | {} | {} |", total[0], total[1], total[2], total[3]);
    Ok(())
}

/// (all lines, code lines) of the `.rs` files under `tree` at `rev`.
fn count(rev: &str, tree: &str) -> Result<(usize, usize)> {
    let git = || {
        let mut cmd = Command::new("git");
        cmd.current_dir(root());
        cmd
    };
    let files = output(git().args(["ls-tree", "-r", "--name-only", rev, "--", tree]))?;
    let mut counts = (0, 0);
    for path in files.lines().filter(|p| p.ends_with(".rs")) {
        let text = output(git().arg("show").arg(format!("{rev}:{path}")))?;
        counts.0 += text.lines().count();
        counts.1 += code_lines(&text);
    }
    Ok(counts)
}

/// Lines that are neither blank, nor comments, nor in a `#[cfg(test)]` module.
fn code_lines(text: &str) -> usize {
    let mut lines = text.lines().map(str::trim).peekable();
    let mut code = 0;
    while let Some(line) = lines.next() {
        let test_attr = line.starts_with("#[cfg(") && line.contains("test");
        if test_attr && lines.peek().is_some_and(|l| l.starts_with("mod ")) {
            // Skip to the brace that closes the module (or its `;`).
            if lines.next_if(|l| l.ends_with(';')).is_some() {
                continue;
            }
            let mut depth = 0i64;
            for l in lines.by_ref() {
                depth += l.matches('{').count() as i64 - l.matches('}').count() as i64;
                if depth <= 0 && l.contains('}') {
                    break;
                }
            }
        } else if !line.is_empty() && !line.starts_with("//") {
            code += 1;
        }
    }
    code
}
