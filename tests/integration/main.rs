//! The one integration-test binary: it links once, and each module covers one area of the
//! product against real databases (see `helpers`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod helpers;

mod accounts;
mod admin_questionnaires;
mod assessment_flow;
mod cli;
mod foundation;
mod registry;
mod storage;
