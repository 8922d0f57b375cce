//! The services: the product's work, one module per concept, as functions over a database
//! connection (or the [`crate::db::Db`] pool) that take and return domain types and
//! [`crate::error::AppError`]. They know nothing of HTTP, so the pages, the JSON API, the
//! scheduler and the CLI all call the same code. Nothing here names `crate::web` or
//! `crate::cli` (the layering test holds that).

pub mod assessments;
pub mod audit;
pub mod auth;
pub mod authoring;
pub mod backup;
pub mod cycles;
pub mod demo;
pub mod digest;
pub mod evidence;
pub mod mail;
pub mod memberships;
pub mod notes;
pub mod notifications;
pub mod operations;
pub mod plans;
pub mod questionnaires;
pub mod registry;
pub mod reports;
pub mod retention;
pub mod review;
pub mod saving;
pub mod sections;
pub mod seed;
pub mod workbook;
