//! Token and user/password authentication; secrets never in errors.

use natsbridge_test_support::NatsServer;
use natsbridge_transport_nats::{ConnectOptions, ErrorKind};

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
    let err = ConnectOptions::new(server.url())
        .root_certificates(other.ca())
        .require_tls(true)
        .connection_timeout(std::time::Duration::from_secs(3))
        .connect()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::Tls, "{err}");
}
