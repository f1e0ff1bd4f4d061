//! Connecting as natscli users configure it (flags, variables, context
//! files), each way against a nats-server that requires it, and the exit
//! codes scripts tell apart.

use std::path::Path;
use std::process::{Output, Stdio};

use natsbridge_test_support::{NatsServer, OperatorAuth, TestCertificates};

use crate::util::natsbridge;

const TIMEOUT: i32 = 3;
const NO_RESPONDERS: i32 = 4;
const AUTHORIZATION: i32 = 5;
const BAD_INPUT: i32 = 6;

/// `natsbridge send SUBJECT text:t=hi ARGS` with `env` set: exit 0 means
/// the server accepted the connection (connecting waits for its answer to
/// the credentials).
fn send(args: &[&str], env: &[(&str, &str)]) -> Output {
    natsbridge()
        .args(["send", "cli.auth", "text:t=hi"])
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[track_caller]
fn assert_sent(out: &Output) {
    assert!(out.status.success(), "{:?}: {}", out.status, stderr(out));
}

/// Refused with the authorization exit code, a message that says so, and
/// `secret` nowhere in what it printed.
#[track_caller]
fn assert_refused(out: &Output, secret: &str) {
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), stderr(out));
    assert_eq!(out.status.code(), Some(AUTHORIZATION), "{stderr}");
    assert!(stderr.contains("authorization"), "{stderr}");
    assert!(!stdout.contains(secret) && !stderr.contains(secret), "secret shown: {stderr}");
}

#[test]
fn user_alone_is_a_token_from_the_flag_or_nats_user() {
    let server = NatsServer::builder().token("t0ken-s3cret-value").start();
    let url = server.url();
    assert_sent(&send(&["-s", &url, "--user", "t0ken-s3cret-value"], &[]));
    assert_sent(&send(&[], &[("NATS_URL", &url), ("NATS_USER", "t0ken-s3cret-value")]));
    assert_refused(&send(&["--server", &url, "--user", "wr0ng-t0ken-zz9"], &[]), "wr0ng-t0ken-zz9");
}

#[test]
fn user_and_password_from_flags_or_variables() {
    let server = NatsServer::builder().user_password("alice", "pa55-w0rd-value").start();
    let url = server.url();
    assert_sent(&send(&["-s", &url, "--user", "alice", "--password", "pa55-w0rd-value"], &[]));
    assert_sent(&send(
        &[],
        &[("NATS_URL", &url), ("NATS_USER", "alice"), ("NATS_PASSWORD", "pa55-w0rd-value")],
    ));
    // The global flags may also come before the subcommand.
    let out = natsbridge()
        .args(["-s", &url, "--user", "alice", "--password", "pa55-w0rd-value"])
        .args(["send", "cli.auth", "text:t=hi"])
        .output()
        .unwrap();
    assert_sent(&out);
    // --help names the variables but never shows their values.
    let help = natsbridge()
        .args(["send", "--help"])
        .env("NATS_PASSWORD", "pa55-w0rd-value")
        .env("NATS_USER", "alice-the-user")
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(help.contains("NATS_PASSWORD"), "{help}");
    assert!(!help.contains("pa55-w0rd-value") && !help.contains("alice-the-user"), "{help}");
    let wrong = send(&["-s", &url, "--user", "alice", "--password", "n0t-the-pa55"], &[]);
    assert_refused(&wrong, "n0t-the-pa55");
    let wrong =
        send(&[], &[("NATS_URL", &url), ("NATS_USER", "alice"), ("NATS_PASSWORD", "n0t-the-pa55")]);
    assert_refused(&wrong, "n0t-the-pa55");
}

#[test]
fn nkey_seed_file_from_the_flag_or_nats_nkey() {
    let user = nkeys::KeyPair::new_user();
    let server = NatsServer::builder().nkey_user(user.public_key()).start();
    let url = server.url();
    let dir = tempfile::tempdir().unwrap();
    let seed_file = dir.path().join("user.nk");
    std::fs::write(&seed_file, format!("{}\n", user.seed().unwrap())).unwrap();
    let seed_path = seed_file.to_str().unwrap();
    assert_sent(&send(&["-s", &url, "--nkey", seed_path], &[]));
    assert_sent(&send(&[], &[("NATS_URL", &url), ("NATS_NKEY", seed_path)]));
    let stranger = nkeys::KeyPair::new_user().seed().unwrap();
    let stranger_file = dir.path().join("stranger.nk");
    std::fs::write(&stranger_file, &stranger).unwrap();
    assert_refused(&send(&["-s", &url, "--nkey", stranger_file.to_str().unwrap()], &[]), &stranger);
}

#[test]
fn creds_file_in_operator_mode_from_the_flag_or_nats_creds() {
    let auth = OperatorAuth::generate();
    let server = NatsServer::builder().config(auth.config()).start();
    let url = server.url();
    let creds = auth.creds_file();
    let creds = creds.to_str().unwrap();
    assert_sent(&send(&["-s", &url, "--creds", creds], &[]));
    assert_sent(&send(&[], &[("NATS_URL", &url), ("NATS_CREDS", creds)]));
    let stranger = auth.stranger_creds_file();
    let out = send(&["-s", &url, "--creds", stranger.to_str().unwrap(), "--timeout", "3s"], &[]);
    assert_refused(&out, auth.user_seed());
    assert!(!stderr(&out).contains("SUA"), "a seed shown: {}", stderr(&out));
}

#[test]
fn tls_with_a_ca_and_mutual_tls_from_flags_or_variables() {
    let certs = TestCertificates::generate();
    let ca = certs.ca();
    let ca = ca.to_str().unwrap();
    let server = NatsServer::builder().tls(certs.server_tls()).start();
    assert_sent(&send(&["-s", &server.url(), "--tlsca", ca], &[]));
    assert_sent(&send(&[], &[("NATS_URL", &server.url()), ("NATS_CA", ca)]));

    let mutual = NatsServer::builder().tls(certs.server_mutual_tls()).start();
    let (cert, key) = certs.client();
    let (cert, key) = (cert.to_str().unwrap(), key.to_str().unwrap());
    let url = mutual.url();
    assert_sent(&send(&["-s", &url, "--tlsca", ca, "--tlscert", cert, "--tlskey", key], &[]));
    assert_sent(&send(
        &[],
        &[("NATS_URL", &url), ("NATS_CA", ca), ("NATS_CERT", cert), ("NATS_KEY", key)],
    ));
    // Without a client certificate the server refuses the handshake.
    let out = send(&["-s", &url, "--tlsca", ca, "--timeout", "3s"], &[]);
    assert!(!out.status.success(), "connected without a client certificate");
    // A certificate without its key is a mistake in the input.
    let out = send(&["-s", &url, "--tlsca", ca, "--tlscert", cert], &[]);
    assert_eq!(out.status.code(), Some(BAD_INPUT), "{}", stderr(&out));
}

#[test]
fn tlsfirst_reaches_a_server_that_handshakes_first() {
    let certs = TestCertificates::generate();
    let ca = certs.ca();
    let ca = ca.to_str().unwrap();
    let tls = natsbridge_test_support::Tls { handshake_first: true, ..certs.server_tls() };
    let server = NatsServer::builder().tls(tls).start();
    assert_sent(&send(&["-s", &server.url(), "--tlsca", ca, "--tlsfirst"], &[]));
    // Waiting for the server's INFO first, the client gets nothing.
    let out = send(&["-s", &server.url(), "--tlsca", ca, "--timeout", "2s"], &[]);
    assert!(!out.status.success(), "connected without TLS first");
}

#[test]
fn nats_url_may_list_several_servers() {
    let server = NatsServer::start();
    let dead = format!("nats://127.0.0.1:{}", natsbridge_test_support::free_port());
    let list = format!("{dead},{}", server.url());
    assert_sent(&send(&[], &[("NATS_URL", &list)]));
    assert_sent(&send(&["-s", &list], &[]));
}

/// Writes natscli's context `name` under `root` (an `XDG_CONFIG_HOME`).
fn write_context(root: &Path, name: &str, json: serde_json::Value) {
    let dir = root.join("nats").join("context");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(format!("{name}.json")), json.to_string()).unwrap();
}

#[test]
fn contexts_named_selected_or_from_nats_context_and_flags_win() {
    let server = NatsServer::builder().user_password("bob", "c0ntext-pa55").start();
    let config = tempfile::tempdir().unwrap();
    let xdg = config.path().to_str().unwrap();
    write_context(
        config.path(),
        "secured",
        serde_json::json!({"description": "test", "url": server.url(), "user": "bob",
                           "password": "c0ntext-pa55", "token": "", "creds": "",
                           "nkey": "", "cert": "", "key": "", "ca": "",
                           "jetstream_domain": "", "tls_first": false}),
    );
    write_context(
        config.path(),
        "stale",
        serde_json::json!({"url": server.url(), "user": "bob", "password": "0ld-pa55"}),
    );
    let xdg_env = [("XDG_CONFIG_HOME", xdg)];
    assert_sent(&send(&["--context", "secured"], &xdg_env));
    assert_sent(&send(&[], &[("XDG_CONFIG_HOME", xdg), ("NATS_CONTEXT", "secured")]));
    // The selected context (`nats context select`) when none is named.
    std::fs::write(config.path().join("nats").join("context.txt"), "secured\n").unwrap();
    assert_sent(&send(&[], &xdg_env));
    // ~/.config when XDG_CONFIG_HOME is not set.
    let home = tempfile::tempdir().unwrap();
    write_context(
        &home.path().join(".config"),
        "home",
        serde_json::json!({"url": server.url(), "user": "bob", "password": "c0ntext-pa55"}),
    );
    let out = natsbridge()
        .args(["send", "cli.auth", "text:t=hi", "--context", "home"])
        .env_remove("XDG_CONFIG_HOME")
        .env("HOME", home.path())
        .output()
        .unwrap();
    assert_sent(&out);

    // The context's password is wrong; the flag's wins, as does NATS_PASSWORD.
    assert_refused(&send(&["--context", "stale"], &xdg_env), "0ld-pa55");
    assert_sent(&send(&["--context", "stale", "--password", "c0ntext-pa55"], &xdg_env));
    assert_sent(&send(
        &["--context", "stale"],
        &[("XDG_CONFIG_HOME", xdg), ("NATS_PASSWORD", "c0ntext-pa55")],
    ));
    // The flag's server wins over the context's.
    let out =
        send(&["--context", "secured", "-s", "nats://127.0.0.1:1", "--timeout", "1s"], &xdg_env);
    assert!(!out.status.success());

    let out = send(&["--context", "missing"], &xdg_env);
    assert_eq!(out.status.code(), Some(BAD_INPUT), "{}", stderr(&out));
    assert!(stderr(&out).contains("no NATS context named \"missing\""), "{}", stderr(&out));
}

#[test]
fn a_context_carries_nkey_and_tls_files() {
    let certs = TestCertificates::generate();
    let user = nkeys::KeyPair::new_user();
    let dir = tempfile::tempdir().unwrap();
    let seed_file = dir.path().join("user.nk");
    std::fs::write(&seed_file, user.seed().unwrap()).unwrap();
    let server =
        NatsServer::builder().tls(certs.server_mutual_tls()).nkey_user(user.public_key()).start();
    let (cert, key) = certs.client();
    write_context(
        dir.path(),
        "mtls",
        serde_json::json!({"url": server.url(), "nkey": seed_file, "ca": certs.ca(),
                           "cert": cert, "key": key}),
    );
    let out = send(&["--context", "mtls"], &[("XDG_CONFIG_HOME", dir.path().to_str().unwrap())]);
    assert!(out.status.success(), "{}\nserver log:\n{}", stderr(&out), server.log());
}

#[test]
fn exit_codes_for_timeout_no_responders_and_bad_input() {
    let server = NatsServer::start();
    let url = server.url();
    // Nobody listens: no responders.
    let out =
        natsbridge().args(["request", "cli.nobody", "text:q=x", "-s", &url]).output().unwrap();
    assert_eq!(out.status.code(), Some(NO_RESPONDERS), "{}", stderr(&out));
    assert!(stderr(&out).contains("no responders"), "{}", stderr(&out));

    // A subscriber that never answers: timeout.
    let mut silent = natsbridge()
        .args(["listen", "cli.silent", "-s", &url])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut ready = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(silent.stderr.take().unwrap()),
        &mut ready,
    )
    .unwrap();
    assert!(ready.contains("listening on"), "{ready}");
    let out = natsbridge()
        .args(["request", "cli.silent", "text:q=x", "-s", &url, "--timeout", "300ms"])
        .output()
        .unwrap();
    silent.kill().unwrap();
    silent.wait().unwrap();
    assert_eq!(out.status.code(), Some(TIMEOUT), "{}", stderr(&out));
    // NATS_TIMEOUT applies to requests too.
    let out = natsbridge()
        .args(["request", "cli.nobody", "text:q=x", "-s", &url])
        .env("NATS_TIMEOUT", "soon")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(BAD_INPUT), "{}", stderr(&out));
    assert!(stderr(&out).contains("NATS_TIMEOUT"), "{}", stderr(&out));

    // Payloads that are not what their type says, before anything is sent.
    for arg in ["dictionary:d={not json", "jsontable:j=[1,", "text:t=@/no/such/file"] {
        let out = natsbridge().args(["send", "cli.bad", arg, "-s", &url]).output().unwrap();
        assert_eq!(out.status.code(), Some(BAD_INPUT), "{arg}: {}", stderr(&out));
    }
    // An envelope that is not one.
    let out = crate::util::run_with_stdin(&["unpack", "-"], b"{not an envelope");
    assert_eq!(out.status.code(), Some(BAD_INPUT), "{}", stderr(&out));
    // A usage error stays clap's 2.
    let out = natsbridge().args(["send", "--no-such-flag"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}
