//! What only the Salesforce connector does, against the Salesforce emulator: OAuth and token
//! expiry, SOQL paging, composite updates retried past locked rows, the daily API limit and
//! its reserve, and 429s with `Retry-After`. What every connector does is `conformance.rs`.

mod common;

use std::time::Duration;

use futures_util::StreamExt;
use tierd_connectors::connector::{Connector, CrmAccount, PushOutcome, TierUpdate, Watermark};
use tierd_connectors::http::Secret;

use common::{accounts, fast_retries, pull};
use tierd_connectors::salesforce::{SalesforceConfig, SalesforceConnector};
use tierd_core::Tier;
use tierd_emulators::{SalesforceConfig as EmuConfig, SalesforceEmulator};

fn connector(emu: &SalesforceEmulator, tune: impl FnOnce(&mut SalesforceConfig)) -> SalesforceConnector {
    let mut cfg = SalesforceConfig {
        login_url: emu.base_url(),
        client_id: "tierd-test".into(),
        client_secret: Secret::new("test-secret"),
        competitors: vec!["Hightouch".into(), "Census".into(), "RudderStack".into()],
        api_reserve_share: 0.0,
        retry: fast_retries(3),
        ..SalesforceConfig::default()
    };
    tune(&mut cfg);
    cfg.build().expect("valid config")
}

fn update(id: &str, tier: Tier) -> TierUpdate {
    TierUpdate {
        id: id.to_string(),
        tier,
        score: 3.9,
        coverage: 0.9,
        reason: "uses Snowflake; renewal in 60 days".into(),
        model: "default@1".into(),
        scored_at: Watermark(1_795_000_000_000),
    }
}

fn sf_id(a: &CrmAccount) -> &str {
    a.id.strip_prefix("salesforce:").expect("salesforce id")
}

#[tokio::test]
async fn full_pull_follows_next_records_url_and_reads_the_api_usage() {
    // Every account once with its facts (Contract facts included) is the conformance suite's.
    let emu = SalesforceEmulator::start(EmuConfig::new(2_500, 21))
        .await
        .expect("emulator");
    let c = connector(&emu, |_| {});
    let pages = pull(&c, None).await;
    assert_eq!(pages.len(), 2, "2000 + 500");
    assert_eq!(accounts(&pages).len(), 2_500);
    let stats = c.http_stats();
    assert!(stats.api_used > 0 && stats.api_max == 100_000, "{stats:?}");
    emu.shutdown().await;
}

#[tokio::test]
async fn an_expired_token_is_renewed_once_and_the_call_retried() {
    let emu = SalesforceEmulator::start(EmuConfig::new(50, 23))
        .await
        .expect("emulator");
    let c = connector(&emu, |_| {});
    assert_eq!(accounts(&pull(&c, None).await).len(), 50);
    emu.expire_tokens();
    assert_eq!(accounts(&pull(&c, None).await).len(), 50);
    let ids: Vec<String> = accounts(&pull(&c, None).await)
        .iter()
        .map(|a| a.id.clone())
        .collect();
    emu.expire_tokens();
    let outcomes = c.push(&[update(&ids[0], Tier::Tier1)]).await.expect("push");
    assert_eq!(outcomes, [PushOutcome::Written]);
    emu.shutdown().await;
}

#[tokio::test]
async fn wrong_client_secret_is_an_auth_error_without_the_secret() {
    let emu = SalesforceEmulator::start(EmuConfig::new(5, 24))
        .await
        .expect("emulator");
    let c = connector(&emu, |cfg| cfg.client_secret = Secret::new("not-the-secret"));
    let err = c.pull(None).next().await.expect("item").expect_err("refused");
    let text = err.to_string();
    assert!(
        text.contains("authentication failed") && text.contains("invalid_client"),
        "{text}"
    );
    assert!(!text.contains("not-the-secret"), "{text}");
    emu.shutdown().await;
}

#[tokio::test]
async fn push_writes_each_account_once_and_retries_locked_rows() {
    let emu = SalesforceEmulator::start(EmuConfig::new(450, 26))
        .await
        .expect("emulator");
    let c = connector(&emu, |_| {});
    assert!(c.ensure_schema().await.expect("describe").is_complete());
    let all_pages = pull(&c, None).await;
    let all = accounts(&all_pages);
    emu.lock_rows_once(&[sf_id(all[5]), sf_id(all[300])]);
    let mut updates: Vec<TierUpdate> = all.iter().map(|a| update(&a.id, Tier::Tier2)).collect();
    updates.push(update("salesforce:001000000000000XYZ", Tier::Tier1));
    let outcomes = c.push(&updates).await.expect("push");
    let bad = outcomes.last().expect("outcome");
    assert!(
        matches!(bad, PushOutcome::Rejected { permanent: true, .. }),
        "{bad:?}"
    );
    assert!(
        outcomes[..450].iter().all(|o| *o == PushOutcome::Written),
        "locked rows retried"
    );
    let log = emu.writes();
    assert_eq!((log.total, log.max_per_record()), (450, 1));
    assert_eq!(emu.field(sf_id(all[5]), "Tier__c").as_deref(), Some("tier_2"));
    let locked = pull(&c, None).await;
    assert!(accounts(&locked).iter().all(|a| a.crm_tier == Some(Tier::Tier2)));
    emu.shutdown().await;
}

#[tokio::test]
async fn the_daily_limit_stops_the_push_and_defers_the_rest() {
    let mut cfg = EmuConfig::new(600, 27);
    cfg.daily_api_limit = 12;
    let emu = SalesforceEmulator::start(cfg).await.expect("emulator");
    let c = connector(&emu, |cfg| cfg.read_contracts = false);
    let pages = pull(&c, None).await; // describe + 1 query
    let updates: Vec<TierUpdate> = accounts(&pages)
        .iter()
        .map(|a| update(&a.id, Tier::Tier3))
        .collect();
    let used = c.http_stats().api_used;
    assert_eq!(used, 2);
    // Burn calls until two are left: the push gets two batches through, then meets the limit.
    for _ in 0..8 {
        c.ensure_schema().await.expect("describe");
    }
    let outcomes = c.push(&updates).await.expect("push");
    let written = outcomes.iter().filter(|o| **o == PushOutcome::Written).count();
    let deferred = outcomes
        .iter()
        .filter(|o| matches!(o, PushOutcome::Deferred { .. }))
        .count();
    assert_eq!((written, deferred), (400, 200));
    assert!(outcomes
        .iter()
        .all(|o| o.retry_later() || *o == PushOutcome::Written));
    assert_eq!(emu.writes().total, 400);
    emu.shutdown().await;
}

#[tokio::test]
async fn the_api_reserve_stops_pushing_before_the_limit() {
    let mut cfg = EmuConfig::new(600, 28);
    cfg.daily_api_limit = 100;
    let emu = SalesforceEmulator::start(cfg).await.expect("emulator");
    let c = connector(&emu, |cfg| {
        cfg.read_contracts = false;
        cfg.api_reserve_share = 0.965;
    });
    let pages = pull(&c, None).await;
    let updates: Vec<TierUpdate> = accounts(&pages)
        .iter()
        .map(|a| update(&a.id, Tier::Tier3))
        .collect();
    // The pull used 2 calls (describe, query): 98 left > 97 reserved, one batch goes, then it stops.
    let outcomes = c.push(&updates).await.expect("push");
    let written = outcomes.iter().filter(|o| **o == PushOutcome::Written).count();
    assert_eq!(written, 200);
    assert!(matches!(&outcomes[599], PushOutcome::Deferred { reason } if reason.contains("reserve")));
    emu.shutdown().await;
}

#[tokio::test]
async fn a_429_with_retry_after_is_honoured() {
    let emu = SalesforceEmulator::start(EmuConfig::new(20, 29))
        .await
        .expect("emulator");
    let c = connector(&emu, |_| {});
    emu.faults().set_rate_limit_storm(1);
    assert_eq!(accounts(&pull(&c, None).await).len(), 20);
    let stats = c.http_stats();
    assert_eq!((stats.rate_limited, stats.retries), (1, 1), "{stats:?}");
    // `waited` counts the waits asked for (here the emulator's `Retry-After: 1` and nothing
    // else, the limiter being off), not a stopwatch; that the client really waits that long
    // is `http`'s `honours_retry_after`, against a server that refuses an early retry.
    assert_eq!(stats.waited, Duration::from_secs(1), "{stats:?}");
    emu.shutdown().await;
}

#[tokio::test]
async fn opportunities_come_with_their_account() {
    let emu = SalesforceEmulator::start(EmuConfig::new(300, 30))
        .await
        .expect("emulator");
    let c = connector(&emu, |_| {});
    let pages = pull(&c, None).await;
    let ids: Vec<String> = accounts(&pages).iter().take(50).map(|a| a.id.clone()).collect();
    let deals = c.deals_for(&ids).await.expect("opportunities");
    assert!(!deals.is_empty());
    for d in &deals {
        assert!(ids.contains(&d.account_id) && d.closed.is_some(), "{d:?}");
        // OpportunityHistory: the first stage on creation, then the current one.
        assert_eq!(
            d.stage_entries[0],
            ("Prospecting".to_string(), d.created.expect("created")),
            "{d:?}"
        );
        assert_eq!(
            d.stage_entries.last().map(|e| e.0.as_str()),
            d.stage.as_deref(),
            "{d:?}"
        );
    }
    assert!(deals.iter().any(|d| d.won == Some(true)) && deals.iter().any(|d| d.won == Some(false)));
    emu.shutdown().await;
}
