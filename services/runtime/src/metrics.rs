//! Prometheus metrics: one registry per process, served at `/metrics` on the HTTP
//! listener. Services create their families once per process (a `OnceLock`) and
//! register them here; names start with `tracery_`.

use prometheus::{Registry, core::Collector};

/// The process's registry.
pub fn registry() -> &'static Registry {
    prometheus::default_registry()
}

/// Registers `family`; a failure (a name clash, a bug) is logged and the family still
/// counts, just unexported.
pub fn register<C: Collector + Clone + 'static>(family: C) -> C {
    if let Err(err) = registry().register(Box::new(family.clone())) {
        tracing::error!(error = %err, "a metric family could not be registered");
    }
    family
}

/// A registered counter family. Names and labels are constants of the code, so building
/// the family cannot fail at run time.
pub fn counter_vec(name: &str, help: &str, labels: &[&str]) -> prometheus::IntCounterVec {
    register(
        prometheus::IntCounterVec::new(prometheus::Opts::new(name, help), labels)
            .expect("a constant metric name and labels"),
    )
}

/// A registered gauge family (see [`counter_vec`]).
pub fn gauge_vec(name: &str, help: &str, labels: &[&str]) -> prometheus::IntGaugeVec {
    register(
        prometheus::IntGaugeVec::new(prometheus::Opts::new(name, help), labels)
            .expect("a constant metric name and labels"),
    )
}

/// A registered gauge without labels (see [`counter_vec`]).
pub fn gauge(name: &str, help: &str) -> prometheus::IntGauge {
    register(prometheus::IntGauge::new(name, help).expect("a constant metric name"))
}

/// A registered histogram family in seconds (see [`counter_vec`]).
pub fn histogram_vec(name: &str, help: &str, labels: &[&str]) -> prometheus::HistogramVec {
    register(
        prometheus::HistogramVec::new(prometheus::HistogramOpts::new(name, help), labels)
            .expect("a constant metric name and labels"),
    )
}

/// Requests served, by interface (`grpc`, `rest`), method and outcome code.
struct RequestMetrics {
    total: prometheus::IntCounterVec,
    seconds: prometheus::HistogramVec,
}

fn requests() -> &'static RequestMetrics {
    static METRICS: std::sync::OnceLock<RequestMetrics> = std::sync::OnceLock::new();
    METRICS.get_or_init(|| RequestMetrics {
        total: counter_vec(
            "tracery_requests_total",
            "Requests served, by interface, method and code (gRPC status or HTTP status)",
            &["interface", "method", "code"],
        ),
        seconds: histogram_vec(
            "tracery_request_duration_seconds",
            "Time to the response headers (streams: to their start)",
            &["interface", "method"],
        ),
    })
}

/// Counts one request of `method` on `interface` that ended with `code` after `elapsed`.
pub fn observe_request(interface: &str, method: &str, code: &str, elapsed: std::time::Duration) {
    let metrics = requests();
    metrics
        .total
        .with_label_values(&[interface, method, code])
        .inc();
    metrics
        .seconds
        .with_label_values(&[interface, method])
        .observe(elapsed.as_secs_f64());
}
