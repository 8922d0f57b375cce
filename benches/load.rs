//! The HTTP half of the benchmark harness (`scripts/bench/run` starts the server and calls
//! this): it signs in as the seeded people of `dma demo seed` and measures, over real HTTP
//! against the running release server,
//!
//! 1. autosave at a given concurrency (requests per second, p50, p99), each virtual person
//!    changing an answer of their own organisation's assessment, as a page's autosave does;
//! 2. rendering a domain page; 3. submitting (sign-off, scoring, storing the scores);
//! 4. the national benchmark view (and, one request at a time, a closed cycle's, the view
//!    by ICB, an organisation's report and year on year) and the full CSV exports, as the
//!    auditor;
//! 6. the server's memory (resident set sampled every 100 ms, and its peak as the kernel
//!    counts it).
//!
//! It relies on the seed's layout (`src/services/seed/`): the organisation with index i has
//! `contributor{i}@bench.dma.example` and `approver{i}@bench.dma.example`, and in the open cycle
//! i % 10 of 6 or 7 is a partly answered assessment, 4 or 5 a complete one ready to submit.
//! Results go to stdout as a table and, with `--json FILE`, as JSON.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use reqwest::{redirect, Client, StatusCode};
use serde_json::{json, Value};

const PASSWORD: &str = dma::services::seed::BENCH_PASSWORD;
const DOMAIN: &str = "strategy";
const QUESTION: &str = "wl-strategy";

type Error = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug, Clone)]
struct Options {
    url: String,
    concurrency: usize,
    seconds: u64,
    submissions: usize,
    server_pid: Option<u32>,
    json: Option<String>,
    /// One group of phases only: `autosave` (autosave, domain page, submit), `capacity` (the
    /// autosave at full rate alone, which changes nothing else, so it can be repeated on one
    /// seed to compare two builds), `paced` (the paced autosave alone, at `--paced-rate`,
    /// repeatable likewise) or `reports` (report pages and exports); every phase when not
    /// given.
    only: Option<String>,
    /// The paced autosave's rate (saves per second); half of the measured capacity when not
    /// given. The harness gives the SQLite run PostgreSQL's, so both are timed under the same
    /// offered load.
    paced_rate: Option<f64>,
}

fn options() -> Result<Options, Error> {
    let mut o = Options {
        url: "http://127.0.0.1:8099".into(),
        concurrency: 64,
        seconds: 20,
        submissions: 256,
        server_pid: None,
        json: None,
        only: None,
        paced_rate: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = || args.next().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--url" => o.url = value()?,
            "--concurrency" => o.concurrency = value()?.parse()?,
            "--seconds" => o.seconds = value()?.parse()?,
            "--submissions" => o.submissions = value()?.parse()?,
            "--server-pid" => o.server_pid = Some(value()?.parse()?),
            "--json" => o.json = Some(value()?),
            "--only" => o.only = Some(value()?),
            "--paced-rate" => o.paced_rate = Some(value()?.parse()?),
            // cargo bench passes this to every bench target.
            "--bench" => {}
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    Ok(o)
}

/// A signed-in person: their own cookie jar and the session's CSRF token.
struct Person {
    client: Client,
    csrf: String,
    assessment: i64,
}

fn between<'a>(text: &'a str, before: &str, after: &str) -> Option<&'a str> {
    let start = text.find(before)? + before.len();
    let end = text[start..].find(after)? + start;
    Some(&text[start..end])
}

/// The body of a GET, as text.
async fn page_text(client: &Client, url: String) -> Result<String, Error> {
    Ok(client.get(url).send().await?.text().await?)
}

async fn sign_in(base: &str, email: &str) -> Result<Person, Error> {
    let client = Client::builder()
        .cookie_store(true)
        .redirect(redirect::Policy::none())
        .pool_max_idle_per_host(4)
        .build()?;
    let form = page_text(&client, format!("{base}/login")).await?;
    let csrf = between(&form, "name=\"csrf_token\" value=\"", "\"")
        .ok_or("no CSRF token on the sign-in page")?
        .to_string();
    let r = client
        .post(format!("{base}/login"))
        .form(&[
            ("email", email),
            ("password", PASSWORD),
            ("csrf_token", &csrf),
        ])
        .send()
        .await?;
    if r.status() != StatusCode::SEE_OTHER {
        return Err(format!("signing in as {email} answered {}", r.status()).into());
    }
    let dashboard = page_text(&client, format!("{base}/dashboard")).await?;
    let csrf = between(&dashboard, "name=\"csrf_token\" value=\"", "\"")
        .ok_or("no CSRF token on the dashboard")?
        .to_string();
    // The open cycle's assessment is listed first on the dashboard (0: none, the auditor).
    let assessment = between(&dashboard, "href=\"/assessments/", "\"")
        .and_then(|s| s.split('/').next())
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    Ok(Person {
        client,
        csrf,
        assessment,
    })
}

/// Sign in the people with these emails, a few at a time (each sign-in is an argon2 check).
async fn sign_in_all(base: &str, emails: Vec<String>) -> Result<Vec<Person>, Error> {
    let mut people = Vec::with_capacity(emails.len());
    for chunk in emails.chunks(8) {
        let tasks: Vec<_> = chunk
            .iter()
            .map(|e| {
                let (base, e) = (base.to_string(), e.clone());
                tokio::spawn(async move { sign_in(&base, &e).await })
            })
            .collect();
        for (t, email) in tasks.into_iter().zip(chunk) {
            let person = t.await??;
            if person.assessment == 0 {
                return Err(format!("{email} has no assessment on the dashboard").into());
            }
            people.push(person);
        }
    }
    Ok(people)
}

#[derive(Debug, Default)]
struct Latencies {
    samples: Vec<Duration>,
    errors: usize,
    first_error: Option<String>,
}

impl Latencies {
    fn merge(&mut self, other: Latencies) {
        self.samples.extend(other.samples);
        self.errors += other.errors;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
    }

    fn fail(&mut self, what: String) {
        self.errors += 1;
        self.first_error.get_or_insert(what);
    }

    fn summary(mut self, elapsed: Duration) -> Value {
        self.samples.sort();
        let pct = |p: f64| -> f64 {
            if self.samples.is_empty() {
                return 0.0;
            }
            let i = ((self.samples.len() as f64 - 1.0) * p).round() as usize;
            self.samples[i].as_secs_f64() * 1000.0
        };
        json!({
            "requests": self.samples.len(),
            "errors": self.errors,
            "first_error": self.first_error,
            "seconds": elapsed.as_secs_f64(),
            "per_second": self.samples.len() as f64 / elapsed.as_secs_f64().max(1e-9),
            "p50_ms": pct(0.50),
            "p99_ms": pct(0.99),
            "max_ms": pct(1.0),
        })
    }
}

/// The merged latencies of finished tasks; a task that panicked counts as an error.
async fn gather(tasks: Vec<tokio::task::JoinHandle<Latencies>>) -> Latencies {
    let mut all = Latencies::default();
    for t in tasks {
        match t.await {
            Ok(l) => all.merge(l),
            Err(e) => all.fail(format!("a load task failed: {e}")),
        }
    }
    all
}

/// Each person changes one answer back and forth for `seconds`, sending the revision the
/// previous save returned, exactly as the page's autosave script does: with no `pace`, as
/// fast as the answers come back (the service's capacity); with a pace, one save per person
/// per `pace`, timed from when it was due so a slow answer counts against the next one too.
async fn autosave(
    base: &str,
    people: &[Person],
    warmup: Duration,
    seconds: u64,
    pace: Option<Duration>,
) -> Value {
    let start = Instant::now();
    let measure_from = start + warmup;
    let until = measure_from + Duration::from_secs(seconds);
    let tasks: Vec<_> = people
        .iter()
        .enumerate()
        .map(|(n, p)| {
            let (client, csrf, id, base) = (
                p.client.clone(),
                p.csrf.clone(),
                p.assessment,
                base.to_string(),
            );
            let count = u32::try_from(people.len()).unwrap_or(1).max(1);
            tokio::spawn(async move {
                let mut lat = Latencies::default();
                let page = match client
                    .get(format!("{base}/assessments/{id}/domains/{DOMAIN}"))
                    .send()
                    .await
                {
                    Ok(r) => r.text().await.unwrap_or_default(),
                    Err(e) => {
                        lat.fail(e.to_string());
                        return lat;
                    }
                };
                let mut revision: i64 =
                    between(&page, &format!("name=\"rev.{QUESTION}\" value=\""), "\"")
                        .and_then(|s| s.parse().ok())
                        .unwrap_or(0);
                let mut value = 2;
                // Paced people start spread over one interval, not all at once.
                let mut due = Instant::now()
                    + pace.map_or(Duration::ZERO, |p| {
                        p * u32::try_from(n).unwrap_or(0) / count
                    });
                while Instant::now() < until {
                    value = if value == 2 { 4 } else { 2 };
                    let sent = match pace {
                        Some(p) => {
                            tokio::time::sleep_until(due.into()).await;
                            let at = due;
                            due += p;
                            at
                        }
                        None => Instant::now(),
                    };
                    let r = client
                        .post(format!("{base}/assessments/{id}/autosave"))
                        .form(&[
                            ("csrf_token", csrf.clone()),
                            (&format!("present.{QUESTION}"), "1".into()),
                            (&format!("rev.{QUESTION}"), revision.to_string()),
                            (&format!("q.{QUESTION}"), value.to_string()),
                        ])
                        .send()
                        .await;
                    let outcome = match r {
                        Ok(r) if r.status() == StatusCode::OK => r.json::<Value>().await.ok(),
                        Ok(r) => {
                            let status = r.status();
                            lat.fail(format!("{status}: {}", r.text().await.unwrap_or_default()));
                            None
                        }
                        Err(e) => {
                            lat.fail(e.to_string());
                            None
                        }
                    };
                    let took = sent.elapsed();
                    if let Some(body) = outcome {
                        if let Some(r) = body["revisions"][QUESTION].as_i64() {
                            revision = r;
                        }
                        if sent >= measure_from {
                            lat.samples.push(took);
                        }
                    }
                }
                lat
            })
        })
        .collect();
    let all = gather(tasks).await;
    all.summary(until.saturating_duration_since(measure_from))
}

/// Repeated GETs of one URL per person for `seconds`.
async fn pages(
    people: &[Person],
    url: impl Fn(&Person) -> String,
    warmup: Duration,
    seconds: u64,
) -> Value {
    let start = Instant::now();
    let measure_from = start + warmup;
    let until = measure_from + Duration::from_secs(seconds);
    let tasks: Vec<_> = people
        .iter()
        .map(|p| {
            let (client, url) = (p.client.clone(), url(p));
            tokio::spawn(async move {
                let mut lat = Latencies::default();
                while Instant::now() < until {
                    let sent = Instant::now();
                    match client.get(&url).send().await {
                        Ok(r) if r.status() == StatusCode::OK => {
                            if r.bytes().await.is_ok() && sent >= measure_from {
                                lat.samples.push(sent.elapsed());
                            }
                        }
                        Ok(r) => lat.fail(format!("{url}: {}", r.status())),
                        Err(e) => lat.fail(e.to_string()),
                    }
                }
                lat
            })
        })
        .collect();
    let all = gather(tasks).await;
    all.summary(until.saturating_duration_since(measure_from))
}

/// Every approver signs off and submits their complete assessment once, `concurrency` at a time.
async fn submit(base: &str, approvers: Vec<Person>, concurrency: usize) -> Value {
    let start = Instant::now();
    let queue = std::sync::Arc::new(tokio::sync::Mutex::new(approvers));
    let tasks: Vec<_> = (0..concurrency)
        .map(|_| {
            let (queue, base) = (queue.clone(), base.to_string());
            tokio::spawn(async move {
                let mut lat = Latencies::default();
                loop {
                    let Some(p) = queue.lock().await.pop() else {
                        break;
                    };
                    let sent = Instant::now();
                    let r = p
                        .client
                        .post(format!("{base}/assessments/{}/submit", p.assessment))
                        .form(&[
                            ("csrf_token", p.csrf.as_str()),
                            ("name", "Bench Approver"),
                            ("job_title", "Chief Digital Officer"),
                            ("declaration", "yes"),
                        ])
                        .send()
                        .await;
                    match r {
                        Ok(r) if r.status() == StatusCode::SEE_OTHER => {
                            lat.samples.push(sent.elapsed())
                        }
                        Ok(r) => lat.fail(format!(
                            "submit {}: {} {}",
                            p.assessment,
                            r.status(),
                            r.text()
                                .await
                                .unwrap_or_default()
                                .chars()
                                .take(300)
                                .collect::<String>()
                        )),
                        Err(e) => lat.fail(e.to_string()),
                    }
                }
                lat
            })
        })
        .collect();
    let all = gather(tasks).await;
    all.summary(start.elapsed())
}

/// One streamed download: its size and how long it took.
async fn download(p: &Person, url: &str) -> Value {
    let start = Instant::now();
    let mut bytes = 0usize;
    let mut first_byte = None;
    match p.client.get(url).send().await {
        Ok(mut r) if r.status() == StatusCode::OK => loop {
            match r.chunk().await {
                Ok(Some(c)) => {
                    first_byte.get_or_insert_with(|| start.elapsed());
                    bytes += c.len();
                }
                Ok(None) => break,
                Err(e) => return json!({"url": url, "error": e.to_string()}),
            }
        },
        Ok(r) => return json!({"url": url, "error": r.status().to_string()}),
        Err(e) => return json!({"url": url, "error": e.to_string()}),
    }
    json!({
        "url": url,
        "bytes": bytes,
        "seconds": start.elapsed().as_secs_f64(),
        "first_byte_ms": first_byte.map(|d| d.as_secs_f64() * 1000.0),
    })
}

/// A memory figure of the server's (`VmRSS:` or `VmHWM:`), in kB, from `/proc`.
fn rss_kb(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with(field))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let o = options()?;
    let base = o.url.trim_end_matches('/').to_string();
    let mut results: BTreeMap<&str, Value> = BTreeMap::new();

    // Memory, sampled through the whole run, phase by phase.
    let phase = std::sync::Arc::new(std::sync::Mutex::new(String::from("setup")));
    let peaks = std::sync::Arc::new(std::sync::Mutex::new(BTreeMap::<String, u64>::new()));
    if let Some(pid) = o.server_pid {
        let (phase, peaks) = (phase.clone(), peaks.clone());
        tokio::spawn(async move {
            loop {
                if let Some(kb) = rss_kb(pid, "VmRSS:") {
                    let name = phase.lock().map(|p| p.clone()).unwrap_or_default();
                    if let Ok(mut m) = peaks.lock() {
                        let e = m.entry(name).or_insert(0);
                        *e = (*e).max(kb);
                    }
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
    }
    let set_phase = |name: &str| {
        if let Ok(mut p) = phase.lock() {
            *p = name.to_string();
        }
        eprintln!("== {name}");
    };

    if o.only.as_deref() != Some("reports") {
        set_phase("sign-in");
        let contributors: Vec<String> = (0..o.concurrency)
            .map(|k| format!("contributor{}@bench.dma.example", 10 * (k / 2) + 6 + k % 2))
            .collect();
        let people = sign_in_all(&base, contributors).await?;
        let paced_only = o.only.as_deref() == Some("paced");
        if paced_only && o.paced_rate.is_none() {
            return Err("--only paced needs --paced-rate".into());
        }
        let approvers: Vec<String> = (0..o.submissions)
            .map(|k| format!("approver{}@bench.dma.example", 10 * (k / 2) + 4 + k % 2))
            .collect();
        let approvers = if paced_only {
            Vec::new()
        } else {
            sign_in_all(&base, approvers).await?
        };

        let mut half = o.paced_rate.unwrap_or(0.0);
        if !paced_only {
            set_phase("autosave");
            let capacity = autosave(&base, &people, Duration::from_secs(3), o.seconds, None).await;
            // Then the same people at half that rate: the latency someone sees on a busy day
            // that is not the service's limit.
            if o.paced_rate.is_none() {
                half = capacity["per_second"].as_f64().unwrap_or(0.0) / 2.0;
            }
            results.insert("1_autosave", capacity);
            if o.only.as_deref() == Some("capacity") {
                return finish(&o, results, &peaks);
            }
        }
        if half > 0.0 {
            set_phase("autosave at half capacity");
            let pace = Duration::from_secs_f64(people.len() as f64 / half);
            let mut paced = autosave(
                &base,
                &people,
                Duration::from_secs(3),
                o.seconds,
                Some(pace),
            )
            .await;
            paced["offered_per_second"] = json!(half);
            results.insert("1_autosave_half_capacity", paced);
        }
        if paced_only {
            return finish(&o, results, &peaks);
        }

        set_phase("domain page");
        results.insert(
            "2_domain_page",
            pages(
                &people,
                |p| format!("{base}/assessments/{}/domains/{DOMAIN}", p.assessment),
                Duration::from_secs(2),
                o.seconds / 2,
            )
            .await,
        );

        set_phase("submit");
        results.insert("3_submit", submit(&base, approvers, o.concurrency).await);
    }

    if o.only.as_deref() == Some("autosave") {
        return finish(&o, results, &peaks);
    }
    set_phase("national view");
    let auditor = sign_in(&base, "auditor@bench.dma.example").await?;
    let auditors = vec![auditor];
    results.insert(
        "4_national_view",
        pages(
            &auditors,
            |_| format!("{base}/reports"),
            Duration::from_secs(2),
            o.seconds / 2,
        )
        .await,
    );

    // Eight auditors at once, each with their own session, each asking as soon as their
    // last page came back.
    let mut eight = Vec::new();
    for _ in 0..8 {
        eight.push(sign_in(&base, "auditor@bench.dma.example").await?);
    }
    results.insert(
        "4_national_view_8_auditors",
        pages(
            &eight,
            |_| format!("{base}/reports"),
            Duration::from_secs(2),
            o.seconds / 2,
        )
        .await,
    );

    // The other report pages at the same scale, one request at a time: the national view of
    // a closed cycle (cycle id 1, the oldest: all its organisations answered, so it has the
    // most scores), broken down by ICB, one organisation's report and year on year.
    let listed = page_text(&auditors[0].client, format!("{base}/reports")).await?;
    let organisation = between(&listed, "href=\"/reports/organisations/", "?")
        .ok_or("no organisation listed on the national view")?
        .to_string();
    for (key, path) in [
        (
            "4_national_view_closed_cycle",
            "/reports?cycle=1".to_string(),
        ),
        ("4_national_view_by_icb", "/reports?by=icb".to_string()),
        (
            "4_organisation_report",
            format!("/reports/organisations/{organisation}"),
        ),
        ("4_trends", "/reports/trends".to_string()),
    ] {
        results.insert(
            key,
            pages(
                &auditors,
                |_| format!("{base}{path}"),
                Duration::from_secs(1),
                o.seconds / 4,
            )
            .await,
        );
    }

    set_phase("exports");
    let mut exports = Vec::new();
    for path in ["/reports/export/scores.csv", "/reports/export/answers.csv"] {
        exports.push(download(&auditors[0], &format!("{base}{path}")).await);
    }
    results.insert("4_exports", Value::Array(exports));

    finish(&o, results, &peaks)
}

/// Adds the memory figures, prints the results and writes them to `--json`.
fn finish(
    o: &Options,
    mut results: BTreeMap<&str, Value>,
    peaks: &std::sync::Mutex<BTreeMap<String, u64>>,
) -> Result<(), Error> {
    if let Some(pid) = o.server_pid {
        let by_phase = peaks.lock().map(|m| m.clone()).unwrap_or_default();
        results.insert(
            "6_server_memory_kb",
            json!({
                "peak_rss_by_phase": by_phase,
                "vm_hwm": rss_kb(pid, "VmHWM:"),
            }),
        );
    }
    let out = serde_json::to_string_pretty(&results)?;
    println!("{out}");
    if let Some(path) = &o.json {
        std::fs::write(path, &out)?;
    }
    Ok(())
}
