//! `GET /metrics`: Prometheus text. Runs and steps by tenant and status, runs executing, steps
//! waiting for a slot per tenant, free slots, and step durations.

use std::sync::Arc;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use super::Server;
use crate::events::{Event, EventKind, EventSink, SinkError};

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TenantStatus {
    tenant: String,
    status: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TenantLabel {
    tenant: String,
}

fn step_seconds() -> Histogram {
    // 100 µs to about 100 s.
    Histogram::new(exponential_buckets(1e-4, 4.0, 11))
}

/// The metrics a run's events update; a clone shares the values of the original.
#[derive(Clone)]
struct RunFamilies {
    runs: Family<TenantStatus, Counter>,
    running: Family<TenantLabel, Gauge>,
    steps: Family<TenantStatus, Counter>,
    step_seconds: Family<TenantLabel, Histogram, fn() -> Histogram>,
}

/// The server's metrics.
pub struct Metrics {
    registry: Registry,
    families: RunFamilies,
    waiting: Family<TenantLabel, Gauge>,
    free_slots: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut metrics = Metrics {
            registry: Registry::with_prefix("shoal"),
            families: RunFamilies {
                runs: Family::default(),
                running: Family::default(),
                steps: Family::default(),
                step_seconds: Family::new_with_constructor(step_seconds),
            },
            waiting: Family::default(),
            free_slots: Gauge::default(),
        };
        let r = &mut metrics.registry;
        let f = &metrics.families;
        r.register("runs", "Runs ended, by tenant and status", f.runs.clone());
        r.register("runs_running", "Runs executing", f.running.clone());
        r.register(
            "steps",
            "Step attempts ended, by tenant and status",
            f.steps.clone(),
        );
        r.register(
            "step_duration_seconds",
            "Duration of step attempts",
            f.step_seconds.clone(),
        );
        r.register(
            "steps_waiting",
            "Steps waiting for a slot, by tenant",
            metrics.waiting.clone(),
        );
        r.register("slots_free", "Step slots free", metrics.free_slots.clone());
        metrics
    }
}

impl Metrics {
    /// A sink counting the events of one of `tenant`'s runs.
    pub fn sink(&self, tenant: &str) -> MetricsSink {
        MetricsSink {
            tenant: tenant.to_string(),
            families: self.families.clone(),
        }
    }
}

/// Counts a run's events into the server's metrics; the run store records them.
pub struct MetricsSink {
    tenant: String,
    families: RunFamilies,
}

impl MetricsSink {
    fn label(&self) -> TenantLabel {
        TenantLabel {
            tenant: self.tenant.clone(),
        }
    }

    fn count(&self, family: &Family<TenantStatus, Counter>, status: &'static str) {
        let labels = TenantStatus {
            tenant: self.tenant.clone(),
            status,
        };
        family.get_or_create(&labels).inc();
    }

    fn step_ended(&self, status: &'static str, duration_ms: f64) {
        self.count(&self.families.steps, status);
        self.families
            .step_seconds
            .get_or_create(&self.label())
            .observe(duration_ms / 1e3);
    }

    fn run_ended(&self, status: &'static str) {
        self.count(&self.families.runs, status);
        self.families.running.get_or_create(&self.label()).dec();
    }
}

impl EventSink for MetricsSink {
    fn event(&mut self, event: &Event<'_>) -> Result<(), SinkError> {
        match &event.kind {
            EventKind::RunStart { .. } => {
                self.families.running.get_or_create(&self.label()).inc();
            }
            EventKind::StepSuccess { duration_ms } => self.step_ended("success", *duration_ms),
            EventKind::StepFailure { duration_ms, .. } => self.step_ended("failure", *duration_ms),
            EventKind::StepUpForRetry { .. } => self.count(&self.families.steps, "retry"),
            EventKind::StepSkipped { .. } => self.count(&self.families.steps, "skipped"),
            EventKind::RunSuccess { .. } => self.run_ended("success"),
            EventKind::RunFailure { .. } => self.run_ended("failure"),
            EventKind::RunCanceled { .. } => self.run_ended("canceled"),
            _ => {}
        }
        Ok(())
    }
}

pub async fn render(State(server): State<Arc<Server>>) -> impl IntoResponse {
    let metrics = &server.metrics;
    let stats = server.share.stats();
    metrics.free_slots.set(stats.free as i64);
    for tenant in &stats.tenants {
        let label = TenantLabel {
            tenant: tenant.name.clone(),
        };
        metrics
            .waiting
            .get_or_create(&label)
            .set(tenant.waiting as i64);
    }
    let mut text = String::new();
    // Writing to a String cannot fail.
    let _ignored = prometheus_client::encoding::text::encode(&mut text, &metrics.registry);
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    )
}
