//! `POST /webhooks/git`: signatures from GitHub, Gitea/Forgejo and GitLab, and the sync they
//! trigger in a running server.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use hmac::{Hmac, KeyInit, Mac};
use procbot::config::Config;
use procbot::http::webhook::GitWebhook;
use procbot::http::{HttpState, router};
use secrecy::SecretString;
use sha2::Sha256;
use tokio::sync::{Notify, watch};
use tower::ServiceExt;

use crate::git_fixture::{GitFixture, procedure};
use crate::helpers::{http_get, http_request, spawn_app};

const SECRET: &str = "procedures-repo-secret";
const PUSH: &str = r#"{"ref":"refs/heads/main","after":"0123456789abcdef0123456789abcdef01234567","repository":{"full_name":"acme/procedures"}}"#;

fn sign(secret: &str, body: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body.as_bytes());
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn app(secret: Option<&str>) -> (axum::Router, Arc<Notify>) {
    let trigger = Arc::new(Notify::new());
    let (_, served) = watch::channel(None);
    let state = Arc::new(HttpState {
        served,
        webhook: Arc::new(GitWebhook {
            secret: secret.map(|s| SecretString::from(s.to_string())),
            branch: "main".into(),
            trigger: trigger.clone(),
        }),
        store: None,
        dashboard: None,
        metrics: None,
    });
    (router(state), trigger)
}

async fn post(
    router: axum::Router,
    headers: &[(&str, String)],
    body: &str,
) -> (StatusCode, serde_json::Value) {
    let mut request = Request::post("/webhooks/git").header("content-type", "application/json");
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    let response = router
        .oneshot(request.body(Body::from(body.to_string())).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
    )
}

async fn was_triggered(trigger: &Notify) -> bool {
    tokio::time::timeout(Duration::from_millis(50), trigger.notified())
        .await
        .is_ok()
}

#[tokio::test]
async fn signed_pushes_from_each_forge_trigger_a_sync() {
    let github = [
        ("x-github-event", "push".to_string()),
        (
            "x-hub-signature-256",
            format!("sha256={}", sign(SECRET, PUSH)),
        ),
    ];
    let gitea = [
        ("x-gitea-event", "push".to_string()),
        ("x-gitea-signature", sign(SECRET, PUSH)),
    ];
    let forgejo = [
        ("x-forgejo-event", "push".to_string()),
        ("x-forgejo-signature", sign(SECRET, PUSH)),
    ];
    let gitlab = [
        ("x-gitlab-event", "Push Hook".to_string()),
        ("x-gitlab-token", SECRET.to_string()),
    ];
    for headers in [&github[..], &gitea[..], &forgejo[..], &gitlab[..]] {
        let (router, trigger) = app(Some(SECRET));
        let (status, body) = post(router, headers, PUSH).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{headers:?}: {body}");
        assert!(was_triggered(&trigger).await, "{headers:?}");
    }
}

#[tokio::test]
async fn forged_missing_and_replayed_signatures_get_401_and_trigger_nothing() {
    let other_repository = sign("another-repository-secret", PUSH);
    let cases: Vec<Vec<(&str, String)>> = vec![
        vec![],
        vec![(
            "x-hub-signature-256",
            format!("sha256={}", sign(SECRET, "{\"ref\":\"refs/heads/evil\"}")),
        )],
        vec![("x-hub-signature-256", format!("sha256={other_repository}"))],
        vec![("x-hub-signature-256", sign(SECRET, PUSH))],
        vec![("x-gitea-signature", other_repository.clone())],
        vec![("x-gitea-signature", "not hex".to_string())],
        vec![("x-gitlab-token", "guess".to_string())],
        vec![("x-gitlab-token", String::new())],
    ];
    for headers in cases {
        let (router, trigger) = app(Some(SECRET));
        let (status, body) = post(router, &headers, PUSH).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{headers:?}: {body}");
        assert!(body["error"].as_str().is_some_and(|e| !e.is_empty()));
        assert!(!was_triggered(&trigger).await, "{headers:?}");
    }
}

#[tokio::test]
async fn pings_other_branches_and_other_events_are_answered_without_a_sync() {
    let ping = "{\"zen\":\"Keep it logically awesome.\"}";
    let other_branch = PUSH.replace("refs/heads/main", "refs/heads/draft");
    let cases = [
        (
            vec![
                ("x-github-event", "ping".to_string()),
                (
                    "x-hub-signature-256",
                    format!("sha256={}", sign(SECRET, ping)),
                ),
            ],
            ping.to_string(),
            "pong",
        ),
        (
            vec![
                ("x-github-event", "push".to_string()),
                (
                    "x-hub-signature-256",
                    format!("sha256={}", sign(SECRET, &other_branch)),
                ),
            ],
            other_branch.clone(),
            "ignored",
        ),
        (
            vec![
                ("x-github-event", "issues".to_string()),
                (
                    "x-hub-signature-256",
                    format!("sha256={}", sign(SECRET, PUSH)),
                ),
            ],
            PUSH.to_string(),
            "ignored",
        ),
    ];
    for (headers, body, expected) in cases {
        let (router, trigger) = app(Some(SECRET));
        let (status, answer) = post(router, &headers, &body).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        assert_eq!(answer["status"], expected);
        assert!(!was_triggered(&trigger).await);
    }
    let (router, trigger) = app(Some(SECRET));
    let garbage = "not json";
    let (status, _) = post(
        router,
        &[(
            "x-hub-signature-256",
            format!("sha256={}", sign(SECRET, garbage)),
        )],
        garbage,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(!was_triggered(&trigger).await);
}

#[tokio::test]
async fn without_a_configured_secret_the_endpoint_is_off() {
    let (router, trigger) = app(None);
    let (status, _) = post(
        router,
        &[("x-hub-signature-256", format!("sha256={}", sign("", PUSH)))],
        PUSH,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(!was_triggered(&trigger).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_push_makes_a_running_server_sync_at_once() {
    let fixture = GitFixture::at_root();
    fixture.write("backup.md", &procedure("backup", "1.0.0", &["Back it up."]));
    fixture.publish("Initial");
    let data = tempfile::tempdir().unwrap();
    let mut config = Config::default();
    config.procedures.git_url = Some(fixture.remote_url());
    config.procedures.path = data.path().join("checkout");
    config.procedures.state_file = data.path().join("state.json");
    config.procedures.poll_every = procbot::config::HumanDuration(Duration::from_secs(3600));
    config.webhook.secret = Some(SecretString::from(SECRET.to_string()));
    let app = spawn_app(config).await;
    let address = app.address;

    fixture.write(
        "backup.md",
        &procedure("backup", "1.1.0", &["Back it up twice."]),
    );
    let pushed = fixture.publish("Second copy");
    let status = post_raw(address, &format!("sha256={}", sign(SECRET, PUSH))).await;
    assert_eq!(status, 202);

    let mut synced = false;
    for _ in 0..100 {
        let (_, body) = tokio::task::spawn_blocking(move || http_get(address, "/readyz"))
            .await
            .unwrap();
        if body.contains(&pushed) {
            synced = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        synced,
        "the push was not synced within 10 s although polling waits an hour"
    );
    app.stop().await;
}

async fn post_raw(address: std::net::SocketAddr, signature: &str) -> u16 {
    let head = format!(
        "POST /webhooks/git HTTP/1.1\r\nx-github-event: push\r\nx-hub-signature-256: {signature}\r\ncontent-type: application/json"
    );
    tokio::task::spawn_blocking(move || http_request(address, &head, PUSH).0)
        .await
        .unwrap()
}

#[tokio::test]
async fn an_oversized_push_is_refused_with_413_before_its_signature_or_json_is_read() {
    // One byte over the 25 MiB forges may send: signed or not, never read.
    let huge = format!("{{\"ref\":\"{}\"}}", "x".repeat(25 * 1024 * 1024));
    let signed = [(
        "x-hub-signature-256",
        format!("sha256={}", sign(SECRET, &huge)),
    )];
    for headers in [&signed[..], &[]] {
        let (router, trigger) = app(Some(SECRET));
        let (status, _) = post(router, headers, &huge).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
        assert!(!was_triggered(&trigger).await);
    }
    // Without a Content-Length (a chunked body), the limit holds while the body streams in.
    let chunks =
        (0..26).map(|_| Ok::<_, std::io::Error>(axum::body::Bytes::from(vec![b' '; 1 << 20])));
    let (router, trigger) = app(Some(SECRET));
    let response = router
        .oneshot(
            Request::post("/webhooks/git")
                .header("content-type", "application/json")
                .header("x-hub-signature-256", "sha256=00")
                .body(Body::from_stream(futures_util::stream::iter(chunks)))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert!(!was_triggered(&trigger).await);
}

#[tokio::test]
async fn a_body_that_is_not_json_is_refused_by_its_signature_first() {
    let (router, trigger) = app(Some(SECRET));
    let (status, body) = post(
        router,
        &[("x-hub-signature-256", format!("sha256={}", "0".repeat(64)))],
        "{not json",
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert!(!was_triggered(&trigger).await);
}
