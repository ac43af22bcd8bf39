//! `procbot chat`: the bot in a terminal through the console adapter. Reads lines as a person
//! types them (`/procedure backup`, `ack <id>`, `click <action-id>`), prints the replies and
//! every message the bot sends that person or its announce channel.

use std::io::{IsTerminal, Write};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::watch;

use crate::adapters::console::{ConsolePort, Sent, render_plain};
use crate::clock::Clock;
use crate::config::Config;
use crate::core::port::{ChatPort, Destination};
use crate::core::procedure::Email;
use crate::core::request::Request;
use crate::engine::{Actor, Origin, Reply};
use crate::startup::{Services, instance_name};

/// The console's announce channel.
pub const CONSOLE_CHANNEL: &str = "#procedures";

type Out = Arc<Mutex<Box<dyn Write + Send>>>;

fn print(out: &Out, text: &str) {
    let mut out = out
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
}

/// What the person at the terminal sees of a message the bot sent.
fn shown(sent: &Sent, viewer: Option<&Email>) -> Option<String> {
    match sent {
        Sent::Posted {
            destination: Destination::Channel { channel },
            message,
            ..
        } => Some(format!("[{channel}] procbot:\n{}", render_plain(message))),
        Sent::Posted {
            destination: Destination::Person { email },
            message,
            ..
        } if Some(email) == viewer => Some(format!("[DM] procbot:\n{}", render_plain(message))),
        Sent::Posted { .. } => None,
        Sent::Updated {
            message_ref,
            message,
        } => Some(format!(
            "[message {message_ref} updated]\n{}",
            render_plain(message)
        )),
        Sent::Ephemeral { email, message } if Some(email) == viewer => Some(render_plain(message)),
        Sent::Ephemeral { .. } => None,
    }
}

/// Runs the chat until end of input. Returns the exit code.
pub async fn run(
    config: Config,
    clock: Arc<dyn Clock>,
    viewer: Option<Email>,
    input: impl tokio::io::AsyncRead + Unpin,
    out: Box<dyn Write + Send>,
) -> anyhow::Result<u8> {
    let out: Out = Arc::new(Mutex::new(out));
    let printer_out = out.clone();
    let printer_viewer = viewer.clone();
    let port = Arc::new(ConsolePort::with_printer(move |sent| {
        if let Some(text) = shown(sent, printer_viewer.as_ref()) {
            print(&printer_out, &format!("{text}\n"));
        }
    }));
    let services = Services::build(
        &config,
        clock,
        vec![(
            port.clone() as Arc<dyn ChatPort>,
            Some(CONSOLE_CHANNEL.to_string()),
        )],
        &instance_name(),
    )
    .await?;
    let Services {
        library,
        engine,
        syncer,
        mut outbox,
        outbox_wake,
        store,
        scheduler,
        ..
    } = services;
    let (stop, stopped) = watch::channel(false);
    let follow = tokio::spawn(library.clone().follow(syncer.subscribe()));
    let reminders = tokio::spawn(scheduler.run(stopped.clone()));
    let sync = tokio::spawn(syncer.run(Arc::new(tokio::sync::Notify::new()), stopped));

    let procedures = library
        .current()
        .map(|served| served.snapshot.procedures.len())
        .unwrap_or(0);
    let who = match &viewer {
        Some(email) => {
            let name = library
                .current()
                .and_then(|s| {
                    s.snapshot
                        .directory
                        .as_ref()
                        .and_then(|d| d.person(email).map(|p| p.display_name().to_string()))
                })
                .unwrap_or_else(|| format!("{email} (not in directory.yaml)"));
            format!("You are {name}.")
        }
        None => "You are not signed in as anyone: lookups show what everyone may see. Use --as EMAIL to act as a person from directory.yaml.".to_string(),
    };
    print(
        &out,
        &format!(
            "procbot chat: {procedures} procedures loaded. {who}\nType /procedure help for commands; Ctrl-D to quit.\n"
        ),
    );
    let interactive = std::io::stdin().is_terminal();
    let actor = Actor {
        platform: crate::core::port::Platform::Console,
        workspace: "local".to_string(),
        user_id: viewer
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_else(|| "anonymous".to_string()),
        email: viewer.clone(),
    };

    // Messages queued before the first line (announcements of what changed while stopped).
    deliver(&mut outbox).await;
    let mut lines = BufReader::new(input).lines();
    loop {
        if interactive {
            print(&out, "> ");
        }
        let line = tokio::select! {
            line = lines.next_line() => line,
            () = outbox_wake.notified() => {
                deliver(&mut outbox).await;
                continue;
            }
        };
        let line = match line {
            Ok(Some(line)) => line,
            Ok(None) => break,
            Err(error) => {
                print(&out, &format!("error: cannot read input: {error}\n"));
                break;
            }
        };
        let text = line.trim();
        if text.is_empty() {
            continue;
        }
        if matches!(text, "quit" | "exit") {
            break;
        }
        let (request, origin) = match text.strip_prefix("click ") {
            Some(action_id) => {
                let action_id = action_id.trim();
                (
                    Request::from_action(action_id),
                    Origin {
                        message_ref: port.find_action(viewer.as_ref(), action_id),
                    },
                )
            }
            None => (Request::from_text(text), Origin::default()),
        };
        for reply in engine.handle(&actor, request, &origin).await {
            match reply {
                Reply::Private(message) | Reply::Shareable(message) => {
                    print(&out, &format!("{}\n", render_plain(&message)))
                }
                Reply::Update {
                    message_ref,
                    message,
                } => {
                    let _ = port.update(&message_ref, &message).await;
                }
            }
        }
        deliver(&mut outbox).await;
    }
    let _ = stop.send(true);
    let _ = sync.await;
    let _ = reminders.await;
    deliver(&mut outbox).await;
    follow.abort();
    store.close().await;
    Ok(0)
}

async fn deliver(outbox: &mut crate::delivery::OutboxWorker) {
    loop {
        match outbox.deliver_due().await {
            Ok(round) if round.claimed > 0 => continue,
            Ok(_) => return,
            Err(error) => {
                tracing::error!(%error, "the outbox could not be read");
                return;
            }
        }
    }
}
