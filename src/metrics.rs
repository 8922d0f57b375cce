//! The process's Prometheus metrics, in one registry that every layer may add to.
//!
//! It sits just above the pure core (layer 1) because the storage layer records pool waits
//! here and the services record scheduler passes and purges; the web edge only renders the
//! registry (`web::metrics`). Counters here count what *this instance* did; figures that
//! belong to the whole service (outbox depth, active sessions) are read from the database
//! when Prometheus scrapes, so every instance reports the same truth (`services::operations`).
//!
//! Labels are bounded on purpose: routes are the registered patterns (`/assessments/{id}`),
//! never raw paths, so the number of series cannot grow with the data.

use std::sync::LazyLock;
use std::time::Duration;

use prometheus::{
    Gauge, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

/// Every metric the service exposes. Built once, on first use.
pub struct Metrics {
    registry: Registry,
    /// HTTP requests answered, by method, route pattern and status.
    pub http_requests: IntCounterVec,
    /// HTTP request latency in seconds, by method, route pattern and status.
    pub http_duration: HistogramVec,
    /// Time spent waiting for a pooled database connection.
    pub pool_wait: Histogram,
    /// Requests for a pooled connection that gave up waiting.
    pub pool_timeouts: IntCounter,
    /// Pooled connections open and, of those, lent out (set when scraped).
    pub pool_connections: IntGauge,
    pub pool_in_use: IntGauge,
    /// The configured pool size (set when scraped).
    pub pool_max: IntGauge,
    /// Scheduler passes run by this instance, by outcome (`ok`, `failed`).
    pub scheduler_passes: IntCounterVec,
    /// Records removed or emptied by the retention purge, by kind.
    pub retention_purged: IntCounterVec,
    /// Sign-in attempts refused by this instance (wrong password, throttled, bad input).
    pub sign_in_failures: IntCounter,
    /// Outbox messages by status (set from the database when scraped).
    pub outbox_messages: IntGaugeVec,
    /// Age in seconds of the oldest message waiting to be sent; 0 when none waits.
    pub outbox_oldest_unsent_age: Gauge,
    /// Messages waiting for another try after a failed delivery.
    pub outbox_retrying: IntGauge,
    /// Delivery attempts that failed, summed over messages still in the outbox.
    pub outbox_failed_attempts: IntGauge,
    /// Sessions that have not expired (set from the database when scraped).
    pub sessions_active: IntGauge,
}

/// Latency buckets from 5 ms to 30 s: the autosave should sit in the first few, exports in
/// the last.
const HTTP_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// Pool waits from 0.1 ms (a free idle connection) to the 10 s checkout timeout.
const POOL_BUCKETS: &[f64] = &[
    0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0,
];

fn build() -> Result<Metrics, prometheus::Error> {
    let registry = Registry::new_custom(Some("dma".to_string()), None)?;
    let route_labels = &["method", "route", "status"];
    let m = Metrics {
        http_requests: IntCounterVec::new(
            Opts::new("http_requests_total", "HTTP requests answered"),
            route_labels,
        )?,
        http_duration: HistogramVec::new(
            HistogramOpts::new(
                "http_request_duration_seconds",
                "Time from receiving a request to its response being ready",
            )
            .buckets(HTTP_BUCKETS.to_vec()),
            route_labels,
        )?,
        pool_wait: Histogram::with_opts(
            HistogramOpts::new(
                "db_pool_wait_seconds",
                "Time spent waiting for a pooled database connection (including opening one)",
            )
            .buckets(POOL_BUCKETS.to_vec()),
        )?,
        pool_timeouts: IntCounter::new(
            "db_pool_timeouts_total",
            "Requests for a database connection that gave up waiting",
        )?,
        pool_connections: IntGauge::new(
            "db_pool_connections",
            "Database connections open in this instance's pool",
        )?,
        pool_in_use: IntGauge::new(
            "db_pool_connections_in_use",
            "Database connections lent out by this instance's pool",
        )?,
        pool_max: IntGauge::new("db_pool_max_connections", "The pool's configured size")?,
        scheduler_passes: IntCounterVec::new(
            Opts::new(
                "scheduler_passes_total",
                "Scheduler passes (reminders, retention) run by this instance",
            ),
            &["outcome"],
        )?,
        retention_purged: IntCounterVec::new(
            Opts::new(
                "retention_purged_total",
                "Records deleted or emptied by the retention purge, by kind",
            ),
            &["kind"],
        )?,
        sign_in_failures: IntCounter::new(
            "sign_in_failures_total",
            "Sign-in attempts refused by this instance",
        )?,
        outbox_messages: IntGaugeVec::new(
            Opts::new(
                "outbox_messages",
                "Messages in the email outbox by status (the whole service, from the database)",
            ),
            &["status"],
        )?,
        outbox_oldest_unsent_age: Gauge::new(
            "outbox_oldest_unsent_age_seconds",
            "Age of the oldest message not yet sent (0 when none waits)",
        )?,
        outbox_retrying: IntGauge::new(
            "outbox_retrying_messages",
            "Messages waiting for another try after a failed delivery",
        )?,
        outbox_failed_attempts: IntGauge::new(
            "outbox_failed_attempts",
            "Failed delivery attempts, summed over messages in the outbox",
        )?,
        sessions_active: IntGauge::new(
            "sessions_active",
            "Sign-in sessions that have not expired (the whole service, from the database)",
        )?,
        registry,
    };
    m.registry.register(Box::new(m.http_requests.clone()))?;
    m.registry.register(Box::new(m.http_duration.clone()))?;
    m.registry.register(Box::new(m.pool_wait.clone()))?;
    m.registry.register(Box::new(m.pool_timeouts.clone()))?;
    m.registry.register(Box::new(m.pool_connections.clone()))?;
    m.registry.register(Box::new(m.pool_in_use.clone()))?;
    m.registry.register(Box::new(m.pool_max.clone()))?;
    m.registry.register(Box::new(m.scheduler_passes.clone()))?;
    m.registry.register(Box::new(m.retention_purged.clone()))?;
    m.registry.register(Box::new(m.sign_in_failures.clone()))?;
    m.registry.register(Box::new(m.outbox_messages.clone()))?;
    m.registry
        .register(Box::new(m.outbox_oldest_unsent_age.clone()))?;
    m.registry.register(Box::new(m.outbox_retrying.clone()))?;
    m.registry
        .register(Box::new(m.outbox_failed_attempts.clone()))?;
    m.registry.register(Box::new(m.sessions_active.clone()))?;
    Ok(m)
}

static METRICS: LazyLock<Option<Metrics>> = LazyLock::new(|| match build() {
    Ok(m) => Some(m),
    Err(e) => {
        // Only a programming error (a duplicate or malformed name) gets here; the service
        // still runs, without metrics, and says why.
        tracing::error!(error = %e, "metrics could not be registered");
        None
    }
});

/// The metrics, or `None` when they could not be registered (never in a correct build; the
/// unit test below proves the names).
pub fn get() -> Option<&'static Metrics> {
    METRICS.as_ref()
}

/// Run `f` on the metrics when they exist: the one way code records a figure.
pub fn record(f: impl FnOnce(&Metrics)) {
    if let Some(m) = get() {
        f(m);
    }
}

/// The whole registry in Prometheus's text exposition format.
pub fn render() -> Result<String, prometheus::Error> {
    match get() {
        Some(m) => TextEncoder::new().encode_to_string(&m.registry.gather()),
        None => Ok(String::new()),
    }
}

/// Hands r2d2's checkout and timeout events to the pool metrics (set on the pool by
/// `db::Db::connect`), so waits are measured where they happen without wrapping every use.
#[derive(Debug)]
pub struct PoolEvents;

impl diesel::r2d2::HandleEvent for PoolEvents {
    fn handle_checkout(&self, event: diesel::r2d2::event::CheckoutEvent) {
        record(|m| m.pool_wait.observe(event.duration().as_secs_f64()));
    }

    fn handle_timeout(&self, _event: diesel::r2d2::event::TimeoutEvent) {
        record(|m| m.pool_timeouts.inc());
    }
}

/// Record one answered HTTP request.
pub fn observe_request(method: &str, route: &str, status: u16, elapsed: Duration) {
    record(|m| {
        let status = status.to_string();
        let labels = [method, route, status.as_str()];
        m.http_requests.with_label_values(&labels).inc();
        m.http_duration
            .with_label_values(&labels)
            .observe(elapsed.as_secs_f64());
    });
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn every_metric_registers_and_renders_in_the_text_format() {
        assert!(get().is_some(), "registration failed");
        observe_request("GET", "/assessments/{id}", 200, Duration::from_millis(12));
        let text = render().unwrap();
        assert!(text.contains(
            "dma_http_requests_total{method=\"GET\",route=\"/assessments/{id}\",status=\"200\"}"
        ));
        assert!(text.contains("# TYPE dma_http_request_duration_seconds histogram"));
    }
}
