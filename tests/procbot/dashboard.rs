//! The dashboard, the evidence export and /metrics over HTTP: sign-in, tokens, every page, and
//! hostile procedure text rendered inert.

use procbot::config::Config;
use secrecy::SecretString;

use crate::helpers::{
    DIRECTORY, TestApp, TestRepo, clean_procedure, http_request, procedure_text, spawn_app,
};

const TOKEN: &str = "correct horse battery staple";

/// A procedure whose text tries every trick to run script in the dashboard.
fn hostile_procedure() -> String {
    let fields: Vec<(String, String)> = [
        ("id", "xss-attempt"),
        ("title", r#""\"<script>alert('title')</script>""#),
        ("owner", "it-lead@example.com"),
        ("audience", "[it-ops]"),
        ("version", "1.0.0"),
        ("last_reviewed", "2026-06-01"),
        ("controls", "[A.5.37]"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    procedure_text(
        &fields,
        "# Hostile\n\n## Purpose\n<script>alert('body')</script> <img src=x onerror=alert('img')>\n\n## Steps\n1. Click [here](javascript:alert('link')).\n2. <iframe src=\"https://evil.example\"></iframe>\n",
    )
}

pub(crate) async fn dashboard_app(repo: &TestRepo, data: &TestRepo) -> TestApp {
    let mut config = Config::default();
    config.procedures.path = repo.path().to_path_buf();
    config.procedures.state_file = data.path().join("state.json");
    config.dashboard.token = Some(SecretString::from(TOKEN.to_string()));
    spawn_app(config).await
}

pub(crate) fn dashboard_repo() -> TestRepo {
    let repo = TestRepo::new();
    repo.write("directory.yaml", DIRECTORY);
    repo.write("backup.md", clean_procedure("backup"));
    repo.write("xss.md", hostile_procedure());
    repo
}

/// The full response head and body, for Set-Cookie.
fn raw(address: std::net::SocketAddr, request: &str) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_need_a_session_and_show_what_the_store_knows() {
    let repo = dashboard_repo();
    let data = TestRepo::new();
    let app = dashboard_app(&repo, &data).await;
    let address = app.address;
    // A run of the backup procedure, one step recorded with a note.
    let store = procbot::store::Store::connect(&format!(
        "sqlite://{}",
        data.path().join("procbot.db").display()
    ))
    .await
    .unwrap();
    let now = chrono::Utc::now();
    let sam = procbot::core::procedure::Email::parse("sam@example.com").unwrap();
    let run = store
        .start_run(
            now,
            &procbot::store::runs::NewRun {
                key: "manual/backup/sam/1".into(),
                procedure_id: procbot::core::procedure::ProcedureId::parse("backup").unwrap(),
                content_hash: "ab".repeat(32),
                version: Some("1.2.0".into()),
                commit_id: None,
                title: "Back up the customer database".into(),
                owner: None,
                trigger: procbot::core::runs::RunTrigger::Manual,
                scheduled_for: None,
                due_at: None,
                started_by: Some(sam.clone()),
                assignees: vec![sam.clone()],
                steps: vec!["Log in.".into(), "Start the backup.".into()],
            },
            |_| Vec::new(),
        )
        .await
        .unwrap()
        .unwrap();
    store
        .record_run_step(
            now,
            run,
            1,
            Some(procbot::core::runs::StepOutcome::Done),
            Some("<b>ticket</b> OPS-4"),
            &sam,
        )
        .await
        .unwrap();
    store.close().await;
    let results = tokio::task::spawn_blocking(move || {
        let app = TestAppRef(address);
        // Signed out: pages send you to the form, exports and the API say 401.
        let overview = raw(
            address,
            "GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
        );
        assert!(overview.starts_with("HTTP/1.1 303"), "{overview}");
        assert!(
            overview.to_lowercase().contains("location: /login"),
            "{overview}"
        );
        assert_eq!(app.get("/evidence?format=csv", "").0, 401);
        assert_eq!(app.get("/api/overview", "").0, 401);
        assert_eq!(
            app.get("/api/overview", "\r\nAuthorization: Bearer wrong")
                .0,
            401
        );
        assert!(app.get("/login", "").1.contains("<form class=\"login\""));

        let refused = sign_in_at(address, "wrong token");
        assert!(refused.starts_with("HTTP/1.1 401"), "{refused}");
        assert!(!refused.to_lowercase().contains("set-cookie"), "{refused}");
        let accepted = sign_in_at(address, TOKEN);
        assert!(accepted.starts_with("HTTP/1.1 303"), "{accepted}");
        let cookie_line = accepted
            .lines()
            .find(|l| l.to_lowercase().starts_with("set-cookie:"))
            .unwrap();
        for attribute in ["HttpOnly", "SameSite=Strict", "Secure", "Path=/"] {
            assert!(cookie_line.contains(attribute), "{cookie_line}");
        }
        assert!(
            !cookie_line.contains(TOKEN),
            "the cookie never carries the token"
        );
        let cookie = cookie_line
            .split_once(':')
            .unwrap()
            .1
            .split(';')
            .next()
            .unwrap()
            .trim()
            .to_string();
        let session = format!("\r\nCookie: {cookie}");

        let (status, page) = app.get("/", &session);
        assert_eq!(status, 200);
        assert!(page.contains("<svg id=\"chart\""), "{page}");
        assert!(
            page.contains("Acknowledgement coverage of current versions: 0% (0 of 6)"),
            "{page}"
        );
        assert!(page.contains("<a href=\"/procedures/backup\">Back up the customer database</a>"));
        assert!(!page.contains("<script>"), "{page}");
        assert!(page.contains("&lt;script&gt;alert(&#39;title&#39;)&lt;/script&gt;"));

        let (status, hostile) = app.get("/procedures/xss-attempt", &session);
        assert_eq!(status, 200);
        assert!(!hostile.contains("<script"), "{hostile}");
        assert!(!hostile.contains("<img"), "{hostile}");
        assert!(!hostile.contains("<iframe"), "{hostile}");
        assert!(!hostile.contains("javascript:"), "{hostile}");
        assert!(
            hostile.contains("&lt;script&gt;alert('body')&lt;/script&gt;"),
            "{hostile}"
        );

        let (status, backup) = app.get("/procedures/backup", &session);
        assert_eq!(status, 200);
        assert!(backup.contains("Log in to the backup console."), "{backup}");
        assert!(backup.contains("<h2>Procedure runs</h2>"), "{backup}");
        assert!(
            backup.contains("1. Log in.: done by sam@example.com"),
            "{backup}"
        );
        assert!(
            backup.contains("&lt;b&gt;ticket&lt;/b&gt; OPS-4"),
            "notes are inert: {backup}"
        );
        assert!(
            backup.contains("<a href=\"/controls#A.8.13\">A.8.13</a>"),
            "{backup}"
        );
        assert!(backup.contains("sam@example.com"), "{backup}");
        assert_eq!(app.get("/procedures/nope", &session).0, 404);
        assert_eq!(app.get("/procedures/..%2Fetc", &session).0, 404);

        let (status, people) = app.get("/people", &session);
        assert_eq!(status, 200);
        assert!(people.contains("Sam Ops"), "{people}");
        assert!(
            people.contains("<a href=\"/procedures/backup\">backup</a>"),
            "{people}"
        );
        let (status, controls) = app.get("/controls", &session);
        assert_eq!(status, 200);
        assert!(
            controls.contains("2 of 93 controls have a procedure; 91 have none."),
            "{controls}"
        );

        let bearer = format!("\r\nAuthorization: Bearer {TOKEN}");
        let (status, csv) = app.get("/evidence?format=csv", &bearer);
        assert_eq!(status, 200);
        assert!(csv.starts_with(procbot::evidence::CSV_HEADER), "{csv}");
        let (status, json) = app.get("/evidence?format=json", &bearer);
        assert_eq!(status, 200);
        let json: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(json["versions"].as_array().unwrap().len(), 2);
        let (status, html) = app.get("/evidence?format=html", &session);
        assert_eq!(status, 200);
        assert!(html.contains("Evidence pack"), "{html}");
        assert_eq!(app.get("/evidence?format=pdf", &bearer).0, 400);
        let (status, api) = app.get("/api/overview", &bearer);
        assert_eq!(status, 200);
        let api: serde_json::Value = serde_json::from_str(&api).unwrap();
        assert_eq!(api["procedures"][0]["id"], "backup");
        assert_eq!(api["procedures"][0]["required"], 4);

        let (status, metrics) = app.get("/metrics", "");
        assert_eq!(status, 200);
        assert!(metrics.contains("procbot_procedures 2\n"), "{metrics}");
        assert!(
            metrics.contains("procbot_ledger_entries{kind=\"announcement\"} 2\n"),
            "{metrics}"
        );
        assert!(
            metrics.contains("# TYPE procbot_syncs_total counter"),
            "{metrics}"
        );
        assert!(
            metrics.contains("procbot_reviews{state=\"ok\"} 2\n"),
            "{metrics}"
        );
        assert!(
            metrics.contains("procbot_outbox_oldest_pending_seconds 0\n"),
            "{metrics}"
        );

        let signed_out = raw(
            address,
            &format!(
                "GET /logout HTTP/1.1\r\nHost: localhost\r\nConnection: close{session}\r\n\r\n"
            ),
        );
        assert!(signed_out.contains("Max-Age=0"), "{signed_out}");
    });
    results.await.unwrap();
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_token_the_dashboard_is_off_but_metrics_answer() {
    let repo = dashboard_repo();
    let data = TestRepo::new();
    let mut config = Config::default();
    config.procedures.path = repo.path().to_path_buf();
    config.procedures.state_file = data.path().join("state.json");
    let app = spawn_app(config).await;
    let address = app.address;
    tokio::task::spawn_blocking(move || {
        let app = TestAppRef(address);
        assert_eq!(app.get("/", "").0, 404);
        assert_eq!(app.get("/evidence?format=csv", "").0, 404);
        assert_eq!(app.get("/metrics", "").0, 200);
    })
    .await
    .unwrap();
    app.stop().await;
}

/// The parts of a running app a blocking HTTP client needs.
struct TestAppRef(std::net::SocketAddr);

impl TestAppRef {
    fn get(&self, path: &str, headers: &str) -> (u16, String) {
        http_request(self.0, &format!("GET {path} HTTP/1.1{headers}"), "")
    }
}

fn sign_in_at(address: std::net::SocketAddr, token: &str) -> String {
    let body = format!("token={}", token.replace(' ', "+"));
    raw(
        address,
        &format!(
            "POST /login HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\ncontent-type: application/x-www-form-urlencoded\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        ),
    )
}

#[tokio::test]
async fn an_oversized_login_form_is_refused_before_it_is_read() {
    use axum::body::Body;
    use tower::ServiceExt;

    let db = crate::db::TestDb::sqlite();
    let store = db.store().await;
    let (_, served) = tokio::sync::watch::channel(None);
    let state = std::sync::Arc::new(procbot::http::HttpState {
        served,
        webhook: std::sync::Arc::new(procbot::http::webhook::GitWebhook {
            secret: None,
            branch: "main".into(),
            trigger: std::sync::Arc::new(tokio::sync::Notify::new()),
        }),
        store: Some(store.clone()),
        dashboard: Some(std::sync::Arc::new(procbot::http::dashboard::Dashboard {
            token: SecretString::from(TOKEN.to_string()),
            store: store.clone(),
            library: std::sync::Arc::new(procbot::engine::library::Library::default()),
            clock: std::sync::Arc::new(procbot::clock::SystemClock),
            time_zone: chrono_tz::UTC,
        })),
        metrics: None,
    });
    let body = format!("token={}", "x".repeat(100_000));
    let response = procbot::http::router(state)
        .oneshot(
            axum::http::Request::post("/login")
                .header("content-type", "application/x-www-form-urlencoded")
                .header("content-length", body.len())
                .body(Body::from(body))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), 413);
    store.close().await;
    db.finish().await;
}
