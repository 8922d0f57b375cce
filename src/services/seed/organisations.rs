//! The seeded registry, generated in memory before anything is written: the 7 regions and
//! 42 ICBs (real names and codes), the assessed organisations with their latent maturity, and
//! the few that move ICB between cycles.

use std::collections::HashSet;

use chrono::NaiveDate;

use super::cycles::CyclePlan;
use super::names::{ods_code, trust_name};
use super::random::{between, pick, rng_for, unit, STREAM_MOVES, STREAM_NAMES, STREAM_ORG};
use super::run::Options;

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
/// One assessed organisation.
#[derive(Debug, Clone)]
pub(super) struct Org {
    pub(super) code: String,
    pub(super) name: String,
    pub(super) region: usize,
    pub(super) opened_on: NaiveDate,
    /// Index into [`ICBS`] in each cycle.
    pub(super) icb: Vec<usize>,
    /// Latent maturity in 0..1 in each cycle.
    pub(super) maturity: Vec<f64>,
    /// A persistent lean per domain of the question set, added to the maturity.
    pub(super) domain_bias: Vec<f64>,
}

pub(super) struct Registry {
    pub(super) seed: u64,
    pub(super) orgs: Vec<Org>,
    pub(super) moves: usize,
    /// The first ICB membership starts here (and the ICBs open): the day ICBs were
    /// established, or the first cycle's opening if that is earlier.
    pub(super) parents_from: NaiveDate,
}
impl Registry {
    pub(super) fn generate(options: Options, plans: &[CyclePlan]) -> Registry {
        let k = plans.len();
        let first_opens = plans
            .first()
            .map_or(crate::services::registry::ICBS_ESTABLISHED, |p| p.opens_on);
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
            parents_from: first_opens.min(crate::services::registry::ICBS_ESTABLISHED),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::services::seed::cycles::plan_cycles;

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
}
