//! `tierd webhooks test NAME`: sends a signed `webhook.test` event to one configured endpoint at
//! once (outside the outbox) and says what the endpoint answered. Exit codes: 0 the endpoint
//! answered 2xx, 1 it did not (or could not be reached), 2 no such endpoint or it is not usable
//! (the problem names its key).
//!
//! `tierd webhooks enable NAME`: switches an endpoint disabled after a 410 or its last retry back
//! on; its pending events resume.

use std::process::ExitCode;

use anyhow::Context as _;
use tierd_activation::webhooks::Webhooks;
use tierd_config::Settings;
use tierd_store::Timestamp;

/// `tierd webhooks` actions.
#[derive(clap::Subcommand, Debug)]
pub enum WebhooksAction {
    /// Send a signed test event to the endpoint NAME ([[webhooks]] name) now.
    Test {
        /// The endpoint's configured name.
        name: String,
    },
    /// Switch the endpoint NAME back on after it was disabled (410, or retries exhausted).
    Enable {
        /// The endpoint's configured name.
        name: String,
    },
}

/// Runs `tierd webhooks ...`.
pub fn run(action: WebhooksAction, settings: Settings) -> anyhow::Result<ExitCode> {
    let name = match action {
        WebhooksAction::Test { name } => name,
        WebhooksAction::Enable { name } => return enable(&settings, &name),
    };
    let (webhooks, problems) =
        Webhooks::compile_usable(&settings.webhooks, |k| std::env::var(k).ok(), "webhooks");
    let Some(endpoint) = webhooks.endpoint(&name) else {
        let index = settings.webhooks.iter().position(|w| w.name().trim() == name);
        let mine: Vec<String> = problems
            .0
            .iter()
            .filter(|p| index.is_some_and(|i| p.path.starts_with(&format!("webhooks[{i}]."))))
            .map(ToString::to_string)
            .collect();
        if mine.is_empty() {
            let names = webhooks.names();
            eprintln!(
                "error: no webhook named '{name}' in {} (configured: {})",
                settings.origin,
                if names.is_empty() {
                    "none".to_string()
                } else {
                    names.join(", ")
                }
            );
        } else {
            eprintln!(
                "error: the webhook '{name}' cannot be used:\n  {}",
                mine.join("\n  ")
            );
        }
        return Ok(ExitCode::from(2));
    };
    let origin = endpoint.origin();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let http = Webhooks::http_client().context("cannot build the HTTP client")?;
    let sent = runtime
        .block_on(webhooks.send_test(&name, &http, Timestamp::now()))
        .context("the endpoint vanished")?;
    match (sent.status, &sent.error) {
        (Some(status), None) => {
            println!(
                "{name} ({origin}) answered HTTP {status} to the test event {}",
                sent.event_id
            );
            Ok(ExitCode::SUCCESS)
        }
        (_, error) => {
            println!(
                "{name} ({origin}) did not take the test event {}: {}",
                sent.event_id,
                error.as_deref().unwrap_or("no answer")
            );
            Ok(ExitCode::from(1))
        }
    }
}

fn enable(settings: &Settings, name: &str) -> anyhow::Result<ExitCode> {
    if !settings.webhooks.iter().any(|w| w.name().trim() == name) {
        eprintln!("error: no webhook named '{name}' in {}", settings.origin);
        return Ok(ExitCode::from(2));
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let was_off = runtime.block_on(async {
        let store = tierd_store::Store::connect(&settings.store.url)
            .await
            .with_context(|| {
                format!(
                    "cannot open the store at {}",
                    tierd_store::redact_url(&settings.store.url)
                )
            })?;
        let r = store.enable_webhook_endpoint(name).await;
        store.close().await;
        anyhow::Ok(r?)
    })?;
    if was_off {
        println!("{name} is enabled again; its pending events will be delivered");
    } else {
        println!("{name} was not disabled");
    }
    Ok(ExitCode::SUCCESS)
}
