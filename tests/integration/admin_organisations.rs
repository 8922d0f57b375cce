//! The registry page: the list with its filters and pages, and the CSV import with every
//! problem on the page and nothing applied from a bad file.

use diesel::prelude::*;
use dma::services::auth::roles::Role;
use reqwest::StatusCode;

use crate::browser::{Browser, PASSWORD, REGISTRY};
use crate::helpers::{backends, csrf_from, TestApp};

async fn admin(app: &TestApp) -> Browser {
    app.create_user("admin@example.nhs.uk", Role::Administrator, None, PASSWORD)
        .await;
    let b = Browser::new(app);
    b.sign_in("admin@example.nhs.uk", PASSWORD).await;
    b
}

async fn import(b: &Browser, csv: &str) -> reqwest::Response {
    let csrf = csrf_from(&b.text("/admin/organisations").await);
    b.post_multipart(
        "/admin/organisations/import",
        &csrf,
        csv.as_bytes().to_vec(),
        "registry.csv",
    )
    .await
}

async fn count(app: &TestApp) -> i64 {
    app.db
        .read(|conn| {
            use dma::db::schema::organisations as o;
            Ok(o::table.count().get_result(conn)?)
        })
        .await
        .unwrap()
}

#[tokio::test]
async fn an_import_reports_what_it_did_and_the_list_shows_the_registry() {
    for backend in backends() {
        let app = TestApp::spawn(backend).await;
        let b = admin(&app).await;
        let empty = b.text("/admin/organisations").await;
        assert!(empty.contains("The registry is empty"), "[{backend}]");

        let res = import(&b, REGISTRY).await;
        assert_eq!(res.status(), StatusCode::SEE_OTHER, "[{backend}]");
        let location = res.headers()["location"].to_str().unwrap().to_string();
        let page = b.text(&location).await;
        assert!(
            page.contains("3 created, 0 updated (0 with a new ICB), 0 unchanged"),
            "[{backend}] {page}"
        );
        assert!(page.contains("Alpha Hospitals NHS Trust"));
        // The current ICB and the care settings are on each row.
        assert!(page.contains("Test Integrated Care Board (<code class=\"dma-code\">QZ1</code>)"));
        assert!(page.contains("acute"));
        assert!(page.contains("NHS trust") && page.contains("Integrated care board"));

        // The same file again changes nothing.
        let res = import(&b, REGISTRY).await;
        let page = b.text(res.headers()["location"].to_str().unwrap()).await;
        assert!(
            page.contains("0 created, 0 updated (0 with a new ICB), 3 unchanged"),
            "[{backend}]"
        );

        // A rename is an update, and is audit logged under the administrator.
        let res = import(
            &b,
            "ods_code,name\nRA1,Alpha Teaching Hospitals NHS Trust\n",
        )
        .await;
        let page = b.text(res.headers()["location"].to_str().unwrap()).await;
        assert!(page.contains("0 created, 1 updated"), "[{backend}]");
        let logged: i64 = app
            .db
            .read(|conn| {
                use dma::db::schema::audit_log as a;
                Ok(a::table
                    .filter(a::entity_type.eq("organisation"))
                    .filter(a::actor_label.eq("admin@example.nhs.uk"))
                    .count()
                    .get_result(conn)?)
            })
            .await
            .unwrap();
        assert_eq!(logged, 4, "[{backend}] 3 creations and a rename");

        // Filters: kind, region and text.
        let trusts = b.text("/admin/organisations?kind=trust").await;
        assert!(
            trusts.contains("RA1")
                && trusts.contains("RB1")
                && !trusts.contains(">QZ1</code></td>")
        );
        let north_west = b.text("/admin/organisations?region=North+West").await;
        assert!(north_west.contains("Beta Hospitals") && !north_west.contains("Alpha Teaching"));
        let text = b.text("/admin/organisations?q=teaching").await;
        assert!(
            text.contains("Alpha Teaching") && !text.contains("Beta Hospitals"),
            "[{backend}]"
        );
        let code = b.text("/admin/organisations?q=rb").await;
        assert!(code.contains("Beta Hospitals") && !code.contains("Alpha Teaching"));
        let none = b.text("/admin/organisations?q=100%25_").await;
        assert!(
            none.contains("No organisation matches these filters"),
            "[{backend}]"
        );
    }
}

#[tokio::test]
async fn a_bad_file_lists_every_problem_by_line_and_imports_nothing() {
    for backend in backends() {
        let app = TestApp::spawn(backend).await;
        let b = admin(&app).await;
        let bad = "ods_code,name,parent_icb\nRA1,Good Trust,\nnot a code,Bad Trust,\nRB1,,QZ9\n";
        let res = import(&b, bad).await;
        assert_eq!(
            res.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "[{backend}]"
        );
        let page = res.text().await.unwrap();
        assert!(page.contains("Nothing was imported"), "[{backend}]");
        assert!(page.contains("There is a problem"));
        // One table row per problem, with its line.
        assert!(page.contains("id=\"problem-0\""));
        assert!(page.contains("id=\"problem-1\""), "[{backend}] {page}");
        assert!(page.contains("<td class=\"dma-table__cell dma-table__cell--numeric\">3</td>"));
        assert!(page.contains("not an ODS code"));
        assert_eq!(count(&app).await, 0, "[{backend}] the good row was applied");

        // A parent that is not in the registry is refused against the database, also whole.
        let res = import(&b, "ods_code,name,parent_icb\nRA1,Good Trust,QZ9\n").await;
        assert_eq!(
            res.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "[{backend}]"
        );
        assert!(res.text().await.unwrap().contains("QZ9"));
        assert_eq!(count(&app).await, 0);

        // Too large: refused before it is read in full, with the limit on the page.
        let mut big = String::from("ods_code,name\n");
        while big.len() <= 2 * 1024 * 1024 {
            big.push_str("B80000,A practice with a long name to fill the file quickly\n");
        }
        let res = import(&b, &big).await;
        assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE, "[{backend}]");
        assert!(res
            .text()
            .await
            .unwrap()
            .contains("The file is larger than 2 MB"));
        assert_eq!(count(&app).await, 0);

        // No file at all.
        let csrf = csrf_from(&b.text("/admin/organisations").await);
        let res = b
            .post_multipart(
                "/admin/organisations/import",
                &csrf,
                Vec::new(),
                "empty.csv",
            )
            .await;
        assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert!(res.text().await.unwrap().contains("Select a CSV file"));
    }
}

#[tokio::test]
async fn the_list_is_paged_fifty_at_a_time() {
    for backend in backends() {
        let app = TestApp::spawn(backend).await;
        let b = admin(&app).await;
        let mut csv = String::from("ods_code,name,region\n");
        for i in 0..120 {
            csv.push_str(&format!("B{:05},Practice {i:03},London\n", 80000 + i));
        }
        let res = import(&b, &csv).await;
        assert_eq!(res.status(), StatusCode::SEE_OTHER, "[{backend}]");
        let first = b.text("/admin/organisations?kind=gp-practice").await;
        assert!(
            first.contains("Showing 1 to 50 of 120 organisations"),
            "[{backend}]"
        );
        assert!(first.contains("B80000") && !first.contains("B80050"));
        assert!(
            first.contains("href=\"/admin/organisations?kind&#x3D;gp-practice&amp;page&#x3D;2\""),
            "[{backend}]"
        );
        let third = b.text("/admin/organisations?kind=gp-practice&page=3").await;
        assert!(third.contains("Showing 101 to 120 of 120"));
        assert!(third.contains("B80119") && !third.contains("B80099"));
    }
}
