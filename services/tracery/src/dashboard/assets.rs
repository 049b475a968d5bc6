//! The page and its static files, compiled into the binary.

use axum::{
    extract::Path,
    http::{StatusCode, header},
    response::{IntoResponse, Response},
};

/// Name, content type, bytes.
const FILES: &[(&str, &str, &[u8])] = &[
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../assets/app.js"),
    ),
    (
        "graph.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../assets/graph.js"),
    ),
    (
        "style.css",
        "text/css; charset=utf-8",
        include_bytes!("../../assets/style.css"),
    ),
    (
        "uplot.iife.min.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../assets/vendor/uplot.iife.min.js"),
    ),
    (
        "uplot.min.css",
        "text/css; charset=utf-8",
        include_bytes!("../../assets/vendor/uplot.min.css"),
    ),
    (
        "htm-preact.mjs",
        "text/javascript; charset=utf-8",
        include_bytes!("../../assets/vendor/htm-preact.mjs"),
    ),
];

const INDEX: &str = include_str!("../../assets/index.html");

/// `/`: the dashboard's page, or for an EPCIS client (asking for JSON) the binding's
/// top-level resources.
pub async fn index(headers: axum::http::HeaderMap) -> Response {
    if tracery_capture::rest::wants_discovery(&headers) {
        return tracery_capture::rest::top_level_discovery().await;
    }
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        INDEX,
    )
        .into_response()
}

pub async fn file(Path(name): Path<String>) -> Response {
    match FILES.iter().find(|(file, _, _)| *file == name) {
        Some((_, content_type, bytes)) => (
            [
                (header::CONTENT_TYPE, *content_type),
                (header::CACHE_CONTROL, "no-cache"),
            ],
            *bytes,
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "no such file").into_response(),
    }
}
