//! Decentralised (JWT) authentication for a test server: operator,
//! account and user, signed with nkeys.

use std::path::PathBuf;

/// Decentralised (JWT) auth for a test server: an operator, one account
/// preloaded into the server's memory resolver, and a user of that account
/// whose `.creds` file (user JWT + nkey seed) is written to a temporary
/// directory. [`OperatorAuth::config`] is the server configuration to pass
/// to [`NatsServerBuilder::config`](crate::NatsServerBuilder::config).
#[derive(Debug)]
pub struct OperatorAuth {
    dir: tempfile::TempDir,
    account_public_key: String,
    account_jwt: String,
    user_seed: String,
}

impl OperatorAuth {
    /// Generates the operator, the account and its user, and signs their JWTs.
    pub fn generate() -> OperatorAuth {
        let dir = tempfile::Builder::new().prefix("natsbridge-jwt-").tempdir().unwrap();
        let operator = nkeys::KeyPair::new_operator();
        let account = nkeys::KeyPair::new_account();
        let user = nkeys::KeyPair::new_user();
        let operator_jwt = sign_jwt(
            &operator,
            &operator,
            "test operator",
            serde_json::json!({
                "type": "operator", "version": 2
            }),
        );
        let account_jwt = sign_jwt(
            &operator,
            &account,
            "test account",
            serde_json::json!({
                "type": "account", "version": 2,
                "limits": {"subs": -1, "data": -1, "payload": -1, "imports": -1, "exports": -1,
                           "wildcards": true, "conn": -1, "leaf": -1},
            }),
        );
        let user_jwt = sign_jwt(
            &account,
            &user,
            "test user",
            serde_json::json!({
                "type": "user", "version": 2, "pub": {}, "sub": {},
                "subs": -1, "data": -1, "payload": -1,
            }),
        );
        std::fs::write(dir.path().join("operator.jwt"), &operator_jwt).unwrap();
        let user_seed = user.seed().unwrap();
        std::fs::write(dir.path().join("user.creds"), creds_file_text(&user_jwt, &user_seed))
            .unwrap();
        OperatorAuth { dir, account_public_key: account.public_key(), account_jwt, user_seed }
    }

    /// The server configuration: operator mode with a memory resolver.
    pub fn config(&self) -> String {
        format!(
            "operator: {:?}\nresolver: MEMORY\nresolver_preload: {{ {}: {:?} }}\n",
            self.dir.path().join("operator.jwt"),
            self.account_public_key,
            self.account_jwt
        )
    }

    /// The user's `.creds` file.
    pub fn creds_file(&self) -> PathBuf {
        self.dir.path().join("user.creds")
    }

    /// The user's nkey seed (to check that it never leaks into errors).
    pub fn user_seed(&self) -> &str {
        &self.user_seed
    }

    /// A `.creds` file of a user signed by an account the server does not
    /// know, written next to the good one.
    pub fn stranger_creds_file(&self) -> PathBuf {
        let account = nkeys::KeyPair::new_account();
        let user = nkeys::KeyPair::new_user();
        let jwt = sign_jwt(
            &account,
            &user,
            "stranger",
            serde_json::json!({
                "type": "user", "version": 2, "pub": {}, "sub": {},
                "subs": -1, "data": -1, "payload": -1,
            }),
        );
        let path = self.dir.path().join("stranger.creds");
        std::fs::write(&path, creds_file_text(&jwt, &user.seed().unwrap())).unwrap();
        path
    }
}

/// A NATS v2 JWT (`ed25519-nkey`): `subject`'s claims signed by `issuer`.
fn sign_jwt(
    issuer: &nkeys::KeyPair,
    subject: &nkeys::KeyPair,
    name: &str,
    nats: serde_json::Value,
) -> String {
    let b64 = |bytes: &[u8]| base64_simd::URL_SAFE_NO_PAD.encode_to_string(bytes);
    let header = serde_json::json!({"typ": "JWT", "alg": "ed25519-nkey"});
    let iat = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let claims = serde_json::json!({
        "jti": format!("natsbridge-test-{}", subject.public_key()),
        "iat": iat,
        "iss": issuer.public_key(),
        "name": name,
        "sub": subject.public_key(),
        "nats": nats,
    });
    let signing_input =
        format!("{}.{}", b64(header.to_string().as_bytes()), b64(claims.to_string().as_bytes()));
    let signature = issuer.sign(signing_input.as_bytes()).unwrap();
    format!("{signing_input}.{}", b64(&signature))
}

fn creds_file_text(jwt: &str, seed: &str) -> String {
    format!(
        "-----BEGIN NATS USER JWT-----\n{jwt}\n------END NATS USER JWT------\n\n\
         ************************* IMPORTANT *************************\n\
         NKEY Seed printed below can be used to sign and prove identity.\n\n\
         -----BEGIN USER NKEY SEED-----\n{seed}\n------END USER NKEY SEED------\n"
    )
}
