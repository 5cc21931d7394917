//! The connector conformance suite: the behaviour every connector promises, run against
//! each one in the same words. HubSpot runs against its emulator, Salesforce against its
//! emulator, the file connector against temporary files.
//!
//! A connector joins by implementing [`Crm`] (start a CRM holding generated accounts and
//! their people, `tierd_emulators::people`, and act on it as a person would) and adding
//! one line to the `conformance!` invocation at the bottom; `docs/connectors.md` lists the
//! promises. What only one connector does
//! (HubSpot's search cap, Salesforce's session renewal, a file's paging) stays in that
//! connector's own test file.

mod common;

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use tierd_connectors::connector::{
    AccountPage, Connector, ConnectorError, CrmAccount, PushOutcome, TierUpdate, Watermark,
};
use tierd_connectors::file_connector::{FileConfig, FileConnector};
use tierd_connectors::files::read_tiers;
use tierd_connectors::http::Secret;
use tierd_connectors::hubspot::{HubSpotConfig, HubSpotConnector};
use tierd_connectors::salesforce::{SalesforceConfig, SalesforceConnector};
use tierd_core::Tier;
use tierd_emulators::people::people_of;
use tierd_emulators::{HubSpotEmulator, SalesforceEmulator};
use tierd_gen::{GenOptions, Generator, SyntheticAccount};

use common::{accounts, fast_retries, pull};

const AS_OF: &str = "2026-11-24";

/// A CRM (or file) under test, seeded with generated accounts `1..=n`, and a connector over it.
trait Crm: Sized {
    /// Starts one holding `n` generated accounts of `seed`, tierd's fields present when
    /// `tierd_fields` (where the CRM cannot create them itself).
    async fn start(n: u64, seed: u64, tierd_fields: bool) -> Self;
    /// The connector under test.
    fn connector(&self) -> &dyn Connector;
    /// A person sets the account's site visits in the last 30 days.
    async fn set_site_visits(&self, id: &str, visits: u64);
    /// A person (or a broken integration) puts an unreadable value in one of the account's
    /// fact fields; returns what the quarantine must name (id, field or column, line).
    async fn spoil(&self, id: &str) -> Vec<String>;
    /// A person sets the account's tier and locks it.
    async fn lock(&self, id: &str, tier: Tier);
    /// The tiers the destination holds now, by account id.
    async fn tiers_held(&self, ids: &[String]) -> HashMap<String, Tier>;
    /// An update the CRM refuses and words its reason must contain; `None` when the
    /// destination cannot refuse a record (a file takes every line).
    fn refused_update(&self) -> Option<(String, &'static str)>;
    /// Whether `ensure_schema` creates missing fields (Salesforce: an admin must).
    fn creates_fields(&self) -> bool;
    /// Whether an incremental pull since `mark` may return `account` though it did not
    /// change (the overlap each connector documents).
    fn may_repeat(&self, account: &CrmAccount, mark: Watermark) -> bool;
    async fn stop(self);
}

fn generated(n: u64, seed: u64) -> Vec<SyntheticAccount> {
    let as_of = AS_OF.parse().expect("date");
    Generator::new(GenOptions { seed, as_of })
        .take(n as usize)
        .collect()
}

fn by_domain(pages: &[AccountPage]) -> HashMap<&str, &CrmAccount> {
    accounts(pages)
        .into_iter()
        .map(|a| (a.domain.as_deref().unwrap_or_default(), a))
        .collect()
}

fn update(id: &str, tier: Tier) -> TierUpdate {
    TierUpdate {
        id: id.to_string(),
        tier,
        score: 3.9,
        coverage: 0.9,
        reason: format!("{tier} because of fit"),
        model: "default@1".into(),
        scored_at: Watermark(1_795_000_000_000),
    }
}

/// The watermark a pull ends at: its last page's.
fn watermark(pages: &[AccountPage]) -> Option<Watermark> {
    pages.last().and_then(|p| p.watermark)
}

fn ids(pages: &[AccountPage]) -> Vec<String> {
    accounts(pages).iter().map(|a| a.id.clone()).collect()
}

/// A full pull returns every account exactly once, with its name and every mapped fact.
async fn full_pull_returns_every_account_once_with_its_facts<C: Crm>() {
    let crm = C::start(250, 3, true).await;
    let pages = pull(crm.connector(), None).await;
    let all = accounts(&pages);
    let distinct: BTreeSet<&str> = all.iter().map(|a| a.id.as_str()).collect();
    assert_eq!((all.len(), distinct.len()), (250, 250));
    assert!(pages.iter().all(|p| p.quarantined.is_empty()));
    let found = by_domain(&pages);
    for account in generated(250, 3) {
        let got = found[account.domain.as_str()];
        assert_eq!(got.name.as_deref(), Some(account.name.as_str()), "{}", got.id);
        for (fact, value) in account.facts() {
            let read = got.facts.get(fact).map(|f| &f.value);
            assert_eq!(read, value.as_ref(), "{} {fact}", got.id);
        }
    }
    crm.stop().await;
}

/// An incremental pull since the last page's watermark returns what changed, with the new
/// values, and nothing else but the overlap the connector documents.
async fn incremental_pull_since_a_watermark_returns_only_changes<C: Crm>() {
    let crm = C::start(120, 4, true).await;
    let full = pull(crm.connector(), None).await;
    let mark = watermark(&full).expect("a full pull ends at a watermark");
    let all = ids(&full);
    let changed: BTreeSet<String> = [3, 60, 119].iter().map(|&i| all[i].clone()).collect();
    for id in &changed {
        crm.set_site_visits(id, 4242).await;
    }
    let pages = pull(crm.connector(), Some(mark)).await;
    let got: HashMap<&str, &CrmAccount> = accounts(&pages).into_iter().map(|a| (a.id.as_str(), a)).collect();
    for id in &changed {
        let visits = got
            .get(id.as_str())
            .and_then(|a| a.facts.get("engagement.site_visits_30d"))
            .map(|f| f.value.to_string());
        assert_eq!(visits.as_deref(), Some("4242"), "{id} changed");
    }
    for (id, account) in &got {
        assert!(
            changed.contains(*id) || crm.may_repeat(account, mark),
            "{id} did not change since {mark}"
        );
    }
    let next = watermark(&pages).expect("the watermark moves on");
    assert!(next > mark, "{next} after {mark}");
    // Nothing changed since: nothing but the documented overlap comes back.
    let again = pull(crm.connector(), Some(next)).await;
    for account in accounts(&again) {
        assert!(crm.may_repeat(account, next), "{} again", account.id);
    }
    assert!(watermark(&again).unwrap_or(next) >= next, "never moves back");
    crm.stop().await;
}

/// `ensure_schema` creates what is missing where the connector can, then reports complete
/// and creates nothing more; where it cannot, it names what is missing and push refuses.
async fn ensure_schema_creates_missing_fields_then_reports_complete<C: Crm>() {
    let crm = C::start(10, 5, false).await;
    let c = crm.connector();
    let first = c.ensure_schema().await.expect("schema");
    let second = c.ensure_schema().await.expect("schema again");
    assert!(second.created.is_empty(), "{second:?}");
    assert_eq!(second.missing, first.missing);
    for created in &first.created {
        assert!(
            second.existing.contains(created),
            "{created} exists after creation"
        );
    }
    if crm.creates_fields() {
        assert!(first.is_complete() && second.is_complete(), "{first:?}");
        assert!(!first.created.is_empty() || !first.existing.is_empty());
        let id = ids(&pull(c, None).await).remove(0);
        assert_eq!(
            c.push(&[update(&id, Tier::Tier2)]).await.expect("push"),
            [PushOutcome::Written]
        );
    } else {
        assert!(!first.missing.is_empty(), "{first:?}");
        let id = ids(&pull(c, None).await).remove(0);
        match c.push(&[update(&id, Tier::Tier2)]).await {
            Err(ConnectorError::SchemaMissing { fields, .. }) => assert_eq!(fields, first.missing),
            other => panic!("push with fields missing: {other:?}"),
        }
        assert!(crm.tiers_held(&[id]).await.is_empty(), "nothing written");
    }
    crm.stop().await;
}

/// One outcome per record, in the order given, and the destination then holds each tier.
async fn push_returns_one_outcome_per_record_in_order<C: Crm>() {
    let crm = C::start(40, 6, true).await;
    let c = crm.connector();
    assert!(c.ensure_schema().await.expect("schema").is_complete());
    let all = ids(&pull(c, None).await);
    let updates: Vec<TierUpdate> = all
        .iter()
        .enumerate()
        .map(|(i, id)| update(id, Tier::ALL[i % 4]))
        .collect();
    let outcomes = c.push(&updates).await.expect("push");
    assert_eq!(outcomes, vec![PushOutcome::Written; updates.len()]);
    let held = crm.tiers_held(&all).await;
    for u in &updates {
        assert_eq!(held.get(&u.id), Some(&u.tier), "{}", u.id);
    }
    crm.stop().await;
}

/// A record the CRM refuses comes back `Rejected` with the CRM's reason, in its place;
/// the others are written.
async fn a_refused_record_is_rejected_and_the_rest_written<C: Crm>() {
    let crm = C::start(30, 7, true).await;
    let c = crm.connector();
    assert!(c.ensure_schema().await.expect("schema").is_complete());
    let all = ids(&pull(c, None).await);
    let mut updates: Vec<TierUpdate> = all.iter().map(|id| update(id, Tier::Tier1)).collect();
    let refused = crm.refused_update();
    if let Some((id, _)) = &refused {
        updates.insert(1, update(id, Tier::Tier1));
    }
    let outcomes = c.push(&updates).await.expect("push");
    assert_eq!(outcomes.len(), updates.len());
    for (i, (u, o)) in updates.iter().zip(&outcomes).enumerate() {
        match &refused {
            Some((_, words)) if i == 1 => assert!(
                matches!(o, PushOutcome::Rejected { permanent: true, reason } if reason.contains(words)),
                "{o:?}"
            ),
            _ => assert_eq!(o, &PushOutcome::Written, "{}", u.id),
        }
    }
    let held = crm.tiers_held(&all).await;
    assert_eq!(held.len(), all.len(), "every valid record written");
    crm.stop().await;
}

/// A record that cannot be read is quarantined, naming it, and the rest of the pull goes on.
async fn a_bad_record_is_quarantined_and_the_rest_go_on<C: Crm>() {
    let crm = C::start(20, 8, true).await;
    let all = ids(&pull(crm.connector(), None).await);
    let spoiled = all[2].clone();
    let names = crm.spoil(&spoiled).await;
    let pages = pull(crm.connector(), None).await;
    let quarantined: Vec<String> = pages
        .iter()
        .flat_map(|p| &p.quarantined)
        .map(|q| q.to_string())
        .collect();
    assert_eq!(quarantined.len(), 1, "{quarantined:?}");
    for name in &names {
        assert!(
            quarantined[0].contains(name.as_str()),
            "{name} in {}",
            quarantined[0]
        );
    }
    let read = ids(&pages);
    assert_eq!(read.len(), 19);
    assert!(!read.contains(&spoiled));
    crm.stop().await;
}

/// A tier a person set and locked is read as locked, with that tier.
async fn a_locked_accounts_lock_and_tier_are_read<C: Crm>() {
    let crm = C::start(10, 9, true).await;
    let c = crm.connector();
    assert!(c.ensure_schema().await.expect("schema").is_complete());
    let all = ids(&pull(c, None).await);
    crm.lock(&all[4], Tier::Tier3).await;
    let pages = pull(c, None).await;
    for a in accounts(&pages) {
        if a.id == all[4] {
            assert_eq!((a.locked, a.crm_tier), (true, Some(Tier::Tier3)), "{}", a.id);
        } else {
            assert!(!a.locked, "{}", a.id);
        }
    }
    crm.stop().await;
}

/// One person as a connector must return them: values trimmed, the phone else the mobile.
fn person_text(
    email: Option<&str>,
    phone: Option<&str>,
    names: (Option<&str>, Option<&str>),
    country: Option<&str>,
    zip: Option<&str>,
) -> String {
    let t = |v: Option<&str>| v.map(str::trim).filter(|v| !v.is_empty()).map(str::to_string);
    format!(
        "{:?}",
        (t(email), t(phone), t(names.0), t(names.1), t(country), t(zip))
    )
}

/// The people of the accounts asked for, and only theirs, sorted by account then contact, each
/// as the CRM holds them (trimmed); `Debug` output names no one.
async fn contacts_are_the_people_of_the_asked_accounts_only<C: Crm>() {
    let crm = C::start(60, 8, true).await;
    let pages = pull(crm.connector(), None).await;
    let found = by_domain(&pages);
    let generated = generated(60, 8);
    let asked: Vec<(usize, String)> = generated
        .iter()
        .enumerate()
        .filter(|(k, _)| k % 2 == 0)
        .map(|(k, a)| (k, found[a.domain.as_str()].id.clone()))
        .collect();
    let ids: Vec<String> = asked.iter().map(|(_, id)| id.clone()).collect();
    let got = crm.connector().contacts_for(&ids).await.expect("contacts");
    assert!(got.unreadable.is_empty(), "{:?}", got.unreadable);
    assert!(got
        .contacts
        .windows(2)
        .all(|w| (&w[0].account_id, &w[0].id) <= (&w[1].account_id, &w[1].id)));
    assert!(got.contacts.iter().all(|c| ids.contains(&c.account_id)));
    for (k, id) in &asked {
        let mut want: Vec<String> = people_of(8, *k as u64, &generated[*k])
            .iter()
            .map(|p| {
                person_text(
                    p.email.as_deref(),
                    p.phone.as_deref().or(p.mobile.as_deref()),
                    (Some(p.first_name), Some(p.last_name)),
                    p.country,
                    p.zip.as_deref(),
                )
            })
            .collect();
        let mut have: Vec<String> = got
            .contacts
            .iter()
            .filter(|c| &c.account_id == id)
            .map(|c| {
                person_text(
                    c.email.as_deref(),
                    c.phone.as_deref(),
                    (c.first_name.as_deref(), c.last_name.as_deref()),
                    c.country.as_deref(),
                    c.zip.as_deref(),
                )
            })
            .collect();
        want.sort();
        have.sort();
        assert_eq!(have, want, "{id}");
    }
    assert!(got.contacts.len() > 10, "{}", got.contacts.len());
    assert!(!format!("{:?}", got.contacts).contains('@'));
    crm.stop().await;
}

macro_rules! conformance {
    ($($name:ident: $crm:ty),* $(,)?) => {$(
        mod $name {
            use super::*;

            #[tokio::test]
            async fn full_pull_returns_every_account_once_with_its_facts() {
                super::full_pull_returns_every_account_once_with_its_facts::<$crm>().await
            }

            #[tokio::test]
            async fn incremental_pull_since_a_watermark_returns_only_changes() {
                super::incremental_pull_since_a_watermark_returns_only_changes::<$crm>().await
            }

            #[tokio::test]
            async fn ensure_schema_creates_missing_fields_then_reports_complete() {
                super::ensure_schema_creates_missing_fields_then_reports_complete::<$crm>().await
            }

            #[tokio::test]
            async fn push_returns_one_outcome_per_record_in_order() {
                super::push_returns_one_outcome_per_record_in_order::<$crm>().await
            }

            #[tokio::test]
            async fn a_refused_record_is_rejected_and_the_rest_written() {
                super::a_refused_record_is_rejected_and_the_rest_written::<$crm>().await
            }

            #[tokio::test]
            async fn a_bad_record_is_quarantined_and_the_rest_go_on() {
                super::a_bad_record_is_quarantined_and_the_rest_go_on::<$crm>().await
            }

            #[tokio::test]
            async fn a_locked_accounts_lock_and_tier_are_read() {
                super::a_locked_accounts_lock_and_tier_are_read::<$crm>().await
            }

            #[tokio::test]
            async fn contacts_are_the_people_of_the_asked_accounts_only() {
                super::contacts_are_the_people_of_the_asked_accounts_only::<$crm>().await
            }
        }
    )*};
}

conformance!(hubspot: HubSpotCrm, salesforce: SalesforceCrm, file: FileCrm);

/// HubSpot: its emulator, the connector with limits off and no search overlap.
struct HubSpotCrm {
    emu: HubSpotEmulator,
    connector: HubSpotConnector,
}

fn hubspot_id(id: &str) -> &str {
    id.strip_prefix("hubspot:").expect("a HubSpot id")
}

impl Crm for HubSpotCrm {
    async fn start(n: u64, seed: u64, _tierd_fields: bool) -> Self {
        // tierd creates its properties itself, so the portal starts without them.
        let emu = HubSpotEmulator::start(tierd_emulators::HubSpotConfig::new(n, seed))
            .await
            .expect("emulator");
        let connector = HubSpotConfig {
            base_url: emu.base_url(),
            token: Secret::new("test-token"),
            rate_limit: 0,
            search_rate_per_sec: 0,
            search_overlap_ms: 0,
            retry: fast_retries(seed),
            ..HubSpotConfig::default()
        }
        .build()
        .expect("valid config");
        HubSpotCrm { emu, connector }
    }

    fn connector(&self) -> &dyn Connector {
        &self.connector
    }

    async fn set_site_visits(&self, id: &str, visits: u64) {
        self.emu
            .set_properties(hubspot_id(id), &[("site_visits_30d", &visits.to_string())]);
    }

    async fn spoil(&self, id: &str) -> Vec<String> {
        self.emu
            .set_properties(hubspot_id(id), &[("numberofemployees", "lots")]);
        vec![
            id.into(),
            "numberofemployees".into(),
            "'lots' is not a number".into(),
        ]
    }

    async fn lock(&self, id: &str, tier: Tier) {
        self.emu.set_properties(
            hubspot_id(id),
            &[("tierd_tier", tier.as_str()), ("tierd_tier_locked", "true")],
        );
    }

    async fn tiers_held(&self, ids: &[String]) -> HashMap<String, Tier> {
        ids.iter()
            .filter_map(|id| {
                let held = self.emu.property(hubspot_id(id), "tierd_tier")?;
                Some((id.clone(), held.parse().expect("a tier")))
            })
            .collect()
    }

    fn refused_update(&self) -> Option<(String, &'static str)> {
        Some(("hubspot:42".into(), "OBJECT_NOT_FOUND"))
    }

    fn creates_fields(&self) -> bool {
        true
    }

    fn may_repeat(&self, account: &CrmAccount, mark: Watermark) -> bool {
        // The search filters `hs_lastmodifieddate GTE` the watermark.
        account.updated_at == Some(mark)
    }

    async fn stop(self) {
        self.emu.shutdown().await;
    }
}

/// Salesforce: its emulator (tierd's custom fields present unless asked otherwise).
struct SalesforceCrm {
    emu: SalesforceEmulator,
    connector: SalesforceConnector,
}

fn salesforce_id(id: &str) -> &str {
    id.strip_prefix("salesforce:").expect("a Salesforce id")
}

impl Crm for SalesforceCrm {
    async fn start(n: u64, seed: u64, tierd_fields: bool) -> Self {
        let mut cfg = tierd_emulators::SalesforceConfig::new(n, seed);
        if !tierd_fields {
            cfg.omit_fields = ["Tier__c", "Tier_Reason__c"].map(String::from).to_vec();
        }
        let emu = SalesforceEmulator::start(cfg).await.expect("emulator");
        let connector = SalesforceConfig {
            login_url: emu.base_url(),
            client_id: "tierd-test".into(),
            client_secret: Secret::new("test-secret"),
            competitors: vec!["Hightouch".into(), "Census".into(), "RudderStack".into()],
            api_reserve_share: 0.0,
            retry: fast_retries(seed),
            ..SalesforceConfig::default()
        }
        .build()
        .expect("valid config");
        SalesforceCrm { emu, connector }
    }

    fn connector(&self) -> &dyn Connector {
        &self.connector
    }

    async fn set_site_visits(&self, id: &str, visits: u64) {
        self.emu
            .set_fields(salesforce_id(id), &[("Site_Visits_30d__c", &visits.to_string())]);
    }

    async fn spoil(&self, id: &str) -> Vec<String> {
        // A text field read as a date list: Salesforce itself takes any text there.
        self.emu
            .set_fields(salesforce_id(id), &[("Demo_Request_Dates__c", "last tuesday")]);
        vec![id.into(), "Demo_Request_Dates__c".into(), "last tuesday".into()]
    }

    async fn lock(&self, id: &str, tier: Tier) {
        self.emu.set_fields(
            salesforce_id(id),
            &[("Tier__c", tier.as_str()), ("Tier_Locked__c", "true")],
        );
    }

    async fn tiers_held(&self, ids: &[String]) -> HashMap<String, Tier> {
        ids.iter()
            .filter_map(|id| {
                let held = self.emu.field(salesforce_id(id), "Tier__c")?;
                Some((id.clone(), held.parse().expect("a tier")))
            })
            .collect()
    }

    fn refused_update(&self) -> Option<(String, &'static str)> {
        Some((
            "salesforce:001000000000000XYZ".into(),
            "INVALID_CROSS_REFERENCE_KEY",
        ))
    }

    fn creates_fields(&self) -> bool {
        false
    }

    fn may_repeat(&self, account: &CrmAccount, mark: Watermark) -> bool {
        // SOQL filters on whole seconds: the watermark's own second is read again.
        account
            .updated_at
            .is_some_and(|u| u.millis() / 1000 == mark.millis() / 1000)
    }

    async fn stop(self) {
        self.emu.shutdown().await;
    }
}

/// The file connector: a generated CSV in a temporary directory, tiers written beside it.
struct FileCrm {
    dir: tempfile::TempDir,
    /// The accounts file as rows of cells, header first, rewritten on every edit.
    rows: Mutex<Vec<Vec<String>>>,
    connector: FileConnector,
}

impl FileCrm {
    fn input(&self) -> PathBuf {
        self.dir.path().join("accounts.csv")
    }

    /// Sets `column` of the row of `id` and rewrites the file, its modification time one
    /// second past the previous one (so a pull since the last watermark sees a change,
    /// however fast the test runs); returns the row's line number.
    fn edit(&self, id: &str, column: &str, value: &str) -> usize {
        let mut rows = self.rows.lock().expect("rows");
        let col = rows[0].iter().position(|c| c == column).expect("column");
        let row = rows.iter().position(|r| r[0] == id).expect("row");
        rows[row][col] = value.to_string();
        let before = std::fs::metadata(self.input())
            .and_then(|m| m.modified())
            .expect("mtime");
        write_rows(&self.input(), &rows);
        let file = std::fs::File::options()
            .write(true)
            .open(self.input())
            .expect("open");
        file.set_modified(before + Duration::from_secs(1))
            .expect("set mtime");
        row + 1
    }
}

fn write_rows(path: &std::path::Path, rows: &[Vec<String>]) {
    let mut w = csv::Writer::from_path(path).expect("create");
    for r in rows {
        w.write_record(r).expect("write");
    }
    w.flush().expect("flush");
}

impl Crm for FileCrm {
    async fn start(n: u64, seed: u64, _tierd_fields: bool) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut csv_text = Vec::new();
        let opts = GenOptions {
            seed,
            as_of: AS_OF.parse().expect("date"),
        };
        tierd_gen::write_csv(&mut csv_text, n, opts).expect("generate");
        let mut rows: Vec<Vec<String>> = csv::ReaderBuilder::new()
            .has_headers(false)
            .from_reader(csv_text.as_slice())
            .records()
            .map(|r| r.expect("row").iter().map(str::to_string).collect())
            .collect();
        for (i, row) in rows.iter_mut().enumerate() {
            row.push(if i == 0 {
                "locked_tier".into()
            } else {
                String::new()
            });
        }
        let input = dir.path().join("accounts.csv");
        write_rows(&input, &rows);
        // The same people as the emulators hold, one per line, by the file's account ids.
        let contacts = dir.path().join("contacts.csv");
        let mut people = vec![[
            "account_id",
            "email",
            "phone",
            "first_name",
            "last_name",
            "country",
            "zip",
        ]
        .map(str::to_string)
        .to_vec()];
        for (k, account) in Generator::new(opts).take(n as usize).enumerate() {
            for p in people_of(seed, k as u64, &account) {
                let text = |v: Option<&str>| v.unwrap_or_default().to_string();
                people.push(vec![
                    account.id.clone(),
                    text(p.email.as_deref()),
                    text(p.phone.as_deref().or(p.mobile.as_deref())),
                    p.first_name.to_string(),
                    p.last_name.to_string(),
                    text(p.country),
                    text(p.zip.as_deref()),
                ]);
            }
        }
        write_rows(&contacts, &people);
        let connector = FileConfig {
            path: input,
            output: dir.path().join("tiers.csv"),
            facts: Default::default(),
            page_size: 100,
            deals: None,
            contacts: Some(contacts),
        }
        .build()
        .expect("valid config");
        FileCrm {
            dir,
            rows: Mutex::new(rows),
            connector,
        }
    }

    fn connector(&self) -> &dyn Connector {
        &self.connector
    }

    async fn set_site_visits(&self, id: &str, visits: u64) {
        self.edit(id, "engagement.site_visits_30d", &visits.to_string());
    }

    async fn spoil(&self, id: &str) -> Vec<String> {
        let line = self.edit(id, "firmographic.employee_count", "lots");
        vec![
            id.into(),
            format!("line {line}"),
            "firmographic.employee_count: 'lots' is not a number".into(),
        ]
    }

    async fn lock(&self, id: &str, tier: Tier) {
        self.edit(id, "locked_tier", tier.as_str());
    }

    async fn tiers_held(&self, ids: &[String]) -> HashMap<String, Tier> {
        let Ok((tiers, problems)) = read_tiers(&self.dir.path().join("tiers.csv")) else {
            return HashMap::new();
        };
        assert!(problems.is_empty(), "{problems:?}");
        tiers.into_iter().filter(|(id, _)| ids.contains(id)).collect()
    }

    fn refused_update(&self) -> Option<(String, &'static str)> {
        None
    }

    fn creates_fields(&self) -> bool {
        true
    }

    fn may_repeat(&self, _account: &CrmAccount, _mark: Watermark) -> bool {
        // A file has no per-record times: a changed file is read whole.
        true
    }

    async fn stop(self) {}
}
