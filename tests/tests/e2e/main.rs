//! End-to-end tests over the real suite (see `tracery_e2e::TestApp`).

mod archive;
mod auth;
mod bad_input;
mod capture;
mod dashboard;
mod effects_agree;
mod epcis_examples;
mod genealogy;
mod genealogy_trace;
mod hash_vectors;
mod health;
mod identifiers;
mod identity;
mod integration;
mod integrity;
mod limits;
mod mqtt;
mod mqtt_auth;
mod partitions;
mod postback;
mod races;
mod readiness;
mod rest;
mod serials;
mod storage;
mod tls;
