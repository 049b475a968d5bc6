//! Authentication and authorisation over the real interfaces: ES256 tokens from a test
//! identity provider (a JWKS file), every RPC × role × own/other plant against the
//! permission table, bad tokens, the REST binding, and the suite's own calls between its
//! services while callers are checked.

use std::time::Duration;

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use p256::pkcs8::EncodePrivateKey as _;
use prost::Message as _;
use serde_json::{Value, json};
use tonic::{Code, transport::Channel};
use tonic_prost::ProstCodec;
use tracery_e2e::TestApp;
use tracery_proto::v1 as pb;
use tracery_runtime::auth::{
    AuthSettings, Role,
    permissions::{self, Access},
};

pub(crate) const PLANT: &str = "plant-1";
const ISSUER: &str = "https://login.acme.example/";
const AUDIENCE: &str = "tracery";

/// A test identity provider: a signing key, and its public half in a JWKS file.
pub(crate) struct Provider {
    key: EncodingKey,
    _dir: tempfile::TempDir,
    jwks: std::path::PathBuf,
}

fn es256_key() -> (EncodingKey, Value) {
    let secret = p256::SecretKey::random(&mut rand_core::OsRng);
    let pem = secret.to_pkcs8_pem(Default::default()).expect("PKCS#8 PEM");
    let key = EncodingKey::from_ec_pem(pem.as_bytes()).expect("signing key");
    let jwk: Value = serde_json::from_str(&secret.public_key().to_jwk_string()).expect("JWK");
    (key, jwk)
}

impl Provider {
    pub(crate) fn new() -> Self {
        let (key, mut jwk) = es256_key();
        jwk["kid"] = json!("key-1");
        jwk["alg"] = json!("ES256");
        jwk["use"] = json!("sig");
        let dir = tempfile::tempdir().expect("folder");
        let jwks = dir.path().join("jwks.json");
        std::fs::write(&jwks, json!({"keys": [jwk]}).to_string()).expect("JWKS file");
        Self {
            key,
            _dir: dir,
            jwks,
        }
    }

    pub(crate) fn settings(&self) -> AuthSettings {
        AuthSettings {
            plant: PLANT.to_owned(),
            issuer: ISSUER.to_owned(),
            audience: AUDIENCE.to_owned(),
            jwks_file: Some(self.jwks.clone()),
            jwks_url: None,
            roles_claim: "roles".to_owned(),
            plants_claim: "plants".to_owned(),
            leeway_secs: 5,
            peer_token: None,
            certificates: Default::default(),
        }
    }

    fn sign(&self, claims: &Value) -> String {
        sign(&self.key, "key-1", claims)
    }

    /// A valid token for `roles` in `plants`.
    pub(crate) fn token(&self, roles: &[&str], plants: &[&str]) -> String {
        self.sign(&claims(roles, plants))
    }
}

fn sign(key: &EncodingKey, kid: &str, claims: &Value) -> String {
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some(kid.to_owned());
    jsonwebtoken::encode(&header, claims, key).expect("signed")
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn claims(roles: &[&str], plants: &[&str]) -> Value {
    json!({"sub": "alice@acme.example", "iss": ISSUER, "aud": AUDIENCE,
           "iat": now(), "nbf": now() - 10, "exp": now() + 600,
           "roles": roles, "plants": plants})
}

async fn suite(provider: &Provider) -> TestApp {
    let settings = provider.settings();
    TestApp::spawn_with(|config| config.auth = Some(settings))
        .await
        .expect("suite starts")
}

fn with_token<T>(message: T, token: Option<&str>) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    if let Some(token) = token {
        request.metadata_mut().insert(
            "authorization",
            format!("Bearer {token}").parse().expect("header"),
        );
    }
    request
}

/// Calls `path` with an empty message (a valid protobuf of any request type), as the
/// method's kind wants, with `token`; the call's status (`Ok` when the call got through).
pub(crate) async fn call(
    channel: &Channel,
    path: &str,
    streaming: (bool, bool),
    token: Option<&str>,
) -> Code {
    let mut grpc = tonic::client::Grpc::new(channel.clone());
    if grpc.ready().await.is_err() {
        return Code::Unavailable;
    }
    let codec = ProstCodec::<(), ()>::default();
    let path = http::uri::PathAndQuery::try_from(path).expect("method path");
    let outcome = match streaming {
        (false, false) => grpc
            .unary(with_token((), token), path, codec)
            .await
            .map(drop),
        (false, true) => grpc
            .server_streaming(with_token((), token), path, codec)
            .await
            .map(drop),
        (true, _) => grpc
            .streaming(
                with_token(tokio_stream::iter(Vec::<()>::new()), token),
                path,
                codec,
            )
            .await
            .map(drop),
    };
    match outcome {
        Ok(()) => Code::Ok,
        Err(status) => status.code(),
    }
}

/// Every method of the suite's services, with its streaming kind.
fn methods() -> Vec<(String, (bool, bool))> {
    let set = prost_types::FileDescriptorSet::decode(tracery_proto::FILE_DESCRIPTOR_SET)
        .expect("descriptor set");
    set.file
        .iter()
        .flat_map(|file| {
            file.service.iter().flat_map(move |service| {
                service.method.iter().map(move |method| {
                    (
                        format!("/{}.{}/{}", file.package(), service.name(), method.name()),
                        (method.client_streaming(), method.server_streaming()),
                    )
                })
            })
        })
        .collect()
}

fn refused(code: Code) -> bool {
    matches!(code, Code::PermissionDenied | Code::Unauthenticated)
}

#[tokio::test]
async fn every_rpc_admits_exactly_the_roles_of_its_rule_in_its_own_plant() {
    let provider = Provider::new();
    let app = suite(&provider).await;
    let mut mismatches = Vec::new();
    let mut checked = 0;
    for role in Role::ALL {
        let own = provider.token(&[role.as_str()], &[PLANT]);
        let other = provider.token(&[role.as_str()], &["plant-2"]);
        for (path, streaming) in methods() {
            let Some(Access::Roles(allowed)) = permissions::grpc(&path) else {
                panic!("{path} has no role rule");
            };
            let expected = allowed.contains(&role);
            let got = call(&app.channel, &path, streaming, Some(&own)).await;
            if refused(got) == expected {
                mismatches.push(format!("{path} as {}: {got:?}", role.as_str()));
            }
            let elsewhere = call(&app.channel, &path, streaming, Some(&other)).await;
            if elsewhere != Code::PermissionDenied {
                mismatches.push(format!(
                    "{path} as {} of another plant: {elsewhere:?}",
                    role.as_str()
                ));
            }
            checked += 2;
        }
    }
    assert!(mismatches.is_empty(), "{mismatches:#?}");
    assert!(checked >= 2 * 5 * 38, "{checked}");
    // Every write method was let through at least once above, and each was audited.
    let audited: std::collections::BTreeSet<String> = app
        .audit_log()
        .await
        .expect("audit trail")
        .into_iter()
        .map(|(_, action, ..)| action)
        .collect();
    let unaudited: Vec<&&str> = permissions::WRITES
        .iter()
        .filter(|write| write.starts_with('/') && !audited.contains(**write))
        .collect();
    assert!(
        unaudited.is_empty(),
        "writes without audit records: {unaudited:?}"
    );

    // The policy itself, in a few plain words.
    let as_role = |role: &str| provider.token(&[role], &[PLANT]);
    let capture = "/tracery.v1.CaptureService/Capture";
    let register = "/tracery.v1.IdentityService/RegisterProduct";
    let resubmit = "/tracery.v1.CaptureService/ResubmitQuarantined";
    for (path, role, admitted) in [
        (capture, "operator", true),
        (capture, "planner", false),
        (register, "operator", false),
        (register, "admin", true),
        (resubmit, "operator", false),
        (resubmit, "quality", true),
    ] {
        let code = call(&app.channel, path, (false, false), Some(&as_role(role))).await;
        assert_eq!(!refused(code), admitted, "{path} as {role}: {code:?}");
    }
    // Health stays open to probes; reflection wants any valid caller.
    let health = "/grpc.health.v1.Health/Check";
    assert_eq!(
        call(&app.channel, health, (false, false), None).await,
        Code::Ok
    );
    let reflection = "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo";
    assert_eq!(
        call(&app.channel, reflection, (true, true), None).await,
        Code::Unauthenticated
    );
    assert_eq!(
        call(
            &app.channel,
            reflection,
            (true, true),
            Some(&as_role("planner"))
        )
        .await,
        Code::Ok
    );
    // Roles of other applications in the token are ignored, "*" is every plant.
    let corporate = provider.token(&["planner", "hr-manager"], &["*"]);
    let trace = "/tracery.v1.GenealogyService/TraceBackward";
    assert!(!refused(
        call(&app.channel, trace, (false, false), Some(&corporate)).await
    ));
    app.stop().await.expect("clean stop");
}

#[tokio::test]
async fn bad_tokens_are_refused_with_the_reason() {
    let provider = Provider::new();
    let app = suite(&provider).await;
    let (stranger, _) = es256_key();
    let good = claims(&["planner"], &[PLANT]);
    let with = |changes: &[(&str, Value)]| {
        let mut claims = good.clone();
        for (name, value) in changes {
            claims[*name] = value.clone();
        }
        provider.sign(&claims)
    };
    let cases: Vec<(&str, Option<String>, &str)> = vec![
        ("no token", None, "authorization: Bearer"),
        (
            "expired",
            Some(with(&[("exp", json!(now() - 600))])),
            "expired",
        ),
        (
            "not yet valid",
            Some(with(&[("nbf", json!(now() + 600))])),
            "not valid yet",
        ),
        (
            "wrong audience",
            Some(with(&[("aud", json!("billing"))])),
            "audience",
        ),
        (
            "wrong issuer",
            Some(with(&[("iss", json!("https://evil.example/"))])),
            "issuer",
        ),
        (
            "wrong key",
            Some(sign(&stranger, "key-1", &good)),
            "signature",
        ),
        (
            "unknown key",
            Some(sign(&stranger, "key-9", &good)),
            "unknown key",
        ),
        ("malformed", Some("not.a.jwt".to_owned()), "malformed"),
        (
            "no subject",
            Some({
                let mut claims = good.clone();
                claims.as_object_mut().map(|c| c.remove("sub"));
                provider.sign(&claims)
            }),
            "sub",
        ),
        (
            "HMAC",
            Some(
                jsonwebtoken::encode(
                    &Header::new(Algorithm::HS256),
                    &good,
                    &EncodingKey::from_secret(b"guessable"),
                )
                .expect("signed"),
            ),
            "not accepted",
        ),
    ];
    for (case, token, reason) in cases {
        let mut genealogy =
            tracery_proto::v1::genealogy_service_client::GenealogyServiceClient::new(
                app.channel.clone(),
            );
        let mut request = tonic::Request::new(pb::GetProjectionStatusRequest {});
        if let Some(token) = &token {
            request.metadata_mut().insert(
                "authorization",
                format!("Bearer {token}").parse().expect("header"),
            );
        }
        let status = genealogy
            .get_projection_status(request)
            .await
            .expect_err(case);
        assert_eq!(status.code(), Code::Unauthenticated, "{case}: {status:?}");
        assert!(
            status.message().contains(reason),
            "{case}: {}",
            status.message()
        );
    }
    app.stop().await.expect("clean stop");
}

/// A client call with `token`.
fn authorized<T>(message: T, token: &str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {token}").parse().expect("header"),
    );
    request
}

#[tokio::test]
async fn the_suites_own_calls_pass_while_callers_are_checked() {
    let provider = Provider::new();
    let app = suite(&provider).await;
    let operator = provider.token(&["operator"], &[PLANT]);
    let planner = provider.token(&["planner"], &[PLANT]);
    // Capture asks identity about the objects; genealogy and identity follow capture.
    let event = pb::EpcisEvent {
        event_id: "urn:uuid:00000000-0000-4000-8000-a00000000001".to_owned(),
        event_time: Some(prost_types::Timestamp {
            seconds: 1_795_651_200,
            nanos: 0,
        }),
        event_time_zone_offset: "+01:00".to_owned(),
        biz_step: "packing".to_owned(),
        body: Some(pb::epcis_event::Body::AggregationEvent(
            pb::AggregationEvent {
                action: pb::Action::Add.into(),
                parent_id: "urn:epc:id:sscc:4012345.0000000001".to_owned(),
                child_epcs: vec!["urn:epc:id:sgtin:4012345.011111.1".to_owned()],
                child_quantities: Vec::new(),
            },
        )),
        ..Default::default()
    };
    let results = app
        .capture
        .clone()
        .capture(authorized(
            pb::CaptureRequest {
                events: vec![event],
            },
            &operator,
        ))
        .await
        .expect("captured")
        .into_inner()
        .results;
    assert_eq!(
        results[0].outcome,
        pb::CaptureOutcome::Accepted as i32,
        "{results:?}"
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let contents = app
            .genealogy
            .clone()
            .contents(authorized(
                pb::ContentsRequest {
                    container: "urn:epc:id:sscc:4012345.0000000001".to_owned(),
                    ..Default::default()
                },
                &planner,
            ))
            .await
            .expect("contents")
            .into_inner();
        if contents.root.is_some_and(|root| !root.children.is_empty()) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "genealogy never followed capture"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // The REST binding: problem details with 401 and 403.
    let http = reqwest::Client::new();
    let url = format!("http://{}/events", app.http_addr);
    let anonymous = http.get(&url).send().await.expect("answer");
    assert_eq!(anonymous.status(), 401);
    assert_eq!(
        anonymous
            .headers()
            .get("www-authenticate")
            .map(|v| v.as_bytes()),
        Some(&b"Bearer"[..])
    );
    let problem: Value = anonymous.json().await.expect("problem JSON");
    assert_eq!(problem["status"], 401);
    let operator_reads = http
        .get(&url)
        .bearer_auth(&operator)
        .send()
        .await
        .expect("answer");
    assert_eq!(operator_reads.status(), 403);
    let planner_reads = http
        .get(&url)
        .bearer_auth(&planner)
        .send()
        .await
        .expect("answer");
    assert_eq!(planner_reads.status(), 200);
    // The top-level resources read events: the same rule as `/events`.
    let by_step = format!("http://{}/bizSteps/receiving/events", app.http_addr);
    let status_for = |token: Option<&str>| {
        let mut request = http.get(&by_step);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        async move { request.send().await.expect("answer").status().as_u16() }
    };
    assert_eq!(status_for(None).await, 401);
    assert_eq!(status_for(Some(&operator)).await, 403);
    assert_eq!(status_for(Some(&planner)).await, 200);
    // Named queries are views for the same readers; creating one is audited.
    let queries = format!("http://{}/queries", app.http_addr);
    let definition = serde_json::json!({"name": "received", "query": {"EQ_bizStep": "receiving"}});
    let create_as = |token: &str| {
        let request = http.post(&queries).bearer_auth(token).json(&definition);
        async move { request.send().await.expect("answer").status().as_u16() }
    };
    assert_eq!(create_as(&operator).await, 403);
    assert_eq!(create_as(&planner).await, 201);
    let audited = app.audit_log().await.expect("audit trail");
    assert!(
        audited
            .iter()
            .any(|(_, action, ..)| action == "POST /queries"),
        "{audited:?}"
    );
    // Discovery shows no data, but only to callers who say who they are.
    let discover = |token: Option<&str>| {
        let mut request = http.request(reqwest::Method::OPTIONS, &url);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        async move { request.send().await.expect("answer").status().as_u16() }
    };
    assert_eq!(discover(None).await, 401);
    assert_eq!(discover(Some(&operator)).await, 204);
    // Probes and scrapers need no token.
    let health = http
        .get(format!("http://{}/healthz", app.http_addr))
        .send()
        .await
        .expect("answer");
    assert_eq!(health.status(), 200);
    app.stop().await.expect("clean stop");
}

#[tokio::test]
async fn a_principal_over_its_rate_is_told_when_to_retry() {
    let provider = Provider::new();
    let settings = provider.settings();
    let app = TestApp::spawn_with(|config| {
        config.auth = Some(settings);
        config.limits.requests_per_second = 2;
        config.limits.burst = 3;
    })
    .await
    .expect("suite starts");
    let planner = provider.token(&["planner"], &[PLANT]);
    let mut genealogy =
        pb::genealogy_service_client::GenealogyServiceClient::new(app.channel.clone());
    let mut outcomes = Vec::new();
    for _ in 0..5 {
        outcomes.push(
            genealogy
                .get_projection_status(authorized(pb::GetProjectionStatusRequest {}, &planner))
                .await,
        );
    }
    let admitted = outcomes.iter().filter(|o| o.is_ok()).count();
    assert_eq!(admitted, 3, "the burst, then refusals");
    let refused = outcomes
        .into_iter()
        .find_map(Result::err)
        .expect("a refusal");
    assert_eq!(refused.code(), Code::ResourceExhausted);
    use tonic_types::StatusExt as _;
    let retry = refused
        .get_details_retry_info()
        .and_then(|info| info.retry_delay)
        .expect("retry info");
    assert!(retry <= Duration::from_millis(600), "{retry:?}");
    // Another principal has its own bucket; REST says 429 with Retry-After.
    let other = provider.sign(&{
        let mut claims = claims(&["planner"], &[PLANT]);
        claims["sub"] = json!("bob@acme.example");
        claims
    });
    assert!(
        genealogy
            .get_projection_status(authorized(pb::GetProjectionStatusRequest {}, &other))
            .await
            .is_ok()
    );
    let http = reqwest::Client::new();
    let url = format!("http://{}/events", app.http_addr);
    let mut last = None;
    for _ in 0..4 {
        last = Some(
            http.get(&url)
                .bearer_auth(&planner)
                .send()
                .await
                .expect("answer"),
        );
    }
    let last = last.expect("a response");
    assert_eq!(last.status(), 429);
    assert!(last.headers().contains_key("retry-after"));
    app.stop().await.expect("clean stop");
}

#[tokio::test]
async fn corrections_and_retirements_need_the_quality_role() {
    let provider = Provider::new();
    let app = suite(&provider).await;
    let operator = provider.token(&["operator"], &[PLANT]);
    let quality = provider.token(&["quality"], &[PLANT]);
    let retire = |n: u32| pb::EpcisEvent {
        event_id: format!("urn:uuid:00000000-0000-4000-8000-b1{n:010}"),
        event_time: Some(prost_types::Timestamp {
            seconds: 1_795_651_200,
            nanos: 0,
        }),
        event_time_zone_offset: "+01:00".to_owned(),
        biz_step: "decommissioning".to_owned(),
        body: Some(pb::epcis_event::Body::ObjectEvent(pb::ObjectEvent {
            action: pb::Action::Delete.into(),
            epcs: vec![format!("urn:epc:id:sgtin:4012345.011111.Q{n}")],
            ..Default::default()
        })),
        ..Default::default()
    };
    let mut capture = app.capture.clone();
    let refused = capture
        .capture(authorized(
            pb::CaptureRequest {
                events: vec![retire(1)],
            },
            &operator,
        ))
        .await
        .expect_err("an operator cannot decommission");
    assert_eq!(refused.code(), Code::PermissionDenied);
    assert!(
        refused.message().contains("events[0]") && refused.message().contains("quality"),
        "{}",
        refused.message()
    );
    capture
        .capture(authorized(
            pb::CaptureRequest {
                events: vec![retire(2)],
            },
            &quality,
        ))
        .await
        .expect("quality may");
    // A DELETE retires its identifiers whatever its bizStep says (here: none).
    let mut silent = retire(3);
    silent.biz_step.clear();
    let refused = capture
        .capture(authorized(
            pb::CaptureRequest {
                events: vec![silent],
            },
            &operator,
        ))
        .await
        .expect_err("an operator cannot retire by leaving the bizStep out");
    assert_eq!(refused.code(), Code::PermissionDenied);
    assert!(
        refused.message().contains("decommissions"),
        "{}",
        refused.message()
    );
    // Any event saying its objects are destroyed, even an observation.
    let mut destroyed = retire(4);
    destroyed.biz_step.clear();
    destroyed.disposition = "destroyed".to_owned();
    if let Some(pb::epcis_event::Body::ObjectEvent(object)) = &mut destroyed.body {
        object.action = pb::Action::Observe.into();
    }
    let refused = capture
        .capture(authorized(
            pb::CaptureRequest {
                events: vec![destroyed.clone()],
            },
            &operator,
        ))
        .await
        .expect_err("an operator cannot destroy");
    assert_eq!(refused.code(), Code::PermissionDenied);
    assert!(
        refused.message().contains("destroys"),
        "{}",
        refused.message()
    );
    capture
        .capture(authorized(
            pb::CaptureRequest {
                events: vec![destroyed],
            },
            &quality,
        ))
        .await
        .expect("quality may");
    // An error declaration over REST.
    let declaration = json!({
        "@context": ["https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"],
        "type": "EPCISDocument", "schemaVersion": "2.0", "creationDate": "2026-11-26T00:00:00Z",
        "epcisBody": {"eventList": [{
            "type": "ObjectEvent", "eventID": "urn:uuid:00000000-0000-4000-8000-b20000000001",
            "eventTime": "2026-11-26T10:00:00+01:00", "eventTimeZoneOffset": "+01:00",
            "action": "OBSERVE", "epcList": ["urn:epc:id:sgtin:4012345.011111.Q3"],
            "errorDeclaration": {"declarationTime": "2026-11-26T11:00:00+01:00", "reason": "incorrect_data"}}]}
    });
    let posted = reqwest::Client::new()
        .post(format!("http://{}/capture", app.http_addr))
        .bearer_auth(&operator)
        .header("content-type", "application/ld+json")
        .body(declaration.to_string())
        .send()
        .await
        .expect("answer");
    assert_eq!(posted.status(), 403);
    // A DELETE over REST, without a bizStep.
    let deletion = json!({
        "@context": ["https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"],
        "type": "EPCISDocument", "schemaVersion": "2.0", "creationDate": "2026-11-26T00:00:00Z",
        "epcisBody": {"eventList": [{
            "type": "ObjectEvent", "eventID": "urn:uuid:00000000-0000-4000-8000-b20000000002",
            "eventTime": "2026-11-26T10:00:00+01:00", "eventTimeZoneOffset": "+01:00",
            "action": "DELETE", "epcList": ["urn:epc:id:sgtin:4012345.011111.Q5"]}]}
    });
    let post = |token: &str| {
        reqwest::Client::new()
            .post(format!("http://{}/capture", app.http_addr))
            .bearer_auth(token)
            .header("content-type", "application/ld+json")
            .body(deletion.to_string())
            .send()
    };
    let refused = post(&operator).await.expect("answer");
    assert_eq!(refused.status(), 403);
    let problem: serde_json::Value = refused.json().await.expect("problem");
    assert_eq!(problem["type"], "epcisException:SecurityException");
    assert_eq!(post(&quality).await.expect("answer").status(), 202);
    // Every refusal is on the audit trail beside the writes let through, on both channels.
    let audit = app.audit_log().await.expect("audit trail");
    let refusals: Vec<&String> = audit
        .iter()
        .map(|(_, action, _, _)| action)
        .filter(|action| action.ends_with("(refused)"))
        .collect();
    assert!(
        refusals
            .iter()
            .any(|a| a.starts_with("/tracery.v1.CaptureService/Capture")),
        "{audit:?}"
    );
    assert!(
        refusals.iter().any(|a| a.starts_with("POST /capture")),
        "{audit:?}"
    );
    app.stop().await.expect("clean stop");
}
