//! TLS for test servers: the PEM files a server is configured with, and a
//! test CA with a server certificate for loopback.

use std::path::PathBuf;

/// TLS files for the server (PEM).
#[derive(Clone, Debug)]
pub struct Tls {
    /// The server's certificate.
    pub cert: PathBuf,
    /// The server's private key.
    pub key: PathBuf,
    /// When set, client certificates signed by this CA are required.
    pub client_ca: Option<PathBuf>,
    /// TLS before the server's INFO (`handshake_first`, natscli's
    /// `--tlsfirst`): clients that wait for INFO first cannot connect.
    pub handshake_first: bool,
}

/// PEM files of a test CA and a server certificate for 127.0.0.1 and
/// localhost signed by it, written to a temporary directory (removed on
/// drop).
#[derive(Debug)]
pub struct TestCertificates {
    dir: tempfile::TempDir,
}

impl TestCertificates {
    /// Generates a CA, a server certificate and a client certificate.
    pub fn generate() -> TestCertificates {
        let dir = tempfile::Builder::new().prefix("natsbridge-certs-").tempdir().unwrap();
        let write = |name: &str, pem: String| std::fs::write(dir.path().join(name), pem).unwrap();
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params.distinguished_name.push(rcgen::DnType::CommonName, "natsbridge test CA");
        let ca_cert = ca_params.self_signed(&ca_key).unwrap();
        let issuer = rcgen::Issuer::new(ca_params, ca_key);
        write("ca.pem", ca_cert.pem());
        for (name, sans) in [
            ("server", vec!["127.0.0.1".to_string(), "localhost".into()]),
            ("client", vec!["client".into()]),
        ] {
            let key = rcgen::KeyPair::generate().unwrap();
            let params = rcgen::CertificateParams::new(sans).unwrap();
            let cert = params.signed_by(&key, &issuer).unwrap();
            write(&format!("{name}.pem"), cert.pem());
            write(&format!("{name}-key.pem"), key.serialize_pem());
        }
        TestCertificates { dir }
    }

    /// The CA certificate.
    pub fn ca(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// The server's TLS configuration (no client certificates required).
    pub fn server_tls(&self) -> Tls {
        Tls {
            cert: self.dir.path().join("server.pem"),
            key: self.dir.path().join("server-key.pem"),
            client_ca: None,
            handshake_first: false,
        }
    }

    /// The server's TLS configuration requiring a client certificate
    /// signed by this CA (mutual TLS).
    pub fn server_mutual_tls(&self) -> Tls {
        Tls { client_ca: Some(self.ca()), ..self.server_tls() }
    }

    /// The client certificate and key.
    pub fn client(&self) -> (PathBuf, PathBuf) {
        (self.dir.path().join("client.pem"), self.dir.path().join("client-key.pem"))
    }
}
