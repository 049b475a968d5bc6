//! The GS1 event hash against the published vectors in `../shared/epcis/hash-vectors`:
//! every document's events hash to the `.hashes` lines, and every document in
//! `expected_equal/` hashes all its events alike.

use std::path::Path;

use tracery_e2e::shared_fixtures;
use tracery_epcis::{Document, hash, json};

fn read_document(path: &Path) -> Document {
    let text = std::fs::read_to_string(path).expect("vector readable");
    match path.extension().and_then(|e| e.to_str()) {
        Some("xml") => tracery_epcis::xml::parse_document(&text),
        _ => json::parse_document(&text),
    }
    .unwrap_or_else(|err| panic!("{}: {err}", path.display()))
}

fn pre_hashes(document: &Document) -> Vec<String> {
    let context = hash::HashContext::of(document);
    document
        .events
        .iter()
        .map(|event| hash::pre_hash(event, &context))
        .collect()
}

fn hashes(document: &Document) -> Vec<String> {
    document
        .events
        .iter()
        .map(|event| hash::event_hash(event, &hash::HashContext::of(document)))
        .collect()
}

#[test]
fn documents_hash_to_the_published_values() {
    let Some(shared) = shared_fixtures() else {
        return;
    };
    let dir = shared.join("epcis/hash-vectors/examples");
    let mut checked = 0;
    let mut failures = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("vector folder") {
        let path = entry.expect("entry").path();
        let is_document = matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("jsonld" | "xml")
        );
        let expected_path = path.with_extension("hashes");
        if !is_document || !expected_path.exists() {
            continue;
        }
        let expected: Vec<String> = std::fs::read_to_string(&expected_path)
            .expect("hashes readable")
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect();
        let document = read_document(&path);
        let actual = hashes(&document);
        checked += 1;
        if actual != expected {
            let pre_hashes = pre_hashes(&document);
            failures.push(format!(
                "{}\n  expected {expected:?}\n  actual   {actual:?}\n  pre-hashes:\n    {}",
                path.display(),
                pre_hashes.join("\n    ")
            ));
        }
    }
    assert!(checked >= 35, "only {checked} vector documents found");
    assert!(
        failures.is_empty(),
        "{} of {checked} documents hash differently:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn equivalent_spellings_hash_alike() {
    let Some(shared) = shared_fixtures() else {
        return;
    };
    let dir = shared.join("epcis/hash-vectors/expected_equal");
    let mut failures = Vec::new();
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).expect("vector folder") {
        let path = entry.expect("entry").path();
        let document = read_document(&path);
        let actual = hashes(&document);
        checked += 1;
        if actual.is_empty() || actual.iter().any(|h| *h != actual[0]) {
            let pre_hashes = pre_hashes(&document);
            failures.push(format!(
                "{}: {actual:?}\n    {}",
                path.display(),
                pre_hashes.join("\n    ")
            ));
        }
    }
    assert!(checked >= 10, "only {checked} documents found");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
