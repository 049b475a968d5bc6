//! Who is calling, and whether they may: one authenticator and one permission table for
//! every gRPC method and REST route of the suite.
//!
//! - Callers present `Authorization: Bearer <JWT>`; the token is verified against the
//!   identity provider's keys (a JWKS file or URL; RS256 or ES256 only), with issuer,
//!   audience, expiry and not-before checked, and mapped to a [`Principal`]: its subject,
//!   its [`Role`]s and the plants it is scoped to.
//! - The suite's own services, calling each other inside one process, present a random
//!   token minted at start-up; across processes they present `auth.peer_token`.
//! - Without an `[auth]` table the suite runs in dev mode, every caller allowed, and
//!   refuses to start unless both listeners are on loopback (see [`crate::config`]).
//!
//! [`permissions`] says which roles each method and route needs; [`layer`] enforces it.

mod jwks;
pub mod layer;
pub mod permissions;

use std::{collections::BTreeSet, path::PathBuf, sync::Arc, time::Duration};

use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::config::SecretSource;

/// What a principal may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// Captures events.
    Operator,
    /// Acts on quarantine and on identifier states (decommissioning, corrections).
    Quality,
    /// Reads: events, traces, orders, reports.
    Planner,
    /// Runs syncs and post-back.
    Integration,
    /// Products, serial pools, configuration.
    Admin,
}

impl Role {
    /// Every role.
    pub const ALL: [Role; 5] = [
        Role::Operator,
        Role::Quality,
        Role::Planner,
        Role::Integration,
        Role::Admin,
    ];

    /// The spelling in tokens.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Operator => "operator",
            Self::Quality => "quality",
            Self::Planner => "planner",
            Self::Integration => "integration",
            Self::Admin => "admin",
        }
    }

    /// The role a token spells `text`.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == text)
    }
}

/// The plants a principal may act in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plants {
    /// Every plant (`"*"` in the token).
    All,
    /// These.
    Only(BTreeSet<String>),
}

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The token's `sub`, or `tracery` for the suite itself.
    pub subject: String,
    pub roles: BTreeSet<Role>,
    pub plants: Plants,
}

impl Principal {
    fn everything(subject: &str) -> Self {
        Self {
            subject: subject.to_owned(),
            roles: Role::ALL.into_iter().collect(),
            plants: Plants::All,
        }
    }
}

/// The `[auth]` table.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthSettings {
    /// This suite's plant: principals must be scoped to it.
    pub plant: String,
    /// Expected `iss`.
    pub issuer: String,
    /// Expected `aud`.
    pub audience: String,
    /// The identity provider's keys: a JWKS file (read again when a token names an
    /// unknown key) …
    pub jwks_file: Option<PathBuf>,
    /// … or its URL.
    pub jwks_url: Option<String>,
    /// Where the roles are in the token (dots for nesting, e.g. `realm_access.roles`).
    #[serde(default = "default_roles_claim")]
    pub roles_claim: String,
    /// Where the plants are (a list; `"*"` for all).
    #[serde(default = "default_plants_claim")]
    pub plants_claim: String,
    /// Clock skew allowed on `exp` and `nbf`.
    #[serde(default = "default_leeway")]
    pub leeway_secs: u64,
    /// The token this process presents to peer services in other processes.
    pub peer_token: Option<SecretSource>,
    /// Principals of client certificates (mutual TLS, see [`crate::tls`]), by the
    /// certificate subject's common name.
    #[serde(default)]
    pub certificates: std::collections::BTreeMap<String, CertificateGrant>,
}

/// What a client certificate may do: an `[auth.certificates."<common name>"]` table.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CertificateGrant {
    pub roles: Vec<String>,
    /// Plants (`"*"` for all).
    pub plants: Vec<String>,
}

fn default_roles_claim() -> String {
    "roles".to_owned()
}
fn default_plants_claim() -> String {
    "plants".to_owned()
}
fn default_leeway() -> u64 {
    30
}

/// Why a call is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No usable credentials: `UNAUTHENTICATED` / HTTP 401.
    #[error("{0}")]
    Unauthenticated(String),
    /// Known caller, not allowed: `PERMISSION_DENIED` / HTTP 403.
    #[error("{0}")]
    Denied(String),
}

impl From<AuthError> for tonic::Status {
    fn from(error: AuthError) -> Self {
        match error {
            AuthError::Unauthenticated(reason) => tonic::Status::unauthenticated(reason),
            AuthError::Denied(reason) => tonic::Status::permission_denied(reason),
        }
    }
}

enum Mode {
    Dev,
    Tokens {
        settings: Box<AuthSettings>,
        keys: jwks::KeySet,
        certificates: std::collections::BTreeMap<String, Principal>,
    },
}

/// Verifies callers and checks them against the permission table.
pub struct Authenticator {
    mode: Mode,
    /// The token of the suite's own calls within this process, and its digest.
    internal_token: String,
    internal_digest: [u8; 32],
}

/// The subject of the suite's own calls.
pub const INTERNAL_SUBJECT: &str = "tracery";

fn digest(text: &str) -> [u8; 32] {
    Sha256::digest(text.as_bytes()).into()
}

impl Authenticator {
    /// Dev mode when `settings` is `None`.
    pub fn new(settings: Option<AuthSettings>) -> Result<Arc<Self>, String> {
        let mode = match settings {
            None => Mode::Dev,
            Some(settings) => {
                let source = match (&settings.jwks_file, &settings.jwks_url) {
                    (Some(file), None) => jwks::KeySource::File(file.clone()),
                    (None, Some(url)) => jwks::KeySource::Url(url.clone()),
                    _ => return Err("auth: set exactly one of jwks_file and jwks_url".to_owned()),
                };
                Mode::Tokens {
                    keys: jwks::KeySet::new(source),
                    certificates: certificate_principals(&settings)?,
                    settings: Box::new(settings),
                }
            }
        };
        let internal_token = format!("tracery-internal.{}", uuid::Uuid::new_v4().simple());
        Ok(Arc::new(Self {
            internal_digest: digest(&internal_token),
            internal_token,
            mode,
        }))
    }

    /// Whether callers are checked at all.
    pub fn enforcing(&self) -> bool {
        matches!(self.mode, Mode::Tokens { .. })
    }

    /// The bearer token of this process's calls to itself.
    pub fn internal_token(&self) -> &str {
        &self.internal_token
    }

    /// The token for calls to peers in other processes, if configured.
    pub fn peer_token(&self) -> Option<&SecretSource> {
        match &self.mode {
            Mode::Tokens { settings, .. } => settings.peer_token.as_ref(),
            Mode::Dev => None,
        }
    }

    /// The caller behind an `Authorization` header value or, without one, behind the
    /// verified client certificate whose common name is `client_subject`.
    pub async fn authenticate(
        &self,
        authorization: Option<&str>,
        client_subject: Option<&str>,
    ) -> Result<Principal, AuthError> {
        let Mode::Tokens {
            settings,
            keys,
            certificates,
        } = &self.mode
        else {
            return Ok(Principal::everything("dev-mode"));
        };
        if let (None, Some(subject)) = (authorization, client_subject) {
            return certificates.get(subject).cloned().ok_or_else(|| {
                AuthError::Unauthenticated(format!(
                    "the client certificate `{subject}` is not in auth.certificates"
                ))
            });
        }
        let token = authorization
            .and_then(|value| value.strip_prefix("Bearer "))
            .map(str::trim)
            .ok_or_else(|| {
                AuthError::Unauthenticated(
                    "an `authorization: Bearer <token>` or a client certificate is required"
                        .to_owned(),
                )
            })?;
        if digest(token) == self.internal_digest {
            return Ok(Principal::everything(INTERNAL_SUBJECT));
        }
        let claims = keys
            .verify(token, settings, Duration::from_secs(settings.leeway_secs))
            .await?;
        principal_of(&claims, settings)
    }

    /// Whether `principal` holds one of `roles` in this suite's plant.
    pub fn authorize(
        &self,
        principal: &Principal,
        roles: &[Role],
        what: &str,
    ) -> Result<(), AuthError> {
        if let (Mode::Tokens { settings, .. }, Plants::Only(plants)) =
            (&self.mode, &principal.plants)
            && !plants.contains(&settings.plant)
        {
            return Err(AuthError::Denied(format!(
                "`{}` is not scoped to plant `{}`",
                principal.subject, settings.plant
            )));
        }
        if roles.iter().any(|role| principal.roles.contains(role)) {
            return Ok(());
        }
        let needed: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
        Err(AuthError::Denied(format!(
            "{what} needs the role {}; `{}` has {}",
            needed.join(" or "),
            principal.subject,
            if principal.roles.is_empty() {
                "none".to_owned()
            } else {
                principal
                    .roles
                    .iter()
                    .map(|r| r.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        )))
    }
}

/// Whether the caller holds `role`, for what the permission table cannot see: the content
/// of a request. Every channel has a caller when `[auth]` is configured (the MQTT intake:
/// the reader of the topic); absent means dev mode, where nothing is checked.
pub fn require(principal: Option<&Principal>, role: Role, what: &str) -> Result<(), AuthError> {
    match principal {
        Some(principal) if !principal.roles.contains(&role) => Err(AuthError::Denied(format!(
            "{what} needs the role {}; `{}` lacks it",
            role.as_str(),
            principal.subject
        ))),
        _ => Ok(()),
    }
}

/// The principals of `auth.certificates`, named by common name.
fn certificate_principals(
    settings: &AuthSettings,
) -> Result<std::collections::BTreeMap<String, Principal>, String> {
    settings
        .certificates
        .iter()
        .map(|(subject, grant)| {
            let roles = grant
                .roles
                .iter()
                .map(|role| {
                    Role::parse(role).ok_or_else(|| {
                        format!("auth.certificates.\"{subject}\": unknown role `{role}`")
                    })
                })
                .collect::<Result<_, _>>()?;
            let plants = if grant.plants.iter().any(|p| p == "*") {
                Plants::All
            } else {
                Plants::Only(grant.plants.iter().cloned().collect())
            };
            let principal = Principal {
                subject: subject.clone(),
                roles,
                plants,
            };
            Ok((subject.clone(), principal))
        })
        .collect()
}

/// The value at a dotted `path` of `claims`.
fn claim<'a>(claims: &'a serde_json::Value, path: &str) -> Option<&'a serde_json::Value> {
    path.split('.')
        .try_fold(claims, |value, key| value.get(key))
}

fn strings(value: Option<&serde_json::Value>) -> Vec<String> {
    match value {
        Some(serde_json::Value::Array(items)) => items
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect(),
        Some(serde_json::Value::String(one)) => one.split_whitespace().map(str::to_owned).collect(),
        _ => Vec::new(),
    }
}

fn principal_of(
    claims: &serde_json::Value,
    settings: &AuthSettings,
) -> Result<Principal, AuthError> {
    let subject = claims
        .get("sub")
        .and_then(|s| s.as_str())
        .filter(|s| !s.is_empty())
        .ok_or_else(|| AuthError::Unauthenticated("the token has no `sub`".to_owned()))?
        .to_owned();
    // Roles this suite does not know are someone else's: ignored.
    let roles = strings(claim(claims, &settings.roles_claim))
        .iter()
        .filter_map(|r| Role::parse(r))
        .collect();
    let plants = strings(claim(claims, &settings.plants_claim));
    let plants = if plants.iter().any(|p| p == "*") {
        Plants::All
    } else {
        Plants::Only(plants.into_iter().collect())
    };
    Ok(Principal {
        subject,
        roles,
        plants,
    })
}
