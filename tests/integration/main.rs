//! The one integration-test binary: it links once, and each module covers one area of the
//! product against real databases (see `helpers`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod browser;
mod helpers;

mod accounts;
mod admin_organisations;
mod admin_questionnaires;
mod api;
mod api_tokens;
mod assessment_flow;
mod audit_page;
mod authorisation;
mod cli;
mod foundation;
mod mail;
mod national;
mod people;
mod registry;
mod reminders;
mod reports;
mod seed;
mod storage;
