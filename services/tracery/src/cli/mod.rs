//! The operator CLI: `tracery trace|recall|history|contents|where|capture|quarantine|
//! serials|label|sync|archive`,
//! talking gRPC to a running suite. Human tables by default, `--json` for scripts.
//!
//! Exit codes scripts can rely on (the `exit` column of
//! [`tracery_runtime::error::ErrorKind::row`]): 0 done, 1 failed, 3 not found, 4 bad input
//! (a malformed identifier, an unreadable file), 5 the suite is unreachable, busy or not ready,
//! 6 not allowed (missing or refused credentials).

pub mod archive;
pub mod capture;
pub mod genealogy;
pub mod identity;
pub mod integration;
pub(crate) mod output;
pub mod quarantine;

use std::process::ExitCode;

use tonic::transport::Channel;
use tracery_runtime::error::ErrorKind;

pub use archive::ArchiveCommand;
pub use capture::CaptureArgs;
pub use genealogy::{AnalyzeArgs, ContentsArgs, HistoryArgs, RecallArgs, TraceCommand, WhereArgs};
pub use identity::{LabelCommand, SerialsCommand};
pub use integration::SyncCommand;
pub use quarantine::QuarantineCommand;

/// Where the suite is and who is asking; shared by every client command.
#[derive(Debug, Clone, clap::Args)]
pub struct Connection {
    /// The suite's gRPC address.
    #[arg(long, env = "TRACERY_SERVER", default_value = "http://127.0.0.1:50051")]
    pub server: String,
    /// A bearer token (the suite's `[auth]`), if it checks callers.
    #[arg(long, env = "TRACERY_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Print JSON instead of tables.
    #[arg(long)]
    pub json: bool,
}

/// A command's failure: what to tell the user and how to exit.
#[derive(Debug)]
pub struct Failure {
    pub kind: ErrorKind,
    pub message: String,
}

impl Failure {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }
}

impl From<tonic::Status> for Failure {
    fn from(status: tonic::Status) -> Self {
        let kind = ErrorKind::of_status(&status);
        let mut message = status.message().to_owned();
        // Field-level detail (google.rpc.BadRequest), when the suite gave it.
        use tonic_types::StatusExt as _;
        if let Some(bad) = status.get_details_bad_request() {
            for violation in bad.field_violations {
                let line = format!("{}: {}", violation.field, violation.description);
                if message == line {
                    continue;
                }
                message.push_str(&format!(
                    "\n  {}: {}",
                    violation.field, violation.description
                ));
            }
        }
        if message.is_empty() {
            message = format!("{:?}", status.code());
        }
        Self::new(kind, message)
    }
}

/// A channel to the suite, or a clear message when it is not there.
pub(crate) async fn connect(connection: &Connection) -> Result<Channel, Failure> {
    let endpoint = Channel::from_shared(connection.server.clone()).map_err(|err| {
        Failure::new(
            ErrorKind::InvalidArgument,
            format!("--server {}: {err}", connection.server),
        )
    })?;
    endpoint
        .connect_timeout(std::time::Duration::from_secs(5))
        .connect()
        .await
        .map_err(|err| {
            Failure::new(
                ErrorKind::Unavailable,
                format!(
                    "cannot reach the suite at {} ({err}); is `tracery serve` running?",
                    connection.server
                ),
            )
        })
}

/// `message` with the connection's token, if any.
pub(crate) fn request<T>(
    connection: &Connection,
    message: T,
) -> Result<tonic::Request<T>, Failure> {
    let mut request = tonic::Request::new(message);
    if let Some(token) = &connection.token {
        let value = format!("Bearer {token}").parse().map_err(|_| {
            Failure::new(
                ErrorKind::InvalidArgument,
                "--token: not a valid header value",
            )
        })?;
        request.metadata_mut().insert("authorization", value);
    }
    Ok(request)
}

/// Prints a command's outcome and turns it into the exit code.
pub fn finish(outcome: Result<(), Failure>) -> ExitCode {
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("tracery: {}", failure.message);
            ExitCode::from(failure.kind.exit_code())
        }
    }
}
