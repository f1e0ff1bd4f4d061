//! A moto S3 server for the S3 store's tests.

use crate::{free_port, workspace_root};

/// A moto S3 server (`moto_server`, from the workspace's `.venv` where
/// `cargo xtask setup` installs it, else the `PATH`) on a free loopback
/// port, with one bucket; killed by PID on drop.
#[derive(Debug)]
pub struct Moto {
    child: std::process::Child,
    port: u16,
}

impl Moto {
    /// Starts moto and creates `bucket`.
    pub fn start(bucket: &str) -> Moto {
        use std::io::{Read, Write};
        let venv = workspace_root().join(".venv/bin/moto_server");
        let program = if venv.is_file() { venv } else { "moto_server".into() };
        let port = free_port();
        let child = std::process::Command::new(program)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("moto_server (pip install 'moto[server]'; cargo xtask setup installs it)");
        let moto = Moto { child, port };
        for _ in 0..600 {
            if let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) {
                let request = format!(
                    "PUT /{bucket} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                );
                stream.write_all(request.as_bytes()).unwrap();
                let mut reply = String::new();
                let _ = stream.read_to_string(&mut reply);
                assert!(reply.starts_with("HTTP/1.1 200"), "creating the bucket: {reply}");
                return moto;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        panic!("moto_server did not start");
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
