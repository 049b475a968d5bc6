//! The dashboard's trend data (`GET /dashboard/api/trends`) for a period, as the trend
//! view asks for it: open loop, request `i` is due at `start + i / rate` whatever the
//! answers do, and its latency runs from then. Reports the achieved rate, the errors and
//! the size of the answer beside the latencies.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use hdrhistogram::Histogram;

use crate::table;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The suite's HTTP address.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub http: String,
    /// The period's start (RFC 3339).
    #[arg(long, default_value = "2026-01-01T00:00:00Z")]
    pub from: String,
    /// The period's length in days.
    #[arg(long, default_value_t = 7)]
    pub days: i64,
    /// Requests per second.
    #[arg(long, default_value_t = 20)]
    pub rate: u64,
    /// Requests in all.
    #[arg(long, default_value_t = 200)]
    pub requests: u64,
    /// A bearer token, when the suite checks callers.
    #[arg(long, env = "TRACERY_TOKEN")]
    pub token: Option<String>,
}

#[derive(Default)]
struct Tally {
    errors: u64,
    bytes: usize,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.rate > 0 && args.requests > 0,
        "--rate and --requests must be > 0"
    );
    let from = chrono::DateTime::parse_from_rfc3339(&args.from)?.to_utc();
    let until = from + chrono::TimeDelta::days(args.days);
    let url = format!(
        "{}/dashboard/api/trends?from={}&until={}",
        args.http.trim_end_matches('/'),
        from.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        until.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    );
    let client = reqwest::Client::new();
    let latencies = Arc::new(Mutex::new(Histogram::<u64>::new(3)?));
    let tally = Arc::new(Mutex::new(Tally::default()));
    let interval = Duration::from_secs_f64(1.0 / args.rate as f64);
    let start = tokio::time::Instant::now();
    let mut in_flight = Vec::new();
    for i in 0..args.requests {
        let scheduled = start + interval * i as u32;
        tokio::time::sleep_until(scheduled).await;
        let mut request = client.get(&url);
        if let Some(token) = &args.token {
            request = request.bearer_auth(token);
        }
        let (latencies, tally) = (Arc::clone(&latencies), Arc::clone(&tally));
        in_flight.push(tokio::spawn(async move {
            let answer = match request.send().await {
                Ok(response) if response.status().is_success() => response.bytes().await.ok(),
                _ => None,
            };
            let elapsed = scheduled.elapsed().as_micros() as u64;
            if let (Ok(mut latencies), Ok(mut tally)) = (latencies.lock(), tally.lock()) {
                let _ = latencies.record(elapsed);
                match answer {
                    Some(body) => tally.bytes = body.len(),
                    None => tally.errors += 1,
                }
            }
        }));
    }
    for request in in_flight {
        let _ = request.await;
    }
    let elapsed = start.elapsed().as_secs_f64();
    let latencies = latencies.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
    let tally = tally.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
    table::print(
        &[
            "days",
            "offered/s",
            "achieved/s",
            "errors",
            "answer KB",
            "p50 ms",
            "p99 ms",
            "max ms",
        ],
        &[
            args.days.to_string(),
            args.rate.to_string(),
            table::per_second(args.requests as usize, elapsed),
            tally.errors.to_string(),
            format!("{:.0}", tally.bytes as f64 / 1024.0),
            table::ms(&latencies, 0.5),
            table::ms(&latencies, 0.99),
            table::ms(&latencies, 1.0),
        ],
    );
    Ok(())
}
