//! Token, user/password, nkey, `.creds` (operator mode) and TLS / mutual
//! TLS authentication against real servers; secrets never in errors.

use std::time::Duration;

use futures_util::StreamExt;
use natsbridge_test_support::NatsServer;
use natsbridge_transport_nats::{ConnectOptions, ErrorKind, NatsContext};

#[tokio::test]
async fn token_auth_accepts_the_right_token_and_names_a_wrong_one() {
    let server = NatsServer::builder().token("s3cr3t-token-value").start();
    ConnectOptions::new(server.url()).token("s3cr3t-token-value").connect().await.unwrap();
    let options = ConnectOptions::new(server.url()).token("wrong-token-zz9");
    let shown = format!("{options:?}");
    assert!(!shown.contains("wrong-token-zz9"), "Debug shows the token: {shown}");
    let err = options.connect().await.unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::Auth, "{err}");
    for text in [err.to_string(), format!("{err:?}")] {
        assert!(!text.contains("wrong-token-zz9"), "secret leaked: {text}");
    }
}

#[tokio::test]
async fn user_password_auth() {
    let server = NatsServer::builder().user_password("alice", "pa55-w0rd-value").start();
    ConnectOptions::new(server.url())
        .user_password("alice", "pa55-w0rd-value")
        .connect()
        .await
        .unwrap();
    let err = ConnectOptions::new(server.url())
        .user_password("alice", "not-the-pa55")
        .connect()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::Auth, "{err}");
    assert!(!format!("{err} {err:?}").contains("not-the-pa55"));
}

#[tokio::test]
async fn nkey_auth_accepts_the_right_seed_and_refuses_another() {
    let user = nkeys::KeyPair::new_user();
    let server = NatsServer::builder().nkey_user(user.public_key()).start();
    ConnectOptions::new(server.url()).nkey(user.seed().unwrap()).connect().await.unwrap();
    let stranger = nkeys::KeyPair::new_user().seed().unwrap();
    let err = ConnectOptions::new(server.url()).nkey(stranger.clone()).connect().await.unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::Auth, "{err}");
    assert!(!format!("{err} {err:?}").contains(&stranger), "the seed leaked");
}

#[tokio::test]
async fn tls_with_the_test_ca_and_a_clear_error_with_the_wrong_one() {
    let certs = natsbridge_test_support::TestCertificates::generate();
    let server = NatsServer::builder().tls(certs.server_tls()).start();
    let conn = ConnectOptions::new(server.url())
        .root_certificates(certs.ca())
        .require_tls(true)
        .connect()
        .await
        .unwrap();
    conn.publish("over.tls", "secret".into()).await.unwrap();
    conn.flush().await.unwrap();

    // A client that trusts another CA must not connect.
    let other = natsbridge_test_support::TestCertificates::generate();
    assert_tls_refused(ConnectOptions::new(server.url()).root_certificates(other.ca())).await;
}

#[tokio::test]
async fn creds_file_connects_in_operator_mode_and_a_stranger_is_refused() {
    let auth = natsbridge_test_support::OperatorAuth::generate();
    let server = NatsServer::builder().config(auth.config()).start();
    let conn = ConnectOptions::new(server.url()).creds_file(auth.creds_file()).connect().await;
    let conn = conn.unwrap_or_else(|e| panic!("{e:#}\nserver log:\n{}", server.log()));
    let mut sub = conn.subscribe("creds.echo").await.unwrap();
    conn.publish("creds.echo", "signed in".into()).await.unwrap();
    let got = tokio::time::timeout(std::time::Duration::from_secs(5), sub.next()).await;
    assert_eq!(got.unwrap().unwrap().payload, "signed in");

    // A user of an account the server does not know is refused, and says so.
    let err = ConnectOptions::new(server.url())
        .creds_file(auth.stranger_creds_file())
        .connection_timeout(std::time::Duration::from_secs(3))
        .connect()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::Auth, "{err}");
    // Neither seed may appear in what the user sees.
    let shown = format!("{err} {err:?}");
    assert!(!shown.contains(auth.user_seed()), "the seed leaked: {shown}");
    assert!(!shown.contains("SUA"), "a user seed leaked: {shown}");
}

#[tokio::test]
async fn an_unreadable_creds_file_is_an_invalid_config_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("missing.creds");
    let err =
        ConnectOptions::new("nats://127.0.0.1:1").creds_file(&path).connect().await.unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::InvalidConfig, "{err}");
    assert!(err.to_string().contains("missing.creds"), "{err}");
}

#[tokio::test]
async fn mutual_tls_needs_a_client_certificate_signed_by_the_ca() {
    let certs = natsbridge_test_support::TestCertificates::generate();
    let server = NatsServer::builder().tls(certs.server_mutual_tls()).start();
    let (cert, key) = certs.client();
    let conn = ConnectOptions::new(server.url())
        .root_certificates(certs.ca())
        .client_certificate(cert, key)
        .require_tls(true)
        .connect()
        .await
        .unwrap_or_else(|e| panic!("{e:#}\nserver log:\n{}", server.log()));
    conn.publish("over.mtls", "hello".into()).await.unwrap();
    conn.flush().await.unwrap();

    // Without a client certificate the handshake is refused.
    assert_tls_refused(ConnectOptions::new(server.url()).root_certificates(certs.ca())).await;

    // A client certificate from another CA is refused too.
    let other = natsbridge_test_support::TestCertificates::generate();
    let (cert, key) = other.client();
    let options = ConnectOptions::new(server.url())
        .root_certificates(certs.ca())
        .client_certificate(cert, key);
    assert_tls_refused(options).await;
}

/// Connecting with `options` (TLS required) fails with a TLS error.
async fn assert_tls_refused(options: ConnectOptions) {
    let err = options
        .require_tls(true)
        .connection_timeout(std::time::Duration::from_secs(3))
        .connect()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::Tls, "{err}");
}

#[tokio::test]
async fn a_natscli_context_connects_with_its_credentials() {
    let server = NatsServer::builder().user_password("carol", "ctx-pa55-value").start();
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("nats").join("context");
    std::fs::create_dir_all(&dir).unwrap();
    let context = |password: &str| {
        format!(
            r#"{{"description":"","url":"{}","user":"carol","password":"{password}","token":"",
                "creds":"","nkey":"","cert":"","key":"","ca":"","nsc":"","jetstream_domain":""}}"#,
            server.url()
        )
    };
    std::fs::write(dir.join("good.json"), context("ctx-pa55-value")).unwrap();
    std::fs::write(dir.join("bad.json"), context("not-the-ctx-pa55")).unwrap();
    std::fs::write(root.path().join("nats").join("context.txt"), "good").unwrap();

    // Named, and selected (`nats context select good`) when no name is given.
    for name in [Some("good"), None] {
        let loaded = NatsContext::load_from(root.path(), name).unwrap().unwrap();
        assert_eq!(loaded.name.as_deref(), Some("good"));
        loaded.connect_options().unwrap().connect().await.unwrap();
    }
    let bad = NatsContext::load_from(root.path(), Some("bad")).unwrap().unwrap();
    assert!(!format!("{bad:?}").contains("not-the-ctx-pa55"));
    let err = bad.connect_options().unwrap().connect().await.unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::Auth, "{err}");
    assert!(!format!("{err} {err:?}").contains("not-the-ctx-pa55"));
}

/// A user allowed to subscribe only below `_INBOX_alice` gets answers
/// once her inboxes are made there: `new_inbox`, NATS's own request and
/// the shared reply subscription of `replies`.
#[tokio::test]
async fn an_inbox_prefix_lets_a_restricted_user_get_answers() {
    let server = NatsServer::builder()
        .config(
            r#"authorization { users: [
                { user: alice, password: a11ce, permissions: {
                    publish: ">", subscribe: ["_INBOX_alice.>"] } },
                { user: svc, password: svc0 }
            ] }"#,
        )
        .start();
    let responder =
        ConnectOptions::new(server.url()).user_password("svc", "svc0").connect().await.unwrap();
    let mut requests = responder.subscribe("svc.echo").await.unwrap();
    responder.sync().await.unwrap();
    tokio::spawn(async move {
        while let Some(request) = requests.next().await {
            let reply = request.reply.unwrap();
            responder.publish(&reply, request.payload).await.unwrap();
        }
    });
    let alice = |prefix: Option<&str>| {
        let options = ConnectOptions::new(server.url()).user_password("alice", "a11ce");
        match prefix {
            Some(prefix) => options.inbox_prefix(prefix),
            None => options,
        }
        .connect()
    };
    let conn = alice(Some("_INBOX_alice.")).await.unwrap();
    assert!(conn.new_inbox().starts_with("_INBOX_alice."), "{}", conn.new_inbox());
    let answer = conn.request("svc.echo", "hi".into(), Duration::from_secs(10)).await.unwrap();
    assert_eq!(answer.payload.as_ref(), b"hi");
    let mut replies = conn.replies(None).await.unwrap();
    assert!(replies.subject().starts_with("_INBOX_alice."), "{}", replies.subject());
    conn.send_request(&mut replies, "svc.echo", "again".into(), Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(replies.next().await.unwrap().payload.as_ref(), b"again");
    // Under _INBOX her subscription is refused: the answer never comes.
    let conn = alice(None).await.unwrap();
    let err = conn.request("svc.echo", "hi".into(), Duration::from_millis(500)).await.unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::TimedOut);
    // A prefix no subscription can use is refused before connecting.
    let err = alice(Some("_INBOX.*")).await.unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::InvalidConfig);
}
