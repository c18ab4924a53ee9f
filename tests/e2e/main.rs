//! End-to-end tests: the real `host` binary on real components (one test binary, to link once).

mod adversarial;
mod app;
mod backpressure;
mod cli;
mod cluster;
mod compile_cache;
mod durability;
mod engine;
mod event_stream;
mod examples;
mod history;
mod job_errors;
mod languages;
mod leases;
mod pool;
mod remote;
mod retries;
mod run_snapshots;
#[cfg(unix)]
mod serve;
#[cfg(unix)]
mod signals;
mod step_failures;
mod support;
#[cfg(unix)]
mod terminal;
mod texts;
mod user_events;
mod values;
#[cfg(unix)]
mod web;
