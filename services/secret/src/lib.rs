//! Secrets in Tracery's settings: database passwords, API keys, peer tokens.
//!
//! A secret is named in the configuration by where it lives — an environment variable or
//! a mounted file (a Kubernetes Secret) — and never written there itself. [`Secret`] keeps
//! the value out of `Debug` output so it cannot reach a log line by accident.
//!
//! This is its own small crate so that the connector crates, which need secrets but not
//! the server, can be built without the whole runtime.

use std::{fmt, path::PathBuf};

use serde::Deserialize;

/// A secret that could not be read; `setting` names it as in the configuration file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("configuration: {setting}: {reason}")]
pub struct SecretError {
    /// The setting's name, as in the file.
    pub setting: String,
    /// What is wrong.
    pub reason: String,
}

impl SecretError {
    fn new(setting: &str, reason: impl Into<String>) -> Self {
        Self {
            setting: setting.to_owned(),
            reason: reason.into(),
        }
    }
}

/// A value that must never appear in logs (database URLs carry passwords).
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret value, for the one place that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Where a secret comes from: an environment variable or a mounted file (a Kubernetes
/// Secret), never the configuration file itself.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "SecretSourceText")]
pub struct SecretSource {
    env: Option<String>,
    file: Option<PathBuf>,
}

/// How a [`SecretSource`] is written: `{ env = "VAR" }` or `{ file = "/run/secrets/x" }`.
#[derive(Deserialize)]
#[serde(untagged)]
enum SecretSourceText {
    Table {
        env: Option<String>,
        file: Option<PathBuf>,
    },
    Literal(#[allow(dead_code)] String),
}

impl TryFrom<SecretSourceText> for SecretSource {
    type Error = String;

    fn try_from(text: SecretSourceText) -> Result<Self, Self::Error> {
        match text {
            SecretSourceText::Table { env, file } if env.is_some() != file.is_some() => {
                Ok(Self { env, file })
            }
            SecretSourceText::Table { .. } => {
                Err("a secret names exactly one of `env` and `file`".to_owned())
            }
            SecretSourceText::Literal(_) => Err(
                "secrets are never written in the configuration file: use { env = \"VAR\" } or { file = \"/run/secrets/name\" }"
                    .to_owned(),
            ),
        }
    }
}

impl SecretSource {
    /// A secret read from environment variable `name`.
    pub fn env(name: impl Into<String>) -> Self {
        Self {
            env: Some(name.into()),
            file: None,
        }
    }

    /// A secret read from the file at `path` (a mounted Kubernetes Secret).
    pub fn file(path: impl Into<PathBuf>) -> Self {
        Self {
            env: None,
            file: Some(path.into()),
        }
    }

    /// Reads the secret now; files are read on every call, so a rotated secret is used
    /// from the next call on. `setting` names it in errors.
    pub fn read(&self, setting: &str) -> Result<Secret, SecretError> {
        if let Some(name) = &self.env {
            return std::env::var(name).map(Secret::new).map_err(|_| {
                SecretError::new(setting, format!("environment variable {name} is not set"))
            });
        }
        let Some(path) = &self.file else {
            return Err(SecretError::new(setting, "no source"));
        };
        std::fs::read_to_string(path)
            .map(|text| Secret::new(text.trim_end_matches(['\n', '\r'])))
            .map_err(|err| {
                SecretError::new(setting, format!("cannot read {}: {err}", path.display()))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    struct Settings {
        key: SecretSource,
    }

    #[test]
    fn a_secret_is_named_by_its_environment_variable() {
        let settings = toml::from_str::<Settings>("key = { env = \"ERP_KEY\" }").expect("parse");
        assert_eq!(settings.key, SecretSource::env("ERP_KEY"));
    }

    #[test]
    fn a_literal_secret_in_the_file_is_refused() {
        let err = toml::from_str::<Settings>("key = \"hunter2\"").expect_err("literal");
        assert!(err.to_string().contains("never written"), "{err}");
    }

    #[test]
    fn a_secret_names_exactly_one_source() {
        let err =
            toml::from_str::<Settings>("key = { env = \"A\", file = \"/b\" }").expect_err("both");
        assert!(err.to_string().contains("exactly one"), "{err}");
    }

    #[test]
    fn a_file_secret_is_read_without_its_trailing_newline() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("token");
        std::fs::write(&path, "s3cret\n").expect("write");
        let secret = SecretSource::file(&path).read("auth.token").expect("read");
        assert_eq!(secret.expose(), "s3cret");
        assert_eq!(format!("{secret:?}"), "Secret(***)");
    }

    #[test]
    fn a_missing_file_names_the_setting() {
        let err = SecretSource::file("/nonexistent/token")
            .read("auth.token")
            .expect_err("missing");
        assert_eq!(err.setting, "auth.token");
    }
}
