//! Tests for the loader: every rule a definition can break, with the path and the fix.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::tests::{example, EXAMPLE};
use super::*;

/// A minimal valid definition; `{questions}` is replaced by extra question items and
/// `{top}` by extra top-level fields.
const BASE: &str = r#"
key: t
version: "1"
title: T
settings: [acute]
{top}
domains:
  - key: d
    title: D
    questions:
      - key: q1
        type: scale
        text: Q
        levels: [{value: 1, label: a}, {value: 2, label: b}, {value: 3, label: c}]
      - key: s1
        type: single
        text: Q
        options: [{key: none, label: N, score: 0}, {key: full, label: F, score: 1}]
      - key: m1
        type: multi
        text: Q
        options: [{key: x, label: X, score: 1}, {key: y, label: Y, score: 1}]
      - key: c1
        type: checklist
        text: Q
        levels:
          - {value: 0, label: none}
          - {value: 1, label: one, criteria: [{key: k1, text: K1}]}
      - key: y1
        type: yes_no
        text: Q
      - key: n1
        type: number
        text: Q
      - key: t1
        type: text
        text: Q
{questions}
"#;

fn doc(top: &str, questions: &str) -> String {
    BASE.replace("{top}", top).replace("{questions}", questions)
}

fn errors_of(yaml: &str) -> Vec<String> {
    match load(yaml.as_bytes()) {
        Ok(_) => Vec::new(),
        Err(errors) => errors.iter().map(ToString::to_string).collect(),
    }
}

/// Asserts that loading gives an error containing `expected` (which starts with the path).
#[track_caller]
fn assert_error(yaml: &str, expected: &str) {
    let errors = errors_of(yaml);
    assert!(
        errors.iter().any(|e| e.contains(expected)),
        "expected an error containing {expected:?}, got {errors:#?}"
    );
}

/// Asserts an error for one extra question written as YAML lines indented for the list.
#[track_caller]
fn question_error(question: &str, expected: &str) {
    assert_error(&doc("", question), expected);
}

#[test]
fn the_base_document_is_valid() {
    assert_eq!(errors_of(&doc("", "")), Vec::<String>::new());
}

#[test]
fn the_example_loads_with_one_warning() {
    let (q, warnings) = load_with_warnings(EXAMPLE.as_bytes()).unwrap();
    assert_eq!(q.key, "wgll-acute");
    assert_eq!(q.version, "2025.1");
    assert_eq!(q.domains.len(), 8);
    assert_eq!(q.pillars.len(), 7);
    assert_eq!(warnings.len(), 1);
    assert_eq!(warnings[0].path, "domains[0].questions[0].levels[3].label");
    let QuestionKind::Scale { levels } = &q.domains[0].questions[0].kind else {
        panic!("not a scale")
    };
    assert_eq!(
        levels[3].label,
        "The strategy is approved, resourced and monitored"
    );
}

#[test]
fn yaml_1_2_yes_is_text_not_true() {
    question_error(
        "      - {key: q9, type: text, text: Q, allow_na: yes}",
        "domains[0].questions[7].allow_na: must be true or false, not \"yes\"",
    );
}

#[test]
fn json_definitions_load_too() {
    let q = example();
    assert_eq!(load(to_json(&q).as_bytes()).unwrap(), q);
}

#[test]
fn export_round_trips_the_example() {
    let q = example();
    assert_eq!(load(to_yaml(&q).as_bytes()).unwrap(), q);
    assert_eq!(load(to_json(&q).as_bytes()).unwrap(), q);
}

#[test]
fn reports_every_error_at_once() {
    let yaml = doc(
        "format: 2\ndecimals: 9",
        "      - {key: q9, type: yesno, text: Q}\n      - {key: q1, type: text, text: Q}",
    );
    let errors = errors_of(&yaml);
    assert_eq!(errors.len(), 4, "{errors:#?}");
}

// ----- top level ---------------------------------------------------------------------

#[test]
fn top_level_rules() {
    assert_error(
        &doc("format: 2", ""),
        "format: only format 1 exists; write format: 1",
    );
    assert_error(
        &doc("titel: x", ""),
        "(document): unknown field \"titel\" (did you mean \"title\"?)",
    );
    assert_error(
        &doc("colour: x", ""),
        "(document): unknown field \"colour\"; the fields allowed here are format, key",
    );
    assert_error(
        &doc("", "").replace("key: t\n", "key: Wgll Acute\n"),
        "key: \"Wgll Acute\" is not a valid questionnaire key: use lower-case letters, digits \
         and hyphens, starting with a letter, at most 63 characters (for example \"wgll-acute\")",
    );
    assert_error(
        &doc("", "").replace("key: t\n", ""),
        "(document): missing required field \"key\"",
    );
    assert_error(
        &doc("", "").replace("version: \"1\"", "version: 2025.1"),
        "version: must be text; put it in quotes (version: \"2025.1\")",
    );
    assert_error(
        &doc("", "").replace("version: \"1\"", "version: \"2025 v1\""),
        "version: \"2025 v1\" is not a valid version",
    );
    assert_error(
        &doc("", "").replace("title: T", &format!("title: {}", "x".repeat(201))),
        "title: is 201 characters long; shorten it to 200 or fewer",
    );
    assert_error(
        &doc("", "").replace("title: T", "title: \"  \""),
        "title: must not be blank",
    );
}

#[test]
fn settings_rules() {
    let base = doc("", "");
    assert_error(
        &base.replace("settings: [acute]\n", ""),
        "(document): missing required field \"settings\"; list the care settings",
    );
    assert_error(
        &base.replace("settings: [acute]", "settings: []"),
        "settings: list at least one care setting",
    );
    assert_error(
        &base.replace("settings: [acute]", "settings: acute"),
        "settings: must be a list such as [acute], not text",
    );
    assert_error(
        &base.replace("settings: [acute]", "settings: [acute, Mental Health]"),
        "settings[1]: \"Mental Health\" is not a valid setting",
    );
}

#[test]
fn scale_decimals_and_bands() {
    assert_error(
        &doc("scale: {min: 5, max: 1}", ""),
        "scale: min (5) must be less than max (1)",
    );
    assert_error(
        &doc("scale: {min: 1}", ""),
        "scale: missing required field \"max\"",
    );
    assert_error(
        &doc("decimals: 5", ""),
        "decimals: must be a whole number from 0 to 4",
    );
    assert_error(
        &doc("bands: [{min: 1, label: A}, {min: 1, label: B}]", ""),
        "bands[1].min: must be greater than the previous band's min (1)",
    );
    assert_error(
        &doc("bands: [{min: 1, lable: A}]", ""),
        "bands[0]: unknown field \"lable\" (did you mean \"label\"?)",
    );
    let q = load(doc("scale: {min: 0, max: 100}\ndecimals: 0", "").as_bytes()).unwrap();
    assert_eq!(
        q.scale,
        Scale {
            min: 0.0,
            max: 100.0
        }
    );
    assert_eq!(q.decimals, 0);
}

#[test]
fn domains_rules() {
    let base = doc("", "");
    assert_error(
        &base.replace("domains:", "domains: []\nold_domains:"),
        "domains: list at least one domain",
    );
    let two = base.replace(
        "domains:\n",
        "domains:\n  - {key: d, title: Other, questions: [{key: z, type: text, text: Z}]}\n",
    );
    assert_error(&two, "domains[1].key: duplicate domain key \"d\"");
    assert_error(
        &base.replace("    title: D\n", "    title: D\n    weight: 0\n"),
        "domains[0].weight: must be a number greater than 0, not 0",
    );
    let empty = "key: t\nversion: \"1\"\ntitle: T\nsettings: [a]\ndomains: [{key: d, title: D, questions: []}]";
    assert_error(empty, "domains[0].questions: list at least one question");
}

#[test]
fn pillar_links() {
    let pillars = "pillars: [{key: lead, title: L}, {key: care, title: C}]";
    assert_error(
        &doc(pillars, ""),
        "domains[0]: missing required field \"pillar\"; when pillars are listed every domain \
         must name one of them (lead and care)",
    );
    let named = |p: &str| {
        doc(pillars, "").replace(
            "    title: D\n",
            &format!("    title: D\n    pillar: {p}\n"),
        )
    };
    assert_error(
        &named("lede"),
        "domains[0].pillar: there is no pillar \"lede\" (did you mean \"lead\"?)",
    );
    assert_error(
        &named("lead"),
        "pillars[1]: pillar \"care\" has no domains; name it in a domain's pillar field or remove it",
    );
    assert_error(
        &doc("", "").replace("    title: D\n", "    title: D\n    pillar: lead\n"),
        "domains[0].pillar: names pillar \"lead\" but the questionnaire lists no pillars",
    );
    assert_error(
        &doc(
            "pillars: [{key: lead, title: L}, {key: lead, title: C}]",
            "",
        ),
        "pillars[1].key: duplicate pillar key \"lead\"",
    );
    assert_error(
        &doc("pillars: [{key: lead, title: L, weight: -1}]", ""),
        "pillars[0].weight: must be a number greater than 0, not -1",
    );
}

// ----- questions -----------------------------------------------------------------------

#[test]
fn common_question_rules() {
    question_error(
        "      - {key: q9, type: text, text: Q, requierd: false}",
        "domains[0].questions[7]: unknown field \"requierd\" (did you mean \"required\"?)",
    );
    question_error(
        "      - {key: q1, type: text, text: Q}",
        "domains[0].questions[7].key: duplicate question key \"q1\" (first used at \
         domains[0].questions[0])",
    );
    question_error(
        "      - {key: q9, type: text}",
        "domains[0].questions[7]: missing required field \"text\"",
    );
    question_error(
        &format!(
            "      - {{key: q9, type: text, text: {}}}",
            "x".repeat(2001)
        ),
        "domains[0].questions[7].text: is 2001 characters long; shorten it to 2000 or fewer",
    );
    question_error(
        "      - {key: q9, text: Q}",
        "domains[0].questions[7]: missing required field \"type\"; use one of scale, checklist",
    );
    question_error(
        "      - {key: q9, type: yesno, text: Q}",
        "domains[0].questions[7].type: unknown question type \"yesno\" (did you mean \"yes_no\"?)",
    );
    question_error(
        "      - {key: Q9, type: text, text: Q}",
        "domains[0].questions[7].key: \"Q9\" is not a valid question key",
    );
    question_error(
        "      - {key: q9, type: yes_no, text: Q, weight: 0}",
        "domains[0].questions[7].weight: must be a number greater than 0, not 0",
    );
    question_error(
        "      - {key: q9, type: yes_no, text: Q, weight: \"2\"}",
        "domains[0].questions[7].weight: must be a number, not text; remove the quotes",
    );
    question_error(
        "      - {key: q9, type: yes_no, text: Q, required: 1}",
        "domains[0].questions[7].required: must be true or false, not a number",
    );
    question_error(
        "      - key: q9\n        type: text\n        text: Q\n        help: [a]",
        "domains[0].questions[7].help: must be text, not a list",
    );
}

#[test]
fn fields_of_other_types_are_named() {
    question_error(
        "      - {key: q9, type: scale, text: Q, levels: [{value: 1, label: a}, {value: 2, label: b}], options: []}",
        "domains[0].questions[7]: \"options\" does not apply to a scale question (it is used by \
         single and multi questions); remove it or change the type",
    );
    question_error(
        "      - {key: q9, type: text, text: Q, weight: 2}",
        "domains[0].questions[7]: \"weight\" does not apply to a text question because text \
         answers are never scored; remove it",
    );
    question_error(
        "      - {key: q9, type: yes_no, text: Q, max_length: 5}",
        "\"max_length\" does not apply to a yes_no question (it is used by text questions)",
    );
}

#[test]
fn scale_rules() {
    question_error(
        "      - {key: q9, type: scale, text: Q, levels: [{value: 1, label: a}]}",
        "domains[0].questions[7].levels: list at least 2 levels",
    );
    question_error(
        "      - {key: q9, type: scale, text: Q}",
        "domains[0].questions[7]: missing required field \"levels\"",
    );
    question_error(
        "      - {key: q9, type: scale, text: Q, levels: [{value: 2, label: a}, {value: 1, label: b}]}",
        "domains[0].questions[7].levels[1].value: must be greater than the previous level's \
         value (2); list levels from lowest to highest",
    );
    question_error(
        "      - {key: q9, type: scale, text: Q, levels: [{value: 1, label: a}, {value: 1, label: b}]}",
        "domains[0].questions[7].levels[1].value: duplicate level value 1",
    );
    question_error(
        "      - {key: q9, type: scale, text: Q, levels: [{value: 1, label: a}, {value: 2.5, label: b}]}",
        "domains[0].questions[7].levels[1].value: must be a whole number, not 2.5",
    );
    question_error(
        "      - {key: q9, type: scale, text: Q, levels: [{value: 1, label: a}, {value: 2, label: b, criteria: []}]}",
        "domains[0].questions[7].levels[1]: \"criteria\" only apply to checklist levels",
    );
    question_error(
        "      - {key: q9, type: scale, text: Q, levels: [{value: 1}, {value: 2, label: b}]}",
        "domains[0].questions[7].levels[0]: missing required field \"label\"",
    );
}

#[test]
fn checklist_rules() {
    let checklist = |levels: &str| {
        format!(
            "      - key: q9\n        type: checklist\n        text: Q\n        levels: {levels}"
        )
    };
    question_error(
        &checklist("[{value: 0, label: a, criteria: [{key: k, text: K}]}, {value: 1, label: b, criteria: [{key: j, text: J}]}]"),
        "domains[0].questions[7].levels[0].criteria: the first level is the starting point and must have no criteria",
    );
    question_error(
        &checklist("[{value: 0, label: a}, {value: 1, label: b}]"),
        "domains[0].questions[7].levels[1]: every level after the first needs at least one criterion",
    );
    question_error(
        &checklist("[{value: 0, label: a}, {value: 1, label: b, criteria: []}]"),
        "domains[0].questions[7].levels[1].criteria: every level after the first needs at least one criterion",
    );
    question_error(
        &checklist("[{value: 0, label: a}, {value: 1, label: b, criteria: [{key: k, text: K}]}, {value: 2, label: c, criteria: [{key: k, text: L}]}]"),
        "domains[0].questions[7].levels[2].criteria[0].key: duplicate criterion key \"k\"",
    );
    question_error(
        &checklist("[{value: 0, label: a}, {value: 1, label: b, criteria: [{key: k}]}]"),
        "domains[0].questions[7].levels[1].criteria[0]: missing required field \"text\"",
    );
}

#[test]
fn single_rules() {
    question_error(
        "      - {key: q9, type: single, text: Q, options: [{key: none, label: N, score: 0}, {key: full, label: F, score: 1}, {key: full, label: G, score: 2}]}",
        "domains[0].questions[7].options[2].key: duplicate option key \"full\"",
    );
    question_error(
        "      - {key: q9, type: single, text: Q, options: [{key: a, label: A, score: 1}]}",
        "domains[0].questions[7].options: list at least 2 options",
    );
    question_error(
        "      - {key: q9, type: single, text: Q, options: [{key: a, label: A, score: 1}, {key: b, label: B, score: 1}, {key: c, label: C, score: null}]}",
        "domains[0].questions[7].options: needs at least two options with different scores",
    );
    question_error(
        "      - {key: q9, type: single, text: Q, options: [{key: a, label: A}, {key: b, label: B, score: 1}]}",
        "domains[0].questions[7].options[0]: missing required field \"score\"; give a number, or null if this option is not scored",
    );
    question_error(
        "      - {key: q9, type: single, text: Q, options: [{key: a, label: A, score: 0, exclusive: true}, {key: b, label: B, score: 1}]}",
        "domains[0].questions[7].options[0]: \"exclusive\" only applies to multi questions",
    );
}

#[test]
fn multi_rules() {
    question_error(
        "      - {key: q9, type: multi, text: Q, options: [{key: a, label: A, score: -1}, {key: b, label: B, score: 1}]}",
        "domains[0].questions[7].options[0].score: must be 0 or more, not -1",
    );
    question_error(
        "      - {key: q9, type: multi, text: Q, max_score: 0, options: [{key: a, label: A, score: 1}, {key: b, label: B, score: 1}]}",
        "domains[0].questions[7].max_score: must be greater than 0, not 0",
    );
    question_error(
        "      - {key: q9, type: multi, text: Q, options: [{key: a, label: A, score: 1}, {key: b, label: B, score: 1, exclusive: \"yes\"}]}",
        "domains[0].questions[7].options[1].exclusive: must be true or false, not \"yes\"",
    );
}

#[test]
fn yes_no_rules() {
    question_error(
        "      - {key: q9, type: yes_no, text: Q, yes_score: 0}",
        "domains[0].questions[7].yes_score: yes_score and no_score must differ (both are 0)",
    );
    let q = load(
        doc(
            "",
            "      - {key: q9, type: yes_no, text: Q, yes_score: 0, no_score: 2}",
        )
        .as_bytes(),
    )
    .unwrap();
    assert_eq!(
        q.question("q9").unwrap().kind,
        QuestionKind::YesNo {
            yes_score: 0.0,
            no_score: 2.0
        }
    );
}

#[test]
fn number_rules() {
    question_error(
        "      - {key: q9, type: number, text: Q, min: 10, max: 1}",
        "domains[0].questions[7].min: must not be greater than max (1)",
    );
    question_error(
        "      - {key: q9, type: number, text: Q, bands: [{score: 0}, {up_to: 5, score: 1}]}",
        "domains[0].questions[7].bands[0]: only the last band may leave out up_to",
    );
    question_error(
        "      - {key: q9, type: number, text: Q, bands: [{up_to: 5, score: 0}, {up_to: 5, score: 1}]}",
        "domains[0].questions[7].bands[1].up_to: must be greater than the previous band's up_to (5)",
    );
    question_error(
        "      - {key: q9, type: number, text: Q, bands: [{up_to: 5, score: 1}, {score: 1}]}",
        "domains[0].questions[7].bands: needs at least two bands with different scores",
    );
    question_error(
        "      - {key: q9, type: number, text: Q, bands: [{up_to: 5, score: 1}]}",
        "domains[0].questions[7].bands: needs at least two bands with different scores",
    );
    question_error(
        "      - {key: q9, type: number, text: Q, integer: yes}",
        "domains[0].questions[7].integer: must be true or false, not \"yes\"",
    );
    question_error(
        "      - {key: q9, type: number, text: Q, bands: [{up_to: 5, score: 1}, {scor: 2}]}",
        "domains[0].questions[7].bands[1]: unknown field \"scor\" (did you mean \"score\"?)",
    );
    question_error(
        "      - {key: q9, type: number, text: Q, min: .inf}",
        "domains[0].questions[7].min: must be a finite number",
    );
}

#[test]
fn text_rules() {
    question_error(
        "      - {key: q9, type: text, text: Q, max_length: 0}",
        "domains[0].questions[7].max_length: must be a whole number from 1 to 100000",
    );
    let q =
        load(doc("", "      - {key: q9, type: text, text: Q, max_length: 50}").as_bytes()).unwrap();
    assert_eq!(
        q.question("q9").unwrap().kind,
        QuestionKind::Text { max_length: 50 }
    );
    assert_eq!(
        q.question("t1").unwrap().kind,
        QuestionKind::Text {
            max_length: DEFAULT_TEXT_MAX_LENGTH
        }
    );
}

#[test]
fn comma_in_a_flow_label_is_rejoined_only_when_it_cannot_be_a_field() {
    let q = load(
        doc(
            "",
            "      - {key: q9, type: scale, text: Q, levels: [{value: 1, label: a, b and c}, {value: 2, label: b}]}",
        )
        .as_bytes(),
    )
    .unwrap();
    let QuestionKind::Scale { levels } = &q.question("q9").unwrap().kind else {
        panic!("not a scale")
    };
    assert_eq!(levels[0].label, "a, b and c");
    question_error(
        "      - {key: q9, type: scale, text: Q, levels: [{value: 1, label: a, monitored}, {value: 2, label: b}]}",
        "domains[0].questions[7].levels[0]: unknown field \"monitored\"; if it is part of the text \
         before it, put that text in quotes",
    );
}

// ----- conditions ----------------------------------------------------------------------

fn shown_if(condition: &str) -> String {
    doc(
        "",
        &format!("      - {{key: q9, type: text, text: Q, show_if: {condition}}}"),
    )
}

#[test]
fn valid_conditions_load() {
    for condition in [
        "{question: q1, equals: 2}",
        "{question: q1, in: [1, 3]}",
        "{question: q1, at_least: 2}",
        "{question: q1, at_most: 2.5}",
        "{question: s1, equals: full}",
        "{question: s1, in: [none, full]}",
        "{question: m1, includes: x}",
        "{question: c1, includes: k1}",
        "{question: c1, equals: 1}",
        "{question: c1, at_least: 1}",
        "{question: y1, equals: false}",
        "{question: n1, equals: 3.5}",
        "{question: n1, at_most: 10}",
        "{question: t1, answered: true}",
        "{all: [{question: q1, equals: 1}, {any: [{question: y1, equals: true}, {not: {question: t1, answered: true}}]}]}",
    ] {
        let errors = errors_of(&shown_if(condition));
        assert!(errors.is_empty(), "{condition}: {errors:#?}");
    }
    let q = load(shown_if("{not: {question: s1, in: [full]}}").as_bytes()).unwrap();
    assert_eq!(
        q.question("q9").unwrap().show_if,
        Some(Condition::Not(Box::new(Condition::In {
            question: "s1".into(),
            values: vec![CondValue::Key("full".into())]
        })))
    );
}

#[test]
fn condition_targets_must_be_earlier_and_exist() {
    let later = doc(
        "",
        "      - {key: q9, type: text, text: Q, show_if: {question: q10, answered: true}}\n      - {key: q10, type: text, text: Q}",
    );
    assert_error(
        &later,
        "domains[0].questions[7].show_if.question: question \"q10\" comes later in the document; \
         a condition can only refer to an earlier question",
    );
    assert_error(
        &shown_if("{question: s2, equals: full}"),
        "domains[0].questions[7].show_if.question: there is no question \"s2\" (did you mean \"s1\"?)",
    );
    assert_error(
        &shown_if("{question: q9, answered: true}"),
        "domains[0].questions[7].show_if.question: a question cannot depend on itself",
    );
}

#[test]
fn condition_operators_must_suit_the_type() {
    assert_error(
        &shown_if("{question: m1, equals: x}"),
        "domains[0].questions[7].show_if.equals: equals cannot be used with \"m1\", a multi \
         question; use includes or answered",
    );
    assert_error(
        &shown_if("{question: q1, includes: x}"),
        "show_if.includes: includes cannot be used with \"q1\", a scale question",
    );
    assert_error(
        &shown_if("{question: s1, at_least: 1}"),
        "show_if.at_least: at_least cannot be used with \"s1\", a single question",
    );
    assert_error(
        &shown_if("{question: t1, equals: hello}"),
        "show_if.equals: equals cannot be used with \"t1\", a text question; use answered",
    );
}

#[test]
fn condition_values_must_exist() {
    assert_error(
        &shown_if("{question: s1, equals: ful}"),
        "show_if.equals: there is no option \"ful\" in question \"s1\" (did you mean \"full\"?)",
    );
    assert_error(
        &shown_if("{question: s1, in: [full, partial]}"),
        "show_if.in[1]: there is no option \"partial\" in question \"s1\"",
    );
    assert_error(
        &shown_if("{question: q1, equals: 4}"),
        "show_if.equals: 4 is not a level of question \"q1\"; use 1, 2 or 3",
    );
    assert_error(
        &shown_if("{question: c1, includes: k2}"),
        "show_if.includes: there is no criterion \"k2\" in question \"c1\"",
    );
    assert_error(
        &shown_if("{question: m1, includes: z}"),
        "show_if.includes: there is no option \"z\" in question \"m1\"",
    );
    assert_error(
        &shown_if("{question: y1, equals: yes}"),
        "show_if.equals: must be true or false, not \"yes\"",
    );
    assert_error(
        &shown_if("{question: n1, equals: big}"),
        "show_if.equals: must be a number",
    );
}

#[test]
fn condition_shapes() {
    assert_error(
        &shown_if("{question: t1, answered: false}"),
        "show_if.answered: must be true (answered: true)",
    );
    assert_error(
        &shown_if("{question: q1, equals: 1, at_least: 1}"),
        "domains[0].questions[7].show_if: use only one of equals and at_least in a condition",
    );
    assert_error(
        &shown_if("{question: q1}"),
        "domains[0].questions[7].show_if: add one test: equals, in, includes, at_least, at_most or answered",
    );
    assert_error(
        &shown_if("{all: []}"),
        "domains[0].questions[7].show_if.all: list at least one condition",
    );
    assert_error(
        &shown_if("{all: [{question: q1, equals: 1}], question: q1}"),
        "domains[0].questions[7].show_if: \"all\" must be the only field of its condition",
    );
    assert_error(
        &shown_if("{question: q1, equal: 1}"),
        "domains[0].questions[7].show_if: unknown field \"equal\" (did you mean \"equals\"?)",
    );
    assert_error(
        &shown_if("{any: [{question: q1, equals: 1}, {not: {question: s1, equals: nope}}]}"),
        "domains[0].questions[7].show_if.any[1].not.equals: there is no option \"nope\"",
    );
    assert_error(
        &shown_if("{question: q1, in: 2}"),
        "show_if.in: must be a list of values, not a number",
    );
    assert_error(&shown_if("always"), "show_if: must be a condition");
}

#[test]
fn hostile_documents_get_one_document_error() {
    for input in [
        &b""[..],
        b"  \n",
        b"\0\0",
        b"\xff\xfe k",
        b"- a\n- b\n",
        b"just text",
    ] {
        let errors = load(input).unwrap_err();
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(errors[0].path, "(document)");
    }
    let top = load(b"- a\n").unwrap_err();
    assert!(top[0].message.contains("the top level must be a mapping"));
    let big = vec![b' '; MAX_DEFINITION_BYTES + 1];
    assert!(load(&big).unwrap_err()[0]
        .message
        .contains("over the limit"));
}

#[test]
fn hostile_volumes_are_refused_quickly() {
    use std::time::{Duration, Instant};
    let start = Instant::now();
    // Many unknown fields: reporting stops at a cap.
    let mut yaml = doc("", "");
    for i in 0..60_000 {
        yaml.push_str(&format!("f{i}: x\n"));
    }
    let errors = load(yaml.as_bytes()).unwrap_err();
    assert_eq!(errors.len(), 501);
    assert!(errors[500].message.contains("stopped after 500 errors"));
    // One enormous field name.
    let yaml = doc(&format!("{}: x", "k".repeat(1_500_000)), "");
    assert_eq!(load(yaml.as_bytes()).unwrap_err().len(), 1);
    // Many text fragments joined back together.
    let fragments: String = (0..40_000).map(|i| format!(", w {i}")).collect();
    let yaml = doc(
        "",
        &format!("      - {{key: q9, type: text, text: Q{fragments}}}"),
    );
    assert!(load(yaml.as_bytes()).is_err());
    assert!(
        start.elapsed() < Duration::from_secs(20),
        "{:?}",
        start.elapsed()
    );
}
