//! `procbot serve`: health and readiness, configuration errors, clean shutdown.

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::process::Stdio;

use std::sync::Arc;

use procbot::clock::SystemClock;
use procbot::config::Config;
use procbot::startup::Application;

use crate::helpers::{TestRepo, http_get, procbot_command, project_root, spawn_app};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_readiness_answer_and_shutdown_is_graceful() {
    let workdir = TestRepo::new();
    let mut config = Config::default();
    config.procedures.path = project_root().join("procedures");
    config.procedures.state_file = workdir.path().join("state.json");
    let app = spawn_app(config).await;
    let address = app.address;

    let (health, readiness) = tokio::task::spawn_blocking(move || {
        (http_get(address, "/healthz"), http_get(address, "/readyz"))
    })
    .await
    .unwrap();
    assert_eq!(health, (200, "ok\n".to_string()));
    assert_eq!(readiness.0, 200);
    let readiness: serde_json::Value = serde_json::from_str(&readiness.1).unwrap();
    assert_eq!(readiness["status"], "ready");
    assert!(readiness["procedures"].as_u64().unwrap() >= 20);
    assert_eq!(readiness["errors"], 0);
    // No chat platform is configured: announcements are recorded, nothing is queued.
    assert_eq!(
        readiness["outbox"],
        serde_json::json!({"pending": 0, "delivered": 0, "failed": 0})
    );

    let (not_found, _) = tokio::task::spawn_blocking(move || http_get(address, "/nope"))
        .await
        .unwrap();
    assert_eq!(not_found, 404);

    app.stop().await;
}

#[tokio::test]
async fn a_missing_procedures_folder_stops_start_up_with_a_clear_error() {
    let mut config = Config::default();
    config.procedures.path = "/nonexistent/procedures".into();
    let error = Application::build(config, Arc::new(SystemClock))
        .await
        .err()
        .unwrap();
    assert!(
        format!("{error:#}").contains("/nonexistent/procedures does not exist"),
        "{error:#}"
    );
}

#[test]
fn the_binary_serves_until_sigterm_then_exits_0() {
    let workdir = TestRepo::new();
    let mut child = procbot_command(&["serve"])
        .current_dir(workdir.path())
        .env("PROCBOT_HTTP__LISTEN", "127.0.0.1:0")
        .env(
            "PROCBOT_PROCEDURES__PATH",
            project_root().join("procedures"),
        )
        .env("PROCBOT_LOG__FORMAT", "json")
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut address = None;
    let mut line = String::new();
    while stderr.read_line(&mut line).unwrap() > 0 {
        if let Ok(event) = serde_json::from_str::<serde_json::Value>(&line)
            && event["message"] == "HTTP server listening"
        {
            address = event["address"]
                .as_str()
                .map(|a| a.parse::<SocketAddr>().unwrap());
            break;
        }
        line.clear();
    }
    let address = address.expect("the server never said where it listens");
    assert_eq!(http_get(address, "/readyz").0, 200);

    let status = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let mut rest = String::new();
    stderr.read_to_string(&mut rest).unwrap();
    let exit = child.wait().unwrap();
    assert_eq!(exit.code(), Some(0), "{rest}");
    assert!(rest.contains("SIGTERM received"), "{rest}");
}

#[test]
fn a_bad_configuration_exits_2_naming_the_key() {
    let workdir = TestRepo::new();
    let config = workdir.write(
        "procbot.toml",
        "[http]\nlisten = \"127.0.0.1:0\"\n[schedule]\ntimezone = \"Atlantis/Capital\"\n",
    );
    let output = procbot_command(&["serve", "--config", config.to_str().unwrap()])
        .current_dir(workdir.path())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("schedule.timezone"), "{stderr}");
    assert!(stderr.contains("Atlantis/Capital"), "{stderr}");

    let secret_in_file = workdir.write("secret.toml", "[slack]\nbot_token = \"xoxb-123\"\n");
    let output = procbot_command(&["serve", "--config", secret_in_file.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("PROCBOT_SLACK__BOT_TOKEN"), "{stderr}");
    assert!(
        !stderr.contains("xoxb-123"),
        "the secret was echoed: {stderr}"
    );
}
