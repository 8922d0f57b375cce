//! The JSON API (`/api/v1`) end to end: every documented route, as the people who may and may
//! not use it, with real tokens against a real server, on each backend. Errors must be problem
//! documents with the documented `type`; refused writes must change nothing (checked with the
//! database snapshot); and the OpenAPI document must list exactly the API routes.

use std::collections::BTreeSet;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::assessment_flow::{answers_of, fixture};
use crate::browser::{snapshot, Browser, World, PASSWORD};
use crate::helpers::{backends, TestApp};

const PROBLEM: &str = "https://dma.example/problems/";

/// A program holding one person's token.
struct Client<'a> {
    app: &'a TestApp,
    token: String,
}

struct Reply {
    status: StatusCode,
    content_type: String,
    headers: reqwest::header::HeaderMap,
    text: String,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text))
    }

    /// Assert a problem document of `kind` with `status`, and return it.
    fn problem(&self, status: u16, kind: &str) -> Value {
        assert_eq!(self.status.as_u16(), status, "{}", self.text);
        assert_eq!(
            self.content_type, "application/problem+json",
            "{}",
            self.text
        );
        let p = self.json();
        assert_eq!(p["type"], format!("{PROBLEM}{kind}"), "{p}");
        assert_eq!(p["status"], status);
        assert!(p["title"].as_str().is_some_and(|t| !t.is_empty()));
        assert!(p["detail"].as_str().is_some_and(|t| !t.is_empty()));
        p
    }

    fn ok(&self) -> Value {
        assert!(self.status.is_success(), "{}: {}", self.status, self.text);
        self.json()
    }
}

impl<'a> Client<'a> {
    async fn send(&self, method: Method, path: &str, body: Option<(&str, Vec<u8>)>) -> Reply {
        let mut req = self
            .app
            .client
            .request(method, self.app.url(path))
            .bearer_auth(&self.token);
        if let Some((content_type, bytes)) = body {
            req = req.header("content-type", content_type).body(bytes);
        }
        let res = req.send().await.unwrap();
        let status = res.status();
        let headers = res.headers().clone();
        let content_type = headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        Reply {
            status,
            content_type,
            headers,
            text: res.text().await.unwrap(),
        }
    }

    async fn get(&self, path: &str) -> Reply {
        self.send(Method::GET, path, None).await
    }

    async fn json(&self, method: Method, path: &str, body: Value) -> Reply {
        self.send(
            method,
            path,
            Some(("application/json", body.to_string().into_bytes())),
        )
        .await
    }

    async fn raw(&self, path: &str, content_type: &str, body: &[u8]) -> Reply {
        self.send(Method::POST, path, Some((content_type, body.to_vec())))
            .await
    }
}

/// The seeded world plus a token for each of its people.
struct Setup {
    world: World,
    tokens: Vec<(&'static str, String)>,
}

impl Setup {
    async fn new(app: &TestApp) -> Setup {
        let world = World::seed(app).await;
        let tokens = app
            .db
            .write(|conn| {
                let actor = dma::services::audit::Actor::system("test");
                let mut out = Vec::new();
                for email in [
                    "admin@example.nhs.uk",
                    "auditor@example.nhs.uk",
                    "viewer@example.nhs.uk",
                    "approver@a.nhs.uk",
                    "contributor@a.nhs.uk",
                    "approver@b.nhs.uk",
                    "contributor@b.nhs.uk",
                ] {
                    let user = dma::services::auth::users::find_by_email(conn, email)?.unwrap();
                    let (_, token) =
                        dma::services::auth::api_token::create(conn, &actor, user.id, "test", 30)?;
                    out.push((email, token));
                }
                Ok(out)
            })
            .await
            .unwrap();
        Setup { world, tokens }
    }

    fn as_<'a>(&self, app: &'a TestApp, email: &str) -> Client<'a> {
        let token = self
            .tokens
            .iter()
            .find(|(e, _)| *e == email)
            .map(|(_, t)| t.clone())
            .unwrap();
        Client { app, token }
    }
}

const ADMIN: &str = "admin@example.nhs.uk";
const AUDITOR: &str = "auditor@example.nhs.uk";
const VIEWER: &str = "viewer@example.nhs.uk";
const APPROVER_A: &str = "approver@a.nhs.uk";
const CONTRIBUTOR_A: &str = "contributor@a.nhs.uk";
const APPROVER_B: &str = "approver@b.nhs.uk";
const CONTRIBUTOR_B: &str = "contributor@b.nhs.uk";

/// Every `$ref` in the document names a schema the document has.
fn refs(v: &Value, out: &mut BTreeSet<String>) {
    match v {
        Value::Object(m) => {
            if let Some(Value::String(r)) = m.get("$ref") {
                out.insert(r.clone());
            }
            m.values().for_each(|x| refs(x, out));
        }
        Value::Array(a) => a.iter().for_each(|x| refs(x, out)),
        _ => {}
    }
}

#[tokio::test]
async fn the_openapi_document_lists_exactly_the_api_routes_and_the_docs_page_shows_it() {
    for backend in backends() {
        let app = TestApp::spawn(backend).await;
        let res = app.get("/api/openapi.json").await;
        assert_eq!(res.status(), 200);
        let doc: Value = res.json().await.unwrap();
        assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
        let mut documented = BTreeSet::new();
        let mut ids = BTreeSet::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                documented.insert((method.to_uppercase(), path.clone()));
                assert!(
                    ids.insert(op["operationId"].as_str().unwrap().to_string()),
                    "operationId {} twice",
                    op["operationId"]
                );
                for status in ["200", "201"] {
                    if let Some(r) = op["responses"].get(status) {
                        assert!(
                            r["content"].is_object(),
                            "{method} {path} {status} has no body"
                        );
                    }
                }
                assert_eq!(
                    op["responses"]["401"]["content"]["application/problem+json"]["schema"]["$ref"],
                    "#/components/schemas/Problem",
                    "{method} {path}"
                );
            }
        }
        let routed: BTreeSet<(String, String)> = dma::web::ROUTES
            .iter()
            .filter(|(_, p)| p.starts_with("/api/v1/"))
            .map(|(m, p)| (m.to_string(), p.to_string()))
            .collect();
        assert_eq!(
            documented, routed,
            "[{backend}] ROUTES and the OpenAPI document differ"
        );
        let mut all = BTreeSet::new();
        refs(&doc, &mut all);
        for r in &all {
            let name = r.strip_prefix("#/components/schemas/").unwrap();
            assert!(
                doc["components"]["schemas"][name].is_object(),
                "dangling {r}"
            );
        }
        assert_eq!(doc["security"][0]["token"], json!([]));
        assert_eq!(
            doc["components"]["securitySchemes"]["token"]["scheme"],
            "bearer"
        );

        // The page: every operation and problem type, nothing from elsewhere, no script of
        // its own.
        let res = app.get("/api/docs").await;
        assert_eq!(res.status(), 200);
        let html = res.text().await.unwrap();
        for (method, path) in &routed {
            assert!(
                html.contains(&format!(
                    ">{method}</strong> <code class=\"dma-code\">{path}</code>"
                )),
                "{method} {path} missing from the docs page"
            );
        }
        let api_md = fixture("../../docs/api.md");
        for (kind, status, _) in dma::web::errors::PROBLEM_KINDS {
            assert!(
                html.contains(&format!("{PROBLEM}{kind}")),
                "{kind} not on the page"
            );
            assert!(
                api_md.contains(&format!("{PROBLEM}{kind}")),
                "{kind} not in docs/api.md"
            );
            assert!(
                api_md.contains(&format!("| {status} |")),
                "{status} not in docs/api.md"
            );
        }
        for attr in ["src=\"", "href=\""] {
            for part in html.split(attr).skip(1) {
                assert!(
                    part.starts_with('/') || part.starts_with('#'),
                    "the docs page refers elsewhere: {attr}{}",
                    &part[..part.len().min(60)]
                );
            }
        }
        for (_, path) in &routed {
            assert!(api_md.contains(path.as_str()), "{path} not in docs/api.md");
        }
    }
}

#[tokio::test]
async fn without_a_valid_bearer_token_every_api_route_is_401_and_cookies_do_not_count() {
    for backend in backends() {
        let app = TestApp::spawn(backend).await;
        let setup = Setup::new(&app).await;
        let admin = Browser::new(&app);
        admin.sign_in(ADMIN, PASSWORD).await;
        let bad = Client {
            app: &app,
            token: "dma_not-a-real-token".into(),
        };
        for (method, path) in dma::web::ROUTES
            .iter()
            .filter(|(_, p)| p.starts_with("/api/v1/"))
        {
            let path = path
                .replace("{id}", &setup.world.assessment_a.to_string())
                .replace("{key}", "k")
                .replace("{version}", "v")
                .replace("{kind}", "scores");
            let method = Method::from_bytes(method.as_bytes()).unwrap();
            let r = bad.json(method.clone(), &path, json!({})).await;
            let p = r.problem(401, "unauthenticated");
            assert!(p.get("errors").is_none());
            assert_eq!(r.headers["www-authenticate"], "Bearer");
            // A signed-in administrator's browser, with its session cookie, gets no further.
            let res = admin
                .client
                .request(method, admin.url(&path))
                .json(&json!({}))
                .send()
                .await
                .unwrap();
            assert_eq!(
                res.status(),
                401,
                "[{backend}] {path} with a session cookie"
            );
        }
        // A header that is not a bearer token is refused too, not ignored.
        let res = app
            .client
            .get(app.url("/api/v1/me"))
            .header("authorization", "Basic YWRtaW46YWRtaW4=")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 401);
        let me = setup.as_(&app, CONTRIBUTOR_A).get("/api/v1/me").await.ok();
        assert_eq!(me["email"], CONTRIBUTOR_A);
        assert_eq!(me["organisation_id"], setup.world.org_a);
    }
}

#[tokio::test]
async fn organisations_list_get_and_import_with_the_pages_permissions() {
    for backend in backends() {
        let app = TestApp::spawn(backend).await;
        let setup = Setup::new(&app).await;
        let admin = setup.as_(&app, ADMIN);
        let a = setup.world.org_a;

        // A known address with a method it does not take: 405, saying which it does.
        let wrong = admin
            .send(Method::DELETE, "/api/v1/organisations", None)
            .await;
        wrong.problem(405, "method-not-allowed");
        assert_eq!(wrong.headers["allow"], "GET", "[{backend}]");

        let all = admin.get("/api/v1/organisations").await.ok();
        let total = all["total"].as_i64().unwrap();
        assert!(total >= 2, "{all}");
        assert_eq!(all["items"].as_array().unwrap().len() as i64, total.min(50));
        // Pages of one, with links that keep the filters.
        let page = admin
            .get("/api/v1/organisations?per_page=1&page=2")
            .await
            .ok();
        assert_eq!(page["items"].as_array().unwrap().len(), 1);
        assert_eq!(page["links"]["prev"], "/api/v1/organisations?per_page=1");
        assert_eq!(
            page["links"]["last"],
            format!("/api/v1/organisations?per_page=1&page={total}")
        );
        assert_ne!(page["items"][0]["id"], all["items"][0]["id"]);
        let found = admin.get("/api/v1/organisations?q=RA1").await.ok();
        assert_eq!(found["items"][0]["id"], a);
        assert_eq!(found["links"]["self"], "/api/v1/organisations?q=RA1");
        admin
            .get("/api/v1/organisations?per_page=0")
            .await
            .problem(400, "bad-request");
        admin
            .get("/api/v1/organisations?page=x")
            .await
            .problem(400, "bad-request");

        let one = admin.get(&format!("/api/v1/organisations/{a}")).await.ok();
        assert_eq!(one["ods_code"], "RA1");
        assert_eq!(one["settings"], json!(["acute"]));
        assert_eq!(
            setup
                .as_(&app, CONTRIBUTOR_A)
                .get(&format!("/api/v1/organisations/{a}"))
                .await
                .ok()["id"],
            a
        );
        assert_eq!(
            setup
                .as_(&app, AUDITOR)
                .get(&format!("/api/v1/organisations/{a}"))
                .await
                .ok()["id"],
            a
        );
        setup
            .as_(&app, CONTRIBUTOR_B)
            .get(&format!("/api/v1/organisations/{a}"))
            .await
            .problem(403, "forbidden");
        setup
            .as_(&app, CONTRIBUTOR_A)
            .get("/api/v1/organisations")
            .await
            .problem(403, "forbidden");
        admin
            .get("/api/v1/organisations/999999")
            .await
            .problem(404, "not-found");

        // Imports: refused ones change nothing.
        let before = snapshot(&app).await;
        let csv = b"ods_code,name\nRA1,Renamed Hospitals NHS Trust\n";
        setup
            .as_(&app, APPROVER_A)
            .raw("/api/v1/organisations/import", "text/csv", csv)
            .await
            .problem(403, "forbidden");
        admin
            .raw("/api/v1/organisations/import", "application/json", csv)
            .await
            .problem(415, "unsupported-media-type");
        let bad = admin
            .raw(
                "/api/v1/organisations/import",
                "text/csv",
                b"ods_code,name\nRA1,\nnot a code,Somewhere\n",
            )
            .await
            .problem(422, "validation");
        let paths: Vec<&str> = bad["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["path"].as_str().unwrap())
            .collect();
        assert!(paths.iter().all(|p| p.starts_with("line ")), "{bad}");
        assert!(paths.len() >= 2, "{bad}");
        let huge = vec![b'a'; 2 * 1024 * 1024 + 1];
        admin
            .raw("/api/v1/organisations/import", "text/csv", &huge)
            .await
            .problem(413, "payload-too-large");
        assert_eq!(
            snapshot(&app).await,
            before,
            "[{backend}] a refused import changed data"
        );

        let report = admin
            .raw("/api/v1/organisations/import", "text/csv", csv)
            .await
            .ok();
        assert_eq!(report["updated"], 1, "{report}");
        let one = admin.get(&format!("/api/v1/organisations/{a}")).await.ok();
        assert_eq!(one["name"], "Renamed Hospitals NHS Trust");
    }
}

#[tokio::test]
async fn question_sets_check_import_publish_export_and_diff() {
    for backend in backends() {
        let app = TestApp::spawn(backend).await;
        let setup = Setup::new(&app).await;
        let admin = setup.as_(&app, ADMIN);
        let (key, version) = (
            &setup.world.questionnaire_key,
            &setup.world.questionnaire_version,
        );
        let source = fixture("wgll-acute-2025.yaml");
        let next = source
            .replace("version: \"2025.1\"", "version: \"2026.1\"")
            .replace(
                "How mature is the board-approved digital strategy?",
                "How mature is the digital strategy the board approved?",
            );

        let checked = admin
            .raw(
                "/api/v1/questionnaires/check",
                "application/yaml",
                next.as_bytes(),
            )
            .await
            .ok();
        assert_eq!(checked["valid"], true);
        assert_eq!(checked["version"], "2026.1");
        assert!(checked["questions"].as_u64().unwrap() > 5);
        let broken = next.replace("weight:", "wieght:");
        let p = admin
            .raw(
                "/api/v1/questionnaires/check",
                "application/yaml",
                broken.as_bytes(),
            )
            .await
            .problem(422, "validation");
        assert!(
            p["errors"][0]["path"].as_str().unwrap().contains("domains"),
            "{p}"
        );
        admin
            .raw("/api/v1/questionnaires/check", "text/csv", next.as_bytes())
            .await
            .problem(415, "unsupported-media-type");
        let huge = vec![b' '; 2 * 1024 * 1024 + 1];
        admin
            .raw("/api/v1/questionnaires/check", "application/yaml", &huge)
            .await
            .problem(413, "payload-too-large");
        setup
            .as_(&app, AUDITOR)
            .raw(
                "/api/v1/questionnaires/check",
                "application/yaml",
                next.as_bytes(),
            )
            .await
            .problem(403, "forbidden");

        let before = snapshot(&app).await;
        setup
            .as_(&app, APPROVER_A)
            .raw(
                "/api/v1/questionnaires",
                "application/yaml",
                next.as_bytes(),
            )
            .await
            .problem(403, "forbidden");
        admin
            .raw(
                "/api/v1/questionnaires",
                "application/yaml",
                broken.as_bytes(),
            )
            .await
            .problem(422, "validation");
        assert_eq!(
            snapshot(&app).await,
            before,
            "[{backend}] a refused import changed data"
        );

        let stored = admin
            .raw(
                "/api/v1/questionnaires",
                "application/yaml",
                next.as_bytes(),
            )
            .await;
        assert_eq!(stored.status, 201, "{}", stored.text);
        assert_eq!(
            stored.headers["location"],
            format!("/api/v1/questionnaires/{key}/2026.1")
        );
        assert_eq!(stored.json()["status"], "draft");

        let list = admin.get("/api/v1/questionnaires").await.ok();
        assert_eq!(list["total"], 2);
        let got = admin
            .get(&format!("/api/v1/questionnaires/{key}/2026.1"))
            .await
            .ok();
        assert_eq!(got["status"], "draft");
        assert_eq!(got["definition"]["version"], "2026.1");
        let yaml = admin
            .get(&format!("/api/v1/questionnaires/{key}/2026.1/definition"))
            .await;
        assert_eq!(yaml.content_type, "application/yaml");
        assert!(yaml.text.contains("2026.1"));
        let as_json = admin
            .get(&format!(
                "/api/v1/questionnaires/{key}/2026.1/definition?format=json"
            ))
            .await
            .ok();
        assert_eq!(as_json, got["definition"]);
        admin
            .get(&format!(
                "/api/v1/questionnaires/{key}/2026.1/definition?format=xml"
            ))
            .await
            .problem(400, "bad-request");
        admin
            .get(&format!("/api/v1/questionnaires/{key}/9.9"))
            .await
            .problem(404, "not-found");

        let diff = admin
            .get(&format!(
                "/api/v1/questionnaires/{key}/diff?a={version}&b=2026.1"
            ))
            .await
            .ok();
        assert!(!diff["reworded"].as_array().unwrap().is_empty(), "{diff}");
        assert!(diff["domains"]
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d["comparable"].is_boolean()));
        admin
            .get(&format!("/api/v1/questionnaires/{key}/diff?a={version}"))
            .await
            .problem(400, "bad-request");

        setup
            .as_(&app, CONTRIBUTOR_A)
            .json(
                Method::POST,
                &format!("/api/v1/questionnaires/{key}/2026.1/publish"),
                json!({}),
            )
            .await
            .problem(403, "forbidden");
        let published = admin
            .json(
                Method::POST,
                &format!("/api/v1/questionnaires/{key}/2026.1/publish"),
                json!({}),
            )
            .await
            .ok();
        assert_eq!(published["status"], "published");
        assert!(published["published_at"].as_str().unwrap().ends_with('Z'));
        admin
            .json(
                Method::POST,
                &format!("/api/v1/questionnaires/{key}/2026.1/publish"),
                json!({}),
            )
            .await
            .problem(409, "conflict");
        admin
            .raw(
                "/api/v1/questionnaires",
                "application/yaml",
                next.as_bytes(),
            )
            .await
            .problem(422, "validation");
    }
}

#[tokio::test]
async fn cycles_list_and_open_with_errors_by_field() {
    for backend in backends() {
        let app = TestApp::spawn(backend).await;
        let setup = Setup::new(&app).await;
        let admin = setup.as_(&app, ADMIN);
        let listed = setup
            .as_(&app, CONTRIBUTOR_B)
            .get("/api/v1/cycles")
            .await
            .ok();
        assert_eq!(listed["items"][0]["label"], "2025/26");
        let version_id = admin.get("/api/v1/questionnaires").await.ok()["items"][0]["id"].clone();

        let before = snapshot(&app).await;
        let good = json!({"label": "2026/27", "opens_on": "2026-04-01", "deadline": "2026-06-30", "versions": {"acute": version_id}});
        setup
            .as_(&app, APPROVER_A)
            .json(Method::POST, "/api/v1/cycles", good.clone())
            .await
            .problem(403, "forbidden");
        admin
            .send(
                Method::POST,
                "/api/v1/cycles",
                Some(("application/json", b"{\"label\": ".to_vec())),
            )
            .await
            .problem(400, "bad-request");
        admin
            .send(
                Method::POST,
                "/api/v1/cycles",
                Some(("text/plain", good.to_string().into_bytes())),
            )
            .await
            .problem(415, "unsupported-media-type");
        let p = admin.json(Method::POST, "/api/v1/cycles", json!({"label": "2026/27", "opens_on": "1 April", "deadline": "2026-06-30", "versions": {}})).await.problem(422, "validation");
        assert_eq!(p["errors"][0]["path"], "opens_on", "{p}");
        let p = admin.json(Method::POST, "/api/v1/cycles", json!({"label": "2026", "opens_on": "2026-04-01", "deadline": "2026-03-01", "versions": {"acute": 999999}})).await.problem(422, "validation");
        let paths: BTreeSet<&str> = p["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["path"].as_str().unwrap())
            .collect();
        assert_eq!(
            paths,
            BTreeSet::from(["label", "deadline", "versions.acute"]),
            "{p}"
        );
        let p = admin.json(Method::POST, "/api/v1/cycles", json!({"label": "2026/27", "opens_on": "2026-04-01", "deadline": "2026-06-30", "versions": {}, "extra": 1})).await.problem(422, "validation");
        assert!(p["detail"].as_str().unwrap().contains("extra"), "{p}");
        let mut big = good.clone();
        big["label"] = json!("x".repeat(1024 * 1024));
        admin
            .json(Method::POST, "/api/v1/cycles", big)
            .await
            .problem(413, "payload-too-large");
        assert_eq!(
            snapshot(&app).await,
            before,
            "[{backend}] a refused cycle changed data"
        );

        let opened = admin.json(Method::POST, "/api/v1/cycles", good).await;
        assert_eq!(opened.status, 201, "{}", opened.text);
        assert!(opened.json()["assessments"].as_u64().unwrap() >= 2);
        assert_eq!(admin.get("/api/v1/cycles").await.ok()["total"], 2);
    }
}

/// Answers straight from the complete fixture, for the keys given.
fn changes(keys: &[&str], revisions: &Value) -> Value {
    let all = answers_of("answers-wgll-acute-complete.yaml");
    json!({"answers": keys.iter().map(|k| json!({"key": k, "value": all[*k], "revision": revisions.get(*k).cloned().unwrap_or(json!(0))})).collect::<Vec<_>>()})
}

fn revisions(sheet: &Value) -> Value {
    let map: serde_json::Map<String, Value> = sheet["questions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| {
            (
                q["key"].as_str().unwrap().to_string(),
                q["revision"].clone(),
            )
        })
        .collect();
    Value::Object(map)
}

fn value_of(sheet: &Value, key: &str) -> Value {
    sheet["questions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|q| q["key"] == key)
        .unwrap()["value"]
        .clone()
}

#[tokio::test]
async fn answers_carry_revisions_and_a_stale_write_saves_nothing() {
    for backend in backends() {
        let app = TestApp::spawn(backend).await;
        let setup = Setup::new(&app).await;
        let id = setup.world.assessment_a;
        let base = format!("/api/v1/assessments/{id}");
        let alice = setup.as_(&app, CONTRIBUTOR_A);
        let bob = setup.as_(&app, APPROVER_A);

        let sheet = alice.get(&format!("{base}/answers")).await.ok();
        assert_eq!(sheet["open"], true);
        assert!(sheet["questions"]
            .as_array()
            .unwrap()
            .iter()
            .all(|q| q["revision"] == 0 && q["value"].is_null()));
        let first = alice
            .json(
                Method::PATCH,
                &format!("{base}/answers"),
                changes(&["wl-strategy", "sp-mfa"], &json!({})),
            )
            .await
            .ok();
        assert_eq!(first["saved"], json!(["wl-strategy", "sp-mfa"]));
        assert_eq!(first["revisions"]["wl-strategy"], 1);
        let seen = alice.get(&format!("{base}/answers")).await.ok();
        assert_eq!(value_of(&seen, "wl-strategy"), 4);

        // Bob read before Alice changed it again.
        let bobs_view = revisions(&bob.get(&format!("{base}/answers")).await.ok());
        alice
            .json(
                Method::PATCH,
                &format!("{base}/answers"),
                json!({"answers": [{"key": "wl-strategy", "value": 2, "revision": 1}]}),
            )
            .await
            .ok();
        let before = snapshot(&app).await;
        // Bob's change to another answer is fine on its own, but it travels with a stale one:
        // nothing is saved.
        let p = bob
            .json(Method::PATCH, &format!("{base}/answers"), json!({"answers": [
                {"key": "hp-data-sharing", "value": 3, "revision": bobs_view["hp-data-sharing"]},
                {"key": "wl-strategy", "value": 5, "revision": bobs_view["wl-strategy"]},
            ]}))
            .await
            .problem(409, "stale-revision");
        assert_eq!(p["conflicts"][0]["key"], "wl-strategy", "{p}");
        assert_eq!(p["conflicts"][0]["value"], 2);
        assert_eq!(p["conflicts"][0]["revision"], 2);
        assert_eq!(p["conflicts"][0]["changed_by"], "Test Person");
        assert_eq!(
            snapshot(&app).await,
            before,
            "[{backend}] a stale write changed data"
        );
        let now = bob.get(&format!("{base}/answers")).await.ok();
        assert_eq!(value_of(&now, "wl-strategy"), 2);
        assert!(value_of(&now, "hp-data-sharing").is_null());
        // With the current revision it goes through.
        bob.json(
            Method::PATCH,
            &format!("{base}/answers"),
            json!({"answers": [{"key": "wl-strategy", "value": 5, "revision": 2}]}),
        )
        .await
        .ok();

        // Bad input names the place in the body, and changes nothing.
        let before = snapshot(&app).await;
        let p = alice
            .json(
                Method::PATCH,
                &format!("{base}/answers"),
                json!({"answers": [
                    {"key": "wl-strategy", "value": "lots", "revision": 3},
                    {"key": "no-such-question", "value": 1, "revision": 0},
                    {"key": "sp-mfa", "value": true, "revision": -1},
                ]}),
            )
            .await
            .problem(422, "validation");
        let paths: BTreeSet<&str> = p["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["path"].as_str().unwrap())
            .collect();
        assert_eq!(
            paths,
            BTreeSet::from(["answers[0].value", "answers[1].key", "answers[2].revision"]),
            "{p}"
        );
        let p = alice
            .json(
                Method::PATCH,
                &format!("{base}/answers"),
                json!({"answers": [{"key": "sp-mfa", "value": true}]}),
            )
            .await
            .problem(422, "validation");
        assert_eq!(p["errors"][0]["path"], "answers[0]", "{p}");
        alice
            .json(
                Method::PATCH,
                &format!("{base}/answers"),
                json!({"answers": "x"}),
            )
            .await
            .problem(422, "validation");
        alice
            .send(
                Method::PATCH,
                &format!("{base}/answers"),
                Some(("application/json", b"[1,".to_vec())),
            )
            .await
            .problem(400, "bad-request");

        // Another organisation's people, and auditors, cannot write; B cannot even read.
        let b = setup.as_(&app, APPROVER_B);
        b.get(&base).await.problem(403, "forbidden");
        b.get(&format!("{base}/answers"))
            .await
            .problem(403, "forbidden");
        b.get(&format!("{base}/scores"))
            .await
            .problem(403, "forbidden");
        b.json(
            Method::PATCH,
            &format!("{base}/answers"),
            changes(&["sp-dspt"], &json!({})),
        )
        .await
        .problem(403, "forbidden");
        b.json(
            Method::POST,
            &format!("{base}/submit"),
            json!({"name": "B", "job_title": "CIO", "declaration": true}),
        )
        .await
        .problem(403, "forbidden");
        setup
            .as_(&app, AUDITOR)
            .json(
                Method::PATCH,
                &format!("{base}/answers"),
                changes(&["sp-dspt"], &json!({})),
            )
            .await
            .problem(403, "forbidden");
        setup
            .as_(&app, VIEWER)
            .get(&base)
            .await
            .problem(403, "forbidden");
        assert_eq!(
            snapshot(&app).await,
            before,
            "[{backend}] a refused write changed data"
        );
        // Auditors read submitted assessments only, not answers in progress (docs/security.md).
        let auditor = setup.as_(&app, AUDITOR);
        auditor.get(&base).await.problem(403, "forbidden");
        auditor
            .get(&format!("{base}/answers"))
            .await
            .problem(403, "forbidden");
        alice
            .get("/api/v1/assessments/999999")
            .await
            .problem(404, "not-found");

        // Lists: each organisation sees its own.
        let mine = b.get("/api/v1/assessments").await.ok();
        assert!(
            mine["items"]
                .as_array()
                .unwrap()
                .iter()
                .all(|a| a["id"] != id),
            "{mine}"
        );
        assert_eq!(mine["total"], 1);
        b.get(&format!(
            "/api/v1/assessments?organisation={}",
            setup.world.org_a
        ))
        .await
        .problem(403, "forbidden");
        let all = setup
            .as_(&app, AUDITOR)
            .get("/api/v1/assessments?per_page=1")
            .await
            .ok();
        assert_eq!(all["items"].as_array().unwrap().len(), 1);
        assert!(all["total"].as_i64().unwrap() >= 2);
        assert_eq!(
            all["links"]["next"],
            "/api/v1/assessments?per_page=1&page=2"
        );
        let only_a = setup
            .as_(&app, ADMIN)
            .get(&format!(
                "/api/v1/assessments?organisation={}&status=in_progress",
                setup.world.org_a
            ))
            .await
            .ok();
        assert_eq!(only_a["items"][0]["id"], id, "{only_a}");
        setup
            .as_(&app, ADMIN)
            .get("/api/v1/assessments?status=finished")
            .await
            .problem(400, "bad-request");
        // A NUL in a filter (which PostgreSQL text cannot hold) is the caller's mistake.
        for query in ["cycle=%00", "setting=a%00b", "status=%00"] {
            alice
                .get(&format!("/api/v1/assessments?{query}"))
                .await
                .problem(400, "bad-request");
        }
        auditor_nul_check(&setup.as_(&app, AUDITOR)).await;
        // With a token, an address that does not exist is a 404 problem.
        alice
            .get("/api/v1/no-such-thing")
            .await
            .problem(404, "not-found");
        setup
            .as_(&app, VIEWER)
            .get("/api/v1/assessments")
            .await
            .problem(403, "forbidden");
    }
}

async fn auditor_nul_check(auditor: &Client<'_>) {
    for path in [
        "/api/v1/reports/benchmarks?region=%00",
        "/api/v1/reports/trends?icb=%00",
        "/api/v1/exports/scores?q=%00",
    ] {
        auditor.get(path).await.problem(400, "bad-request");
    }
}

#[tokio::test]
async fn approvers_submit_and_scores_come_with_their_workings() {
    for backend in backends() {
        let app = TestApp::spawn(backend).await;
        let setup = Setup::new(&app).await;
        let id = setup.world.assessment_a;
        let base = format!("/api/v1/assessments/{id}");
        let approver = setup.as_(&app, APPROVER_A);
        let contributor = setup.as_(&app, CONTRIBUTOR_A);
        let signoff = json!({"name": "Dana Approver", "job_title": "Chief Information Officer", "declaration": true});

        let provisional = contributor.get(&format!("{base}/scores")).await.ok();
        assert_eq!(provisional["provisional"], true);
        assert!(provisional["reference"].is_null());

        // Incomplete: each missing question named.
        let before = snapshot(&app).await;
        let p = approver
            .json(Method::POST, &format!("{base}/submit"), signoff.clone())
            .await
            .problem(422, "validation");
        assert!(
            p["errors"]
                .as_array()
                .unwrap()
                .iter()
                .all(|e| e["path"].as_str().unwrap().starts_with("answers.")),
            "{p}"
        );
        let p = approver
            .json(
                Method::POST,
                &format!("{base}/submit"),
                json!({"name": "", "job_title": "", "declaration": false}),
            )
            .await
            .problem(422, "validation");
        let paths: BTreeSet<&str> = p["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["path"].as_str().unwrap())
            .collect();
        assert_eq!(paths, BTreeSet::from(["name", "job_title", "declaration"]));
        contributor
            .json(Method::POST, &format!("{base}/submit"), signoff.clone())
            .await
            .problem(403, "forbidden");
        assert_eq!(
            snapshot(&app).await,
            before,
            "[{backend}] a refused submission changed data"
        );

        let all = answers_of("answers-wgll-acute-complete.yaml");
        let keys: Vec<&str> = all.keys().map(String::as_str).collect();
        contributor
            .json(
                Method::PATCH,
                &format!("{base}/answers"),
                changes(&keys, &json!({})),
            )
            .await
            .ok();
        let detail = approver.get(&base).await.ok();
        assert_eq!(detail["progress"]["complete"], true, "{detail}");
        assert_eq!(detail["organisation"]["ods_code"], "RA1");
        let done = approver
            .json(Method::POST, &format!("{base}/submit"), signoff.clone())
            .await;
        assert_eq!(done.status, 201, "{}", done.text);
        let done = done.json();
        assert!(done["reference"]
            .as_str()
            .unwrap()
            .starts_with("DMA-202526-"));
        approver
            .json(Method::POST, &format!("{base}/submit"), signoff)
            .await
            .problem(409, "conflict");
        contributor
            .json(
                Method::PATCH,
                &format!("{base}/answers"),
                changes(&["sp-mfa"], &json!({"sp-mfa": 1})),
            )
            .await
            .problem(409, "conflict");

        // The stored scores are those of the format spec's worked example, with the workings.
        let expected: Value =
            serde_json::from_str(&fixture("answers-wgll-acute-complete.expected.json")).unwrap();
        let scores = setup
            .as_(&app, AUDITOR)
            .get(&format!("{base}/scores"))
            .await
            .ok();
        assert_eq!(scores["provisional"], false);
        assert_eq!(scores["reference"], done["reference"]);
        assert_eq!(
            scores["report"]["overall"]["score"],
            expected["overall"]["score"]
        );
        assert_eq!(done["overall"], expected["overall"]["score"]);
        let domains = scores["report"]["domains"].as_array().unwrap();
        assert_eq!(
            domains.len(),
            expected["domains"].as_object().unwrap().len()
        );
        for got in domains {
            let want = &expected["domains"][got["key"].as_str().unwrap()];
            assert_eq!(got["score"], want["score"], "{}", got["key"]);
            assert_eq!(got["counted"], want["counted"], "{}", got["key"]);
            assert!(!got["title"].as_str().unwrap().is_empty());
            let first = &got["explanation"][0];
            assert!(first["reason_text"].as_str().is_some_and(|t| !t.is_empty()));
            assert!(first["text"].as_str().is_some_and(|t| !t.is_empty()));
        }
        // The path to the next band: one entry per domain, with the domain's score; every
        // path offered reaches at least the next band's lowest score, in few changes.
        let next = scores["next_band"].as_array().unwrap();
        assert_eq!(next.len(), domains.len());
        let mut offered = 0;
        for (entry, domain) in next.iter().zip(domains) {
            assert_eq!(entry["domain"], domain["key"]);
            assert_eq!(entry["score"], domain["score"]);
            for path in entry["paths"].as_array().unwrap() {
                offered += 1;
                assert!(path["score"].as_f64().unwrap() >= entry["target_min"].as_f64().unwrap());
                let changes = path["changes"].as_array().unwrap();
                assert!((1..=4).contains(&changes.len()), "{path}");
                assert!(changes.iter().all(|c| c["to"] != c["from"]), "{path}");
            }
        }
        assert!(offered > 0, "no path offered: {next:?}");
        assert_eq!(approver.get(&base).await.ok()["status"], "submitted");
    }
}

#[tokio::test]
async fn benchmarks_trends_and_exports_follow_the_reports_scope() {
    for backend in backends() {
        let app = TestApp::spawn(backend).await;
        let setup = Setup::new(&app).await;
        let auditor = setup.as_(&app, AUDITOR);
        // One submission, so there are figures.
        let id = setup.world.assessment_a;
        let all = answers_of("answers-wgll-acute-complete.yaml");
        let keys: Vec<&str> = all.keys().map(String::as_str).collect();
        setup
            .as_(&app, CONTRIBUTOR_A)
            .json(
                Method::PATCH,
                &format!("/api/v1/assessments/{id}/answers"),
                changes(&keys, &json!({})),
            )
            .await
            .ok();
        setup
            .as_(&app, APPROVER_A)
            .json(
                Method::POST,
                &format!("/api/v1/assessments/{id}/submit"),
                json!({"name": "D", "job_title": "CIO", "declaration": true}),
            )
            .await
            .ok();

        let b = auditor
            .get("/api/v1/reports/benchmarks?by=region")
            .await
            .ok();
        assert_eq!(b["cycle"]["label"], "2025/26");
        assert_eq!(b["counts"]["submitted"], 1, "{b}");
        let v = &b["versions"][0];
        assert_eq!(v["submitted"], 1);
        assert_eq!(v["overall"]["count"], 1);
        assert!(v["domains"][0]["stats"]["mean"].is_number());
        assert!(!v["breakdown"].as_array().unwrap().is_empty());
        auditor
            .get("/api/v1/reports/benchmarks?by=planet")
            .await
            .problem(400, "bad-request");
        auditor
            .get("/api/v1/reports/benchmarks?cycle=1999/00")
            .await
            .problem(400, "bad-request");
        for who in [APPROVER_A, CONTRIBUTOR_B] {
            setup
                .as_(&app, who)
                .get("/api/v1/reports/benchmarks")
                .await
                .problem(403, "forbidden");
            setup
                .as_(&app, who)
                .get("/api/v1/reports/trends")
                .await
                .problem(403, "forbidden");
            setup
                .as_(&app, who)
                .get("/api/v1/exports/scores")
                .await
                .problem(403, "forbidden");
        }
        // A group viewer without a group sees nothing, as on the pages.
        setup
            .as_(&app, VIEWER)
            .get("/api/v1/reports/benchmarks")
            .await
            .problem(403, "forbidden");

        let trends = auditor
            .get("/api/v1/reports/trends?comparable=1")
            .await
            .ok();
        assert_eq!(
            trends[0]["points"][0]["cycle"]["label"], "2025/26",
            "{trends}"
        );
        assert_eq!(trends[0]["points"][0]["submitted"], 1);
        auditor
            .get("/api/v1/reports/trends?comparable=yes")
            .await
            .problem(400, "bad-request");

        let csv = auditor.get("/api/v1/exports/scores").await;
        assert_eq!(csv.status, 200);
        assert!(csv.content_type.starts_with("text/csv"));
        let mut lines = csv
            .text
            .strip_prefix('\u{feff}')
            .expect("a CSV export starts with the byte-order mark")
            .lines();
        assert_eq!(
            lines.next().unwrap(),
            dma::services::reports::SCORES_COLUMNS.join(",")
        );
        assert!(lines.all(|l| l.starts_with(&id.to_string())));
        let rows = setup
            .as_(&app, ADMIN)
            .get("/api/v1/exports/answers?format=json&setting=acute")
            .await
            .ok();
        let questions = auditor
            .get(&format!("/api/v1/assessments/{id}/answers"))
            .await
            .ok()["questions"]
            .as_array()
            .unwrap()
            .len();
        assert_eq!(
            rows.as_array().unwrap().len(),
            questions,
            "a row per question"
        );
        assert_eq!(rows[0]["assessment_id"], id);
        let xlsx = auditor
            .app
            .client
            .get(auditor.app.url("/api/v1/exports/scores?format=xlsx"))
            .bearer_auth(&auditor.token)
            .send()
            .await
            .unwrap();
        assert_eq!(xlsx.status(), StatusCode::OK);
        assert_eq!(
            xlsx.headers()["content-type"],
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
        );
        assert!(xlsx.bytes().await.unwrap().starts_with(b"PK"), "a zip file");
        auditor
            .get("/api/v1/exports/scores?format=pdf")
            .await
            .problem(400, "bad-request");
        auditor
            .get("/api/v1/exports/everything")
            .await
            .problem(404, "not-found");
    }
}
