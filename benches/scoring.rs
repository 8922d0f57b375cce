//! Throughput of the scoring core: one assessment of 100 questions (every type, conditions,
//! weights) scored from validated answers, and the whole path from raw JSON answers
//! (validation, visibility, scoring) that a submission takes. Run with
//! `cargo bench --bench scoring`; figures go in BENCHMARKS.md.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use criterion::{black_box, criterion_group, Criterion, Throughput};
use dma::domain::{answers, next_band, questionnaire, scoring};

/// A question set of 10 domains x 10 questions cycling through every scored type, with a
/// condition on every fifth question.
fn hundred_questions() -> (
    questionnaire::Questionnaire,
    BTreeMap<String, serde_json::Value>,
) {
    let mut doc = String::from(
        "key: bench\nversion: \"1\"\ntitle: Bench\nsettings: [acute]\nbands:\n  - {min: 1, label: Initial}\n  - {min: 3, label: Defined}\ndomains:\n",
    );
    let mut raw = BTreeMap::new();
    for d in 0..10 {
        doc.push_str(&format!(
            "  - key: d{d}\n    title: Domain {d}\n    weight: {}\n    questions:\n",
            1 + d % 3
        ));
        for i in 0..10 {
            let key = format!("q{d}-{i}");
            let cond = if i % 5 == 4 {
                format!("\n        show_if: {{question: q{d}-0, at_least: 2}}")
            } else {
                String::new()
            };
            let (body, answer) = match i % 6 {
                0 => ("type: scale\n        levels: [{value: 1, label: a}, {value: 2, label: b}, {value: 3, label: c}, {value: 4, label: d}, {value: 5, label: e}]".to_string(), serde_json::json!(3)),
                1 => ("type: yes_no".to_string(), serde_json::json!(true)),
                2 => ("type: single\n        options: [{key: a, label: A, score: 0}, {key: b, label: B, score: 1}, {key: c, label: C, score: 2}]".to_string(), serde_json::json!("b")),
                3 => ("type: multi\n        max_score: 3\n        options: [{key: a, label: A, score: 1}, {key: b, label: B, score: 1}, {key: c, label: C, score: 1}, {key: d, label: D, score: 1}]".to_string(), serde_json::json!(["a", "c"])),
                4 => ("type: number\n        min: 0\n        max: 100\n        bands: [{up_to: 50, score: 0}, {up_to: 90, score: 1}, {score: 2}]".to_string(), serde_json::json!(95)),
                _ => ("type: checklist\n        levels:\n          - {value: 1, label: none, criteria: []}\n          - {value: 2, label: some, criteria: [{key: x, text: X}]}\n          - {value: 3, label: more, criteria: [{key: y, text: Y}, {key: z, text: Z}]}".to_string(), serde_json::json!(["x", "y"])),
            };
            doc.push_str(&format!("      - key: {key}\n        text: Question {key}\n        weight: {}{cond}\n        {body}\n", 1 + i % 2));
            raw.insert(key, answer);
        }
    }
    (
        questionnaire::load(doc.as_bytes()).expect("bench definition loads"),
        raw,
    )
}

/// The lowest-scoring answer of each bench question type.
fn lowest_answer(question: &questionnaire::Question) -> serde_json::Value {
    use questionnaire::QuestionKind;
    match &question.kind {
        QuestionKind::Scale { .. } => serde_json::json!(1),
        QuestionKind::YesNo { .. } => serde_json::json!(false),
        QuestionKind::Single { .. } => serde_json::json!("a"),
        QuestionKind::Multi { .. } => serde_json::json!(["a"]),
        QuestionKind::Number { .. } => serde_json::json!(10),
        _ => serde_json::json!([]),
    }
}

fn bench(c: &mut Criterion) {
    let (q, raw) = hundred_questions();
    let given = answers::validate(&q, &raw).expect("bench answers valid");
    assert_eq!(q.questions().count(), 100);
    let mut group = c.benchmark_group("scoring");
    group.throughput(Throughput::Elements(1));
    group.bench_function("score 100 questions", |b| {
        b.iter(|| scoring::score(black_box(&q), black_box(&given)))
    });
    group.bench_function("validate and score 100 questions", |b| {
        b.iter(|| {
            let a = answers::validate(black_box(&q), black_box(&raw)).unwrap();
            scoring::score(&q, &a)
        })
    });
    // The worst case for the path to the next band: every domain below its next band, so
    // every domain is searched (the results page and the scores API compute it once).
    let lowest: BTreeMap<String, serde_json::Value> = q
        .questions()
        .map(|(_, question)| (question.key.clone(), lowest_answer(question)))
        .collect();
    let low = answers::validate(&q, &lowest).expect("lowest answers valid");
    let low_report = scoring::score(&q, &low);
    group.bench_function("path to the next band, 100 questions", |b| {
        b.iter(|| next_band::paths(black_box(&q), black_box(&low), black_box(&low_report)))
    });
    let example = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/wgll-acute-2025.yaml"
    ))
    .unwrap();
    group.bench_function("load the example question set", |b| {
        b.iter(|| questionnaire::load(black_box(&example)).unwrap())
    });
    group.finish();
}

/// With `DMA_SCORE_TIMES=N`, score the bench assessment N times and exit instead of
/// benchmarking: run under `valgrind --tool=callgrind` for N and for 0, the difference over N
/// is the instructions one scoring takes, a count that does not depend on how busy the
/// machine is (scripts/bench/run does this).
fn count_mode() -> bool {
    let Ok(times) = std::env::var("DMA_SCORE_TIMES") else {
        return false;
    };
    let times: usize = times.parse().expect("DMA_SCORE_TIMES is a number");
    let (q, raw) = hundred_questions();
    let given = answers::validate(&q, &raw).expect("bench answers valid");
    let mut overall = 0.0;
    for _ in 0..times {
        overall += scoring::score(black_box(&q), black_box(&given))
            .overall
            .score
            .unwrap_or(0.0);
    }
    println!("scored {times} times (sum of overall scores {overall})");
    true
}

criterion_group!(benches, bench);

fn main() {
    if !count_mode() {
        benches();
        Criterion::default().configure_from_args().final_summary();
    }
}
