//! Enforcement: a tower layer in front of every gRPC service and an axum middleware on
//! every service REST route. Both authenticate the caller, look the method up in
//! [`super::permissions`], write a write's audit record, and put the [`Principal`] in the
//! request's extensions.

use std::{
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use axum::{
    extract::{MatchedPath, Request, State},
    middleware::Next,
    response::{IntoResponse, Response},
};

use super::{AuthError, Authenticator, Principal, permissions::Access};
use crate::{
    audit::{DeferredAudit, Record},
    tls::PeerInfo,
};

/// Requests per second per principal, as token buckets.
struct RateLimit {
    per_second: f64,
    burst: f64,
    buckets: std::sync::Mutex<std::collections::HashMap<String, (f64, std::time::Instant)>>,
}

impl RateLimit {
    /// Takes one request from `subject`'s bucket, or says how long until there is one.
    fn take(&self, subject: &str) -> Result<(), std::time::Duration> {
        let now = std::time::Instant::now();
        let mut buckets = self
            .buckets
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let (tokens, last) = buckets
            .entry(subject.to_owned())
            .or_insert((self.burst, now));
        *tokens =
            (*tokens + now.duration_since(*last).as_secs_f64() * self.per_second).min(self.burst);
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err(std::time::Duration::from_secs_f64(
                (1.0 - *tokens) / self.per_second,
            ))
        }
    }
}

/// What both layers need.
#[derive(Clone)]
pub struct Guard {
    auth: Arc<Authenticator>,
    audit: crate::audit::AuditWriter,
    rate: Option<Arc<RateLimit>>,
}

impl Guard {
    /// `limits` gives the per-principal rate (applied to callers with tokens only: the
    /// suite's own calls and dev mode are not limited).
    pub fn new(
        auth: Arc<Authenticator>,
        db: sea_orm::DatabaseConnection,
        keys: crate::integrity::ChainKeys,
        limits: &crate::config::Limits,
    ) -> Self {
        let rate = (limits.requests_per_second > 0 && auth.enforcing()).then(|| {
            Arc::new(RateLimit {
                per_second: f64::from(limits.requests_per_second),
                burst: f64::from(limits.burst.max(1)),
                buckets: Default::default(),
            })
        });
        Self {
            auth,
            audit: crate::audit::AuditWriter::new(db, keys),
            rate,
        }
    }

    /// Admits a call of `action` from `source`, writing its audit record when it is a
    /// write; `Err` is the refusal to answer with.
    async fn check(
        &self,
        access: Option<Access>,
        action: &str,
        headers: &http::HeaderMap,
        peer: Option<&PeerInfo>,
    ) -> Result<(Option<Principal>, Option<DeferredAudit>), tonic::Status> {
        let authorization = headers
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        let client_subject = peer.and_then(|p| p.client_subject.as_deref());
        let principal = match admit(&self.auth, access, authorization, client_subject, action).await
        {
            Ok(principal) => principal,
            Err(error) => {
                tracing::info!(%action, %error, "call refused");
                let subject = self
                    .auth
                    .authenticate(authorization, client_subject)
                    .await
                    .map_or_else(|_| "(unauthenticated)".to_owned(), |p| p.subject);
                self.record_refusal(&subject, action, headers, peer).await;
                return Err(error.into());
            }
        };
        if let (Some(rate), Some(principal)) = (&self.rate, &principal)
            && principal.subject != super::INTERNAL_SUBJECT
            && let Err(wait) = rate.take(&principal.subject)
        {
            return Err(overloaded(
                format!(
                    "`{}` is over its request rate (limits.requests_per_second); retry in {} ms",
                    principal.subject,
                    wait.as_millis().max(1)
                ),
                wait,
            ));
        }
        if let Some(principal) = &principal
            && super::permissions::is_write(action)
        {
            let record = audit_record(&principal.subject, action, headers, peer);
            if super::permissions::commits_own_audit(action) {
                return Ok((principal.clone().into(), Some(DeferredAudit::new(record))));
            }
            self.write_audit(action, record).await?;
        }
        Ok((principal, None))
    }

    /// Writes `record` before the write it covers runs: no record, no write.
    async fn write_audit(&self, action: &str, record: Record) -> Result<(), tonic::Status> {
        self.audit.write(record).await.map_err(|err| match err {
            crate::audit::AuditError::Overloaded => overloaded(
                format!("{err}; retry shortly"),
                std::time::Duration::from_millis(100),
            ),
            crate::audit::AuditError::Unwritten(_) => {
                tracing::error!(%action, %err, "cannot write the audit record; refusing");
                tonic::Status::unavailable("the audit trail cannot be written; try again")
            }
        })
    }

    /// Writes what a handler left of its deferred record: it did not write.
    async fn settle(&self, action: &str, deferred: Option<DeferredAudit>) {
        if let Some(record) = deferred.and_then(|d| d.take())
            && let Err(err) = self.write_audit(action, record).await
        {
            tracing::error!(%action, ?err, "cannot record a write that did not happen");
        }
    }

    /// Records a write that was refused (by this layer, or by the handler after it).
    async fn record_refusal(
        &self,
        subject: &str,
        action: &str,
        headers: &http::HeaderMap,
        peer: Option<&PeerInfo>,
    ) {
        if !super::permissions::is_write(action) {
            return;
        }
        let record = audit_record(subject, &format!("{action} (refused)"), headers, peer);
        if let Err(err) = self.audit.write(record).await {
            tracing::error!(%action, %err, "cannot record a refused write");
        }
    }
}

/// `RESOURCE_EXHAUSTED` with the time to wait as `RetryInfo` (REST: 429 + `Retry-After`).
pub fn overloaded(message: String, wait: std::time::Duration) -> tonic::Status {
    use tonic_types::{ErrorDetails, StatusExt as _};
    tonic::Status::with_error_details(
        tonic::Code::ResourceExhausted,
        message,
        ErrorDetails::with_retry_info(Some(wait)),
    )
}

fn audit_record(
    subject: &str,
    action: &str,
    headers: &http::HeaderMap,
    peer: Option<&PeerInfo>,
) -> crate::audit::Record {
    crate::audit::Record {
        subject: subject.to_owned(),
        action: action.to_owned(),
        source: peer.map_or_else(|| "unknown".to_owned(), |p| p.remote.to_string()),
        request_id: request_id(headers),
    }
}

/// The caller's `x-request-id`, or a new one.
fn request_id(headers: &http::HeaderMap) -> String {
    headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 128)
        .map_or_else(|| uuid::Uuid::now_v7().to_string(), str::to_owned)
}

/// Checks `access` for a call carrying `authorization`.
async fn admit(
    auth: &Authenticator,
    access: Option<Access>,
    authorization: Option<&str>,
    client_subject: Option<&str>,
    what: &str,
) -> Result<Option<Principal>, AuthError> {
    let access = match access {
        Some(access) => access,
        // Dev mode serves whatever is there; an enforcing suite refuses what has no rule.
        None if !auth.enforcing() => Access::Authenticated,
        None => return Err(AuthError::Denied(format!("{what} has no permission rule"))),
    };
    if access == Access::Open {
        return Ok(None);
    }
    let principal = auth.authenticate(authorization, client_subject).await?;
    if let Access::Roles(roles) = access {
        auth.authorize(&principal, roles, what)?;
    }
    Ok(Some(principal))
}

/// The gRPC layer.
#[derive(Clone)]
pub struct GrpcAuthLayer {
    guard: Guard,
}

impl GrpcAuthLayer {
    pub fn new(guard: Guard) -> Self {
        Self { guard }
    }
}

impl<S> tower::Layer<S> for GrpcAuthLayer {
    type Service = GrpcAuth<S>;

    fn layer(&self, inner: S) -> Self::Service {
        GrpcAuth {
            inner,
            guard: self.guard.clone(),
        }
    }
}

/// See [`GrpcAuthLayer`].
#[derive(Clone)]
pub struct GrpcAuth<S> {
    inner: S,
    guard: Guard,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

impl<S, B> tower::Service<http::Request<B>> for GrpcAuth<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<tonic::body::Body>>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        // The clone is not ready; the ready one serves this call (tower's usual swap).
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let guard = self.guard.clone();
        Box::pin(async move {
            let path = request.uri().path().to_owned();
            let started = std::time::Instant::now();
            let peer = request.extensions().get::<PeerInfo>().cloned();
            let access = super::permissions::grpc(&path);
            let headers = request.headers().clone();
            let mut caller = None;
            let mut deferred = None;
            let response = match guard.check(access, &path, &headers, peer.as_ref()).await {
                Ok((principal, audit)) => {
                    if let Some(principal) = principal {
                        caller = Some(principal.subject.clone());
                        request.extensions_mut().insert(principal);
                    }
                    if let Some(audit) = &audit {
                        request.extensions_mut().insert(audit.clone());
                    }
                    deferred = audit;
                    inner.call(request).await?
                }
                Err(status) => status.into_http(),
            };
            guard.settle(&path, deferred).await;
            // An error before the body is in the headers; success is in the trailers.
            let code = response
                .headers()
                .get("grpc-status")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("0")
                .to_owned();
            let denied = (tonic::Code::PermissionDenied as i32).to_string();
            if let Some(subject) = caller
                && code == denied
            {
                guard
                    .record_refusal(&subject, &path, &headers, peer.as_ref())
                    .await;
            }
            crate::metrics::observe_request("grpc", &path, &code, started.elapsed());
            Ok(response)
        })
    }
}

/// The REST middleware (`axum::middleware::from_fn_with_state`, as a route layer so the
/// matched route template is known).
pub async fn rest_guard(
    State(guard): State<Guard>,
    matched: Option<MatchedPath>,
    mut request: Request,
    next: Next,
) -> Response {
    let method = request.method().as_str().to_owned();
    let template = matched
        .map(|m| m.as_str().to_owned())
        .unwrap_or_else(|| request.uri().path().to_owned());
    let what = format!("{method} {template}");
    let access = super::permissions::rest(&method, &template);
    let peer = request
        .extensions()
        .get::<axum::extract::ConnectInfo<PeerInfo>>()
        .map(|c| c.0.clone());
    let started = std::time::Instant::now();
    match guard
        .check(access, &what, request.headers(), peer.as_ref())
        .await
    {
        Ok((principal, deferred)) => {
            let caller = principal.as_ref().map(|p| p.subject.clone());
            if let Some(principal) = principal {
                request.extensions_mut().insert(principal);
            }
            if let Some(audit) = &deferred {
                request.extensions_mut().insert(audit.clone());
            }
            let headers = request.headers().clone();
            let response = next.run(request).await;
            guard.settle(&what, deferred).await;
            if let Some(subject) = caller
                && response.status() == http::StatusCode::FORBIDDEN
            {
                guard
                    .record_refusal(&subject, &what, &headers, peer.as_ref())
                    .await;
            }
            crate::metrics::observe_request(
                "rest",
                &what,
                response.status().as_str(),
                started.elapsed(),
            );
            response
        }
        Err(refusal) => {
            let kind = crate::error::ErrorKind::of_status(&refusal);
            let status = kind.http_status();
            crate::metrics::observe_request("rest", &what, status.as_str(), started.elapsed());
            let body = serde_json::json!({
                "type": format!("epcisException:{}", kind.epcis_exception()),
                "title": status.canonical_reason().unwrap_or("Error"),
                "status": status.as_u16(),
                "detail": refusal.message(),
            });
            let mut response = (status, axum::Json(body)).into_response();
            response.headers_mut().insert(
                http::header::CONTENT_TYPE,
                http::HeaderValue::from_static("application/problem+json"),
            );
            if status == http::StatusCode::TOO_MANY_REQUESTS {
                use tonic_types::StatusExt as _;
                let seconds = refusal
                    .get_details_retry_info()
                    .and_then(|info| info.retry_delay)
                    .map_or(1, |delay| delay.as_secs().max(1));
                response
                    .headers_mut()
                    .insert(http::header::RETRY_AFTER, http::HeaderValue::from(seconds));
            }
            if status == http::StatusCode::UNAUTHORIZED {
                response.headers_mut().insert(
                    http::header::WWW_AUTHENTICATE,
                    http::HeaderValue::from_static("Bearer"),
                );
            }
            response
        }
    }
}
