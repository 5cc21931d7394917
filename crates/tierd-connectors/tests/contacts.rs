//! The people of accounts (`Connector::contacts_for`), for audience exports, from each
//! connector: HubSpot's company-contact associations paged per company and the contacts read
//! in batches, Salesforce's Contacts queried by chunks of Account Ids and paged with
//! `nextRecordsUrl`, and the file connector's contacts file with its bad lines named.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use tierd_connectors::connector::{Connector, ConnectorError, CrmContact};
use tierd_connectors::http::Secret;
use tierd_connectors::hubspot::HubSpotConfig;
use tierd_connectors::registry;
use tierd_connectors::salesforce::SalesforceConfig;
use tierd_emulators::{
    HubSpotConfig as HsEmu, HubSpotEmulator, SalesforceConfig as SfEmu, SalesforceEmulator,
};

use common::{accounts, fast_retries, pull};

fn hubspot_ids(n: u64) -> Vec<String> {
    (0..n).map(|k| format!("hubspot:{}", 1_000_000_000 + k)).collect()
}

async fn hubspot_contacts(emu: &HubSpotEmulator, ids: &[String]) -> Vec<CrmContact> {
    let c = HubSpotConfig {
        base_url: emu.base_url(),
        token: Secret::new("test-token"),
        rate_limit: 0,
        search_rate_per_sec: 0,
        retry: fast_retries(5),
        ..HubSpotConfig::default()
    }
    .build()
    .expect("valid config");
    let found = c.contacts_for(ids).await.expect("contacts");
    assert!(found.unreadable.is_empty(), "{:?}", found.unreadable);
    found.contacts
}

/// (first name, last name, email) per company number.
fn people_by_company(
    contacts: &[CrmContact],
    prefix: &str,
    index: impl Fn(&str) -> u64,
) -> BTreeMap<u64, BTreeSet<String>> {
    let mut out: BTreeMap<u64, BTreeSet<String>> = BTreeMap::new();
    for c in contacts {
        let account = c.account_id.strip_prefix(prefix).expect("connector id");
        out.entry(index(account)).or_default().insert(format!(
            "{:?} {:?} {:?} {:?}",
            c.first_name, c.last_name, c.email, c.phone
        ));
    }
    out
}

#[tokio::test]
async fn hubspot_contacts_follow_each_companys_association_pages_past_1000_companies() {
    let emu = HubSpotEmulator::start(HsEmu {
        association_page_size: 1,
        ..HsEmu::unlimited(1_200, 21)
    })
    .await
    .expect("emulator");
    let ids = hubspot_ids(1_200);
    let before = emu.stats().requests;
    let paged = hubspot_contacts(&emu, &ids).await;
    let requests = emu.stats().requests - before;
    // 1,200 companies take two association calls a round, at most three rounds (three contacts
    // a company, one per page), then the contacts 100 at a time: a single call of all 1,200
    // companies, or of more than 100 contacts, would have been refused (400).
    let batches = paged
        .iter()
        .map(|c| &c.id)
        .collect::<BTreeSet<_>>()
        .len()
        .div_ceil(100) as u64;
    assert!(
        (2 + batches..=6 + batches).contains(&requests),
        "{requests} requests for {batches} contact batches"
    );
    assert!(paged.len() > 1_000, "{}", paged.len());

    // One page per company or one per contact: the same people.
    let emu_whole = HubSpotEmulator::start(HsEmu::unlimited(1_200, 21))
        .await
        .expect("emulator");
    let whole = hubspot_contacts(&emu_whole, &ids).await;
    assert_eq!(paged, whole);

    // Each contact as HubSpot serves it, read independently over HTTP.
    let http = reqwest::Client::new();
    for c in paged.iter().step_by(97) {
        let id = c.id.strip_prefix("hubspot:").expect("hubspot id");
        let got: serde_json::Value = http
            .get(format!(
                "{}/crm/v3/objects/contacts/{id}?properties=email,phone,mobilephone,firstname,lastname,country,zip",
                emu.base_url()
            ))
            .bearer_auth("test-token")
            .send()
            .await
            .expect("get")
            .json()
            .await
            .expect("json");
        let p = &got["properties"];
        let text = |k: &str| {
            p[k].as_str()
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
        };
        assert_eq!(c.email, text("email"), "{id}");
        assert_eq!(c.phone, text("phone").or_else(|| text("mobilephone")), "{id}");
        assert_eq!(c.first_name, text("firstname"));
        assert_eq!(c.last_name, text("lastname"));
        assert_eq!(c.country, text("country"));
        assert_eq!(c.zip, text("zip"));
        assert!(ids.contains(&c.account_id));
    }
    // Personal data stays out of debug output.
    let debug = format!("{paged:?}");
    assert!(
        !debug.contains('@') && !debug.contains("Lovelace"),
        "{debug:.300}"
    );
    emu.shutdown().await;
    emu_whole.shutdown().await;
}

#[tokio::test]
async fn salesforce_contacts_come_by_300_accounts_a_query_and_follow_next_records_url() {
    let sf = SalesforceEmulator::start(SfEmu::unlimited(700, 22))
        .await
        .expect("emulator");
    let c = SalesforceConfig {
        login_url: sf.base_url(),
        client_id: "tierd-test".into(),
        client_secret: Secret::new("test-secret"),
        api_reserve_share: 0.0,
        page_size: 200,
        retry: fast_retries(3),
        ..SalesforceConfig::default()
    }
    .build()
    .expect("valid config");
    let pages = pull(&c, None).await;
    let mut account_ids: Vec<String> = accounts(&pages).iter().map(|a| a.id.clone()).collect();
    account_ids.sort();
    assert_eq!(account_ids.len(), 700);
    // 650 of the 700: three queries (300, 300, 50); none of the other 50 accounts' people.
    let asked = &account_ids[..650];
    let found = c.contacts_for(asked).await.expect("contacts");
    assert!(found.unreadable.is_empty());
    assert!(found.contacts.iter().all(|x| asked.contains(&x.account_id)));
    assert!(found.contacts.iter().all(|x| x.id.starts_with("salesforce:003")));
    assert!(found.contacts.len() > 600, "{}", found.contacts.len());

    // The same people HubSpot holds for the same generated companies: nothing lost at a page
    // or chunk boundary. Account row k is the generator's account k + 1, as is company k.
    let hs = HubSpotEmulator::start(HsEmu::unlimited(650, 22))
        .await
        .expect("emulator");
    let from_hubspot = hubspot_contacts(&hs, &hubspot_ids(650)).await;
    let row = |sf_id: &str| {
        // Ids are `001` + the row in base 62 + a 3-character suffix.
        sf_id[3..15].bytes().fold(0u64, |k, b| {
            let d = match b {
                b'0'..=b'9' => b - b'0',
                b'A'..=b'Z' => b - b'A' + 10,
                _ => b - b'a' + 36,
            };
            k * 62 + u64::from(d)
        })
    };
    assert_eq!(
        people_by_company(&found.contacts, "salesforce:", row),
        people_by_company(&from_hubspot, "hubspot:", |id| {
            id.parse::<u64>().expect("number") - 1_000_000_000
        })
    );
    sf.shutdown().await;
    hs.shutdown().await;
}

#[tokio::test]
async fn the_file_connectors_contacts_file_is_validated_read_and_its_bad_lines_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    let people = dir.path().join("people.csv");
    std::fs::write(
        &people,
        "account_id,email,phone,first_name,last_name,country,zip\n\
         acc-1,ada@one.example,(201) 555-0123,Ada,Lovelace,US,94103\n\
         acc-2,bo@two.example,,Bo,Berg,SE,\n\
         acc-3,,+44 20 7946 0018,Cy,Ng,,\n\
         ,nobody@one.example,,,,,\n\
         acc-1,di@one.example\n",
    )
    .expect("write");
    let config = |contacts: &str| {
        serde_json::json!({
            "path": dir.path().join("accounts.csv"),
            "output": dir.path().join("tiers.csv"),
            "contacts": dir.path().join(contacts),
        })
    };
    match registry::validate("file", config("people.txt")) {
        Err(ConnectorError::Config { key, message }) => {
            assert_eq!(key, "contacts");
            assert!(message.contains("unknown format"), "{message}");
        }
        other => panic!("expected a config error, got {other:?}"),
    }
    let c = registry::build("file", config("people.csv")).expect("builds");
    let ids = ["acc-1".to_string(), "acc-3".to_string()];
    let found = c.contacts_for(&ids).await.expect("contacts");
    let got: Vec<(&str, Option<&str>)> = found
        .contacts
        .iter()
        .map(|x| (x.account_id.as_str(), x.email.as_deref()))
        .collect();
    assert_eq!(got, [("acc-1", Some("ada@one.example")), ("acc-3", None)]);
    assert_eq!(found.contacts[0].phone.as_deref(), Some("(201) 555-0123"));
    let bad: Vec<String> = found.unreadable.iter().map(ToString::to_string).collect();
    assert_eq!(
        bad,
        [
            "people.csv line 5: field 'account_id': is empty: every contact names its account",
            "people.csv line 6: 2 fields where the header has 7",
        ]
    );
    assert!(!bad.iter().any(|b| b.contains('@')));

    // Without a contacts file the connector says which key to set.
    let bare = registry::build(
        "file",
        serde_json::json!({"path": dir.path().join("accounts.csv"), "output": dir.path().join("t.csv")}),
    )
    .expect("builds");
    let err = bare.contacts_for(&ids).await.expect_err("no contacts file");
    assert!(
        err.to_string().starts_with("connector.contacts: is not set"),
        "{err}"
    );
}
