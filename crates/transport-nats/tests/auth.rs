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
