//! mfa-audit: reruns the Microsoft Partner Center rule "partner tenants must use MFA" on
//! every sign-in, API call and dashboard request, and reports findings, per-tenant
//! rollout readiness, agents and dead letters.
//!
//! The modules follow the data's path:
//!
//! - [`source`]: files and stdin (Kafka in production), cut into documents.
//! - [`event`]: recognise a document by its shape and decode it without copying;
//!   bearer tokens are read in memory and only their SHA-256 goes further.
//! - [`policy`]: policy versions as data (`policies/*.toml`), validated whole, and the
//!   evaluation of every rule on one event.
//! - [`state`]: event-sourced per-tenant state: roles, registration, sessions,
//!   exceptions, per-day rollout counters.
//! - [`sink`]: the rows (`findings`, `rollout_daily`, `agents`, `dead_letters`) as
//!   ClickHouse `JSONEachRow` files (or ClickHouse itself).
//! - [`telemetry`]: the process's metrics and logging.
//!
//! - [`report`]: the rows read back into one self-contained HTML page.
//! - [`bounded`]: reads of the small files an operator names (configuration, policy,
//!   key set, password, CA), refused when not a regular file or over a size cap.
//!
//! [`pipeline::Processor`] ties the stages together; [`stream`] runs it on Kafka with
//! ClickHouse; [`generate`] makes realistic sample streams. The command line (clap, one
//! file per command) is the binary's (`src/main.rs`, `src/cli.rs`, `src/cmd/`): the
//! library takes plain options.

#![recursion_limit = "256"]

pub mod bounded;
pub mod config;
pub mod event;
pub mod generate;
pub mod pipeline;
pub mod policy;
pub mod report;
pub mod sink;
pub mod source;
pub mod state;
pub mod stream;
pub mod telemetry;
