//! Several instances behind a real load balancer (issue 25): two `dma serve` processes on one
//! fresh PostgreSQL database behind HAProxy on loopback. A person signs in, answers and
//! submits through the balancer, with requests landing on both instances; one instance is
//! stopped half-way while requests keep coming (one of them still arriving at it): nothing is
//! lost, the request in flight is answered before the instance exits, no one is signed out.
//! The deployment it proves is the one docs/operations.md describes.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use diesel::prelude::*;
use dma::db::Backend;
use dma::services::auth::roles::Role;
use reqwest::StatusCode;

use crate::assessment_flow::{answers_of, fixture, Person, PASSWORD};
use crate::cli::{dma, free_port, wait_for_health};
use crate::helpers::{backends, create_user, Site, TestDb};
use crate::operations::{json_of, run_dma};

const HAPROXY: &str = "/usr/sbin/haproxy";
/// The key every instance shares, so a session or form token made by one is good on all.
const SECRET_KEY: &str = "multi-instance-test-secret-key-0123456789";

/// The balancer's address, as a place pages are served from.
struct Balancer {
    address: String,
}

impl Site for Balancer {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }
}

/// Child processes that must not outlive the test, whatever happens in it.
struct Children(Vec<Child>);

impl Drop for Children {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn haproxy_config(dir: &Path, front: u16, servers: &[(&str, u16)]) -> PathBuf {
    let mut config = format!(
        "global\n\
         \x20   maxconn 512\n\
         defaults\n\
         \x20   mode http\n\
         \x20   timeout connect 2s\n\
         \x20   timeout client 30s\n\
         \x20   timeout server 30s\n\
         \x20   retries 3\n\
         \x20   option redispatch\n\
         \x20   retry-on conn-failure empty-response response-timeout\n\
         frontend web\n\
         \x20   bind 127.0.0.1:{front}\n\
         \x20   default_backend dma\n\
         backend dma\n\
         \x20   balance roundrobin\n\
         \x20   option httpchk GET /readyz\n\
         \x20   http-check expect status 200\n\
         \x20   default-server inter 500ms fall 2 rise 2\n"
    );
    for (name, port) in servers {
        config.push_str(&format!("    server {name} 127.0.0.1:{port} check\n"));
    }
    let path = dir.join("haproxy.cfg");
    std::fs::write(&path, config).unwrap();
    path
}

fn serve(db_url: &str, data_dir: &Path, name: &str, port: u16, public: &str) -> Child {
    let mut child = dma()
        .current_dir(data_dir)
        .env("DATABASE_URL", db_url)
        .env("DMA_DATA_DIR", data_dir)
        .env("DMA_SECRET_KEY", SECRET_KEY)
        .env("DMA_INSTANCE_NAME", name)
        .env("DMA_BASE_URL", public)
        .env("DMA_WORKERS", "2")
        .env("DMA_DB_POOL_SIZE", "4")
        .args(["serve", "--bind", &format!("127.0.0.1:{port}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    assert!(
        wait_for_health(port, &mut child),
        "instance {name} never became healthy"
    );
    child
}

fn instance_of(res: &reqwest::Response) -> String {
    res.headers()
        .get("x-dma-instance")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default()
}

/// Which instances answer a run of requests through the balancer.
async fn instances_answering(site: &Balancer, requests: usize) -> Vec<String> {
    let client = reqwest::Client::new();
    let mut seen = Vec::new();
    for _ in 0..requests {
        if let Ok(res) = client.get(site.url("/readyz")).send().await {
            if res.status() == StatusCode::OK {
                seen.push(instance_of(&res));
            }
        }
    }
    seen
}

/// A sign-in form sent slowly to one instance: half the body, a signal on `ready`, a pause in
/// which the instance is told to stop, then the rest. Returns the response as text.
fn slow_request(port: u16, ready: std::sync::mpsc::Sender<()>) -> String {
    use std::io::{Read, Write};
    let body = b"email=someone%40example.nhs.uk&password=not-the-password&csrf_token=none";
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        stream,
        "POST /login HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .unwrap();
    stream.write_all(&body[..20]).unwrap();
    stream.flush().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    ready.send(()).unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    stream.write_all(&body[20..]).unwrap();
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    response
}

#[tokio::test]
async fn two_instances_behind_haproxy_lose_nothing_when_one_stops() {
    if !backends().contains(&Backend::Postgres) {
        return;
    }
    if !Path::new(HAPROXY).exists() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true but {HAPROXY} is missing (apt-get install haproxy)"
        );
        eprintln!("skipped: {HAPROXY} is not installed");
        return;
    }
    let db = TestDb::new(Backend::Postgres);
    let url = db.url_string();
    let work = tempfile::tempdir().unwrap();
    let front = free_port();
    let public = format!("http://127.0.0.1:{front}");

    // The one-time step before any instance starts: migrate, then load the demo registry,
    // question set and open cycle.
    let migrated = json_of(run_dma(work.path(), &url, &[], &["migrate"]));
    assert!(!migrated["applied"].as_array().unwrap().is_empty());
    json_of(run_dma(work.path(), &url, &[], &["demo", "load"]));
    let pool = dma::db::Db::open(&db.url, 2).await.unwrap();
    let trust: i64 = pool
        .read(|conn| {
            use dma::db::schema::organisations as o;
            Ok(o::table
                .filter(o::ods_code.eq("RZ1"))
                .select(o::id)
                .first(conn)?)
        })
        .await
        .unwrap();
    create_user(
        &pool,
        "approver@rz1.example.nhs.uk",
        Role::OrgApprover,
        Some(trust),
        PASSWORD,
    )
    .await;

    let mut children = Children(Vec::new());
    let ports = [("a", free_port()), ("b", free_port())];
    for (name, port) in ports {
        let data = work.path().join(name);
        std::fs::create_dir_all(&data).unwrap();
        children.0.push(serve(&url, &data, name, port, &public));
    }
    let config = haproxy_config(work.path(), front, &ports);
    let check = Command::new(HAPROXY)
        .args(["-c", "-f"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    children.0.push(
        Command::new(HAPROXY)
            .args(["-db", "-f"])
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let site = Balancer { address: public };
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let seen = instances_answering(&site, 4).await;
        if seen.iter().any(|i| i == "a") && seen.iter().any(|i| i == "b") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "HAProxy never used both: {seen:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Sign in and answer half the domains through the balancer: both instances serve them.
    let approver = Person::sign_in(&site, "approver@rz1.example.nhs.uk").await;
    let dashboard = approver.get(&site, "/dashboard").await;
    let mut seen = vec![instance_of(&dashboard)];
    let html = dashboard.text().await.unwrap();
    let start = html.find("href=\"/assessments/").expect("no assessment") + 6;
    let base: String = html[start..].chars().take_while(|c| *c != '"').collect();
    let answers = answers_of("answers-wgll-acute-complete.yaml");
    let domains = [
        "strategy",
        "governance",
        "infrastructure",
        "cyber",
        "workforce",
        "citizens",
        "clinical-care",
        "population-health",
    ];
    for d in &domains[..4] {
        approver.complete_domain(&site, &base, d, &answers).await;
        seen.push(instance_of(&approver.get(&site, &base).await));
    }
    assert!(
        seen.iter().any(|i| i == "a") && seen.iter().any(|i| i == "b"),
        "one instance served everything: {seen:?}"
    );

    // Stop instance a (SIGTERM, as an orchestrator would) while the person keeps loading
    // pages: every request is answered, none is sent to sign in again.
    let running = Arc::new(AtomicBool::new(true));
    let answered = Arc::new(AtomicUsize::new(0));
    let failures = Arc::new(Mutex::new(Vec::new()));
    let mut load = Vec::new();
    for _ in 0..4 {
        let (running, answered, failures) = (running.clone(), answered.clone(), failures.clone());
        let client = approver.client.clone();
        let page = site.url(&base);
        load.push(tokio::spawn(async move {
            while running.load(Ordering::Relaxed) {
                match client.get(&page).send().await {
                    Ok(res) if res.status() == StatusCode::OK => {
                        answered.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(res) => failures.lock().unwrap().push(format!(
                        "{} from {:?}",
                        res.status(),
                        instance_of(&res)
                    )),
                    Err(e) => failures.lock().unwrap().push(e.to_string()),
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    // And one request in flight on instance a itself when the signal comes: its body is
    // still arriving, so a drained shutdown must wait for it and answer it.
    let (ready, is_ready) = std::sync::mpsc::channel();
    let in_flight = tokio::task::spawn_blocking(move || slow_request(ports[0].1, ready));
    tokio::task::spawn_blocking(move || is_ready.recv())
        .await
        .unwrap()
        .unwrap();
    let stopping = &mut children.0[0];
    let term = Command::new("kill")
        .args(["-TERM", &stopping.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    let stop_deadline = Instant::now() + Duration::from_secs(40);
    let exit = loop {
        if let Some(status) = stopping.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < stop_deadline, "instance a did not stop");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(exit.success(), "instance a did not stop cleanly: {exit}");
    let answer = in_flight.await.unwrap();
    assert!(
        answer.starts_with("HTTP/1.1 4"),
        "the request in flight when a stopped was not answered: {answer:?}"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    running.store(false, Ordering::Relaxed);
    for task in load {
        task.await.unwrap();
    }
    let failures = failures.lock().unwrap().clone();
    assert!(
        failures.is_empty(),
        "requests failed while a stopped: {failures:?}"
    );
    assert!(
        answered.load(Ordering::Relaxed) > 20,
        "too little load to prove anything"
    );

    // The rest of the assessment, and the submission, on the instance that is left.
    for d in &domains[4..] {
        approver.complete_domain(&site, &base, d, &answers).await;
    }
    let form = approver.get(&site, &format!("{base}/submit")).await;
    assert_eq!(instance_of(&form), "b");
    let csrf = crate::helpers::csrf_from(&form.text().await.unwrap());
    let res = approver
        .post(
            &site,
            &format!("{base}/submit"),
            &[
                ("csrf_token".into(), csrf),
                ("name".into(), "Priya Shah".into()),
                ("job_title".into(), "Chief Information Officer".into()),
                ("declaration".into(), "yes".into()),
            ],
        )
        .await;
    assert_eq!(
        res.status(),
        StatusCode::SEE_OTHER,
        "{}",
        res.text().await.unwrap()
    );

    // Nothing lost: the stored scores are exactly those of every answer given, on both sides
    // of the stop.
    let expected: serde_json::Value =
        serde_json::from_str(&fixture("answers-wgll-acute-complete.expected.json")).unwrap();
    let id: i64 = base.trim_start_matches("/assessments/").parse().unwrap();
    let (_, _, stored) = pool
        .read(move |conn| dma::services::assessments::current_scores(conn, id))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(dma::domain::scoring::cli_json(&stored), expected);
}
