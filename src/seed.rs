//! Benchmark-scale data: `dma demo seed --orgs N --cycles K [--seed S]`.
//!
//! The demo data (`crate::demo`) is a handful of organisations for trying the service by hand;
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

use std::collections::{HashMap, HashSet};
use std::io::{IsTerminal, Write};
use std::time::Instant;

use chrono::{Datelike, Days, Months, NaiveDate, NaiveDateTime, NaiveTime, Utc};
use diesel::prelude::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;

use crate::assessments::ScoreSetContent;
use crate::audit::{self, Actor, Entry};
use crate::auth::roles::Role;
use crate::db::schema::{
    answers, assessments, cycle_versions, cycles, organisation_parents, organisation_settings,
    organisations, questionnaire_versions, score_sets, submissions, users,
};
use crate::db::{with_concrete_connection, Db, DbConnection};
use crate::domain::answers::{Answer, Answers};
use crate::domain::ods::OrgKind;
use crate::domain::questionnaire::{NumberBand, Question, QuestionKind, Questionnaire};
use crate::domain::{scoring, visibility};
use crate::error::AppError;

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
const QUESTION_SET: &[u8] = include_bytes!("../demo/wgll-acute-2025.yaml");
const SETTING: &str = "acute";

/// Rows per `INSERT`: the widest seeded table has 10 columns, so a statement binds at most
/// 10,000 parameters (SQLite allows 32,766, PostgreSQL 65,535).
pub const ROWS_PER_STATEMENT: usize = 1000;
/// `INSERT` `rows` into `table`, [`ROWS_PER_STATEMENT`] rows per statement, and count them.
/// On the concrete connection: diesel builds SQLite's multi-row `INSERT` only there.
macro_rules! insert_rows {
    ($conn:expr, $table:expr, $rows:expr) => {{
        let mut inserted = 0_usize;
        for chunk in $rows.chunks(ROWS_PER_STATEMENT) {
            inserted += with_concrete_connection!($conn, c => {
                diesel::insert_into($table).values(chunk).execute(c)
            })?;
        }
        inserted
    }};
}

/// The same, reading back `returning` of every row (in no promised order).
macro_rules! insert_rows_returning {
    ($conn:expr, $table:expr, $rows:expr, $returning:expr => $row:ty) => {{
        let mut returned: Vec<$row> = Vec::with_capacity($rows.len());
        for chunk in $rows.chunks(ROWS_PER_STATEMENT) {
            returned.extend(with_concrete_connection!($conn, c => {
                diesel::insert_into($table)
                    .values(chunk)
                    .returning($returning)
                    .get_results::<$row>(c)
            })?);
        }
        returned
    }};
}

/// Organisations per transaction while writing the registry and accounts.
const REGISTRY_BATCH: usize = 1000;
/// Assessments per transaction while writing a cycle (each with ~15 answers and ~16 scores).
const CYCLE_BATCH: usize = 500;

/// NHS England's seven regions.
pub const REGIONS: [&str; 7] = [
    "North East and Yorkshire",
    "North West",
    "Midlands",
    "East of England",
    "London",
    "South East",
    "South West",
];

/// The 42 integrated care boards: ODS code, name, index into [`REGIONS`].
pub const ICBS: [(&str, &str, usize); 42] = [
    ("QHM", "North East and North Cumbria", 0),
    ("QOQ", "Humber and North Yorkshire", 0),
    ("QWO", "West Yorkshire", 0),
    ("QF7", "South Yorkshire", 0),
    ("QE1", "Lancashire and South Cumbria", 1),
    ("QOP", "Greater Manchester", 1),
    ("QYG", "Cheshire and Merseyside", 1),
    ("QHL", "Birmingham and Solihull", 2),
    ("QUA", "Black Country", 2),
    ("QWU", "Coventry and Warwickshire", 2),
    ("QGH", "Herefordshire and Worcestershire", 2),
    ("QOC", "Shropshire, Telford and Wrekin", 2),
    ("QNC", "Staffordshire and Stoke-on-Trent", 2),
    ("QJ2", "Derby and Derbyshire", 2),
    ("QK1", "Leicester, Leicestershire and Rutland", 2),
    ("QJM", "Lincolnshire", 2),
    ("QPM", "Northamptonshire", 2),
    ("QT1", "Nottingham and Nottinghamshire", 2),
    ("QHG", "Bedfordshire, Luton and Milton Keynes", 3),
    ("QUE", "Cambridgeshire and Peterborough", 3),
    ("QM7", "Hertfordshire and West Essex", 3),
    ("QH8", "Mid and South Essex", 3),
    ("QMM", "Norfolk and Waveney", 3),
    ("QJG", "Suffolk and North East Essex", 3),
    ("QMJ", "North Central London", 4),
    ("QMF", "North East London", 4),
    ("QRV", "North West London", 4),
    ("QKK", "South East London", 4),
    ("QWE", "South West London", 4),
    ("QU9", "Buckinghamshire, Oxfordshire and Berkshire West", 5),
    ("QNQ", "Frimley", 5),
    ("QRL", "Hampshire and Isle of Wight", 5),
    ("QKS", "Kent and Medway", 5),
    ("QXU", "Surrey Heartlands", 5),
    ("QNX", "Sussex", 5),
    (
        "QOX",
        "Bath and North East Somerset, Swindon and Wiltshire",
        6,
    ),
    (
        "QUY",
        "Bristol, North Somerset and South Gloucestershire",
        6,
    ),
    ("QT6", "Cornwall and the Isles of Scilly", 6),
    ("QJK", "Devon", 6),
    ("QVV", "Dorset", 6),
    ("QR1", "Gloucestershire", 6),
    ("QSL", "Somerset", 6),
];

/// What to seed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    pub orgs: usize,
    pub cycles: usize,
    pub seed: u64,
}

impl Options {
    /// Why these options are refused, as one line, or `None`.
    pub fn problem(&self) -> Option<String> {
        if !(1..=MAX_ORGS).contains(&self.orgs) {
            return Some(format!(
                "--orgs must be between 1 and {} (got {})",
                thousands(MAX_ORGS),
                self.orgs
            ));
        }
        if !(1..=MAX_CYCLES).contains(&self.cycles) {
            return Some(format!(
                "--cycles must be between 1 and {MAX_CYCLES} (got {})",
                self.cycles
            ));
        }
        None
    }
}

/// Why a seed did not happen.
#[derive(Debug)]
pub enum SeedError {
    /// Bad options or a database that already holds data: nothing was written.
    Refused(String),
    Failed(AppError),
}

impl From<AppError> for SeedError {
    fn from(e: AppError) -> Self {
        SeedError::Failed(e)
    }
}

impl From<diesel::result::Error> for SeedError {
    fn from(e: diesel::result::Error) -> Self {
        SeedError::Failed(e.into())
    }
}

/// What one cycle holds after the seed.
#[derive(Debug, Clone, Serialize)]
pub struct CycleSummary {
    pub label: String,
    pub status: &'static str,
    pub opens_on: NaiveDate,
    pub deadline: NaiveDate,
    pub submitted: usize,
    pub in_progress: usize,
    pub not_started: usize,
    pub seconds: f64,
}

/// What the seed wrote, printed as JSON by the command.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub seed: u64,
    /// Assessed organisations (the ICBs are counted separately).
    pub organisations: usize,
    pub icbs: usize,
    pub regions: usize,
    /// Organisations that changed ICB between two cycles.
    pub icb_moves: usize,
    pub users: usize,
    pub cycles: Vec<CycleSummary>,
    pub assessments: usize,
    pub submitted: usize,
    pub in_progress: usize,
    pub not_started: usize,
    pub answers: usize,
    pub score_sets: usize,
    pub scores: usize,
    /// Writing the question set, ICBs, cycles, organisations and accounts.
    pub registry_seconds: f64,
    /// The whole run, hashing the password included.
    pub seconds: f64,
}

/// Format a count with thousands separators: 30000 -> "30,000".
pub fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The ODS-code-like code of the organisation with 0-based index `i`: `B00001`, `B00002`,
/// ... `B99999`, then `C00000`.
pub fn ods_code(i: usize) -> String {
    let n = i + 1;
    let letter = char::from(b'B' + u8::try_from(n / 100_000).unwrap_or(0));
    format!("{letter}{:05}", n % 100_000)
}

pub fn approver_email(i: usize) -> String {
    format!("approver{i}@{EMAIL_DOMAIN}")
}

pub fn contributor_email(i: usize) -> String {
    format!("contributor{i}@{EMAIL_DOMAIN}")
}

/// `dma demo seed`: check, seed with a progress bar on stderr, print the summary as JSON.
pub async fn command(
    settings: &crate::config::Settings,
    options: Options,
) -> anyhow::Result<std::process::ExitCode> {
    use std::process::ExitCode;
    let refuse = |message: &str| {
        eprintln!("error: {message}");
        Ok(ExitCode::from(2))
    };
    if let Some(problem) = options.problem() {
        return refuse(&problem);
    }
    let started = Instant::now();
    let db = crate::web::open_database(settings).await?;
    if let Some(existing) = db.read(existing_data).await? {
        return refuse(&existing);
    }
    let hash =
        tokio::task::spawn_blocking(|| crate::auth::password::hash(BENCH_PASSWORD)).await??;
    let result = tokio::task::spawn_blocking(move || {
        let mut progress = ProgressBar::new(options);
        let result = seed(&db, &hash, options, &mut progress);
        progress.finish();
        result
    })
    .await?;
    match result {
        Ok(mut summary) => {
            summary.seconds = started.elapsed().as_secs_f64();
            println!("{}", serde_json::to_string_pretty(&summary)?);
            Ok(ExitCode::SUCCESS)
        }
        Err(SeedError::Refused(message)) => refuse(&message),
        Err(SeedError::Failed(e)) => Err(anyhow::anyhow!(
            "seeding failed part-way; start again with a new database: {}",
            crate::error::error_chain(&e)
        )),
    }
}

/// A sentence naming what the database already holds, or `None` when it is empty enough
/// to seed (no organisation, account, question set or cycle).
pub fn existing_data(conn: &mut DbConnection) -> Result<Option<String>, AppError> {
    let counts = [
        (
            organisations::table.count().get_result::<i64>(conn)?,
            "organisations",
        ),
        (users::table.count().get_result::<i64>(conn)?, "accounts"),
        (
            questionnaire_versions::table
                .count()
                .get_result::<i64>(conn)?,
            "question set versions",
        ),
        (cycles::table.count().get_result::<i64>(conn)?, "cycles"),
    ];
    let held: Vec<String> = counts
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, what)| format!("{n} {what}"))
        .collect();
    Ok((!held.is_empty()).then(|| {
        format!(
            "refusing to seed: the database already holds {}; `dma demo seed` only fills a new, empty database",
            held.join(", ")
        )
    }))
}

/// Where the seed is up to, for the progress bar: phase 0 is the registry, phase `c` (1..=K)
/// is cycle `c`; `done` of the organisations are written in that phase.
pub trait Progress {
    fn update(&mut self, phase: usize, done: usize);
}

/// Seed an empty database (the caller hashes [`BENCH_PASSWORD`] once and passes the hash).
/// Blocking: run it on a blocking thread.
pub fn seed(
    db: &Db,
    password_hash: &str,
    options: Options,
    progress: &mut dyn Progress,
) -> Result<Summary, SeedError> {
    if let Some(problem) = options.problem() {
        return Err(SeedError::Refused(problem));
    }
    let started = Instant::now();
    let now = Utc::now().naive_utc();
    let plans = plan_cycles(now.date(), options.cycles);
    let registry = Registry::generate(options, &plans);
    progress.update(0, 0);

    // The question set, ICBs, the two national accounts and the cycles, after checking (in
    // the same transaction) that the database is empty.
    let setup = db.write_blocking(|conn| {
        if let Some(existing) = existing_data(conn)? {
            return Ok(Err(existing));
        }
        setup(conn, password_hash, &plans, registry.parents_from, now).map(Ok)
    })?;
    let setup = setup.map_err(SeedError::Refused)?;

    let mut people = People {
        organisation: vec![0; options.orgs],
        approver: vec![0; options.orgs],
        contributor: vec![0; options.orgs],
    };
    let mut users_written = setup.accounts;
    for start in (0..options.orgs).step_by(REGISTRY_BATCH) {
        let end = (start + REGISTRY_BATCH).min(options.orgs);
        users_written += db.write_blocking(|conn| {
            write_organisations(
                conn,
                &registry,
                &setup,
                &plans,
                start..end,
                password_hash,
                now,
                &mut people,
            )
        })?;
        progress.update(0, end);
    }
    let registry_seconds = started.elapsed().as_secs_f64();

    let mut summary = Summary {
        seed: options.seed,
        organisations: options.orgs,
        icbs: ICBS.len(),
        regions: REGIONS.len(),
        icb_moves: registry.moves,
        users: users_written,
        cycles: Vec::new(),
        assessments: 0,
        submitted: 0,
        in_progress: 0,
        not_started: 0,
        answers: 0,
        score_sets: 0,
        scores: 0,
        registry_seconds,
        seconds: 0.0,
    };
    for (c, plan) in plans.iter().enumerate() {
        let cycle_started = Instant::now();
        let mut counts = Counts::default();
        for start in (0..options.orgs).step_by(CYCLE_BATCH) {
            let end = (start + CYCLE_BATCH).min(options.orgs);
            let batch: Vec<Generated> = (start..end)
                .map(|i| generate(&setup.questionnaire, &registry, options.seed, plan, c, i))
                .collect::<Result<_, _>>()?;
            let written = db.write_blocking(|conn| {
                write_assessments(conn, &setup, &registry, &people, plan, c, start, &batch)
            })?;
            counts.add(&written);
            progress.update(c + 1, end);
        }
        summary.assessments += counts.submitted + counts.in_progress + counts.not_started;
        summary.submitted += counts.submitted;
        summary.in_progress += counts.in_progress;
        summary.not_started += counts.not_started;
        summary.answers += counts.answers;
        summary.score_sets += counts.score_sets;
        summary.scores += counts.scores;
        summary.cycles.push(CycleSummary {
            label: plan.label.clone(),
            status: if plan.open { "open" } else { "closed" },
            opens_on: plan.opens_on,
            deadline: plan.deadline,
            submitted: counts.submitted,
            in_progress: counts.in_progress,
            not_started: counts.not_started,
            seconds: cycle_started.elapsed().as_secs_f64(),
        });
    }
    summary.seconds = started.elapsed().as_secs_f64();
    let recorded = summary.clone();
    db.write_blocking(move |conn| {
        audit::record(
            conn,
            &Actor::system("seed"),
            Entry::new("demo.seed", "database", "seed").after(&recorded),
        )
    })?;
    Ok(summary)
}

// ---------------------------------------------------------------------------------------------
// Plans: the cycles and the registry, generated in memory before anything is written.

/// One cycle as it will be written.
#[derive(Debug, Clone)]
struct CyclePlan {
    label: String,
    opens_on: NaiveDate,
    deadline: NaiveDate,
    open: bool,
    /// The day organisations that move ICB before this cycle join their new ICB.
    moves_on: NaiveDate,
    /// The last moment anything in the cycle happened (now, for the open cycle).
    ends_at: NaiveDateTime,
}

/// The financial year a date falls in, as a cycle label: 2026-10-24 -> "2026/27".
fn financial_year(d: NaiveDate) -> (i32, String) {
    let start = if d.month() >= 4 {
        d.year()
    } else {
        d.year() - 1
    };
    (start, format!("{start}/{:02}", (start + 1).rem_euclid(100)))
}

fn at(d: NaiveDate, hour: u32) -> NaiveDateTime {
    d.and_time(NaiveTime::from_hms_opt(hour, 0, 0).unwrap_or(NaiveTime::MIN))
}

/// K cycles a year apart; the last opened 30 days ago and is due in 60 days, the others are
/// closed with their 90-day deadlines in the past.
fn plan_cycles(today: NaiveDate, k: usize) -> Vec<CyclePlan> {
    let last_opens = today - Days::new(30);
    (0..k)
        .map(|c| {
            let years_back = u32::try_from(k - 1 - c).unwrap_or(0);
            let opens_on = last_opens
                .checked_sub_months(Months::new(12 * years_back))
                .unwrap_or(last_opens);
            let open = c + 1 == k;
            let deadline = if open {
                today + Days::new(60)
            } else {
                opens_on + Days::new(90)
            };
            let (start_year, label) = financial_year(opens_on);
            let moves_on = NaiveDate::from_ymd_opt(start_year, 4, 1).unwrap_or(opens_on);
            CyclePlan {
                label,
                opens_on,
                deadline,
                open,
                moves_on,
                ends_at: if open {
                    Utc::now().naive_utc()
                } else {
                    at(deadline + Days::new(14), 17)
                },
            }
        })
        .collect()
}

/// splitmix64: one well-mixed 64-bit value from the seed and a few indices, so every
/// organisation and cycle gets its own independent random stream.
fn mix(seed: u64, parts: &[u64]) -> u64 {
    let mut x = seed;
    for p in parts {
        x = x.wrapping_add(0x9E37_79B9_7F4A_7C15).wrapping_add(*p);
        x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        x ^= x >> 31;
    }
    x
}

fn rng_for(seed: u64, parts: &[u64]) -> StdRng {
    StdRng::seed_from_u64(mix(seed, parts))
}

/// Streams of randomness, one purpose each, so adding a use of one never shifts another.
const STREAM_ORG: u64 = 1;
const STREAM_MOVES: u64 = 2;
const STREAM_ANSWERS: u64 = 3;
const STREAM_PEOPLE: u64 = 4;
const STREAM_NAMES: u64 = 5;

fn unit(rng: &mut StdRng) -> f64 {
    rng.gen::<f64>()
}

fn between(rng: &mut StdRng, lo: f64, hi: f64) -> f64 {
    if hi > lo {
        lo + (hi - lo) * unit(rng)
    } else {
        lo
    }
}

fn chance(rng: &mut StdRng, p: f64) -> bool {
    unit(rng) < p
}

fn pick(rng: &mut StdRng, len: usize) -> usize {
    if len == 0 {
        0
    } else {
        rng.gen_range(0..len)
    }
}

/// One assessed organisation.
#[derive(Debug, Clone)]
struct Org {
    code: String,
    name: String,
    region: usize,
    opened_on: NaiveDate,
    /// Index into [`ICBS`] in each cycle.
    icb: Vec<usize>,
    /// Latent maturity in 0..1 in each cycle.
    maturity: Vec<f64>,
    /// A persistent lean per domain of the question set, added to the maturity.
    domain_bias: Vec<f64>,
}

struct Registry {
    seed: u64,
    orgs: Vec<Org>,
    moves: usize,
    /// The first ICB membership starts here (and the ICBs open): the day ICBs were
    /// established, or the first cycle's opening if that is earlier.
    parents_from: NaiveDate,
}

/// Made-up English place names are a start and an end: "Ash" + "ford", "King" + "sbridge".
const PLACE_STARTS: [&str; 40] = [
    "Ash", "Bark", "Bram", "Brook", "Cald", "Castle", "Ched", "Clay", "Dun", "East", "Elm", "Fair",
    "Fen", "Glen", "Green", "Hal", "Hart", "High", "Hol", "King", "Lang", "Lin", "Long", "Mill",
    "Moor", "Nor", "Oak", "Old", "Pen", "Red", "Rock", "Sand", "Shel", "Stan", "Stock", "Thorn",
    "Wal", "West", "White", "Wood",
];

const PLACE_ENDS: [&str; 24] = [
    "bury", "by", "caster", "combe", "dale", "den", "field", "ford", "gate", "ham", "holme",
    "hurst", "ley", "minster", "mouth", "sbridge", "stead", "stoke", "ton", "wall", "well", "wick",
    "worth", "wood",
];

fn place(rng: &mut StdRng) -> String {
    let start = PLACE_STARTS[pick(rng, PLACE_STARTS.len())];
    let end = PLACE_ENDS[pick(rng, PLACE_ENDS.len())];
    format!("{start}{end}")
}

/// A trust's name, different from every name in `taken` (which it joins): one place or two,
/// then the kind of trust.
fn trust_name(rng: &mut StdRng, taken: &mut HashSet<String>) -> String {
    for attempt in 0..100 {
        let kind = TRUST_KINDS[pick(rng, TRUST_KINDS.len())];
        let first = place(rng);
        let name = if attempt >= 10 || chance(rng, 0.25) {
            let second = place(rng);
            if second == first {
                continue;
            }
            format!("{first} and {second} {kind}")
        } else {
            format!("{first} {kind}")
        };
        if taken.insert(name.clone()) {
            return name;
        }
    }
    // 960 places make over five million two-place names; this is never reached in practice.
    let mut n = taken.len();
    loop {
        let name = format!("{} Hospitals NHS Trust {n}", place(rng));
        if taken.insert(name.clone()) {
            return name;
        }
        n += 1;
    }
}

const TRUST_KINDS: [&str; 6] = [
    "Hospitals NHS Foundation Trust",
    "University Hospitals NHS Trust",
    "Teaching Hospitals NHS Foundation Trust",
    "General Hospital NHS Trust",
    "Healthcare NHS Foundation Trust",
    "Acute Hospitals NHS Trust",
];

const FIRST_NAMES: [&str; 24] = [
    "Aisha", "Ben", "Chloe", "Daniel", "Emeka", "Fatima", "George", "Hannah", "Imran", "Jess",
    "Kwame", "Laura", "Mohammed", "Niamh", "Oliver", "Priya", "Rhys", "Sofia", "Tom", "Uma",
    "Victor", "Wei", "Yusuf", "Zara",
];

const SURNAMES: [&str; 24] = [
    "Ahmed", "Brown", "Clarke", "Davies", "Evans", "Fraser", "Green", "Hughes", "Iqbal", "Jones",
    "Khan", "Lewis", "Morgan", "Nowak", "Okafor", "Patel", "Quinn", "Roberts", "Singh", "Taylor",
    "Udeh", "Walker", "Young", "Zhang",
];

const JOB_TITLES: [&str; 4] = [
    "Chief Executive",
    "Chief Digital Information Officer",
    "Chief Information Officer",
    "Director of Digital Transformation",
];

/// A plausible person's name for organisation `i`'s approver or contributor.
fn person_name(seed: u64, i: usize, role: Role) -> String {
    let role_part = u64::from(role == Role::OrgApprover);
    let mut rng = rng_for(seed, &[STREAM_PEOPLE, i as u64, role_part]);
    let first = FIRST_NAMES[pick(&mut rng, FIRST_NAMES.len())];
    let last = SURNAMES[pick(&mut rng, SURNAMES.len())];
    format!("{first} {last}")
}

impl Registry {
    fn generate(options: Options, plans: &[CyclePlan]) -> Registry {
        let k = plans.len();
        let first_opens = plans
            .first()
            .map_or(crate::registry::ICBS_ESTABLISHED, |p| p.opens_on);
        let mut taken = HashSet::new();
        let mut orgs: Vec<Org> = (0..options.orgs)
            .map(|i| {
                let mut rng = rng_for(options.seed, &[STREAM_ORG, i as u64]);
                let icb = pick(&mut rng, ICBS.len());
                let region = ICBS[icb].2;
                let name = trust_name(
                    &mut rng_for(options.seed, &[STREAM_NAMES, i as u64]),
                    &mut taken,
                );
                let opened_on = NaiveDate::from_ymd_opt(1991 + pick(&mut rng, 25) as i32, 4, 1)
                    .unwrap_or(first_opens);
                // Most organisations sit in the middle bands; a few lead or lag.
                let mut m = (unit(&mut rng) + unit(&mut rng) + unit(&mut rng)) / 3.0;
                m = (m - 0.5) * 1.3 + 0.45;
                let mut maturity = Vec::with_capacity(k);
                for c in 0..k {
                    if c > 0 {
                        // Mostly gradual improvement, sometimes a step back.
                        m += between(&mut rng, -0.06, 0.12);
                    }
                    maturity.push(m.clamp(0.0, 1.0));
                }
                let domain_bias = (0..16).map(|_| between(&mut rng, -0.15, 0.15)).collect();
                Org {
                    code: ods_code(i),
                    name,
                    region,
                    opened_on,
                    icb: vec![icb; k],
                    maturity,
                    domain_bias,
                }
            })
            .collect();
        // About one organisation in a hundred moves to another ICB of its region before each
        // cycle after the first.
        let mut moves = 0;
        let per_cycle = options.orgs.div_ceil(100);
        for c in 1..k {
            let mut rng = rng_for(options.seed, &[STREAM_MOVES, c as u64]);
            for i in rand::seq::index::sample(&mut rng, options.orgs, per_cycle) {
                let Some(org) = orgs.get_mut(i) else { continue };
                let current = org.icb[c];
                let others: Vec<usize> = (0..ICBS.len())
                    .filter(|&j| ICBS[j].2 == org.region && j != current)
                    .collect();
                if others.is_empty() {
                    continue;
                }
                let to = others[pick(&mut rng, others.len())];
                for slot in org.icb.iter_mut().skip(c) {
                    *slot = to;
                }
                moves += 1;
            }
        }
        Registry {
            seed: options.seed,
            orgs,
            moves,
            parents_from: first_opens.min(crate::registry::ICBS_ESTABLISHED),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Writing.

/// What the setup transaction wrote and the later ones need.
struct Setup {
    /// National accounts written (the administrator and the auditor).
    accounts: usize,
    version_id: i64,
    questionnaire: std::sync::Arc<Questionnaire>,
    /// `organisations.id` of each of [`ICBS`].
    icb_ids: Vec<i64>,
    cycle_ids: Vec<i64>,
}

/// Ids of what the registry batches wrote, by organisation index.
struct People {
    organisation: Vec<i64>,
    approver: Vec<i64>,
    contributor: Vec<i64>,
}

#[derive(Insertable)]
#[diesel(treat_none_as_default_value = false)]
#[diesel(table_name = organisations)]
struct NewOrganisation<'a> {
    ods_code: &'a str,
    name: &'a str,
    kind: &'a str,
    region: Option<&'a str>,
    opened_on: Option<NaiveDate>,
    closed_on: Option<NaiveDate>,
    created_at: NaiveDateTime,
    updated_at: NaiveDateTime,
}

#[derive(Insertable)]
#[diesel(treat_none_as_default_value = false)]
#[diesel(table_name = organisation_settings)]
struct NewSetting<'a> {
    organisation_id: i64,
    setting: &'a str,
}

#[derive(Insertable)]
#[diesel(treat_none_as_default_value = false)]
#[diesel(table_name = organisation_parents)]
struct NewParent {
    organisation_id: i64,
    parent_id: i64,
    valid_from: NaiveDate,
    valid_to: Option<NaiveDate>,
}

#[derive(Insertable)]
#[diesel(treat_none_as_default_value = false)]
#[diesel(table_name = users)]
struct NewAccount<'a> {
    email: String,
    name: String,
    role: &'a str,
    organisation_id: Option<i64>,
    password_hash: Option<&'a str>,
    active: bool,
    password_changed_at: Option<NaiveDateTime>,
    created_at: NaiveDateTime,
    updated_at: NaiveDateTime,
}

impl<'a> NewAccount<'a> {
    fn new(
        email: String,
        name: String,
        role: Role,
        organisation_id: Option<i64>,
        hash: &'a str,
        now: NaiveDateTime,
    ) -> Self {
        NewAccount {
            email,
            name,
            role: role.as_str(),
            organisation_id,
            password_hash: Some(hash),
            active: true,
            password_changed_at: Some(now),
            created_at: now,
            updated_at: now,
        }
    }
}

#[derive(Insertable)]
#[diesel(treat_none_as_default_value = false)]
#[diesel(table_name = assessments)]
struct NewAssessment<'a> {
    cycle_id: i64,
    organisation_id: i64,
    setting: &'a str,
    questionnaire_version_id: i64,
    status: &'a str,
    icb_id: Option<i64>,
    region: Option<&'a str>,
    revision: i64,
    created_at: NaiveDateTime,
    updated_at: NaiveDateTime,
}

#[derive(Insertable)]
#[diesel(treat_none_as_default_value = false)]
#[diesel(table_name = answers)]
struct NewAnswer<'a> {
    assessment_id: i64,
    question_key: &'a str,
    value: String,
    revision: i64,
    carried_forward: bool,
    updated_by: Option<i64>,
    updated_at: NaiveDateTime,
}

#[derive(Insertable)]
#[diesel(treat_none_as_default_value = false)]
#[diesel(table_name = submissions)]
struct NewSubmission<'a> {
    assessment_id: i64,
    reference: String,
    submitted_by: i64,
    signoff_name: String,
    signoff_job_title: &'a str,
    late: bool,
    submitted_at: NaiveDateTime,
}

fn setup(
    conn: &mut DbConnection,
    password_hash: &str,
    plans: &[CyclePlan],
    parents_from: NaiveDate,
    now: NaiveDateTime,
) -> Result<Setup, AppError> {
    let actor = Actor::system("seed");
    let imported =
        crate::questionnaires::import(conn, &actor, QUESTION_SET, true).map_err(AppError::from)?;
    let questionnaire = crate::questionnaires::get_by_id(conn, imported.id)?.questionnaire;

    let icb_names: Vec<String> = ICBS
        .iter()
        .map(|(_, name, _)| format!("NHS {name} Integrated Care Board"))
        .collect();
    let rows: Vec<NewOrganisation> = ICBS
        .iter()
        .zip(&icb_names)
        .map(|((code, _, region), name)| NewOrganisation {
            ods_code: code,
            name,
            kind: OrgKind::Icb.as_str(),
            region: REGIONS.get(*region).copied(),
            opened_on: Some(parents_from),
            closed_on: None,
            created_at: now,
            updated_at: now,
        })
        .collect();
    let ids: HashMap<String, i64> = insert_rows_returning!(
        conn,
        organisations::table,
        rows,
        (organisations::ods_code, organisations::id) => (String, i64)
    )
    .into_iter()
    .collect();
    let icb_ids = ICBS
        .iter()
        .map(|(code, _, _)| {
            ids.get(*code)
                .copied()
                .ok_or_else(|| missing(format!("the id of ICB {code}")))
        })
        .collect::<Result<Vec<i64>, AppError>>()?;

    let national = [
        NewAccount::new(
            ADMIN_EMAIL.to_string(),
            "Bench Administrator".to_string(),
            Role::Administrator,
            None,
            password_hash,
            now,
        ),
        NewAccount::new(
            AUDITOR_EMAIL.to_string(),
            "Bench Auditor".to_string(),
            Role::Auditor,
            None,
            password_hash,
            now,
        ),
    ];
    let ids: HashMap<String, i64> = insert_rows_returning!(
        conn,
        users::table,
        national,
        (users::email, users::id) => (String, i64)
    )
    .into_iter()
    .collect();
    let admin_id = ids.get(ADMIN_EMAIL).copied();
    let accounts = ids.len();

    let mut cycle_ids = Vec::with_capacity(plans.len());
    for plan in plans {
        let id: i64 = diesel::insert_into(cycles::table)
            .values((
                cycles::label.eq(&plan.label),
                cycles::opens_on.eq(plan.opens_on),
                cycles::deadline.eq(plan.deadline),
                cycles::status.eq(if plan.open { "open" } else { "closed" }),
                cycles::created_by.eq(admin_id),
                cycles::created_at.eq(at(plan.opens_on, 9).min(now)),
            ))
            .returning(cycles::id)
            .get_result(conn)?;
        diesel::insert_into(cycle_versions::table)
            .values((
                cycle_versions::cycle_id.eq(id),
                cycle_versions::setting.eq(SETTING),
                cycle_versions::questionnaire_version_id.eq(imported.id),
            ))
            .execute(conn)?;
        cycle_ids.push(id);
    }
    Ok(Setup {
        accounts,
        version_id: imported.id,
        questionnaire,
        icb_ids,
        cycle_ids,
    })
}

fn missing(what: String) -> AppError {
    AppError::Internal(anyhow::anyhow!(
        "seed: {what} was not returned by the insert"
    ))
}

/// One registry batch: organisations, their setting, ICB history and two accounts each.
/// Returns the number of accounts written.
#[allow(clippy::too_many_arguments)]
fn write_organisations(
    conn: &mut DbConnection,
    registry: &Registry,
    setup: &Setup,
    plans: &[CyclePlan],
    range: std::ops::Range<usize>,
    password_hash: &str,
    now: NaiveDateTime,
    people: &mut People,
) -> Result<usize, AppError> {
    let batch = registry.orgs.get(range.clone()).unwrap_or(&[]);
    let rows: Vec<NewOrganisation> = batch
        .iter()
        .map(|o| NewOrganisation {
            ods_code: &o.code,
            name: &o.name,
            kind: OrgKind::Trust.as_str(),
            region: REGIONS.get(o.region).copied(),
            opened_on: Some(o.opened_on),
            closed_on: None,
            created_at: now,
            updated_at: now,
        })
        .collect();
    let ids: HashMap<String, i64> =
        insert_rows_returning!(conn, organisations::table, rows, (organisations::ods_code, organisations::id) => (String, i64))
            .into_iter()
            .collect();
    for (i, org) in range.clone().zip(batch) {
        let id = ids
            .get(&org.code)
            .copied()
            .ok_or_else(|| missing(format!("the id of organisation {}", org.code)))?;
        if let Some(slot) = people.organisation.get_mut(i) {
            *slot = id;
        }
    }
    let org_id = |i: usize| people.organisation.get(i).copied().unwrap_or(0);

    let settings: Vec<NewSetting> = range
        .clone()
        .map(|i| NewSetting {
            organisation_id: org_id(i),
            setting: SETTING,
        })
        .collect();
    insert_rows!(conn, organisation_settings::table, settings);

    let mut parents: Vec<NewParent> = Vec::with_capacity(batch.len());
    for (i, org) in range.clone().zip(batch) {
        let mut from = registry.parents_from;
        let mut current = org.icb.first().copied().unwrap_or(0);
        for (c, &icb) in org.icb.iter().enumerate().skip(1) {
            if icb != current {
                let moves_on = plans.get(c).map_or(from, |p| p.moves_on);
                parents.push(NewParent {
                    organisation_id: org_id(i),
                    parent_id: setup.icb_ids.get(current).copied().unwrap_or(0),
                    valid_from: from,
                    valid_to: Some(moves_on),
                });
                from = moves_on;
                current = icb;
            }
        }
        parents.push(NewParent {
            organisation_id: org_id(i),
            parent_id: setup.icb_ids.get(current).copied().unwrap_or(0),
            valid_from: from,
            valid_to: None,
        });
    }
    insert_rows!(conn, organisation_parents::table, parents);

    let seed = registry.seed;
    let mut accounts: Vec<NewAccount> = Vec::with_capacity(2 * batch.len());
    for i in range.clone() {
        for role in [Role::OrgApprover, Role::OrgContributor] {
            let email = if role == Role::OrgApprover {
                approver_email(i)
            } else {
                contributor_email(i)
            };
            accounts.push(NewAccount::new(
                email,
                person_name(seed, i, role),
                role,
                Some(org_id(i)),
                password_hash,
                now,
            ));
        }
    }
    let by_id: HashMap<i64, usize> = range.clone().map(|i| (org_id(i), i)).collect();
    let ids = insert_rows_returning!(
        conn,
        users::table,
        accounts,
        (users::id, users::organisation_id, users::role) => (i64, Option<i64>, String)
    );
    let written = ids.len();
    for (id, organisation, role) in ids {
        let Some(&i) = organisation.and_then(|o| by_id.get(&o)) else {
            continue;
        };
        let slot = if role == Role::OrgApprover.as_str() {
            people.approver.get_mut(i)
        } else {
            people.contributor.get_mut(i)
        };
        if let Some(slot) = slot {
            *slot = id;
        }
    }
    Ok(written)
}

/// What a cycle batch wrote.
#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    submitted: usize,
    in_progress: usize,
    not_started: usize,
    answers: usize,
    score_sets: usize,
    scores: usize,
}

impl Counts {
    fn add(&mut self, other: &Counts) {
        self.submitted += other.submitted;
        self.in_progress += other.in_progress;
        self.not_started += other.not_started;
        self.answers += other.answers;
        self.score_sets += other.score_sets;
        self.scores += other.scores;
    }
}

/// One cycle batch: assessments with their ICB and region snapshots, answers, and for the
/// submitted ones a submission, the current score set and its scores.
#[allow(clippy::too_many_arguments)]
fn write_assessments(
    conn: &mut DbConnection,
    setup: &Setup,
    registry: &Registry,
    people: &People,
    plan: &CyclePlan,
    c: usize,
    start: usize,
    batch: &[Generated],
) -> Result<Counts, AppError> {
    let cycle_id = setup
        .cycle_ids
        .get(c)
        .copied()
        .ok_or_else(|| missing(format!("the id of cycle {}", plan.label)))?;
    let created = at(plan.opens_on, 9);
    let org_id = |i: usize| people.organisation.get(i).copied().unwrap_or(0);
    let mut counts = Counts::default();

    let rows: Vec<NewAssessment> = batch
        .iter()
        .enumerate()
        .map(|(k, g)| {
            let org = registry.orgs.get(start + k);
            NewAssessment {
                cycle_id,
                organisation_id: org_id(start + k),
                setting: SETTING,
                questionnaire_version_id: setup.version_id,
                status: g.state.status(),
                icb_id: org
                    .and_then(|o| o.icb.get(c))
                    .and_then(|&icb| setup.icb_ids.get(icb).copied()),
                region: org.and_then(|o| REGIONS.get(o.region).copied()),
                revision: g.revision(),
                created_at: created,
                updated_at: g.updated_at(created),
            }
        })
        .collect();
    let assessment_ids: HashMap<i64, i64> =
        insert_rows_returning!(conn, assessments::table, rows, (assessments::organisation_id, assessments::id) => (i64, i64))
            .into_iter()
            .collect();
    let assessment_of = |k: usize| -> Result<i64, AppError> {
        assessment_ids
            .get(&org_id(start + k))
            .copied()
            .ok_or_else(|| missing(format!("the assessment of organisation {}", start + k)))
    };

    let mut answer_rows: Vec<NewAnswer> = Vec::new();
    let mut submission_rows: Vec<NewSubmission> = Vec::new();
    let compact_label = plan.label.replace('/', "");
    for (k, g) in batch.iter().enumerate() {
        let i = start + k;
        match g.state {
            Seeded::Submitted => counts.submitted += 1,
            Seeded::Complete | Seeded::Partial => counts.in_progress += 1,
            Seeded::NotStarted => counts.not_started += 1,
        }
        if g.answers.is_empty() && g.submission.is_none() {
            continue;
        }
        let assessment_id = assessment_of(k)?;
        let updated_by = people.contributor.get(i).copied();
        for (key, answer) in &g.answers {
            answer_rows.push(NewAnswer {
                assessment_id,
                question_key: key,
                value: answer.to_json().to_string(),
                revision: 1,
                carried_forward: false,
                updated_by,
                updated_at: g.answered_at,
            });
        }
        if let Some(s) = &g.submission {
            submission_rows.push(NewSubmission {
                assessment_id,
                reference: format!("DMA-{compact_label}-SEED{i:08}"),
                submitted_by: people.approver.get(i).copied().unwrap_or(0),
                signoff_name: person_name(registry.seed, i, Role::OrgApprover),
                signoff_job_title: s.job_title,
                late: s.late,
                submitted_at: s.at,
            });
        }
    }
    counts.answers += insert_rows!(conn, answers::table, answer_rows);
    let submission_ids: HashMap<i64, i64> =
        insert_rows_returning!(conn, submissions::table, submission_rows, (submissions::assessment_id, submissions::id) => (i64, i64))
            .into_iter()
            .collect();

    let mut set_rows = Vec::with_capacity(submission_rows.len());
    let mut contents = Vec::with_capacity(submission_rows.len());
    for (k, g) in batch.iter().enumerate() {
        let Some(s) = &g.submission else { continue };
        let assessment_id = assessment_of(k)?;
        let submission_id = submission_ids
            .get(&assessment_id)
            .copied()
            .ok_or_else(|| missing(format!("the submission of assessment {assessment_id}")))?;
        set_rows.push(
            s.content
                .score_set(assessment_id, submission_id, setup.version_id, s.at),
        );
        contents.push((assessment_id, &s.content));
    }
    let set_ids: HashMap<i64, i64> =
        insert_rows_returning!(conn, score_sets::table, set_rows, (score_sets::assessment_id, score_sets::id) => (i64, i64))
            .into_iter()
            .collect();
    counts.score_sets = set_ids.len();
    let mut score_rows = Vec::with_capacity(contents.len() * 16);
    for (assessment_id, content) in contents {
        let set_id = set_ids
            .get(&assessment_id)
            .copied()
            .ok_or_else(|| missing(format!("the score set of assessment {assessment_id}")))?;
        score_rows.extend(content.score_rows(set_id));
    }
    counts.scores += crate::assessments::insert_scores(conn, &score_rows)?;
    Ok(counts)
}

// ---------------------------------------------------------------------------------------------
// Assessments and answers.

/// The state an assessment is seeded in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seeded {
    /// Every visible question answered, signed off, scored.
    Submitted,
    /// In progress with every visible question answered: the approver can submit it.
    Complete,
    /// In progress with about half the questions answered (some required ones missing).
    Partial,
    /// No answers.
    NotStarted,
}

impl Seeded {
    pub fn status(self) -> &'static str {
        match self {
            Seeded::Submitted => "submitted",
            Seeded::Complete | Seeded::Partial => "in_progress",
            Seeded::NotStarted => "not_started",
        }
    }
}

/// The state of organisation `i`'s assessment in the open cycle: by `i % 10`, 0-3
/// submitted, 4-5 complete, 6-7 partly answered, 8-9 not started.
pub fn open_cycle_state(i: usize) -> Seeded {
    match i % 10 {
        0..=3 => Seeded::Submitted,
        4 | 5 => Seeded::Complete,
        6 | 7 => Seeded::Partial,
        _ => Seeded::NotStarted,
    }
}

struct GeneratedSubmission {
    at: NaiveDateTime,
    late: bool,
    job_title: &'static str,
    content: ScoreSetContent,
}

/// One organisation's assessment in one cycle, before it is written.
struct Generated {
    state: Seeded,
    answers: Answers,
    /// When the answers were last saved.
    answered_at: NaiveDateTime,
    submission: Option<GeneratedSubmission>,
}

impl Generated {
    /// The assessment's revision as the lifecycle would have left it: one save, then the
    /// submission.
    fn revision(&self) -> i64 {
        match self.state {
            Seeded::NotStarted => 0,
            Seeded::Complete | Seeded::Partial => 1,
            Seeded::Submitted => 2,
        }
    }

    fn updated_at(&self, created: NaiveDateTime) -> NaiveDateTime {
        match (&self.submission, self.state) {
            (Some(s), _) => s.at,
            (None, Seeded::NotStarted) => created,
            (None, _) => self.answered_at,
        }
    }
}

/// A moment a fraction `u` (0..1) of the way from `from` to `to`.
fn moment(from: NaiveDateTime, to: NaiveDateTime, u: f64) -> NaiveDateTime {
    let span = (to - from).num_seconds().max(0) as f64;
    from + chrono::Duration::seconds((span * u.clamp(0.0, 1.0)) as i64)
}

fn generate(
    q: &Questionnaire,
    registry: &Registry,
    seed: u64,
    plan: &CyclePlan,
    c: usize,
    i: usize,
) -> Result<Generated, SeedError> {
    let mut rng = rng_for(seed, &[STREAM_ANSWERS, c as u64, i as u64]);
    let state = if plan.open {
        open_cycle_state(i)
    } else if chance(&mut rng, 0.95) {
        Seeded::Submitted
    } else {
        Seeded::Partial
    };
    let opened = at(plan.opens_on, 9);
    let Some(org) = registry.orgs.get(i) else {
        return Err(SeedError::Failed(missing(format!("organisation {i}"))));
    };
    let maturity = org.maturity.get(c).copied().unwrap_or(0.5);
    let mut generated = Generated {
        state,
        answers: Answers::new(),
        answered_at: opened,
        submission: None,
    };
    if state == Seeded::NotStarted {
        return Ok(generated);
    }
    let complete = complete_answers(q, maturity, &org.domain_bias, &mut rng);
    // When the work happened: closed cycles' submissions spread from a week after opening
    // to a week past the deadline (so a few are late); the open cycle's up to now.
    let (from, to) = if plan.open {
        (opened, plan.ends_at)
    } else {
        (opened + Days::new(7), at(plan.deadline + Days::new(7), 17))
    };
    let done_at = moment(from, to, between(&mut rng, 0.1, 1.0));
    generated.answered_at = moment(opened, done_at, between(&mut rng, 0.9, 1.0));
    match state {
        Seeded::Partial => {
            generated.answers = partial(q, &complete, &mut rng);
            generated.answered_at = moment(opened, done_at, between(&mut rng, 0.3, 0.9));
        }
        Seeded::Complete | Seeded::Submitted => {
            let report = scoring::score(q, &complete);
            if !report.complete {
                return Err(SeedError::Failed(AppError::Internal(anyhow::anyhow!(
                    "seed: the answers generated for organisation {i} in {} leave {} unanswered",
                    plan.label,
                    report.missing_required.join(", ")
                ))));
            }
            if state == Seeded::Submitted {
                generated.submission = Some(GeneratedSubmission {
                    at: done_at,
                    late: done_at.date() > plan.deadline,
                    job_title: JOB_TITLES[pick(&mut rng, JOB_TITLES.len())],
                    content: ScoreSetContent::new(&complete, &report)?,
                });
            }
            generated.answers = complete;
        }
        Seeded::NotStarted => {}
    }
    Ok(generated)
}

/// Answers to every question `show_if` leaves visible (optional ones sometimes skipped),
/// each near the organisation's maturity plus its lean for the question's domain.
fn complete_answers(q: &Questionnaire, maturity: f64, bias: &[f64], rng: &mut StdRng) -> Answers {
    let mut all = Answers::new();
    for (domain, question) in q.questions() {
        let lean = bias.get(domain % bias.len().max(1)).copied().unwrap_or(0.0);
        let t = (maturity + lean + between(rng, -0.2, 0.2)).clamp(0.0, 1.0);
        if let Some(answer) = answer_for(question, t, rng) {
            all.insert(question.key.clone(), answer);
        }
    }
    // Conditions only look at earlier questions, and a hidden question's answer is ignored
    // everywhere, so dropping the hidden ones leaves every other question's visibility as is.
    let shown = visibility::visible_flags(q, &all);
    q.questions()
        .zip(shown)
        .filter(|(_, shown)| *shown)
        .filter_map(|((_, question), _)| {
            all.remove(&question.key).map(|a| (question.key.clone(), a))
        })
        .collect()
}

/// The first 35-65% of a complete set of answers in document order (people work from the
/// top), stopping before the last required question so the assessment cannot be submitted.
/// A prefix keeps every kept question's visibility: conditions only look at earlier ones.
fn partial(q: &Questionnaire, complete: &Answers, rng: &mut StdRng) -> Answers {
    let order: Vec<(&str, bool)> = q
        .questions()
        .filter(|(_, question)| complete.contains_key(&question.key))
        .map(|(_, question)| (question.key.as_str(), question.required))
        .collect();
    let mut keep = ((order.len() as f64) * between(rng, 0.35, 0.65)).round() as usize;
    keep = keep.max(1);
    if let Some(last_required) = order.iter().rposition(|(_, required)| *required) {
        keep = keep.min(last_required);
    }
    order
        .iter()
        .take(keep)
        .filter_map(|(key, _)| complete.get(*key).map(|a| ((*key).to_string(), a.clone())))
        .collect()
}

/// Position `t` (0..1) of the way through `n` ordered choices.
fn index(t: f64, n: usize) -> usize {
    if n == 0 {
        return 0;
    }
    ((t.clamp(0.0, 1.0) * (n - 1) as f64).round() as usize).min(n - 1)
}

const NOTES: [&str; 6] = [
    "A single EPR procurement is under way with go-live planned for next year.",
    "Outages were planned maintenance windows agreed with clinical teams.",
    "Two legacy systems remain in maternity and theatres.",
    "Availability figures come from the supplier's monthly service reports.",
    "The EPR is shared with a neighbouring trust under a joint contract.",
    "Paper records remain in outpatients pending scanning.",
];

/// An answer to one question for an organisation at maturity `t` (0..1), valid for the
/// question's type and limits; `None` leaves an optional question unanswered.
fn answer_for(question: &Question, t: f64, rng: &mut StdRng) -> Option<Answer> {
    if !question.required && chance(rng, 0.3) {
        return None;
    }
    if question.allow_na && chance(rng, 0.04) {
        return Some(Answer::Na);
    }
    match &question.kind {
        QuestionKind::Scale { levels } => levels
            .get(index(t, levels.len()))
            .map(|l| Answer::Scale(l.value)),
        QuestionKind::Checklist { levels } => {
            let reach = index(t, levels.len());
            let mut ticked = Vec::new();
            for (n, level) in levels.iter().enumerate() {
                for criterion in &level.criteria {
                    let tick = if n <= reach {
                        !chance(rng, 0.05)
                    } else {
                        chance(rng, 0.15)
                    };
                    if tick {
                        ticked.push(criterion.key.clone());
                    }
                }
            }
            Some(Answer::Checklist(ticked))
        }
        QuestionKind::Single { options } => {
            let scored: Vec<(usize, f64)> = options
                .iter()
                .enumerate()
                .filter_map(|(n, o)| o.score.map(|s| (n, s)))
                .collect();
            let unscored: Vec<usize> = options
                .iter()
                .enumerate()
                .filter(|(_, o)| o.score.is_none())
                .map(|(n, _)| n)
                .collect();
            let chosen = if scored.is_empty() || (!unscored.is_empty() && chance(rng, 0.03)) {
                if unscored.is_empty() {
                    pick(rng, options.len())
                } else {
                    unscored[pick(rng, unscored.len())]
                }
            } else {
                let lo = scored.iter().map(|s| s.1).fold(f64::INFINITY, f64::min);
                let hi = scored.iter().map(|s| s.1).fold(f64::NEG_INFINITY, f64::max);
                let target = lo + t * (hi - lo);
                scored
                    .iter()
                    .min_by(|a, b| (a.1 - target).abs().total_cmp(&(b.1 - target).abs()))
                    .map_or(0, |s| s.0)
            };
            options.get(chosen).map(|o| Answer::Single(o.key.clone()))
        }
        QuestionKind::Multi { options, .. } => {
            let p = 0.1 + 0.85 * t;
            let mut chosen: Vec<String> = options
                .iter()
                .filter(|o| !o.exclusive)
                .filter(|_| chance(rng, p))
                .map(|o| o.key.clone())
                .collect();
            if chosen.is_empty() {
                let fallback = match options.iter().find(|o| o.exclusive) {
                    Some(o) => Some(o),
                    None => options.get(pick(rng, options.len())),
                };
                chosen.extend(fallback.map(|o| o.key.clone()));
            }
            (!chosen.is_empty()).then_some(Answer::Multi(chosen))
        }
        QuestionKind::YesNo {
            yes_score,
            no_score,
        } => {
            let p = if yes_score >= no_score { t } else { 1.0 - t };
            Some(Answer::YesNo(chance(rng, p.clamp(0.03, 0.97))))
        }
        QuestionKind::Number {
            min,
            max,
            integer,
            bands,
            ..
        } => number_answer(*min, *max, *integer, bands, t, rng).map(Answer::Number),
        QuestionKind::Text { max_length } => {
            let note: String = NOTES[pick(rng, NOTES.len())]
                .chars()
                .take(*max_length as usize)
                .collect();
            (!note.trim().is_empty()).then_some(Answer::Text(note))
        }
    }
}

/// A number within the question's limits, in the scoring band nearest maturity `t`.
fn number_answer(
    min: Option<f64>,
    max: Option<f64>,
    integer: bool,
    bands: &[NumberBand],
    t: f64,
    rng: &mut StdRng,
) -> Option<f64> {
    let top = bands
        .iter()
        .filter_map(|b| b.up_to)
        .fold(0.0_f64, |a, b| a.max(b.abs()));
    let lo = match (min, max) {
        (Some(lo), _) => lo,
        (None, Some(hi)) if hi < 0.0 => hi - 100.0,
        (None, _) => 0.0_f64.min(-top),
    };
    let hi = max.unwrap_or(lo.abs() + 2.0 * top + 100.0);
    let (from, to) = if bands.is_empty() {
        (lo, hi)
    } else {
        let smin = bands.iter().map(|b| b.score).fold(f64::INFINITY, f64::min);
        let smax = bands
            .iter()
            .map(|b| b.score)
            .fold(f64::NEG_INFINITY, f64::max);
        let target = smin + t * (smax - smin);
        let chosen = bands
            .iter()
            .enumerate()
            .min_by(|a, b| {
                (a.1.score - target)
                    .abs()
                    .total_cmp(&(b.1.score - target).abs())
            })
            .map_or(0, |(n, _)| n);
        let below = chosen
            .checked_sub(1)
            .and_then(|n| bands.get(n))
            .and_then(|b| b.up_to)
            .unwrap_or(lo);
        let above = bands.get(chosen).and_then(|b| b.up_to).unwrap_or(hi);
        (below.max(lo), above.min(hi))
    };
    let x = between(rng, from, to);
    let (x, lo, hi) = if integer {
        (x.round(), lo.ceil(), hi.floor())
    } else {
        ((x * 100.0).round() / 100.0, lo, hi)
    };
    (lo <= hi && x.is_finite()).then(|| x.clamp(lo, hi))
}

// ---------------------------------------------------------------------------------------------
// The progress bar.

/// Progress on stderr: a bar redrawn in place at most ten times a second on a terminal,
/// otherwise one line per tenth of the work.
pub struct ProgressBar {
    orgs: usize,
    cycles: usize,
    terminal: bool,
    last_draw: Option<Instant>,
    tenths_printed: usize,
    drawn: bool,
    width: usize,
}

const BAR_WIDTH: usize = 30;

impl ProgressBar {
    pub fn new(options: Options) -> Self {
        ProgressBar {
            orgs: options.orgs.max(1),
            cycles: options.cycles,
            terminal: std::io::stderr().is_terminal(),
            last_draw: None,
            tenths_printed: 0,
            drawn: false,
            width: 0,
        }
    }

    fn line(&self, phase: usize, done: usize, overall: f64) -> String {
        let filled = ((overall * BAR_WIDTH as f64).round() as usize).min(BAR_WIDTH);
        let stage = if phase == 0 {
            "registry and accounts".to_string()
        } else {
            format!("cycle {phase}/{}", self.cycles)
        };
        format!(
            "[{}{}] {}/{} organisations, {stage}",
            "#".repeat(filled),
            ".".repeat(BAR_WIDTH - filled),
            thousands(done),
            thousands(self.orgs)
        )
    }

    /// End the bar's line.
    pub fn finish(&mut self) {
        if self.terminal && self.drawn {
            eprintln!();
        }
    }
}

impl Progress for ProgressBar {
    fn update(&mut self, phase: usize, done: usize) {
        let total = self.orgs * (self.cycles + 1);
        let finished = (phase * self.orgs + done).min(total);
        let overall = finished as f64 / total as f64;
        if self.terminal {
            let due = self
                .last_draw
                .is_none_or(|t| t.elapsed() >= std::time::Duration::from_millis(100));
            if due || finished == total {
                // Padded to the longest line so far, so a shorter line leaves no tail behind.
                let line = self.line(phase, done, overall);
                self.width = self.width.max(line.chars().count());
                let mut err = std::io::stderr().lock();
                let _ = write!(err, "\r{line:<width$}", width = self.width);
                let _ = err.flush();
                self.last_draw = Some(Instant::now());
                self.drawn = true;
            }
        } else {
            let tenths = finished * 10 / total;
            if tenths > self.tenths_printed {
                self.tenths_printed = tenths;
                eprintln!("{} ({}%)", self.line(phase, done, overall), tenths * 10);
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::domain::answers::parse_value;

    fn example() -> Questionnaire {
        crate::domain::questionnaire::load(QUESTION_SET).unwrap()
    }

    #[test]
    fn generated_answers_are_valid_visible_and_complete() {
        let q = example();
        for s in 0..2000_u64 {
            let mut rng = rng_for(s, &[STREAM_ANSWERS]);
            let maturity = unit(&mut rng);
            let bias: Vec<f64> = (0..16).map(|_| between(&mut rng, -0.15, 0.15)).collect();
            let answers = complete_answers(&q, maturity, &bias, &mut rng);
            let shown = visibility::visible(&q, &answers);
            for (key, answer) in &answers {
                assert!(shown.contains(key), "hidden {key} answered");
                let question = q.question(key).unwrap();
                let parsed = parse_value(question, &answer.to_json());
                assert_eq!(parsed, Ok(Some(answer.clone())), "{key}: {answer:?}");
            }
            let report = scoring::score(&q, &answers);
            assert!(report.complete, "seed {s}: {:?}", report.missing_required);

            let half = partial(&q, &answers, &mut rng);
            assert!(!half.is_empty() && half.len() < answers.len());
            assert!(
                !scoring::score(&q, &half).complete,
                "seed {s}: partial is complete"
            );
            let shown = visibility::visible(&q, &half);
            assert!(half.keys().all(|k| shown.contains(k)));
        }
    }

    #[test]
    fn maturity_moves_scores() {
        let q = example();
        let mean = |m: f64| {
            let mut total = 0.0;
            for s in 0..300_u64 {
                let mut rng = rng_for(s, &[9]);
                let answers = complete_answers(&q, m, &[0.0], &mut rng);
                total += scoring::score(&q, &answers).overall.score.unwrap();
            }
            total / 300.0
        };
        let (low, high) = (mean(0.1), mean(0.9));
        assert!(low < 2.5 && high > 3.5, "low {low}, high {high}");
    }

    #[test]
    fn numbers_respect_limits_and_integers() {
        let bands = [
            NumberBand {
                up_to: Some(10.0),
                score: 3.0,
            },
            NumberBand {
                up_to: None,
                score: 0.0,
            },
        ];
        let mut rng = rng_for(1, &[]);
        for n in 0..1000 {
            let t = f64::from(n) / 1000.0;
            let x = number_answer(Some(0.0), None, true, &bands, t, &mut rng).unwrap();
            assert!(x >= 0.0 && x.fract() == 0.0, "{x}");
            let y = number_answer(None, Some(-5.0), false, &[], t, &mut rng).unwrap();
            assert!(y <= -5.0, "{y}");
            let z = number_answer(Some(0.0), Some(100.0), false, &bands, t, &mut rng).unwrap();
            assert!((0.0..=100.0).contains(&z), "{z}");
        }
        assert_eq!(
            number_answer(Some(0.2), Some(0.8), true, &[], 0.5, &mut rng),
            None
        );
    }

    #[test]
    fn cycles_are_a_year_apart_and_only_the_last_is_open() {
        let today = NaiveDate::from_ymd_opt(2026, 11, 23).unwrap();
        let plans = plan_cycles(today, 3);
        let labels: Vec<&str> = plans.iter().map(|p| p.label.as_str()).collect();
        assert_eq!(labels, ["2024/25", "2025/26", "2026/27"]);
        assert_eq!(
            plans[2].opens_on,
            NaiveDate::from_ymd_opt(2026, 10, 24).unwrap()
        );
        assert_eq!(
            plans[2].deadline,
            NaiveDate::from_ymd_opt(2027, 1, 22).unwrap()
        );
        assert!(plans[2].open && !plans[0].open && !plans[1].open);
        assert!(plans[..2].iter().all(|p| p.deadline < today));
        for w in plans.windows(2) {
            assert!(w[0].opens_on < w[1].moves_on && w[1].moves_on <= w[1].opens_on);
        }
        let early = plan_cycles(NaiveDate::from_ymd_opt(2026, 4, 20).unwrap(), 1);
        assert_eq!(early[0].label, "2025/26");
        assert_eq!(plan_cycles(today, 10).len(), 10);
    }

    #[test]
    fn codes_names_and_numbers() {
        assert_eq!(ods_code(0), "B00001");
        assert_eq!(ods_code(99_998), "B99999");
        assert_eq!(ods_code(99_999), "C00000");
        for i in [0, 5, 99_999] {
            assert!(crate::domain::ods::OdsCode::parse(&ods_code(i)).is_ok());
        }
        let mut codes: Vec<&str> = ICBS.iter().map(|i| i.0).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), 42);
        for (code, _, region) in ICBS {
            let parsed = crate::domain::ods::OdsCode::parse(code).unwrap();
            assert_eq!(parsed.kind(), OrgKind::Icb, "{code}");
            assert!(region < REGIONS.len());
        }
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(30_000), "30,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(
            Options {
                orgs: 0,
                cycles: 3,
                seed: 1
            }
            .problem()
            .unwrap(),
            "--orgs must be between 1 and 100,000 (got 0)"
        );
        assert!(Options {
            orgs: 5,
            cycles: 11,
            seed: 1
        }
        .problem()
        .is_some());
    }

    #[test]
    fn the_registry_is_deterministic_and_moves_stay_in_the_region() {
        let today = NaiveDate::from_ymd_opt(2026, 11, 23).unwrap();
        let plans = plan_cycles(today, 3);
        let options = Options {
            orgs: 1000,
            cycles: 3,
            seed: 7,
        };
        let a = Registry::generate(options, &plans);
        let b = Registry::generate(options, &plans);
        assert_eq!(a.moves, 20);
        let national = Registry::generate(
            Options {
                orgs: 30_000,
                ..options
            },
            &plans,
        );
        let names: HashSet<&String> = national.orgs.iter().map(|o| &o.name).collect();
        assert_eq!(names.len(), 30_000, "names repeat");
        for (x, y) in a.orgs.iter().zip(&b.orgs) {
            assert_eq!(
                (&x.name, &x.icb, &x.maturity),
                (&y.name, &y.icb, &y.maturity)
            );
            assert!(x.icb.iter().all(|&i| ICBS[i].2 == x.region));
        }
        let names: HashSet<&String> = a.orgs.iter().map(|o| &o.name).collect();
        assert_eq!(names.len(), a.orgs.len(), "names repeat");
        let other = Registry::generate(Options { seed: 8, ..options }, &plans);
        assert!(a
            .orgs
            .iter()
            .zip(&other.orgs)
            .any(|(x, y)| x.maturity != y.maturity));
    }

    #[test]
    fn the_open_cycle_split() {
        let states: Vec<Seeded> = (0..10).map(open_cycle_state).collect();
        assert_eq!(
            states.iter().filter(|s| **s == Seeded::Submitted).count(),
            4
        );
        assert_eq!(states[4], Seeded::Complete);
        assert_eq!(states[7], Seeded::Partial);
        assert_eq!(states[9], Seeded::NotStarted);
        assert_eq!(open_cycle_state(13), Seeded::Submitted);
    }
}
