//! The seed as a whole: its options and their limits, the refusal to write into a database
//! that holds data, the order of the work (registry, then one cycle after another) and the
//! summary it prints. Start here; the other modules are its steps.

use std::time::Instant;

use chrono::{NaiveDate, Utc};
use diesel::prelude::*;
use serde::Serialize;

use super::answers::{generate, Generated};
use super::cycles::plan_cycles;
use super::organisations::{Registry, ICBS, REGIONS};
use super::progress::ProgressBar;
use super::write::{
    setup, write_assessments, write_organisations, Counts, People, CYCLE_BATCH, REGISTRY_BATCH,
};
use super::{BENCH_PASSWORD, MAX_CYCLES, MAX_ORGS};
use crate::db::schema::{cycles, organisations, questionnaire_versions, users};
use crate::db::{Db, DbConnection};
use crate::error::AppError;
use crate::services::audit::{self, Actor, Entry};

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
    let db = settings.open_database().await?;
    if let Some(existing) = db.read(existing_data).await? {
        return refuse(&existing);
    }
    let hash =
        tokio::task::spawn_blocking(|| crate::services::auth::password::hash(BENCH_PASSWORD))
            .await??;
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
        // Score sets went in directly, so the group figures' counts are made from them.
        if let Some(&cycle_id) = setup.cycle_ids.get(c) {
            db.write_blocking(|conn| crate::services::reports::counts::rebuild(conn, cycle_id))?;
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

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::domain::ods::OrgKind;
    use crate::services::seed::names::ods_code;

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
}
