//! CRM lists kept in step with a tier (`tierd_connectors::lists`), against the emulators:
//! created when missing and found again by name, members added and removed, hand edits put
//! right, memberships read past one page, changes cut to the vendor's limit per call, and the
//! lists tierd may not change refused with the CRM's words.

#[allow(dead_code)]
mod common;

use tierd_connectors::connector::Connector;
use tierd_connectors::http::Secret;
use tierd_connectors::hubspot::{HubSpotConfig, HubSpotConnector};
use tierd_connectors::lists::ListSync;
use tierd_connectors::salesforce::{SalesforceConfig, SalesforceConnector};
use tierd_emulators::{HubSpotConfig as HubSpotEmuConfig, HubSpotEmulator};
use tierd_emulators::{SalesforceConfig as SalesforceEmuConfig, SalesforceEmulator};

use common::{accounts, fast_retries, pull};

const LIST: &str = "tierd: Tier 1";

fn hubspot(emu: &HubSpotEmulator, tune: impl FnOnce(&mut HubSpotConfig)) -> HubSpotConnector {
    let mut cfg = HubSpotConfig {
        base_url: emu.base_url(),
        token: Secret::new("test-token"),
        rate_limit: 0,
        search_rate_per_sec: 0,
        retry: fast_retries(11),
        ..HubSpotConfig::default()
    };
    tune(&mut cfg);
    cfg.build().expect("valid config")
}

/// HubSpot company `k` (the emulator's ids start at 1,000,000,000).
fn company(k: u64) -> String {
    (1_000_000_000 + k).to_string()
}

fn hubspot_ids(ks: impl IntoIterator<Item = u64>) -> Vec<String> {
    ks.into_iter()
        .map(|k| format!("hubspot:{}", company(k)))
        .collect()
}

fn companies(ks: impl IntoIterator<Item = u64>) -> Vec<String> {
    let mut ids: Vec<String> = ks.into_iter().map(company).collect();
    ids.sort();
    ids
}

async fn sync(c: &dyn Connector, name: &str, members: &[String]) -> ListSync {
    c.lists()
        .expect("the connector keeps lists")
        .sync_list(name, members)
        .await
        .expect("list synced")
}

#[tokio::test]
async fn a_missing_hubspot_list_is_created_as_manual_then_found_again_by_name() {
    let emu = HubSpotEmulator::start(HubSpotEmuConfig::new(20, 1))
        .await
        .expect("emulator");
    let c = hubspot(&emu, |_| {});
    let first = sync(&c, LIST, &hubspot_ids([3, 1, 2])).await;
    assert!(first.created);
    assert_eq!((first.added, first.removed, first.unchanged), (3, 0, 0));
    assert!(first.refused.is_empty(), "{:?}", first.refused);
    assert_eq!(emu.list_members(LIST), Some(companies([1, 2, 3])));

    // Found again by name, in any case: nothing created, nothing to change.
    let again = sync(&c, "TIERD: tier 1", &hubspot_ids([1, 2, 3])).await;
    assert!(!again.created);
    assert_eq!(again.list_id, first.list_id);
    assert_eq!((again.added, again.removed, again.unchanged), (0, 0, 3));
    assert_eq!(emu.list_count(), 1);
    assert_eq!(
        emu.list_membership_calls(),
        1,
        "nothing to change: no membership call"
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn hubspot_members_are_added_and_removed_and_hand_edits_put_right() {
    let emu = HubSpotEmulator::start(HubSpotEmuConfig::unlimited(30, 2))
        .await
        .expect("emulator");
    let c = hubspot(&emu, |_| {});
    sync(&c, LIST, &hubspot_ids(0..10)).await;
    // A person adds company 20 and removes company 0 by hand.
    emu.edit_list(LIST, &company(20), true);
    emu.edit_list(LIST, &company(0), false);
    // The tier now holds 0..5 and 10..13.
    let s = sync(&c, LIST, &hubspot_ids((0..5).chain(10..13))).await;
    assert_eq!(
        (s.added, s.removed, s.unchanged),
        (4, 6, 4),
        "adds 0 (removed by hand) and 10..13; removes 5..10 and 20 (added by hand)"
    );
    assert_eq!(emu.list_members(LIST), Some(companies((0..5).chain(10..13))));
    // Emptying the tier empties the list.
    let s = sync(&c, LIST, &[]).await;
    assert_eq!((s.added, s.removed, s.unchanged), (0, 8, 0));
    assert_eq!(emu.list_members(LIST), Some(vec![]));
    emu.shutdown().await;
}

#[tokio::test]
async fn hubspot_memberships_are_read_past_one_page() {
    let emu = HubSpotEmulator::start(HubSpotEmuConfig::unlimited(700, 3))
        .await
        .expect("emulator");
    let c = hubspot(&emu, |_| {});
    let s = sync(&c, LIST, &hubspot_ids(0..600)).await;
    assert_eq!(s.added, 600);
    // 600 members are three pages of 250: every one is seen, so only the news is sent.
    let s = sync(&c, LIST, &hubspot_ids((1..600).chain([650]))).await;
    assert_eq!((s.added, s.removed, s.unchanged), (1, 1, 599));
    // Smaller pages read the same members.
    let small = hubspot(&emu, |cfg| cfg.list_page_size = 7);
    let s = sync(&small, LIST, &hubspot_ids((1..600).chain([650]))).await;
    assert_eq!((s.added, s.removed, s.unchanged), (0, 0, 600));
    emu.shutdown().await;
}

#[tokio::test]
async fn hubspot_changes_are_cut_to_the_limit_per_call() {
    let mut cfg = HubSpotEmuConfig::unlimited(200, 4);
    cfg.list_batch_max = 50;
    let emu = HubSpotEmulator::start(cfg).await.expect("emulator");
    let c = hubspot(&emu, |cfg| cfg.list_batch_size = 50);
    let s = sync(&c, LIST, &hubspot_ids(0..120)).await;
    assert_eq!(s.added, 120);
    assert_eq!(emu.list_membership_calls(), 3, "50 + 50 + 20");
    // 30 adds and 40 removes are 70 ids: two calls, adds first.
    let s = sync(&c, LIST, &hubspot_ids((40..120).chain(150..180))).await;
    assert_eq!((s.added, s.removed, s.unchanged), (30, 40, 80));
    assert_eq!(emu.list_membership_calls(), 5);
    assert_eq!(emu.list_members(LIST), Some(companies((40..120).chain(150..180))));

    // A call over the emulator's limit is refused whole, and the error says so.
    let greedy = hubspot(&emu, |cfg| cfg.list_batch_size = 51);
    let err = greedy
        .lists()
        .expect("lists")
        .sync_list(LIST, &hubspot_ids(0..60))
        .await
        .expect_err("over the limit");
    let text = err.to_string();
    assert!(
        text.contains("HTTP 400") && text.contains("at most 50") && text.contains(LIST),
        "{text}"
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn a_dynamic_hubspot_list_is_refused_with_hubspots_words() {
    let emu = HubSpotEmulator::start(HubSpotEmuConfig::unlimited(10, 5))
        .await
        .expect("emulator");
    let id = emu.create_company_list(LIST, "DYNAMIC");
    let c = hubspot(&emu, |_| {});
    let err = c
        .lists()
        .expect("lists")
        .sync_list(LIST, &hubspot_ids(0..3))
        .await
        .expect_err("DYNAMIC lists take no changes");
    let text = err.to_string();
    assert!(
        text.contains(&format!("'{LIST}' (id {id}, DYNAMIC)"))
            && text.contains("HTTP 400")
            && text.contains("MANUAL or SNAPSHOT"),
        "{text}"
    );
    assert_eq!(emu.list_members(LIST), Some(vec![]));
    emu.shutdown().await;
}

#[tokio::test]
async fn unknown_companies_and_foreign_ids_are_refused_and_the_rest_kept() {
    let emu = HubSpotEmulator::start(HubSpotEmuConfig::unlimited(10, 6))
        .await
        .expect("emulator");
    // The legacy v3 path spells the added ids differently; both are read.
    for path in ["/crm/v3/lists", "/crm/lists/2026-03"] {
        let c = hubspot(&emu, |cfg| cfg.lists_path = path.into());
        let name = format!("{LIST} via {path}");
        let mut members = hubspot_ids([1, 2]);
        members.push("hubspot:999".into());
        members.push("salesforce:001000000000001AAA".into());
        let s = sync(&c, &name, &members).await;
        assert_eq!((s.added, s.removed, s.unchanged), (2, 0, 0), "{path}");
        let refused: Vec<String> = s.refused.iter().map(ToString::to_string).collect();
        assert_eq!(
            refused,
            [
                "salesforce:001000000000001AAA: not a HubSpot account id (hubspot:<id>)",
                "hubspot:999: HubSpot has no company 999",
            ],
            "{path}"
        );
        assert_eq!(emu.list_members(&name), Some(companies([1, 2])));
    }
    emu.shutdown().await;
}

#[test]
fn hubspot_list_settings_are_checked_by_key() {
    let base = || HubSpotConfig {
        token: Secret::new("t"),
        ..HubSpotConfig::default()
    };
    let err = HubSpotConfig {
        list_page_size: 251,
        ..base()
    }
    .build()
    .err()
    .expect("too big a page");
    assert_eq!(
        err.to_string(),
        "connector.list_page_size: must be within 1..=250, got 251"
    );
    let err = HubSpotConfig {
        lists_path: "/crm/v4/lists".into(),
        ..base()
    }
    .build()
    .err()
    .expect("unknown path");
    assert!(err.to_string().starts_with("connector.lists_path: "), "{err}");
}

fn salesforce(emu: &SalesforceEmulator, tune: impl FnOnce(&mut SalesforceConfig)) -> SalesforceConnector {
    let mut cfg = SalesforceConfig {
        login_url: emu.base_url(),
        client_id: "tierd-test".into(),
        client_secret: Secret::new("test-secret"),
        api_reserve_share: 0.0,
        read_contracts: false,
        retry: fast_retries(12),
        ..SalesforceConfig::default()
    };
    tune(&mut cfg);
    cfg.build().expect("valid config")
}

/// The org's Account Ids, in row order, as a pull reads them.
async fn account_ids(c: &SalesforceConnector) -> Vec<String> {
    let pages = pull(c, None).await;
    let mut ids: Vec<String> = accounts(&pages)
        .iter()
        .map(|a| {
            a.id.strip_prefix("salesforce:")
                .expect("salesforce id")
                .to_string()
        })
        .collect();
    ids.sort();
    ids
}

fn salesforce_ids(ids: &[String]) -> Vec<String> {
    ids.iter().map(|id| format!("salesforce:{id}")).collect()
}

fn sorted(ids: &[String]) -> Vec<String> {
    let mut v = ids.to_vec();
    v.sort();
    v
}

#[tokio::test]
async fn a_missing_campaign_is_created_then_found_again_by_name() {
    let emu = SalesforceEmulator::start(SalesforceEmuConfig::new(20, 7))
        .await
        .expect("emulator");
    let c = salesforce(&emu, |_| {});
    let ids = account_ids(&c).await;
    let first = sync(&c, LIST, &salesforce_ids(&ids[..3])).await;
    assert!(first.created && first.list_id.starts_with("701"), "{first:?}");
    assert_eq!((first.added, first.removed, first.unchanged), (3, 0, 0));
    assert!(first.refused.is_empty(), "{:?}", first.refused);
    assert_eq!(emu.campaign_accounts(LIST), Some(sorted(&ids[..3])));
    let again = sync(&c, LIST, &salesforce_ids(&ids[..3])).await;
    assert_eq!(again.list_id, first.list_id);
    assert!(!again.created);
    assert_eq!((again.added, again.removed, again.unchanged), (0, 0, 3));
    assert_eq!(emu.campaigns_named(LIST), 1);
    emu.shutdown().await;
}

#[tokio::test]
async fn campaign_members_are_read_past_a_page_and_changed_200_per_call() {
    let emu = SalesforceEmulator::start(SalesforceEmuConfig::unlimited(600, 8))
        .await
        .expect("emulator");
    // Pages of 200 (Salesforce's smallest batchSize): 450 members are three pages.
    let c = salesforce(&emu, |cfg| cfg.page_size = 200);
    let ids = account_ids(&c).await;
    let writes = emu.writes().total;
    let s = sync(&c, LIST, &salesforce_ids(&ids[..450])).await;
    assert_eq!((s.added, s.removed, s.unchanged), (450, 0, 0));
    // One Campaign and 450 members written; 200 + 200 + 50 per call is the emulator's limit.
    assert_eq!(emu.writes().total - writes, 451);
    // The tier moves: 250 leave, 100 join.
    let now: Vec<String> = ids[250..550].to_vec();
    let s = sync(&c, LIST, &salesforce_ids(&now)).await;
    assert_eq!((s.added, s.removed, s.unchanged), (100, 250, 200));
    assert_eq!(emu.campaign_accounts(LIST), Some(sorted(&now)));
    emu.shutdown().await;
}

#[tokio::test]
async fn campaign_hand_edits_are_put_right_and_foreign_ids_refused() {
    let emu = SalesforceEmulator::start(SalesforceEmuConfig::unlimited(30, 9))
        .await
        .expect("emulator");
    let c = salesforce(&emu, |_| {});
    let ids = account_ids(&c).await;
    sync(&c, LIST, &salesforce_ids(&ids[..5])).await;
    // A person adds account 20 and removes account 0.
    emu.add_campaign_member(LIST, &ids[20]);
    emu.remove_campaign_member(LIST, &ids[0]);
    let mut members = salesforce_ids(&ids[..5]);
    members.push("hubspot:1000000001".into());
    let s = sync(&c, LIST, &members).await;
    assert_eq!((s.added, s.removed, s.unchanged), (1, 1, 4));
    let refused: Vec<String> = s.refused.iter().map(ToString::to_string).collect();
    assert_eq!(
        refused,
        ["hubspot:1000000001: not a Salesforce account id (salesforce:<id>)"]
    );
    assert_eq!(emu.campaign_accounts(LIST), Some(sorted(&ids[..5])));
    emu.shutdown().await;
}

#[tokio::test]
async fn without_accounts_as_campaign_members_the_sync_names_the_setting() {
    let mut cfg = SalesforceEmuConfig::unlimited(10, 10);
    cfg.accounts_as_campaign_members = false;
    let emu = SalesforceEmulator::start(cfg).await.expect("emulator");
    let c = salesforce(&emu, |_| {});
    let ids = account_ids(&c).await;
    let err = c
        .lists()
        .expect("lists")
        .sync_list(LIST, &salesforce_ids(&ids[..2]))
        .await
        .expect_err("accounts cannot be members");
    assert!(
        err.to_string().contains("CampaignMember.AccountId")
            && err.to_string().contains("Accounts as Campaign Members"),
        "{err}"
    );
    assert_eq!(emu.campaigns_named(LIST), 0, "nothing written");
    emu.shutdown().await;
}

#[tokio::test]
async fn list_syncs_ride_out_rate_limits_and_never_add_a_member_twice() {
    let emu = HubSpotEmulator::start(HubSpotEmuConfig::unlimited(20, 13))
        .await
        .expect("emulator");
    let c = hubspot(&emu, |_| {});
    // HubSpot's 429s (no Retry-After) on the first calls: waited out, nothing lost.
    emu.faults().set_rate_limit_storm(3);
    let s = sync(&c, LIST, &hubspot_ids(0..5)).await;
    assert_eq!((s.added, s.unchanged), (5, 0));
    assert_eq!(c.http_stats().rate_limited, 3);
    assert_eq!(emu.list_members(LIST), Some(companies(0..5)));
    assert_eq!(emu.list_count(), 1);

    let sf = SalesforceEmulator::start(SalesforceEmuConfig::unlimited(10, 14))
        .await
        .expect("emulator");
    let c = salesforce(&sf, |_| {});
    let ids = account_ids(&c).await;
    let s = sync(&c, LIST, &salesforce_ids(&ids[..4])).await;
    assert_eq!(s.added, 4);
    // A member a person added by hand is already there: unchanged, never added twice.
    sf.add_campaign_member(LIST, &ids[4]);
    let s = sync(&c, LIST, &salesforce_ids(&ids[..5])).await;
    assert_eq!((s.added, s.removed, s.unchanged), (0, 0, 5));
    assert!(s.refused.is_empty(), "{:?}", s.refused);
    assert_eq!(sf.campaign_accounts(LIST), Some(sorted(&ids[..5])));
    emu.shutdown().await;
    sf.shutdown().await;
}
