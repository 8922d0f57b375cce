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
mod authoring;
mod authorisation;
mod cli;
mod cycle_closing;
mod evidence;
mod export_pages;
mod foundation;
mod integrity;
mod layering;
mod mail;
mod memberships;
mod multi_instance;
mod national;
mod notes;
mod operations;
mod organisation_pages;
mod pages;
mod people;
mod people_admin;
mod registry;
mod reminders;
mod reports;
mod review;
mod second_factor;
mod sections;
mod security;
mod seed;
mod sso;
mod storage;
