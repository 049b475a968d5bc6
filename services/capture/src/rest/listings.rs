//! The binding's listings of what the repository knows: `GET /epcs`, `/bizSteps`,
//! `/dispositions`, `/readPoints`, `/bizLocations` (the terms stored events use, and for
//! business steps and dispositions the CBV's standard terms as well) and `GET /capture`
//! (capture jobs), each a page at a time.

use axum::{
    Json,
    extract::{Query, State},
    response::{IntoResponse, Response},
};
use serde_json::{Value, json};
use tracery_epcis::cbv::{self, Term};

use super::{Rest, collection, query::Listed, timestamp};
use crate::{
    domain::CaptureError,
    store::{
        EventStore,
        jobs::{self, Job},
        vocabulary::Vocabulary,
    },
};

/// What a top-level resource lists.
#[derive(Debug, Clone, Copy)]
pub(super) enum Members {
    /// The EPCs stored events name.
    Epcs,
    /// The terms of a vocabulary that stored events use.
    Terms(Vocabulary),
}

/// `GET /{resource}`: a page of what `members` lists.
pub(super) async fn list(
    rest: State<Rest>,
    resource: &'static str,
    members: Members,
    Query(params): Query<Vec<(String, String)>>,
) -> Response {
    let path = format!("/{resource}");
    let store = rest.store.clone();
    let fetch = |after: Option<String>, limit| async move {
        match members {
            Members::Epcs => store.epcs(after.as_deref(), limit).await,
            Members::Terms(vocabulary) => terms(&store, vocabulary, after, limit).await,
        }
    };
    match Listed::read(&rest, &path, &params, fetch, String::clone).await {
        Ok(page) => {
            let members: Vec<&str> = page.rows.iter().map(String::as_str).collect();
            page.respond(collection(&members), &path, &params)
        }
        Err(refusal) => refusal,
    }
}

/// The CBV vocabulary whose standard terms a listing includes.
fn standard(vocabulary: Vocabulary) -> Option<cbv::Vocabulary> {
    match vocabulary {
        Vocabulary::BizStep => Some(cbv::Vocabulary::BizStep),
        Vocabulary::Disposition => Some(cbv::Vocabulary::Disposition),
        Vocabulary::ReadPoint | Vocabulary::BizLocation => None,
    }
}

/// Up to `limit` terms of `vocabulary` after `after`, in order. Where the CBV defines the
/// vocabulary, its standard terms are listed by their bare names, whichever spelling
/// events used, and the stored terms add the custom ones.
async fn terms(
    store: &EventStore,
    vocabulary: Vocabulary,
    after: Option<String>,
    limit: u64,
) -> Result<Vec<String>, CaptureError> {
    let Some(cbv) = standard(vocabulary) else {
        return store.terms(vocabulary, after.as_deref(), limit).await;
    };
    let custom = |term: &String| cbv.classify(term) == Term::Custom;
    let wanted = usize::try_from(limit).unwrap_or(usize::MAX);
    let mut listed: Vec<String> = cbv
        .terms()
        .iter()
        .filter(|term| after.as_deref().is_none_or(|after| **term > after))
        .map(|term| (*term).to_owned())
        .collect();
    // Stored terms in any CBV spelling are among the standard ones already: read on until
    // enough custom ones (or all) are in.
    let mut position = after;
    let mut customs = 0;
    loop {
        let page = store.terms(vocabulary, position.as_deref(), limit).await?;
        let exhausted = (page.len() as u64) < limit;
        position = page.last().cloned();
        let page_customs: Vec<String> = page.into_iter().filter(custom).collect();
        customs += page_customs.len();
        listed.extend(page_customs);
        if exhausted || customs >= wanted {
            break;
        }
    }
    listed.sort();
    listed.truncate(wanted);
    Ok(listed)
}

/// `GET /capture`: the capture jobs, oldest first, a page at a time.
pub(super) async fn capture_jobs(
    State(rest): State<Rest>,
    Query(params): Query<Vec<(String, String)>>,
) -> Response {
    let db = rest.store.db();
    let fetch =
        |after: Option<String>, limit| async move { jobs::page(db, after.as_deref(), limit).await };
    match Listed::read(&rest, "/capture", &params, fetch, |job: &Job| {
        job.id.clone()
    })
    .await
    {
        Ok(page) => {
            let listed: Vec<Value> = page.rows.iter().map(job_document).collect();
            page.respond(Json(listed).into_response(), "/capture", &params)
        }
        Err(refusal) => refusal,
    }
}

/// A capture job as `GET /capture/{captureID}` shows it: every job stored is finished.
pub(super) fn job_document(job: &Job) -> Value {
    let errors: Value = serde_json::from_str(&job.errors).unwrap_or(Value::Array(Vec::new()));
    json!({
        "captureID": job.id,
        "createdAt": timestamp(job.created_at),
        "finishedAt": timestamp(job.finished_at),
        "running": false,
        "success": job.success,
        "captureErrorBehaviour": job.error_behaviour,
        "errors": errors,
    })
}
