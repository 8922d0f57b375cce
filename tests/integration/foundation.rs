//! The application skeleton: probes, pages, errors, assets and security headers.

use crate::helpers::{backends, TestApp};

#[tokio::test]
async fn health_and_readiness_probes_answer() {
    for backend in backends() {
        let app = TestApp::spawn(backend).await;
        let res = app.get("/healthz").await;
        assert_eq!(res.status(), 200, "[{backend}]");
        let res = app.get("/readyz").await;
        assert_eq!(res.status(), 200, "[{backend}]");
        let body: serde_json::Value = res.json().await.unwrap();
        assert_eq!(body["status"], "ready");
        assert_eq!(body["database"], backend.to_string());
        assert_eq!(app.db.backend(), backend);
        app.db.ping().await.unwrap();
    }
}

#[tokio::test]
async fn start_page_renders_in_the_layout_with_security_headers() {
    for backend in backends() {
        let app = TestApp::spawn(backend).await;
        let res = app.get("/").await;
        assert_eq!(res.status(), 200, "[{backend}]");
        let headers = res.headers().clone();
        let csp = headers["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
        assert!(csp.contains("script-src 'self'"), "{csp}");
        assert_eq!(headers["x-content-type-options"], "nosniff");
        assert_eq!(headers["referrer-policy"], "same-origin");
        assert_eq!(headers["x-frame-options"], "DENY");
        let html = res.text().await.unwrap();
        assert!(
            html.contains("<html lang=\"en-GB\""),
            "layout missing: {html}"
        );
        assert!(html.contains("Digital maturity self-assessment"));
        assert!(
            html.contains("/assets/css/dma.css?v="),
            "stylesheet not linked"
        );
    }
}

#[tokio::test]
async fn unknown_pages_get_an_html_404_and_the_api_a_problem_document() {
    for backend in backends() {
        let app = TestApp::spawn(backend).await;
        let res = app.get("/no/such/page").await;
        assert_eq!(res.status(), 404, "[{backend}]");
        assert!(res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html"));
        let html = res.text().await.unwrap();
        assert!(html.contains("Page not found"), "{html}");
        assert!(
            html.contains("<html lang=\"en-GB\""),
            "404 page outside the layout"
        );

        // (Under /api/v1 the token check answers first: 401 without one; tests/integration/api.rs.)
        let res = app.get("/api/no-such-thing").await;
        assert_eq!(res.status(), 404);
        assert_eq!(res.headers()["content-type"], "application/problem+json");
        let problem: serde_json::Value = res.json().await.unwrap();
        assert_eq!(problem["type"], "https://dma.example/problems/not-found");
        assert_eq!(problem["status"], 404);

        let res = app.client.post(app.url("/healthz")).send().await.unwrap();
        assert_eq!(res.status(), 405, "POST to a GET route");
        assert_eq!(res.headers()["allow"], "GET");
        assert!(
            res.text().await.unwrap().contains("<html"),
            "405 page outside the layout"
        );
    }
}

#[tokio::test]
async fn assets_are_served_with_long_caching_only_for_the_current_version() {
    for backend in backends() {
        let app = TestApp::spawn(backend).await;
        let html = app.get("/").await.text().await.unwrap();
        let start = html.find("/assets/css/dma.css?v=").expect("css link");
        let link: String = html[start..].chars().take_while(|c| *c != '"').collect();
        let res = app.get(&link).await;
        assert_eq!(res.status(), 200, "[{backend}] {link}");
        assert_eq!(res.headers()["content-type"], "text/css");
        assert!(res.headers()["cache-control"]
            .to_str()
            .unwrap()
            .contains("immutable"));
        let etag = res.headers()["etag"].clone();
        assert!(
            res.text().await.unwrap().contains("dma-header"),
            "stylesheet content"
        );

        let res = app.get("/assets/css/dma.css?v=old").await;
        assert_eq!(res.headers()["cache-control"], "public, max-age=300");
        let res = app
            .client
            .get(app.url("/assets/css/dma.css"))
            .header("if-none-match", etag)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 304);

        for missing in [
            "/assets/nothing.css",
            "/assets/../Cargo.toml",
            "/assets/%2e%2e/Cargo.toml",
        ] {
            let res = app.get(missing).await;
            assert_eq!(res.status(), 404, "{missing}");
        }
    }
}
