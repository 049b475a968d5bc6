//! Enforcement: a tower layer in front of every gRPC service and an axum middleware on
//! every service REST route. Both authenticate the caller, look the method up in
//! [`super::permissions`], and put the [`Principal`] in the request's extensions.

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

/// Checks `access` for a call carrying `authorization`.
async fn admit(
    auth: &Authenticator,
    access: Option<Access>,
    authorization: Option<&str>,
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
    let principal = auth.authenticate(authorization).await?;
    if let Access::Roles(roles) = access {
        auth.authorize(&principal, roles, what)?;
    }
    Ok(Some(principal))
}

/// The gRPC layer.
#[derive(Clone)]
pub struct GrpcAuthLayer {
    auth: Arc<Authenticator>,
}

impl GrpcAuthLayer {
    pub fn new(auth: Arc<Authenticator>) -> Self {
        Self { auth }
    }
}

impl<S> tower::Layer<S> for GrpcAuthLayer {
    type Service = GrpcAuth<S>;

    fn layer(&self, inner: S) -> Self::Service {
        GrpcAuth {
            inner,
            auth: Arc::clone(&self.auth),
        }
    }
}

/// See [`GrpcAuthLayer`].
#[derive(Clone)]
pub struct GrpcAuth<S> {
    inner: S,
    auth: Arc<Authenticator>,
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
        let auth = Arc::clone(&self.auth);
        Box::pin(async move {
            let path = request.uri().path().to_owned();
            let authorization = request
                .headers()
                .get(http::header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let access = super::permissions::grpc(&path);
            match admit(&auth, access, authorization.as_deref(), &path).await {
                Ok(principal) => {
                    if let Some(principal) = principal {
                        request.extensions_mut().insert(principal);
                    }
                    inner.call(request).await
                }
                Err(error) => {
                    tracing::info!(method = %path, %error, "call refused");
                    Ok(tonic::Status::from(error).into_http())
                }
            }
        })
    }
}

/// The REST middleware (`axum::middleware::from_fn_with_state`, as a route layer so the
/// matched route template is known).
pub async fn rest_guard(
    State(auth): State<Arc<Authenticator>>,
    matched: Option<MatchedPath>,
    mut request: Request,
    next: Next,
) -> Response {
    let method = request.method().as_str().to_owned();
    let template = matched
        .map(|m| m.as_str().to_owned())
        .unwrap_or_else(|| request.uri().path().to_owned());
    let what = format!("{method} {template}");
    let authorization = request
        .headers()
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let access = super::permissions::rest(&method, &template);
    match admit(&auth, access, authorization.as_deref(), &what).await {
        Ok(principal) => {
            if let Some(principal) = principal {
                request.extensions_mut().insert(principal);
            }
            next.run(request).await
        }
        Err(error) => {
            tracing::info!(route = %what, %error, "request refused");
            let (status, title) = match &error {
                AuthError::Unauthenticated(_) => (http::StatusCode::UNAUTHORIZED, "Unauthorized"),
                AuthError::Denied(_) => (http::StatusCode::FORBIDDEN, "Forbidden"),
            };
            let body = serde_json::json!({
                "type": format!("epcisException:SecurityException"),
                "title": title,
                "status": status.as_u16(),
                "detail": error.to_string(),
            });
            let mut response = (status, axum::Json(body)).into_response();
            response.headers_mut().insert(
                http::header::CONTENT_TYPE,
                http::HeaderValue::from_static("application/problem+json"),
            );
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
