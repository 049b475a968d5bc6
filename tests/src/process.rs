//! A suite process started from its binary (`tracery serve`, a per-service binary), for
//! tests that signal, kill or restart it.
//!
//! It listens on ports the OS picks (`127.0.0.1:0`) and says which in its "tracery
//! serving" log line; no port is picked, released and reused, so tests running in
//! parallel cannot take each other's ports.

use std::{
    io::{BufRead as _, BufReader},
    net::SocketAddr,
    process::{Child, Command, Stdio},
    time::Duration,
};

/// How long a process may take to migrate and start serving.
const START_TIMEOUT: Duration = Duration::from_secs(120);

/// A running suite process; killed when dropped, so a failing test leaves none behind
/// (it would hold the test's output pipes open and hang the runner).
pub struct ServerProcess {
    /// The process, for signals and its exit status.
    pub child: Child,
    /// Where it serves gRPC.
    pub grpc: SocketAddr,
    /// Where it serves HTTP.
    pub http: SocketAddr,
}

impl ServerProcess {
    /// Starts `command` (a binary and its own flags, listeners excepted) and waits until
    /// it serves. Its log is passed on to the test's stderr.
    pub fn start(mut command: Command) -> Self {
        let log_filter = match command.get_envs().find(|(key, _)| *key == "RUST_LOG") {
            Some((_, Some(filter))) => format!("{},{SERVING_TARGET}=info", filter.display()),
            _ => format!("warn,{SERVING_TARGET}=info"),
        };
        let mut child = command
            .args(["--listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0"])
            .args(["--log-format", "json"])
            .env("RUST_LOG", log_filter)
            .stdout(Stdio::piped())
            .spawn()
            .expect("the server process starts");
        let stdout = child.stdout.take().expect("piped stdout");
        let (serving, announced) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut serving = Some(serving);
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(addresses) = serving_addresses(&line)
                    && let Some(serving) = serving.take()
                {
                    let _ = serving.send(addresses);
                }
                eprintln!("{line}");
            }
        });
        match announced.recv_timeout(START_TIMEOUT) {
            Ok((grpc, http)) => Self { child, grpc, http },
            Err(_) => {
                let _ = child.kill();
                let status = child.wait();
                panic!("the server never said where it serves (exit: {status:?})");
            }
        }
    }

    /// Its gRPC endpoint, `http://127.0.0.1:<port>`.
    pub fn grpc_url(&self) -> String {
        format!("http://{}", self.grpc)
    }

    /// Its HTTP root, `http://127.0.0.1:<port>`.
    pub fn http_url(&self) -> String {
        format!("http://{}", self.http)
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The module that logs "tracery serving".
const SERVING_TARGET: &str = "tracery_runtime::server";

/// The gRPC and HTTP addresses of a JSON "tracery serving" log line.
fn serving_addresses(line: &str) -> Option<(SocketAddr, SocketAddr)> {
    let entry: serde_json::Value = serde_json::from_str(line).ok()?;
    if entry.get("message")?.as_str()? != "tracery serving" {
        return None;
    }
    let address = |key: &str| entry.get(key)?.as_str()?.parse().ok();
    Some((address("grpc")?, address("http")?))
}
