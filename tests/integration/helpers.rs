//! Test harness: each test gets its own database (a temporary SQLite file, or a new
//! PostgreSQL database created for it and dropped afterwards) and its own server on port 0.
//! `backends()` lists SQLite always and PostgreSQL when `TEST_DATABASE_URL` names a server, so
//! every test body runs once per backend; with `CI=true` a missing PostgreSQL is an error, not
//! a quiet SQLite-only run.

use std::collections::BTreeMap;

use diesel::connection::SimpleConnection;
use diesel::{Connection, PgConnection};
use dma::config::Settings;
use dma::db::{Backend, DatabaseUrl, Db, DbConnection};
use dma::web::Application;

pub fn backends() -> Vec<Backend> {
    let mut list = vec![Backend::Sqlite];
    match std::env::var("TEST_DATABASE_URL") {
        Ok(url) if !url.trim().is_empty() => list.push(Backend::Postgres),
        _ => assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true but TEST_DATABASE_URL is not set: the PostgreSQL half of the suite would not run"
        ),
    }
    list
}

/// A database that exists for one test.
pub struct TestDb {
    pub url: DatabaseUrl,
    _dir: tempfile::TempDir,
    pg_drop: Option<(String, String)>,
}

fn replace_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, format!("?{q}")),
        None => (url, String::new()),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let host_part = match base[scheme_end..].find('/') {
        Some(i) => &base[..scheme_end + i],
        None => base,
    };
    format!("{host_part}/{name}{query}")
}

/// The test server is on loopback: ask libpq not to use TLS unless the URL says otherwise.
/// With TLS, a test binary that exits while a pool thread is still talking to PostgreSQL can
/// crash inside OpenSSL's exit handlers (seen about once in twenty runs under load).
fn without_tls(url: &str) -> String {
    if url.contains("sslmode=") {
        url.to_string()
    } else if url.contains('?') {
        format!("{url}&sslmode=disable")
    } else {
        format!("{url}?sslmode=disable")
    }
}

impl TestDb {
    pub fn new(backend: Backend) -> TestDb {
        let dir = tempfile::tempdir().expect("temp dir");
        match backend {
            Backend::Sqlite => TestDb {
                url: DatabaseUrl::Sqlite(dir.path().join("test.sqlite3")),
                _dir: dir,
                pg_drop: None,
            },
            Backend::Postgres => {
                TestDb::on_postgres(&std::env::var("TEST_DATABASE_URL").expect("TEST_DATABASE_URL"))
            }
        }
    }

    /// A new database on the PostgreSQL server `admin_url` names (the shared one, or a
    /// throwaway cluster a test started).
    pub fn on_postgres(admin_url: &str) -> TestDb {
        let admin = without_tls(admin_url);
        let name = format!("dma_test_{}", &dma::crypto::random_token()[..16]);
        let mut conn = PgConnection::establish(&admin)
            .unwrap_or_else(|e| panic!("cannot reach PostgreSQL at {admin_url}: {e}"));
        conn.batch_execute(&format!("CREATE DATABASE {name}"))
            .expect("create test database");
        TestDb {
            url: DatabaseUrl::Postgres(replace_database(&admin, &name)),
            _dir: tempfile::tempdir().expect("temp dir"),
            pg_drop: Some((admin, name)),
        }
    }

    pub fn url_string(&self) -> String {
        match &self.url {
            DatabaseUrl::Postgres(u) => u.clone(),
            DatabaseUrl::Sqlite(p) => format!("sqlite://{}", p.display()),
        }
    }

    pub fn connect(&self) -> DbConnection {
        dma::db::establish(&self.url).expect("connect to test database")
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some((admin, name)) = &self.pg_drop {
            if let Ok(mut conn) = PgConnection::establish(admin) {
                let _ = conn.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
            }
        }
    }
}

pub struct TestApp {
    pub address: String,
    pub backend: Backend,
    pub db: Db,
    pub client: reqwest::Client,
    /// For calling lifecycle services (open a cycle, submit) straight through the library.
    pub notifier: dma::services::notifications::Notifier,
    /// The port serving `/metrics`, when the test configured one.
    pub metrics_port: Option<u16>,
    /// The key that seals outbox bodies carrying a link, to read them as the worker does.
    pub sealing_key: dma::crypto::SealingKey,
    /// Where the app's mail worker writes delivered messages (`.eml` files).
    pub mail_dir: std::path::PathBuf,
    /// Held so the data folder and the database live as long as the app.
    _data_dir: tempfile::TempDir,
    _test_db: TestDb,
}

/// Settings for a test instance: its own database, data folder and port 0.
pub fn test_settings(test_db: &TestDb, data_dir: &std::path::Path) -> Settings {
    test_settings_with(test_db, data_dir, &[])
}

/// [`test_settings`] with further environment variables (`DMA_BASE_URL`, say).
pub fn test_settings_with(
    test_db: &TestDb,
    data_dir: &std::path::Path,
    extra: &[(&str, &str)],
) -> Settings {
    let env: BTreeMap<String, String> = [
        ("DATABASE_URL", test_db.url_string()),
        ("DMA_DATA_DIR", data_dir.display().to_string()),
        ("DMA_BIND", "127.0.0.1:0".to_string()),
        ("DMA_WORKERS", "2".to_string()),
        ("DMA_DB_POOL_SIZE", "4".to_string()),
        // Most tests sign in as administrators and auditors with a password alone; the
        // second-factor tests turn the requirement back on.
        ("DMA_SECOND_FACTOR_ROLES", "none".to_string()),
    ]
    .into_iter()
    .chain(extra.iter().map(|(k, v)| (*k, v.to_string())))
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    Settings::from_sources(None, &env).expect("test settings")
}

impl TestApp {
    pub async fn spawn(backend: Backend) -> TestApp {
        TestApp::spawn_on(TestDb::new(backend)).await
    }

    /// Serve an existing test database (one a command has already filled, say).
    pub async fn spawn_on(test_db: TestDb) -> TestApp {
        TestApp::spawn_full(test_db, &[], |_| {}).await
    }

    /// Serve `test_db` with settings the test adjusts first (metrics, retention, ...).
    pub async fn spawn_configured(
        test_db: TestDb,
        configure: impl FnOnce(&mut Settings),
    ) -> TestApp {
        TestApp::spawn_full(test_db, &[], configure).await
    }

    /// A test app whose settings add `extra` environment variables.
    pub async fn spawn_with(backend: Backend, extra: &[(&str, &str)]) -> TestApp {
        TestApp::spawn_full(TestDb::new(backend), extra, |_| {}).await
    }

    async fn spawn_full(
        test_db: TestDb,
        extra: &[(&str, &str)],
        configure: impl FnOnce(&mut Settings),
    ) -> TestApp {
        let backend = test_db.url.backend();
        let data_dir = tempfile::tempdir().expect("data dir");
        let mut settings = test_settings_with(&test_db, data_dir.path(), extra);
        configure(&mut settings);
        let db = settings.open_database().await.expect("open database");
        let templates = dma::templates::Templates::load(None).expect("templates");
        let notifier = dma::services::notifications::Notifier::new(&templates, &settings);
        let sealing_key = settings.mail.sealing_key.clone();
        let mail_dir = settings.mail.file_dir.clone();
        let app = Application::build_with_db(settings, db.clone())
            .await
            .expect("build application");
        let address = format!("http://127.0.0.1:{}", app.port());
        let metrics_port = app.metrics_port();
        tokio::spawn(app.run_until_stopped());
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .cookie_store(true)
            .build()
            .expect("client");
        TestApp {
            address,
            backend,
            db,
            client,
            notifier,
            metrics_port,
            sealing_key,
            mail_dir,
            _data_dir: data_dir,
            _test_db: test_db,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .send()
            .await
            .unwrap_or_else(|e| panic!("[{}] GET {path}: {e}", self.backend))
    }
}

/// Somewhere pages are served: one test server, or a load balancer in front of several.
pub trait Site {
    fn url(&self, path: &str) -> String;
}

impl Site for TestApp {
    fn url(&self, path: &str) -> String {
        TestApp::url(self, path)
    }
}

/// Create an account with a password, straight through the library.
pub async fn create_user(
    db: &Db,
    email: &str,
    role: dma::services::auth::roles::Role,
    organisation_id: Option<i64>,
    password: &str,
) -> i64 {
    let hash = dma::services::auth::password::hash(password).unwrap();
    let email = dma::services::auth::users::EmailAddress::parse(email).unwrap();
    db.write(move |conn| {
        let actor = dma::services::audit::Actor::system("test");
        let user = dma::services::auth::users::create(
            conn,
            &actor,
            dma::services::auth::users::NewUser {
                email: &email,
                name: "Test Person",
                role,
                organisation_id,
                group_organisation_id: None,
                group_region: None,
            },
        )?;
        dma::services::auth::users::set_password_hash(conn, &actor, user.id, &hash)?;
        Ok(user.id)
    })
    .await
    .unwrap()
}

/// The value of the first hidden `csrf_token` field in a page.
pub fn csrf_from(html: &str) -> String {
    let marker = "name=\"csrf_token\" value=\"";
    let start = html
        .find(marker)
        .map(|i| i + marker.len())
        .expect("no csrf_token field in page");
    html[start..].chars().take_while(|c| *c != '"').collect()
}

impl TestApp {
    /// Create an account with a password, straight through the library.
    pub async fn create_user(
        &self,
        email: &str,
        role: dma::services::auth::roles::Role,
        organisation_id: Option<i64>,
        password: &str,
    ) -> i64 {
        create_user(&self.db, email, role, organisation_id, password).await
    }

    /// Fetch the sign-in form (for its CSRF cookie and token), then post credentials.
    pub async fn sign_in(&self, email: &str, password: &str) -> reqwest::Response {
        let form = self.get("/login").await.text().await.unwrap();
        let csrf = csrf_from(&form);
        self.client
            .post(self.url("/login"))
            .form(&[
                ("email", email),
                ("password", password),
                ("csrf_token", &csrf),
            ])
            .send()
            .await
            .unwrap()
    }

    /// The CSRF token of the signed-in session, read from a page's sign-out form.
    pub async fn session_csrf(&self) -> String {
        csrf_from(&self.get("/dashboard").await.text().await.unwrap())
    }
}
