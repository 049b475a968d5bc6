//! The one telemetry init: `tracing` logs (text or JSON), plus OpenTelemetry traces over
//! OTLP when `OTEL_EXPORTER_OTLP_ENDPOINT` is set, with W3C trace context carried in gRPC
//! metadata so a call that crosses services is one trace.

use opentelemetry::{
    global,
    propagation::{Extractor, Injector},
    trace::TracerProvider as _,
};
use opentelemetry_sdk::{Resource, propagation::TraceContextPropagator, trace::SdkTracerProvider};
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::{EnvFilter, Layer, layer::SubscriberExt, util::SubscriberInitExt};

use crate::config::LogFormat;

/// Flushes pending spans when dropped; keep it alive for the life of the process.
#[must_use = "dropping the guard stops trace export"]
pub struct TelemetryGuard {
    provider: Option<SdkTracerProvider>,
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take()
            && let Err(err) = provider.shutdown()
        {
            eprintln!("tracery: flushing traces failed: {err}");
        }
    }
}

/// Installs the global subscriber. Safe to call more than once (later calls only keep
/// the first subscriber), which tests rely on.
pub fn init_telemetry(service_name: &str, format: LogFormat) -> anyhow::Result<TelemetryGuard> {
    global::set_text_map_propagator(TraceContextPropagator::new());
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let fmt_layer = match format {
        LogFormat::Text => tracing_subscriber::fmt::layer().boxed(),
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .boxed(),
    };
    let provider = match std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT") {
        Ok(endpoint) if !endpoint.is_empty() => {
            let exporter = opentelemetry_otlp::SpanExporter::builder()
                .with_tonic()
                .build()?;
            Some(
                SdkTracerProvider::builder()
                    .with_batch_exporter(exporter)
                    .with_resource(
                        Resource::builder()
                            .with_service_name(service_name.to_owned())
                            .build(),
                    )
                    .build(),
            )
        }
        _ => None,
    };
    // RUST_LOG filters the log lines only: traces keep every span at info and above, so
    // a quiet log does not hide a request's path through the services.
    let otel_layer = provider.as_ref().map(|p| {
        tracing_opentelemetry::layer()
            .with_tracer(p.tracer("tracery"))
            .with_filter(tracing_subscriber::filter::LevelFilter::INFO)
    });
    let installed = tracing_subscriber::registry()
        .with(fmt_layer.with_filter(filter))
        .with(otel_layer)
        .try_init()
        .is_ok();
    if installed && let Some(p) = &provider {
        global::set_tracer_provider(p.clone());
    }
    Ok(TelemetryGuard { provider })
}

/// The server span for one gRPC request, joined to the caller's trace when the request
/// carries a W3C `traceparent`.
pub fn grpc_request_span(request: &http::Request<()>) -> tracing::Span {
    let span = tracing::info_span!(
        "grpc.request",
        otel.name = %request.uri().path(),
        rpc.system = "grpc",
    );
    let parent = global::get_text_map_propagator(|propagator| {
        propagator.extract(&HeaderExtractor(request.headers()))
    });
    // Fails only when no OpenTelemetry layer is installed, where there is nothing to join.
    let _ = span.set_parent(parent);
    span
}

/// The W3C `traceparent` of the current span, when it is being traced.
pub fn current_trace_parent() -> Option<String> {
    let context = tracing::Span::current().context();
    if !opentelemetry::trace::TraceContextExt::span(&context)
        .span_context()
        .is_valid()
    {
        return None;
    }
    let mut carrier = std::collections::HashMap::new();
    global::get_text_map_propagator(|propagator| propagator.inject_context(&context, &mut carrier));
    carrier.remove("traceparent")
}

/// The span of a consumer applying events captured under `trace_parents`: a child of the
/// capture's trace when they all came from one call, else linked to each (a batch of
/// many calls belongs to none of them).
pub fn consumer_span(name: &'static str, trace_parents: &[&str]) -> tracing::Span {
    let span = tracing::info_span!("consume", otel.name = name, events = trace_parents.len());
    let mut distinct: Vec<&str> = trace_parents.to_vec();
    distinct.sort_unstable();
    distinct.dedup();
    let context_of = |parent: &str| {
        let carrier =
            std::collections::HashMap::from([("traceparent".to_owned(), parent.to_owned())]);
        global::get_text_map_propagator(|propagator| propagator.extract(&carrier))
    };
    match distinct.as_slice() {
        [] => {}
        [one] => {
            let _ = span.set_parent(context_of(one));
        }
        many => {
            for parent in many {
                let context = context_of(parent);
                let linked = opentelemetry::trace::TraceContextExt::span(&context)
                    .span_context()
                    .clone();
                span.add_link(linked);
            }
        }
    }
    span
}

/// A client interceptor that puts the current trace context into outgoing metadata.
#[derive(Debug, Clone, Copy, Default)]
pub struct TraceContextInjector;

impl tonic::service::Interceptor for TraceContextInjector {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        let context = tracing::Span::current().context();
        global::get_text_map_propagator(|propagator| {
            propagator.inject_context(&context, &mut MetadataInjector(request.metadata_mut()));
        });
        Ok(request)
    }
}

struct HeaderExtractor<'a>(&'a http::HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}

struct MetadataInjector<'a>(&'a mut tonic::metadata::MetadataMap);

impl Injector for MetadataInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(key), Ok(value)) = (
            tonic::metadata::MetadataKey::from_bytes(key.as_bytes()),
            value.parse(),
        ) {
            self.0.insert(key, value);
        }
    }
}
