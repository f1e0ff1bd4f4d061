//! Help that tells the truth (docs/cli.md): usage lines in the order the
//! parser takes the arguments, connection flags only on the commands that
//! connect, and no variable's value or variable-set option in a usage
//! error.

use crate::util::{natsbridge, run};

const CONNECTING: [&str; 5] = ["send", "listen", "request", "reply", "inspect"];
/// The commands that do not connect, each with arguments it accepts.
const OFFLINE: [&[&str]; 6] = [
    &["unpack", "e.json"],
    &["fileserver"],
    &["dev"],
    &["demo"],
    &["completions", "bash"],
    &["man"],
];

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn usage_lines_put_the_subject_first() {
    let help = stdout(&run(&["reply", "--help"]));
    assert!(help.contains("Usage: natsbridge reply [OPTIONS] <SUBJECT> <PAYLOAD>..."), "{help}");
    assert!(help.contains("natsbridge reply [OPTIONS] <SUBJECT> --command <CMD>"), "{help}");
    for (command, usage) in [
        ("send", "natsbridge send [OPTIONS] <SUBJECT> <PAYLOAD>..."),
        ("request", "natsbridge request [OPTIONS] <SUBJECT> <PAYLOAD>..."),
        ("listen", "natsbridge listen [OPTIONS] <SUBJECT>"),
    ] {
        let help = stdout(&run(&[command, "--help"]));
        assert!(help.contains(&format!("Usage: {usage}")), "{help}");
    }
    // Without its answer, reply is a usage error naming the three ways.
    let out = run(&["reply", "svc.x"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("PAYLOAD..., --echo or --command"), "{}", stderr(&out));
}

#[test]
fn connection_flags_only_on_the_commands_that_connect() {
    for command in CONNECTING {
        let help = stdout(&run(&[command, "--help"]));
        assert!(help.contains("--server <URL>") && help.contains("--creds <FILE>"), "{help}");
    }
    for args in OFFLINE {
        let command = args[0];
        let help = stdout(&run(&[command, "--help"]));
        assert!(!help.contains("--server") && !help.contains("--creds"), "{command}: {help}");
        // Not taken after the subcommand, nor silently before it.
        let after = run(&[args, &["-s", "nats://127.0.0.1:1"]].concat());
        assert_eq!(after.status.code(), Some(2), "{command}: {}", stderr(&after));
        let before = run(&[&["--creds", "x.creds"], args].concat());
        assert_eq!(before.status.code(), Some(2), "{command}: {}", stderr(&before));
        assert!(stderr(&before).contains("does not connect"), "{}", stderr(&before));
    }
    // A variable is not a flag: `dev` with NATS_URL exported is fine.
    let out = natsbridge().args(["dev", "--help"]).env("NATS_URL", "nats://x:1").output().unwrap();
    assert!(out.status.success());
}

#[test]
fn usage_errors_show_no_variable_set_option_nor_value() {
    for command in ["send", "listen", "request", "reply", "unpack"] {
        let out = natsbridge()
            .arg(command)
            .env("NATS_URL", "nats://s3cret-host:4222")
            .env("NATS_USER", "s3cret-user")
            .env("NATS_CONTEXT", "s3cret-context")
            .env("NATSBRIDGE_FILESERVER", "http://s3cret-files:8080")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2));
        let said = stderr(&out);
        assert!(said.contains(&format!("Usage: natsbridge {command} [OPTIONS]")), "{said}");
        for shown in ["--server", "--user", "--context", "--fileserver", "s3cret"] {
            assert!(!said.contains(shown), "{command}: {shown} in {said}");
        }
    }
}
