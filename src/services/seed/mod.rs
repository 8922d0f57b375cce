//! Benchmark-scale data: `dma demo seed --orgs N --cycles K [--seed S]`.
//!
//! The demo data (`crate::services::demo`) is a handful of organisations for trying the service by hand;
//! measuring it needs a national registry's worth of organisations with several years of
//! assessments behind them. This module writes that, and writes it *fast* and *repeatably*:
//!
//! - **Bulk.** Rows are generated in memory and stored with multi-row `INSERT`s of at most
//!   [`ROWS_PER_STATEMENT`] rows (well under SQLite's 32,766 bound parameters), several
//!   statements per transaction, with ids read back through `RETURNING` and matched on a
//!   natural key (SQLite does not promise `RETURNING` order). Nothing here goes row by row
//!   through the lifecycle services (`cycles::open`, `assessments::submit`): those write an
//!   audit entry and queue emails per row. The seed queues no email at all.
//! - **Deterministic.** Every random choice comes from a `StdRng` seeded from `--seed` and the
//!   organisation's index (and the cycle), so the same seed gives the same registry, answers
//!   and scores whatever the batch sizes; only the dates move with the day it is run (the last
//!   cycle is always the current one).
//! - **Realistic where reports look.** 7 NHS regions and the 42 ICBs (real names and codes);
//!   each assessed organisation has a latent maturity that drifts between cycles and a bias per
//!   domain, so reports show spread and year-on-year movement; about one organisation in a
//!   hundred moves to another ICB of its region between cycles (a new `organisation_parents`
//!   row), so the ICB snapshots of the assessments differ by cycle. Answers are built as
//!   [`Answer`] values for their question type, only for questions that `show_if` leaves
//!   visible, and submitted assessments are scored by the scoring core and stored exactly as
//!   `assessments::submit` stores them (through [`ScoreSetContent`]).
//! - **Only into an empty database.** It refuses (exit 2) when the database holds any
//!   organisation, account, question set or cycle, so benchmark data can never mix with real
//!   data. A seed that fails part-way leaves what it committed: start again with a new
//!   database.
//!
//! What the seed does not write: `answer_history` (seeded answers have no edit history, so the
//! "who changed this" pages are empty for them), per-row audit entries (one `demo.seed` entry
//! records the run), sessions, tokens and email.
//!
//! The assessed organisations have ODS-code-like codes `B00001`, `B00002`, ... and the kind
//! `trust`. Real trust codes (`R` and two characters) run out at 1,296, so the codes have the
//! shape of GP practice codes; the stored kind is what the benchmark harness filters on. A
//! registry import that names one of these codes would reclassify it from its shape.
//!
//! Accounts (all active, password [`BENCH_PASSWORD`]): `admin@bench.dma.example`,
//! `auditor@bench.dma.example`, and for the organisation with 0-based index `i`,
//! `approver{i}@bench.dma.example` and `contributor{i}@bench.dma.example`.
//!
//! In the current (open) cycle the status follows `i % 10`: 0-3 submitted; 4-5 in progress
//! with every visible question answered (the approver can submit); 6-7 in progress with about
//! half answered; 8-9 not started. In closed cycles about 95% are submitted and the rest are
//! in progress with about half answered.
//!
//! [`run`] is the seed as a whole and the place to start; it plans [`cycles`] and
//! [`organisations`] (with [`names`] and [`random`]) in memory, generates [`answers`], and
//! hands everything to [`write`], the only part that touches the database; [`progress`] draws
//! the bar.

/// The password of every seeded account. Benchmark data only: never seed a database that
/// real people can reach.
pub const BENCH_PASSWORD: &str = "bench passphrase not for production";

/// The most organisations one seed writes (the national registry is about 30,000).
pub const MAX_ORGS: usize = 100_000;
/// The most cycles one seed writes.
pub const MAX_CYCLES: usize = 10;
/// The domain of every seeded account's email address.
pub const EMAIL_DOMAIN: &str = "bench.dma.example";
pub const ADMIN_EMAIL: &str = "admin@bench.dma.example";
pub const AUDITOR_EMAIL: &str = "auditor@bench.dma.example";

/// The question set every cycle uses (the demo's).
const QUESTION_SET: &[u8] = include_bytes!("../../../demo/wgll-acute-2025.yaml");
const SETTING: &str = "acute";

mod answers;
mod cycles;
mod names;
mod organisations;
mod progress;
mod random;
mod run;
mod write;

pub use answers::{open_cycle_state, Seeded};
pub use names::{approver_email, contributor_email, ods_code};
pub use organisations::{ICBS, REGIONS};
pub use progress::ProgressBar;
pub use run::{
    command, existing_data, seed, thousands, CycleSummary, Options, Progress, SeedError, Summary,
};
pub use write::ROWS_PER_STATEMENT;
