//! `dma`: the digital maturity assessment engine.
//!
//! The crate is built in layers, and each layer uses only the ones listed before it
//! (ARCHITECTURE.md draws them; `tests/integration/layering.rs` fails when a module reaches up):
//!
//! 1. [`domain`]: the pure core. The questionnaire format, answers, visibility, scoring,
//!    statistics and comparability, with no I/O, so every edge computes a score one way.
//! 2. Foundation used by everything above the core: [`error`] (one error type), [`crypto`]
//!    (random tokens, digests), [`metrics`] (the Prometheus registry every layer records
//!    into), [`db`] (schema, connections, pool, migrations, opening the
//!    database), [`config`] (validated settings), [`templates`] (the handlebars registry that
//!    pages and emails both render with) and [`telemetry`].
//! 3. [`services`]: the product's work (questionnaires, registry, cycles, assessments,
//!    reports, notifications, mail, auth policy and credentials, audit), as functions over a
//!    database connection that know nothing of HTTP.
//! 4. The edges: [`web`] (pages and the JSON API) and [`cli`].

pub mod domain;

pub mod config;
pub mod crypto;
pub mod db;
pub mod error;
pub mod metrics;
pub mod telemetry;
pub mod templates;

pub mod services;

pub mod cli;
pub mod web;
