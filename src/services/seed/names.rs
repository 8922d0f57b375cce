//! Made-up but plausible names and codes: places, trusts, people, ODS-like codes and account
//! emails. Apart from the registry so the words can change without touching its logic.

use std::collections::HashSet;

use rand::rngs::StdRng;

use super::random::{chance, pick, rng_for, STREAM_PEOPLE};
use super::EMAIL_DOMAIN;
use crate::services::auth::roles::Role;

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
pub(super) fn trust_name(rng: &mut StdRng, taken: &mut HashSet<String>) -> String {
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

pub(super) const JOB_TITLES: [&str; 4] = [
    "Chief Executive",
    "Chief Digital Information Officer",
    "Chief Information Officer",
    "Director of Digital Transformation",
];

/// A plausible person's name for organisation `i`'s approver or contributor.
pub(super) fn person_name(seed: u64, i: usize, role: Role) -> String {
    let role_part = u64::from(role == Role::OrgApprover);
    let mut rng = rng_for(seed, &[STREAM_PEOPLE, i as u64, role_part]);
    let first = FIRST_NAMES[pick(&mut rng, FIRST_NAMES.len())];
    let last = SURNAMES[pick(&mut rng, SURNAMES.len())];
    format!("{first} {last}")
}
