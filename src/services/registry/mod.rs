//! The organisation registry: who may be assessed, what kind of organisation each is, which
//! care settings it works in, and which ICB it belonged to when.
//!
//! The registry is kept by importing CSV files (`dma org import FILE`, and the admin page).
//! Three promises shape this module:
//!
//! - **All or nothing.** [`parse_csv`] checks the whole file and collects every problem with
//!   its line and column; [`apply`] then checks the rows against the database (a parent ICB
//!   must exist, history cannot be rewritten) *before* writing anything, and runs in the
//!   caller's transaction, so a bad file leaves the registry exactly as it was.
//! - **Idempotent.** A row that matches the database changes nothing and writes no audit
//!   entry, so importing the same file twice is harmless and a re-import of a long file shows
//!   exactly which organisations changed.
//! - **ICB membership has a history.** ICBs merge (in 2026 and 2027), and a report for a
//!   past cycle must place an organisation in the ICB it belonged to then. A new parent
//!   closes the current `organisation_parents` row and opens another; [`icb_on`] answers
//!   "which ICB on this date".
//!
//! # The file
//!
//! A header line naming the columns (in any order, any case) and one organisation per line:
//!
//! | column | required | meaning |
//! |---|---|---|
//! | `ods_code` | yes | the ODS code; it also decides the kind (see [`crate::domain::ods`]) |
//! | `name` | yes | the organisation's name |
//! | `settings` | no | care settings, `;`-separated slugs: `acute;community`; each one the format names (`acute`, `ambulance`, `community`, `icb`, `mental-health`, `primary-care`, `social-care`), one a stored question set serves or one an organisation already has, so no organisation silently gets no assessment |
//! | `region` | no | the NHS England region, as text |
//! | `parent_icb` | no | the ODS code of the ICB the organisation belongs to |
//! | `parent_from` | no | the date from which that ICB applies |
//! | `opened_on`, `closed_on` | no | dates |
//!
//! Dates are `YYYY-MM-DD`. A column left out of the file leaves that field as it is in the
//! registry (a file of `ods_code,name` renames organisations and touches nothing else); a
//! column that is present but blank on a line clears the field. `parent_icb` is the
//! exception: blank means "no change", because a membership only ends when another begins
//! (an organisation that closes keeps its last ICB, which is what reports of its last cycles
//! need).
//!
//! `parent_from`, when blank, defaults to the day the organisation opened or the day ICBs were
//! established (2022-07-01), whichever is later, for an organisation's first ICB; and to the
//! import date when the ICB changes. Valid periods run from `valid_from` (included) to
//! `valid_to` (excluded), so on the day of a merger the new ICB applies. A new ICB must start
//! after the current membership began (an import adds to the history; it does not rewrite
//! it); the same start date corrects the current membership instead, for a parent that was
//! simply entered wrongly. A closed ICB takes no new members after its closing date.
//!
//! One file is one snapshot of the registry, with one parent per organisation. History is
//! built by importing snapshots in date order: the demo registry is `demo/registry-2022.csv`
//! (the ICBs as established) followed by `demo/registry.csv` (after the 2026 merger, with
//! `parent_from` 2026-04-01 on the organisations that moved).
//!
//! The submodules follow an import's path: [`parse`] reads the file into [`rows`] (pure),
//! [`apply`] checks them against the database and writes them, [`membership`] keeps the ICB
//! history, and [`import`] holds the entry points (the CLI, the admin page, the demo).
//! [`edit`] changes or closes one organisation from the admin page by the same path.

use chrono::NaiveDate;

/// The largest file accepted: the national registry (about 30,000 organisations) is a few
/// megabytes, so this leaves room without letting an upload exhaust memory.
pub const MAX_FILE_BYTES: usize = 20 * 1024 * 1024;

/// Problems reported before the check stops: enough to show a pattern, few enough to read.
pub const MAX_ERRORS: usize = 500;

/// The day integrated care boards were established, the earliest possible `parent_from`.
pub const ICBS_ESTABLISHED: NaiveDate = match NaiveDate::from_ymd_opt(2022, 7, 1) {
    Some(d) => d,
    None => NaiveDate::MIN,
};

/// Every column a registry file may have, in the order the demo files use.
pub const COLUMNS: [&str; 8] = [
    "ods_code",
    "name",
    "settings",
    "region",
    "parent_icb",
    "parent_from",
    "opened_on",
    "closed_on",
];

/// The demo registry, in the order it must be imported (snapshots in date order).
pub const DEMO_FILES: [(&str, &[u8]); 2] = [
    (
        "demo/registry-2022.csv",
        include_bytes!("../../../demo/registry-2022.csv"),
    ),
    (
        "demo/registry.csv",
        include_bytes!("../../../demo/registry.csv"),
    ),
];

mod apply;
mod edit;
mod import;
mod membership;
mod parse;
mod rows;

pub use apply::apply;
pub use edit::{edit, seen_stamp, OrgEdit};
pub use import::{import_command, import_demo, import_file};
pub use membership::icb_on;
pub use parse::parse_csv;
pub use rows::{ImportError, ImportReport, RegistryRow, RowError};
