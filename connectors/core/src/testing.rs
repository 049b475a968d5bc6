//! Helpers for connector tests (feature `testing`): a client that retries quickly, secrets
//! in files as Kubernetes mounts them, and a whole scan of one record kind.

use std::time::Duration;

use tracery_secret::SecretSource;

use crate::{
    Connector, Cursor, Fetched, Page, Position, RecordKind,
    http::{Http, RetryPolicy},
};

/// A client with 10 ms backoff (`Retry-After` still honoured up to 5 s).
pub fn http() -> Http {
    let policy = RetryPolicy {
        attempts: 4,
        base_delay: Duration::from_millis(10),
        max_delay: Duration::from_secs(5),
    };
    match Http::new(Duration::from_secs(5), policy) {
        Ok(http) => http,
        Err(err) => panic!("test HTTP client: {err}"),
    }
}

/// `value` in a file of its own (one per call: tests run concurrently and would otherwise
/// read a file another test is rewriting), read as a mounted secret.
pub fn secret_file(name: &str, value: &str) -> SecretSource {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static CALLS: AtomicUsize = AtomicUsize::new(0);
    let call = CALLS.fetch_add(1, Ordering::Relaxed);
    let file = format!("tracery-test-secret-{}-{call}-{name}", std::process::id());
    let path = std::env::temp_dir().join(file);
    if let Err(err) = std::fs::write(&path, value) {
        panic!("secret file {}: {err}", path.display());
    }
    SecretSource::file(path)
}

/// Every page of `kind` changed since `since`: the records, the next scan's `since`, and
/// how many pages it took.
pub async fn scan(
    connector: &dyn Connector,
    kind: RecordKind,
    since: Option<String>,
) -> (Vec<Fetched>, Option<String>, usize) {
    let mut cursor = Cursor {
        since,
        position: Position::Start,
    };
    let (mut records, mut high_water, mut pages) = (Vec::new(), None, 0);
    loop {
        let page = match connector.fetch(kind, &cursor).await {
            Ok(page) => page,
            Err(err) => panic!("page {pages} of {kind:?}: {err}"),
        };
        pages += 1;
        records.extend(page.records);
        high_water = Page::later(high_water, page.high_water);
        match page.next {
            Some(next) => cursor.position = next,
            None => return (records, high_water, pages),
        }
    }
}
