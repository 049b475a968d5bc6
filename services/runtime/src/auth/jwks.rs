//! The identity provider's signing keys, and token verification against them.

use std::{
    path::PathBuf,
    time::{Duration, Instant},
};

use jsonwebtoken::{
    Algorithm, DecodingKey, Validation,
    errors::ErrorKind,
    jwk::{Jwk, JwkSet},
};
use tokio::sync::RwLock;

use super::{AuthError, AuthSettings};

/// The largest JSON Web Key Set read from the identity provider.
const MAX_JWKS_BYTES: usize = 1 << 20;

/// Where the keys come from.
pub enum KeySource {
    File(PathBuf),
    Url(String),
}

/// Keys are fetched again for an unknown `kid` (a rotation) at most this often.
const REFRESH_AT_MOST_EVERY: Duration = Duration::from_secs(30);

/// The cached key set.
pub struct KeySet {
    source: KeySource,
    cached: RwLock<Option<(JwkSet, Instant)>>,
}

fn unauthenticated(reason: impl Into<String>) -> AuthError {
    AuthError::Unauthenticated(reason.into())
}

impl KeySet {
    pub fn new(source: KeySource) -> Self {
        Self {
            source,
            cached: RwLock::new(None),
        }
    }

    async fn load(&self) -> Result<JwkSet, AuthError> {
        let text = match &self.source {
            KeySource::File(path) => tokio::fs::read_to_string(path).await.map_err(|err| {
                tracing::error!(path = %path.display(), %err, "cannot read the JWKS file");
                unauthenticated("the identity provider's keys cannot be read")
            })?,
            KeySource::Url(url) => {
                let fetched = async {
                    let mut response = reqwest::Client::builder()
                        .timeout(Duration::from_secs(10))
                        .build()?
                        .get(url)
                        .send()
                        .await?
                        .error_for_status()?;
                    // The provider's answer is untrusted: a key set is a few KB.
                    let mut body = Vec::new();
                    while let Some(chunk) = response.chunk().await? {
                        body.extend_from_slice(&chunk);
                        if body.len() > MAX_JWKS_BYTES {
                            return Ok(String::new());
                        }
                    }
                    Ok::<_, reqwest::Error>(String::from_utf8_lossy(&body).into_owned())
                };
                fetched.await.map_err(|err| {
                    tracing::error!(%url, %err, "cannot fetch the JWKS");
                    unauthenticated("the identity provider's keys cannot be fetched")
                })?
            }
        };
        // serde_json refuses nesting beyond 128 levels with an error, not a stack overflow.
        serde_json::from_str(&text).map_err(|err| {
            tracing::error!(%err, "the JWKS is not a JSON Web Key Set");
            unauthenticated("the identity provider's keys are unreadable")
        })
    }

    /// The key `kid` names (the only key when the token names none), refreshing the set
    /// once when it is not there.
    async fn key(&self, kid: Option<&str>) -> Result<Jwk, AuthError> {
        let find = |set: &JwkSet| match kid {
            Some(kid) => set.find(kid).cloned(),
            None if set.keys.len() == 1 => set.keys.first().cloned(),
            None => None,
        };
        let stale = {
            let cached = self.cached.read().await;
            if let Some(key) = cached.as_ref().and_then(|(set, _)| find(set)) {
                return Ok(key);
            }
            cached
                .as_ref()
                .is_none_or(|(_, loaded)| loaded.elapsed() >= REFRESH_AT_MOST_EVERY)
        };
        if stale {
            let set = self.load().await?;
            let found = find(&set);
            *self.cached.write().await = Some((set, Instant::now()));
            if let Some(key) = found {
                return Ok(key);
            }
        }
        Err(unauthenticated(match kid {
            Some(kid) => format!("the token is signed with an unknown key `{kid}`"),
            None => "the token names no key (`kid`)".to_owned(),
        }))
    }

    /// The claims of `token` once its signature, issuer, audience and times check out.
    pub async fn verify(
        &self,
        token: &str,
        settings: &AuthSettings,
        leeway: Duration,
    ) -> Result<serde_json::Value, AuthError> {
        let header = jsonwebtoken::decode_header(token)
            .map_err(|err| unauthenticated(format!("malformed token: {err}")))?;
        if !matches!(header.alg, Algorithm::RS256 | Algorithm::ES256) {
            return Err(unauthenticated(format!(
                "tokens signed with {:?} are not accepted (RS256 or ES256)",
                header.alg
            )));
        }
        let jwk = self.key(header.kid.as_deref()).await?;
        let key = DecodingKey::from_jwk(&jwk)
            .map_err(|err| unauthenticated(format!("unusable signing key: {err}")))?;
        let mut validation = Validation::new(header.alg);
        validation.set_issuer(&[&settings.issuer]);
        validation.set_audience(&[&settings.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.validate_nbf = true;
        validation.leeway = leeway.as_secs();
        jsonwebtoken::decode::<serde_json::Value>(token, &key, &validation)
            .map(|data| data.claims)
            .map_err(|err| {
                unauthenticated(match err.kind() {
                    ErrorKind::ExpiredSignature => "the token has expired".to_owned(),
                    ErrorKind::ImmatureSignature => "the token is not valid yet (nbf)".to_owned(),
                    ErrorKind::InvalidAudience => {
                        format!("the token is not for audience `{}`", settings.audience)
                    }
                    ErrorKind::InvalidIssuer => {
                        format!("the token is not from issuer `{}`", settings.issuer)
                    }
                    ErrorKind::InvalidSignature => "the token's signature is invalid".to_owned(),
                    ErrorKind::MissingRequiredClaim(claim) => {
                        format!("the token has no `{claim}`")
                    }
                    _ => format!("malformed token: {err}"),
                })
            })
    }
}
