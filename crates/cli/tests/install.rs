//! Installed like a tool: shell completions and the manual page, generated
//! from the command line's own definitions.

use crate::util::run;

/// Every subcommand, as `--help` lists them.
const SUBCOMMANDS: [&str; 11] = [
    "send",
    "listen",
    "request",
    "reply",
    "demo",
    "unpack",
    "inspect",
    "fileserver",
    "dev",
    "completions",
    "man",
];

#[test]
fn completions_for_bash_zsh_and_fish() {
    let out = run(&["completions", "bash"]);
    assert!(out.status.success());
    let bash = String::from_utf8(out.stdout).unwrap();
    assert!(bash.contains("_natsbridge"), "{bash}");
    assert!(bash.contains("complete -F _natsbridge"), "{bash}");
    for sub in SUBCOMMANDS {
        assert!(bash.contains(&format!("natsbridge,{sub})")), "bash misses {sub}");
    }
    // Flags are completed too, global and per subcommand.
    for flag in ["--server", "--creds", "--command", "--no-queue"] {
        assert!(bash.contains(flag), "bash misses {flag}");
    }
    for shell in ["zsh", "fish"] {
        let out = run(&["completions", shell]);
        assert!(out.status.success());
        let script = String::from_utf8(out.stdout).unwrap();
        for sub in SUBCOMMANDS {
            assert!(script.contains(sub), "{shell} misses {sub}");
        }
    }
    assert!(String::from_utf8(run(&["completions", "zsh"]).stdout).unwrap().contains("#compdef"));
    // An unknown shell is a usage error.
    assert_eq!(run(&["completions", "tcsh"]).status.code(), Some(2));
}

#[test]
fn man_page_names_every_subcommand() {
    let out = run(&["man"]);
    assert!(out.status.success());
    let page = String::from_utf8(out.stdout).unwrap();
    // clap_mangen opens with the definition of the apostrophe string
    // (`.ie`/`.el`); the page itself starts with `.TH`.
    let first = page.lines().find(|l| !l.starts_with(".ie ") && !l.starts_with(".el ")).unwrap();
    assert!(first.starts_with(".TH natsbridge 1"), "{first}");
    assert!(page.contains(".SH SUBCOMMANDS"), "{page}");
    for sub in SUBCOMMANDS {
        assert!(page.contains(&format!("natsbridge\\-{sub}(1)")), "the page misses {sub}");
    }
    assert!(page.contains("NATS_URL"), "the variables are named");
}

#[test]
fn man_dir_writes_a_page_per_subcommand() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(&["man", "--dir", dir.path().to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let main = std::fs::read_to_string(dir.path().join("natsbridge.1")).unwrap();
    assert!(main.contains(".TH natsbridge 1"));
    for sub in SUBCOMMANDS {
        let page = std::fs::read_to_string(dir.path().join(format!("natsbridge-{sub}.1")))
            .unwrap_or_else(|e| panic!("natsbridge-{sub}.1: {e}"));
        assert!(page.contains(&format!(".TH natsbridge-{sub} 1")), "{sub}: {page}");
    }
    let reply = std::fs::read_to_string(dir.path().join("natsbridge-reply.1")).unwrap();
    assert!(reply.contains("\\-\\-no\\-queue"), "{reply}");
}
