//! The real `dma` binary, as an operator runs it.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::helpers::{backends, TestDb};

pub fn dma() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_dma"));
    cmd.env_remove("DATABASE_URL")
        .env_remove("DMA_CONFIG")
        .env("RUST_LOG", "warn");
    cmd
}

pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub(crate) fn wait_for_health(port: u16, child: &mut std::process::Child) -> bool {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("dma serve exited early: {status}");
        }
        if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            use std::io::{Read, Write};
            let _ = s.write_all(b"GET /healthz HTTP/1.0\r\nHost: localhost\r\n\r\n");
            let mut body = String::new();
            let _ = s.read_to_string(&mut body);
            if body.starts_with("HTTP/1.0 200") || body.starts_with("HTTP/1.1 200") {
                return true;
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

#[test]
fn help_explains_every_command() {
    let out = dma().arg("--help").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    for command in ["serve", "migrate"] {
        assert!(text.contains(command), "--help lacks {command}: {text}");
    }
    let out = dma().args(["serve", "--help"]).output().unwrap();
    assert!(String::from_utf8(out.stdout).unwrap().contains("--bind"));
}

#[test]
fn serve_in_an_empty_folder_uses_embedded_sqlite_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut child = dma()
        .current_dir(dir.path())
        .args(["serve", "--bind", &format!("127.0.0.1:{port}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let healthy = wait_for_health(port, &mut child);
    if !healthy {
        let _ = child.kill();
    }
    assert!(healthy, "/healthz never answered");
    assert!(
        dir.path().join("data/dma.sqlite3").exists(),
        "no embedded database created"
    );
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(40);
    let exit = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "did not stop after SIGTERM");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(exit.success(), "unclean exit after SIGTERM: {exit}");
}

#[test]
fn migrate_reports_what_it_applied_on_each_backend() {
    for backend in backends() {
        let db = TestDb::new(backend);
        let dir = tempfile::tempdir().unwrap();
        let out = dma()
            .current_dir(dir.path())
            .env("DATABASE_URL", db.url_string())
            .arg("migrate")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "[{backend}] {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        // Every migration of the backend's folder, once (the two folders hold the same set).
        let count = |b: &str| {
            std::fs::read_dir(format!("{}/migrations/{b}", env!("CARGO_MANIFEST_DIR")))
                .unwrap()
                .count()
        };
        assert_eq!(count("postgres"), count("sqlite"));
        assert_eq!(
            report["applied"].as_array().unwrap().len(),
            count("sqlite"),
            "[{backend}] {report}"
        );
        assert!(
            !report["database"].as_str().unwrap().contains("postgres://"),
            "URL printed"
        );
    }
}

#[test]
fn a_bad_setting_stops_start_up_with_the_key_named() {
    let dir = tempfile::tempdir().unwrap();
    let out = dma()
        .current_dir(dir.path())
        .env("DMA_BIND", "everywhere")
        .env(
            "DMA_SECRET_KEY",
            "0123456789abcdef0123456789abcdef-secret-value",
        )
        .arg("serve")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("DMA_BIND"), "{stderr}");
    assert!(!stderr.contains("secret-value"), "secret printed: {stderr}");
}

fn fixture(name: &str) -> String {
    format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn score_prints_exactly_the_expected_scores_of_the_shared_examples() {
    for case in ["complete", "partial"] {
        let out = dma()
            .args(["score", "--questionnaire", &fixture("wgll-acute-2025.yaml")])
            .args([
                "--answers",
                &fixture(&format!("answers-wgll-acute-{case}.yaml")),
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let printed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let expected: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(fixture(&format!("answers-wgll-acute-{case}.expected.json")))
                .unwrap(),
        )
        .unwrap();
        assert_eq!(printed, expected, "{case}");
    }
}

#[test]
fn score_refuses_bad_answers_with_every_error_by_key() {
    let dir = tempfile::tempdir().unwrap();
    let answers = dir.path().join("a.yaml");
    std::fs::write(
        &answers,
        "questionnaire: wgll-acute\nversion: \"2025.1\"\nanswers:\n  wl-strategy: 9\n  sf-epr: maybe\n  no-such-question: 1\n  sp-mfa: {na: true}\n",
    )
    .unwrap();
    let out = dma()
        .args(["score", "--questionnaire", &fixture("wgll-acute-2025.yaml")])
        .arg("--answers")
        .arg(&answers)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(out.stdout.is_empty(), "scores printed despite errors");
    let stderr = String::from_utf8_lossy(&out.stderr);
    for key in ["wl-strategy", "sf-epr", "no-such-question", "sp-mfa"] {
        assert!(stderr.contains(key), "no error for {key}: {stderr}");
    }
}

#[test]
fn check_reports_every_error_with_its_path_and_refuses_hostile_files() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.yaml");
    std::fs::write(
        &bad,
        "key: Bad Key\nversion: \"1\"\ntitle: T\nsettings: [acute]\ndomains:\n  - key: d\n    title: D\n    questions:\n      - {key: q1, type: scale, text: Q, levles: []}\n      - {key: q1, type: yes_no, text: Again}\n",
    )
    .unwrap();
    let out = dma()
        .args(["questionnaire", "check"])
        .arg(&bad)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("key:"), "{stderr}");
    assert!(
        stderr.contains("domains[0].questions[0]: unknown field \"levles\""),
        "{stderr}"
    );
    assert!(
        stderr.contains("domains[0].questions[1].key"),
        "duplicate key not reported: {stderr}"
    );

    let binary = dir.path().join("binary.yaml");
    std::fs::write(&binary, [0u8, 159, 146, 150, 0, 1]).unwrap();
    let empty = dir.path().join("empty.yaml");
    std::fs::write(&empty, "  \n").unwrap();
    for file in [binary, empty, dir.path().join("missing.yaml")] {
        let out = dma()
            .args(["questionnaire", "check"])
            .arg(&file)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{}", file.display());
        assert!(!out.stderr.is_empty());
    }
}

#[test]
fn import_publish_export_round_trip_on_each_backend() {
    for backend in backends() {
        let db = TestDb::new(backend);
        let dir = tempfile::tempdir().unwrap();
        let run = |args: &[&str]| {
            dma()
                .current_dir(dir.path())
                .env("DATABASE_URL", db.url_string())
                .args(args)
                .output()
                .unwrap()
        };
        let example = fixture("wgll-acute-2025.yaml");
        let out = run(&["questionnaire", "import", &example]);
        assert!(
            out.status.success(),
            "[{backend}] {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let outcome: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(outcome["status"], "draft");
        // A draft may be replaced.
        let out = run(&["questionnaire", "import", &example]);
        let outcome: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(outcome["replaced"], true, "[{backend}]");
        assert!(run(&["questionnaire", "publish", "wgll-acute", "2025.1"])
            .status
            .success());
        // Once published, nothing replaces it.
        let out = run(&["questionnaire", "import", &example]);
        assert!(
            !out.status.success(),
            "[{backend}] published version replaced"
        );
        assert!(String::from_utf8_lossy(&out.stderr).contains("published"));

        for format in ["yaml", "json"] {
            let out = run(&[
                "questionnaire",
                "export",
                "wgll-acute",
                "2025.1",
                "--format",
                format,
            ]);
            assert!(
                out.status.success(),
                "[{backend}] export failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let exported = dma::domain::questionnaire::load(&out.stdout).unwrap();
            let original =
                dma::domain::questionnaire::load(&std::fs::read(&example).unwrap()).unwrap();
            assert_eq!(exported, original, "[{backend}] {format} export differs");
        }
        let out = run(&["questionnaire", "list"]);
        let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(list[0]["status"], "published", "[{backend}] {list}");
        let out = run(&["questionnaire", "export", "wgll-acute", "1999"]);
        assert_eq!(out.status.code(), Some(1));
        assert!(String::from_utf8_lossy(&out.stderr).contains("no such"));
    }
}

#[test]
fn demo_load_gives_every_role_something_to_do_and_only_once() {
    use diesel::prelude::*;
    for backend in backends() {
        let db = TestDb::new(backend);
        let dir = tempfile::tempdir().unwrap();
        let run = || {
            dma()
                .current_dir(dir.path())
                .env("DATABASE_URL", db.url_string())
                .args(["demo", "load"])
                .output()
                .unwrap()
        };
        let out = run();
        assert!(
            out.status.success(),
            "[{backend}] {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(summary["loaded"], true);
        let mut conn = db.connect();
        use dma::db::schema::{assessments, cycles, organisations, users};
        let n_users: i64 = users::table.count().get_result(&mut conn).unwrap();
        assert_eq!(n_users, 8, "[{backend}]");
        let n_cycles: i64 = cycles::table.count().get_result(&mut conn).unwrap();
        assert_eq!(n_cycles, 1);
        let demo_trust_assessments: i64 = assessments::table
            .inner_join(organisations::table.on(organisations::id.eq(assessments::organisation_id)))
            .filter(organisations::ods_code.eq("RZ1"))
            .count()
            .get_result(&mut conn)
            .unwrap();
        assert_eq!(
            demo_trust_assessments, 1,
            "[{backend}] the demo approver has nothing to answer"
        );
        let hash: Option<String> = users::table
            .filter(users::email.eq("approver@northfield.dma.example"))
            .select(users::password_hash)
            .first(&mut conn)
            .unwrap();
        assert!(dma::services::auth::password::verify(
            dma::services::demo::DEMO_PASSWORD,
            hash.as_deref()
        ));
        // The CIO of two trusts belongs to a second one through a membership.
        let n_memberships: i64 = dma::db::schema::memberships::table
            .count()
            .get_result(&mut conn)
            .unwrap();
        assert_eq!(n_memberships, 1, "[{backend}]");
        drop(conn);
        let again: serde_json::Value = serde_json::from_slice(&run().stdout).unwrap();
        assert_eq!(again["loaded"], false, "[{backend}] demo data loaded twice");
    }
}

#[test]
fn reminders_run_queues_what_is_due_at_the_given_moment_once() {
    for backend in backends() {
        let db = TestDb::new(backend);
        let dir = tempfile::tempdir().unwrap();
        let run = |args: &[&str]| {
            dma()
                .current_dir(dir.path())
                .env("DATABASE_URL", db.url_string())
                .env("DMA_DATA_DIR", dir.path())
                .args(args)
                .output()
                .unwrap()
        };
        assert!(run(&["demo", "load"]).status.success());
        // The demo cycle is due in 60 days: 40 days on, the 28-day reminder is due to the demo
        // trust's approver and four contributors, and to the CIO of two trusts once for each
        // (a membership makes them one of Dales Valley's people too); none of the three
        // approvers has yet heard the cycle opened (Northfield's, and the CIO for each trust).
        let later = (chrono::Utc::now().date_naive() + chrono::Duration::days(40)).to_string();
        let out = run(&["reminders", "run", "--now", &later]);
        assert!(
            out.status.success(),
            "[{backend}] {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(report["reminders"], 7, "[{backend}] {report}");
        assert_eq!(report["cycle_opened"], 3, "[{backend}] {report}");
        let again: serde_json::Value =
            serde_json::from_slice(&run(&["reminders", "run", "--now", &later]).stdout).unwrap();
        assert_eq!(again["reminders"], 0, "[{backend}] queued twice: {again}");
        assert_eq!(
            again["cycle_opened"], 0,
            "[{backend}] queued twice: {again}"
        );

        let bad = run(&["reminders", "run", "--now", "next tuesday"]);
        assert_eq!(bad.status.code(), Some(2));
        assert!(String::from_utf8_lossy(&bad.stderr).contains("\"next tuesday\" is not a date"));
    }
}
