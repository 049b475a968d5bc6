//! The permission table: which roles each gRPC method and REST route needs. A method or
//! route without a rule is refused, and a test checks that every method in `proto/` has
//! one.

use super::Role::{self, Admin, Integration, Operator, Planner, Quality};

/// What a method or route needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone, unauthenticated (health checks, for probes).
    Open,
    /// Any authenticated caller.
    Authenticated,
    /// A caller with one of these roles in this plant.
    Roles(&'static [Role]),
}

const CAPTURE: &[Role] = &[Operator, Quality];
const READ: &[Role] = &[Planner, Quality, Admin];
/// Capture jobs: those who capture, and those who read what was captured.
const CAPTURE_JOBS: &[Role] = &[Operator, Quality, Planner, Admin];
const QUALITY: &[Role] = &[Quality];
const ADMIN: &[Role] = &[Admin];
const SYNC: &[Role] = &[Integration, Admin];
const SYNC_READ: &[Role] = &[Integration, Planner, Admin];
const FOLLOW: &[Role] = &[Integration, Planner];
const LINE: &[Role] = &[Operator, Admin];
const LOOKUP: &[Role] = &[Operator, Planner, Quality, Admin];
const ORDERS: &[Role] = &[Integration, Planner, Quality, Admin];
const BOM_CHECK: &[Role] = &[Integration, Operator, Quality];
const AUDIT: &[Role] = &[Quality, Admin];
/// Alerts are for everyone who watches the plant; acting on one for those who run it.
const ALERTS: &[Role] = &[Operator, Planner, Quality, Admin];
const ALERT_ACTIONS: &[Role] = &[Operator, Quality, Admin];
/// The dashboard overview: the live feed ([`FOLLOW`]) or the floor and quarantine ([`READ`]).
const OVERVIEW: &[Role] = &[Integration, Planner, Quality, Admin];

/// gRPC methods by path (`/package.Service/Method`).
pub const GRPC: &[(&str, Access)] = &[
    (
        "/tracery.v1.AlertService/PutAlertRule",
        Access::Roles(ADMIN),
    ),
    (
        "/tracery.v1.AlertService/DeleteAlertRule",
        Access::Roles(ADMIN),
    ),
    (
        "/tracery.v1.AlertService/ListAlertRules",
        Access::Roles(ALERTS),
    ),
    ("/tracery.v1.AlertService/ListAlerts", Access::Roles(ALERTS)),
    (
        "/tracery.v1.AlertService/AcknowledgeAlert",
        Access::Roles(ALERT_ACTIONS),
    ),
    (
        "/tracery.v1.AlertService/ResolveAlert",
        Access::Roles(ALERT_ACTIONS),
    ),
    ("/tracery.v1.CaptureService/Capture", Access::Roles(CAPTURE)),
    (
        "/tracery.v1.CaptureService/CaptureStream",
        Access::Roles(CAPTURE),
    ),
    ("/tracery.v1.CaptureService/GetEvent", Access::Roles(READ)),
    (
        "/tracery.v1.CaptureService/QueryEvents",
        Access::Roles(READ),
    ),
    (
        "/tracery.v1.CaptureService/Subscribe",
        Access::Roles(FOLLOW),
    ),
    // Named queries are views for the readers of GET /events (as over REST).
    (
        "/tracery.v1.CaptureService/SubscribeQuery",
        Access::Roles(READ),
    ),
    (
        "/tracery.v1.CaptureService/ListQuarantine",
        Access::Roles(READ),
    ),
    (
        "/tracery.v1.CaptureService/QuarantineHours",
        Access::Roles(READ),
    ),
    (
        "/tracery.v1.CaptureService/ResubmitQuarantined",
        Access::Roles(QUALITY),
    ),
    (
        "/tracery.v1.CaptureService/DiscardQuarantined",
        Access::Roles(QUALITY),
    ),
    (
        "/tracery.v1.CaptureService/VerifyIntegrity",
        Access::Roles(AUDIT),
    ),
    (
        "/tracery.v1.CaptureService/ExportArchive",
        Access::Roles(ADMIN),
    ),
    (
        "/tracery.v1.CaptureService/DropArchived",
        Access::Roles(ADMIN),
    ),
    (
        "/tracery.v1.CaptureService/ImportArchive",
        Access::Roles(ADMIN),
    ),
    (
        "/tracery.v1.CaptureService/LookupMasterData",
        Access::Roles(LOOKUP),
    ),
    // Master data from the ERP sync, or put by an administrator.
    (
        "/tracery.v1.CaptureService/PutMasterData",
        Access::Roles(SYNC),
    ),
    (
        "/tracery.v1.GenealogyService/TraceBackward",
        Access::Roles(READ),
    ),
    (
        "/tracery.v1.GenealogyService/TraceForward",
        Access::Roles(READ),
    ),
    (
        "/tracery.v1.GenealogyService/RecallScope",
        Access::Roles(READ),
    ),
    ("/tracery.v1.GenealogyService/History", Access::Roles(READ)),
    ("/tracery.v1.GenealogyService/Contents", Access::Roles(READ)),
    ("/tracery.v1.GenealogyService/WhereIs", Access::Roles(READ)),
    (
        "/tracery.v1.GenealogyService/ExportGraph",
        Access::Roles(READ),
    ),
    (
        "/tracery.v1.GenealogyService/GetProjectionStatus",
        Access::Roles(READ),
    ),
    (
        "/tracery.v1.GenealogyService/AnalyzeCommonCause",
        Access::Roles(READ),
    ),
    (
        "/tracery.v1.GenealogyService/GetTrends",
        Access::Roles(READ),
    ),
    (
        "/tracery.v1.IdentityService/RegisterProduct",
        Access::Roles(ADMIN),
    ),
    (
        "/tracery.v1.IdentityService/GetProduct",
        Access::Roles(LOOKUP),
    ),
    (
        "/tracery.v1.IdentityService/ListProducts",
        Access::Roles(LOOKUP),
    ),
    (
        "/tracery.v1.IdentityService/ParseIdentifier",
        Access::Roles(LOOKUP),
    ),
    (
        "/tracery.v1.IdentityService/CreateSerialPool",
        Access::Roles(ADMIN),
    ),
    (
        "/tracery.v1.IdentityService/GetSerialPool",
        Access::Roles(LOOKUP),
    ),
    (
        "/tracery.v1.IdentityService/AllocateSerials",
        Access::Roles(LINE),
    ),
    (
        "/tracery.v1.IdentityService/GetIdentifierState",
        Access::Roles(LOOKUP),
    ),
    (
        "/tracery.v1.IdentityService/BatchGetIdentifierStates",
        Access::Roles(LOOKUP),
    ),
    (
        "/tracery.v1.IdentityService/UpdateIdentifierStates",
        Access::Roles(QUALITY),
    ),
    (
        "/tracery.v1.IdentityService/RenderLabel",
        Access::Roles(LINE),
    ),
    (
        "/tracery.v1.IntegrationService/TriggerSync",
        Access::Roles(SYNC),
    ),
    (
        "/tracery.v1.IntegrationService/SyncStatus",
        Access::Roles(SYNC_READ),
    ),
    (
        "/tracery.v1.IntegrationService/ListSyncRuns",
        Access::Roles(SYNC_READ),
    ),
    (
        "/tracery.v1.IntegrationService/ListOrders",
        Access::Roles(ORDERS),
    ),
    (
        "/tracery.v1.IntegrationService/GetOrder",
        Access::Roles(ORDERS),
    ),
    (
        "/tracery.v1.IntegrationService/GetBom",
        Access::Roles(ORDERS),
    ),
    (
        "/tracery.v1.IntegrationService/ResolveItem",
        Access::Roles(ORDERS),
    ),
    (
        "/tracery.v1.IntegrationService/CheckBomConformance",
        Access::Roles(BOM_CHECK),
    ),
    (
        "/tracery.v1.IntegrationService/CompareBoms",
        Access::Roles(ORDERS),
    ),
    (
        "/tracery.v1.IntegrationService/ListPostings",
        Access::Roles(SYNC_READ),
    ),
    (
        "/tracery.v1.IntegrationService/RetryPosting",
        Access::Roles(SYNC),
    ),
    ("/grpc.health.v1.Health/Check", Access::Open),
    ("/grpc.health.v1.Health/Watch", Access::Open),
    (
        "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
        Access::Authenticated,
    ),
    (
        "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
        Access::Authenticated,
    ),
];

/// The methods and routes that change state: each call let through is written to the
/// audit trail first.
pub const WRITES: &[&str] = &[
    "/tracery.v1.AlertService/PutAlertRule",
    "/tracery.v1.AlertService/DeleteAlertRule",
    "/tracery.v1.AlertService/AcknowledgeAlert",
    "/tracery.v1.AlertService/ResolveAlert",
    "/tracery.v1.CaptureService/Capture",
    "/tracery.v1.CaptureService/CaptureStream",
    "/tracery.v1.CaptureService/ResubmitQuarantined",
    "/tracery.v1.CaptureService/DiscardQuarantined",
    "/tracery.v1.CaptureService/DropArchived",
    "/tracery.v1.CaptureService/ImportArchive",
    "/tracery.v1.IdentityService/RegisterProduct",
    "/tracery.v1.IdentityService/CreateSerialPool",
    "/tracery.v1.IdentityService/AllocateSerials",
    "/tracery.v1.IdentityService/UpdateIdentifierStates",
    "/tracery.v1.IntegrationService/TriggerSync",
    "/tracery.v1.IntegrationService/RetryPosting",
    "POST /capture",
    "POST /events",
    "POST /queries",
    "DELETE /queries/{query_name}",
    "POST /queries/{query_name}/subscriptions",
    "DELETE /queries/{query_name}/subscriptions/{subscription_id}",
    "POST /dashboard/api/quarantine/{id}/resubmit",
    "POST /dashboard/api/quarantine/{id}/discard",
    "POST /dashboard/api/alerts/{id}/acknowledge",
    "POST /dashboard/api/alerts/{id}/resolve",
];

/// Whether a call of `action` (a method path, or `METHOD /route`) is audited.
pub fn is_write(action: &str) -> bool {
    WRITES.contains(&action)
}

/// The rule of a gRPC method path.
pub fn grpc(path: &str) -> Option<Access> {
    GRPC.iter()
        .find(|(p, _)| *p == path)
        .map(|(_, access)| *access)
}

/// REST routes by method and route template (as the router declares it).
pub const REST: &[(&str, &str, Access)] = &[
    ("POST", "/capture", Access::Roles(CAPTURE)),
    // RFID readers posting their reads (as over MQTT, each reader's events need its roles).
    ("POST", "/rfid/{reader}", Access::Roles(CAPTURE)),
    ("GET", "/capture", Access::Roles(CAPTURE_JOBS)),
    ("GET", "/capture/{capture_id}", Access::Roles(CAPTURE_JOBS)),
    ("POST", "/events", Access::Roles(CAPTURE)),
    ("GET", "/events", Access::Roles(READ)),
    ("GET", "/events/{event_id}", Access::Roles(READ)),
    // The binding's top-level resources: discovery and the events each value names.
    ("GET", "/eventTypes", Access::Roles(READ)),
    ("GET", "/eventTypes/{value}", Access::Roles(READ)),
    ("GET", "/eventTypes/{value}/events", Access::Roles(READ)),
    ("GET", "/epcs", Access::Roles(READ)),
    ("GET", "/epcs/{value}", Access::Roles(READ)),
    ("GET", "/epcs/{value}/events", Access::Roles(READ)),
    ("GET", "/bizSteps", Access::Roles(READ)),
    ("GET", "/bizSteps/{value}", Access::Roles(READ)),
    ("GET", "/bizSteps/{value}/events", Access::Roles(READ)),
    ("GET", "/bizLocations", Access::Roles(READ)),
    ("GET", "/bizLocations/{value}", Access::Roles(READ)),
    ("GET", "/bizLocations/{value}/events", Access::Roles(READ)),
    ("GET", "/readPoints", Access::Roles(READ)),
    ("GET", "/readPoints/{value}", Access::Roles(READ)),
    ("GET", "/readPoints/{value}/events", Access::Roles(READ)),
    ("GET", "/dispositions", Access::Roles(READ)),
    ("GET", "/dispositions/{value}", Access::Roles(READ)),
    ("GET", "/dispositions/{value}/events", Access::Roles(READ)),
    // Named queries: views over what the same roles may read with GET /events.
    ("GET", "/queries", Access::Roles(READ)),
    ("POST", "/queries", Access::Roles(READ)),
    ("GET", "/queries/{query_name}", Access::Roles(READ)),
    ("DELETE", "/queries/{query_name}", Access::Roles(READ)),
    ("GET", "/queries/{query_name}/events", Access::Roles(READ)),
    // Subscriptions deliver what the subscriber may read with GET /events.
    (
        "GET",
        "/queries/{query_name}/subscriptions",
        Access::Roles(READ),
    ),
    (
        "POST",
        "/queries/{query_name}/subscriptions",
        Access::Roles(READ),
    ),
    (
        "GET",
        "/queries/{query_name}/subscriptions/{subscription_id}",
        Access::Roles(READ),
    ),
    (
        "DELETE",
        "/queries/{query_name}/subscriptions/{subscription_id}",
        Access::Roles(READ),
    ),
    // A page token holds nothing on the server: releasing one changes nothing.
    ("DELETE", "/nextPageToken/{token}", Access::Authenticated),
    // The dashboard: the page itself holds no data; each API route admits the roles of
    // the gRPC methods whose data it shows (see DASHBOARD).
    ("GET", "/", Access::Open),
    ("GET", "/assets/{file}", Access::Open),
    ("GET", "/dashboard/api/session", Access::Authenticated),
    ("GET", "/dashboard/api/overview", Access::Roles(OVERVIEW)),
    ("GET", "/dashboard/api/lookup", Access::Roles(READ)),
    ("GET", "/dashboard/api/recall", Access::Roles(READ)),
    ("GET", "/dashboard/api/recall.csv", Access::Roles(READ)),
    // A read: POST only because a list of failed units is too long for a URL.
    ("POST", "/dashboard/api/analyze", Access::Roles(READ)),
    ("GET", "/dashboard/api/trends", Access::Roles(READ)),
    ("GET", "/dashboard/api/quarantine", Access::Roles(READ)),
    (
        "POST",
        "/dashboard/api/quarantine/{id}/resubmit",
        Access::Roles(QUALITY),
    ),
    (
        "POST",
        "/dashboard/api/quarantine/{id}/discard",
        Access::Roles(QUALITY),
    ),
    (
        "GET",
        "/dashboard/api/integration",
        Access::Roles(SYNC_READ),
    ),
    ("GET", "/dashboard/api/alerts", Access::Roles(ALERTS)),
    (
        "POST",
        "/dashboard/api/alerts/{id}/acknowledge",
        Access::Roles(ALERT_ACTIONS),
    ),
    (
        "POST",
        "/dashboard/api/alerts/{id}/resolve",
        Access::Roles(ALERT_ACTIONS),
    ),
];

/// A part of a dashboard answer, and the gRPC method whose data it shows.
pub type ViewPart = (&'static str, &'static str);

/// Dashboard API routes by method and route template, with each part of the answer and
/// the gRPC method whose data that part shows. The route's rule in [`REST`] is the union of
/// its parts' roles (a test checks it); a caller sees only the parts whose method admits
/// them ([`shows`]), the rest is left out of the answer.
pub const DASHBOARD: &[(&str, &str, &[ViewPart])] = &[
    (
        "GET",
        "/dashboard/api/overview",
        &[
            ("feed", "/tracery.v1.CaptureService/Subscribe"),
            ("floor", "/tracery.v1.CaptureService/QueryEvents"),
            ("quarantine", "/tracery.v1.CaptureService/ListQuarantine"),
        ],
    ),
    (
        "GET",
        "/dashboard/api/lookup",
        &[
            ("history", "/tracery.v1.GenealogyService/History"),
            ("where", "/tracery.v1.GenealogyService/WhereIs"),
            ("backward", "/tracery.v1.GenealogyService/TraceBackward"),
            ("forward", "/tracery.v1.GenealogyService/TraceForward"),
        ],
    ),
    (
        "GET",
        "/dashboard/api/recall",
        &[("scope", "/tracery.v1.GenealogyService/RecallScope")],
    ),
    (
        "GET",
        "/dashboard/api/recall.csv",
        &[("scope", "/tracery.v1.GenealogyService/RecallScope")],
    ),
    (
        "POST",
        "/dashboard/api/analyze",
        &[(
            "candidates",
            "/tracery.v1.GenealogyService/AnalyzeCommonCause",
        )],
    ),
    (
        "GET",
        "/dashboard/api/trends",
        &[
            ("floor", "/tracery.v1.GenealogyService/GetTrends"),
            ("quarantine", "/tracery.v1.CaptureService/QuarantineHours"),
        ],
    ),
    (
        "GET",
        "/dashboard/api/quarantine",
        &[("entries", "/tracery.v1.CaptureService/ListQuarantine")],
    ),
    (
        "POST",
        "/dashboard/api/quarantine/{id}/resubmit",
        &[("result", "/tracery.v1.CaptureService/ResubmitQuarantined")],
    ),
    (
        "POST",
        "/dashboard/api/quarantine/{id}/discard",
        &[("result", "/tracery.v1.CaptureService/DiscardQuarantined")],
    ),
    (
        "GET",
        "/dashboard/api/integration",
        &[
            ("runs", "/tracery.v1.IntegrationService/ListSyncRuns"),
            (
                "deadLetterPostings",
                "/tracery.v1.IntegrationService/ListPostings",
            ),
        ],
    ),
    (
        "GET",
        "/dashboard/api/alerts",
        &[
            ("alerts", "/tracery.v1.AlertService/ListAlerts"),
            ("rules", "/tracery.v1.AlertService/ListAlertRules"),
        ],
    ),
    (
        "POST",
        "/dashboard/api/alerts/{id}/acknowledge",
        &[("alert", "/tracery.v1.AlertService/AcknowledgeAlert")],
    ),
    (
        "POST",
        "/dashboard/api/alerts/{id}/resolve",
        &[("alert", "/tracery.v1.AlertService/ResolveAlert")],
    ),
];

/// Whether `principal` may see data of the gRPC method `method` (a caller the permission
/// layer let through with no principal, in dev mode, sees everything).
pub fn shows(principal: Option<&super::Principal>, method: &str) -> bool {
    let Some(principal) = principal else {
        return true;
    };
    match grpc(method) {
        Some(Access::Roles(roles)) => roles.iter().any(|role| principal.roles.contains(role)),
        Some(Access::Open | Access::Authenticated) => true,
        None => false,
    }
}

/// The parts of the dashboard route `method template` that `principal` may not see.
pub fn hidden_parts(
    principal: Option<&super::Principal>,
    method: &str,
    template: &str,
) -> Vec<&'static str> {
    DASHBOARD
        .iter()
        .filter(|(m, t, _)| *m == method && *t == template)
        .flat_map(|(_, _, parts)| parts.iter())
        .filter(|(_, grpc_method)| !shows(principal, grpc_method))
        .map(|(part, _)| *part)
        .collect()
}

/// The rule of a REST route. `OPTIONS` on a route, which says what the route offers and
/// shows no data, is open to any authenticated caller.
pub fn rest(method: &str, template: &str) -> Option<Access> {
    let mut rules = REST.iter().filter(|(_, t, _)| *t == template);
    if method == "OPTIONS" {
        return rules.next().map(|_| Access::Authenticated);
    }
    rules
        .find(|(m, _, _)| *m == method)
        .map(|(_, _, access)| *access)
}

/// Writes whose handler commits the audit record in the write's own transaction
/// ([`crate::audit::DeferredAudit`]): capture's, group-committed with the events.
pub fn commits_own_audit(action: &str) -> bool {
    matches!(
        action,
        "/tracery.v1.CaptureService/Capture" | "POST /capture"
    )
}

#[cfg(test)]
mod tests {
    use prost::Message as _;

    use super::*;

    /// Every method of every service in `proto/`, as `/package.Service/Method`.
    fn proto_methods() -> Vec<String> {
        let set = prost_types::FileDescriptorSet::decode(tracery_proto::FILE_DESCRIPTOR_SET)
            .expect("the descriptor set decodes");
        let mut methods = Vec::new();
        for file in set.file {
            for service in &file.service {
                for method in &service.method {
                    methods.push(format!(
                        "/{}.{}/{}",
                        file.package(),
                        service.name(),
                        method.name()
                    ));
                }
            }
        }
        methods
    }

    /// Every dashboard API route admits exactly the roles of the gRPC methods whose data it
    /// shows, and every dashboard API route in the table says what it shows.
    #[test]
    fn every_dashboard_route_has_the_roles_of_what_it_shows() {
        use std::collections::BTreeSet;
        for (method, template, parts) in DASHBOARD {
            let Some(Access::Roles(route_roles)) = rest(method, template) else {
                panic!("{method} {template}: no role rule");
            };
            let mut shown: BTreeSet<Role> = BTreeSet::new();
            for (part, grpc_method) in *parts {
                match grpc(grpc_method) {
                    Some(Access::Roles(roles)) => shown.extend(roles.iter().copied()),
                    other => panic!("{method} {template} part {part}: {grpc_method} is {other:?}"),
                }
            }
            let route: BTreeSet<Role> = route_roles.iter().copied().collect();
            assert_eq!(
                route, shown,
                "{method} {template} admits {route:?}; what it shows needs {shown:?}"
            );
        }
        for (method, template, _) in REST {
            if template.starts_with("/dashboard/api/") && *template != "/dashboard/api/session" {
                assert!(
                    DASHBOARD
                        .iter()
                        .any(|(m, t, _)| m == method && t == template),
                    "{method} {template} does not say what it shows"
                );
            }
        }
    }

    #[test]
    fn a_part_is_hidden_from_a_role_its_method_refuses() {
        let principal = |role: Role| super::super::Principal {
            subject: "someone".to_owned(),
            roles: [role].into_iter().collect(),
            plants: super::super::Plants::All,
        };
        let overview =
            |role| hidden_parts(Some(&principal(role)), "GET", "/dashboard/api/overview");
        assert_eq!(overview(Quality), vec!["feed"]);
        assert_eq!(overview(Planner), Vec::<&str>::new());
        assert_eq!(overview(Integration), vec!["floor", "quarantine"]);
        assert_eq!(overview(Operator), vec!["feed", "floor", "quarantine"]);
    }

    #[test]
    fn every_rpc_in_proto_has_a_rule() {
        let methods = proto_methods();
        assert!(methods.len() > 30, "{methods:?}");
        let missing: Vec<&String> = methods.iter().filter(|m| grpc(m).is_none()).collect();
        assert!(
            missing.is_empty(),
            "RPCs without a permission rule: {missing:?}"
        );
        // …and no rule for a method that no longer exists.
        let stale: Vec<&str> = GRPC
            .iter()
            .map(|(path, _)| *path)
            .filter(|path| path.starts_with("/tracery.") && !methods.iter().any(|m| m == path))
            .collect();
        assert!(stale.is_empty(), "rules for unknown RPCs: {stale:?}");
        for write in WRITES {
            let known = match write.split_once(' ') {
                Some((method, route)) => rest(method, route).is_some(),
                None => grpc(write).is_some(),
            };
            assert!(known, "audited {write} has no rule");
        }
    }
}
