//! The operator CLI: `tracery trace|recall|history|contents|where|capture|quarantine|
//! serials|label|sync`,
//! talking gRPC to a running suite. Human tables by default, `--json` for scripts.
//!
//! Exit codes scripts can rely on ([`Exit`]): 0 done, 1 failed, 3 not found, 4 bad input
//! (a malformed identifier, an unreadable file), 5 the suite is unreachable or not ready,
//! 6 not allowed (missing or refused credentials).

pub mod capture;
pub mod genealogy;
pub mod identity;
pub mod integration;
pub(crate) mod output;
pub mod quarantine;

use std::process::ExitCode;

use tonic::{Code, transport::Channel};

pub use capture::CaptureArgs;
pub use genealogy::{ContentsArgs, HistoryArgs, RecallArgs, TraceCommand, WhereArgs};
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

/// How a command ended, as the process exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Done = 0,
    Failed = 1,
    NotFound = 3,
    BadInput = 4,
    Unreachable = 5,
    NotAllowed = 6,
}

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> Self {
        ExitCode::from(exit as u8)
    }
}

/// A command's failure: what to tell the user and how to exit.
#[derive(Debug)]
pub struct Failure {
    pub exit: Exit,
    pub message: String,
}

impl Failure {
    pub fn new(exit: Exit, message: impl Into<String>) -> Self {
        Self {
            exit,
            message: message.into(),
        }
    }
}

impl From<tonic::Status> for Failure {
    fn from(status: tonic::Status) -> Self {
        let exit = match status.code() {
            Code::NotFound => Exit::NotFound,
            Code::InvalidArgument | Code::OutOfRange | Code::FailedPrecondition => Exit::BadInput,
            Code::Unavailable | Code::DeadlineExceeded => Exit::Unreachable,
            Code::Unauthenticated | Code::PermissionDenied => Exit::NotAllowed,
            _ => Exit::Failed,
        };
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
        Self::new(exit, message)
    }
}

/// A channel to the suite, or a clear message when it is not there.
pub(crate) async fn connect(connection: &Connection) -> Result<Channel, Failure> {
    let endpoint = Channel::from_shared(connection.server.clone()).map_err(|err| {
        Failure::new(
            Exit::BadInput,
            format!("--server {}: {err}", connection.server),
        )
    })?;
    endpoint
        .connect_timeout(std::time::Duration::from_secs(5))
        .connect()
        .await
        .map_err(|err| {
            Failure::new(
                Exit::Unreachable,
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
        let value = format!("Bearer {token}")
            .parse()
            .map_err(|_| Failure::new(Exit::BadInput, "--token: not a valid header value"))?;
        request.metadata_mut().insert("authorization", value);
    }
    Ok(request)
}

/// Prints a command's outcome and turns it into the exit code.
pub fn finish(outcome: Result<(), Failure>) -> ExitCode {
    match outcome {
        Ok(()) => Exit::Done.into(),
        Err(failure) => {
            eprintln!("tracery: {}", failure.message);
            failure.exit.into()
        }
    }
}
