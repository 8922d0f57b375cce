//! `dma`: the digital maturity assessment engine. The pure core (`domain`) knows the
//! questionnaire format and the scoring rules and does no I/O; `db`, `web`, `mail` and `cli`
//! are thin edges around it. ARCHITECTURE.md explains the layout.

pub mod assessments;
pub mod audit;
pub mod auth;
pub mod cli;
pub mod config;
pub mod cycles;
pub mod db;
pub mod demo;
pub mod domain;
pub mod error;
pub mod mail;
pub mod notifications;
pub mod questionnaires;
pub mod registry;
pub mod reports;
pub mod seed;
pub mod telemetry;
pub mod web;
