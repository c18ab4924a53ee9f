//! End-to-end tests: the real `host` binary on real components (one test binary, to link once).

mod adversarial;
mod backpressure;
mod cli;
mod compile_cache;
mod durability;
mod event_stream;
mod examples;
mod job_errors;
mod leases;
mod pool;
mod retries;
#[cfg(unix)]
mod signals;
mod step_failures;
mod support;
mod values;
