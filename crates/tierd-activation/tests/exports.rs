//! Audience exports checked byte for byte against hand-written files in `tests/fixtures/exports`.
//! The hashed people lists' expected hashes were computed with Python's hashlib from values
//! normalised by hand per each platform's rules, not with tierd's code.

use std::fs;
use std::path::Path;

use serde_json::json;
use tierd_activation::export::{
    export_accounts, export_contacts, AudienceAccount, AudienceFormat, Contact, ExportError, LinkedInMapping,
    RawLinkedInMapping,
};
use tierd_core::Tier;

fn fixture(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/exports")
        .join(name);
    fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

fn written(dir: &Path, name: &str) -> String {
    fs::read_to_string(dir.join(name)).unwrap_or_else(|e| panic!("read {name}: {e}"))
}

fn fact(value: serde_json::Value) -> serde_json::Value {
    json!({"value": value, "source": "firmographic", "observed_at": "2026-11-30"})
}

fn accounts() -> Vec<AudienceAccount> {
    vec![
        AudienceAccount {
            id: "hubspot:101".to_string(),
            name: "Acme Analytics".to_string(),
            domain: Some("acme.example".to_string()),
            tier: Tier::Tier1,
            score: 4.72,
            reasons: vec!["uses Snowflake".to_string(), "renewal in 45 days".to_string()],
            facts: json!({
                "firmographic.industry": fact(json!("Software")),
                "firmographic.country": fact(json!("US")),
                "firmographic.city": fact(json!("Austin")),
                "firmographic.state": fact(json!("TX")),
                "firmographic.postal_code": fact(json!("78701")),
                "firmographic.ticker": fact(json!("ACME")),
                "firmographic.employee_count": fact(json!(1200)),
            }),
        },
        AudienceAccount {
            id: "hubspot:102".to_string(),
            name: "Borealis, Inc.".to_string(),
            domain: Some("borealis.example".to_string()),
            tier: Tier::Tier2,
            score: 4.0,
            reasons: vec!["fits the ideal profile".to_string()],
            facts: json!({
                "firmographic.industry": fact(json!("Financial Services")),
                "firmographic.country": fact(json!("CA")),
            }),
        },
        AudienceAccount {
            id: "salesforce:001A".to_string(),
            name: "Café \"Central\"".to_string(),
            domain: None,
            tier: Tier::Tier1,
            score: 4.5,
            reasons: vec![],
            facts: json!({}),
        },
    ]
}

fn delta() -> AudienceAccount {
    AudienceAccount {
        id: "hubspot:104".to_string(),
        name: "Delta Freight".to_string(),
        domain: Some("delta.example".to_string()),
        tier: Tier::Tier2,
        score: 3.9,
        reasons: vec![],
        facts: json!({"firmographic.linkedin_url": fact(json!("https://www.linkedin.com/company/delta-freight"))}),
    }
}

const LINKEDIN_HEADER: &str = "companyname,companywebsite,companyemaildomain,linkedincompanypageurl,stocksymbol,industry,city,state,companycountry,zipcode\n";

#[test]
fn a_linkedin_company_list_matches_the_template_and_tracks_adds_and_removes() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = tmp.path().join("tier_1-linkedin");
    let mapping = LinkedInMapping::default();

    let first =
        export_accounts(&dir, AudienceFormat::LinkedInCompanies, &accounts(), &mapping).expect("export");
    assert_eq!(written(&dir, "full.csv"), fixture("linkedin-full.csv"));
    assert_eq!(
        written(&dir, "adds.csv"),
        fixture("linkedin-full.csv"),
        "a first export adds everyone"
    );
    assert_eq!(written(&dir, "removes.csv"), LINKEDIN_HEADER);
    assert_eq!((first.rows, first.added, first.removed), (3, 3, 0));
    assert_eq!(
        first.warnings,
        ["LinkedIn needs at least 300 companies to upload a list; this one has 3"]
    );

    let mut second_list = accounts()[1..].to_vec();
    second_list.push(delta());
    let second =
        export_accounts(&dir, AudienceFormat::LinkedInCompanies, &second_list, &mapping).expect("export");
    assert_eq!((second.rows, second.added, second.removed), (3, 1, 1));
    assert_eq!(written(&dir, "adds.csv"), fixture("linkedin-adds-second.csv"));
    assert_eq!(
        written(&dir, "removes.csv"),
        fixture("linkedin-removes-second.csv")
    );
    assert_eq!(second.files, [dir.join("full.csv")]);
}

#[test]
fn the_linkedin_mapping_is_configurable() {
    let raw: RawLinkedInMapping = toml::from_str(
        "companyemaildomain = \"none\"\nindustry = \"crm.vertical\"\nlinkedincompanypageurl = \"crm.linkedin_page\"",
    )
    .expect("parse");
    let mapping = LinkedInMapping::compile(&raw, "exports.linkedin").expect("valid");
    let account = AudienceAccount {
        facts: json!({
            "crm.vertical": {"value": "Logistics", "source": "crm", "observed_at": "2026-11-30"},
            "crm.linkedin_page": {"value": "https://www.linkedin.com/company/delta", "source": "crm", "observed_at": "2026-11-30"},
        }),
        ..delta()
    };
    let tmp = tempfile::tempdir().expect("temp dir");
    export_accounts(
        tmp.path(),
        AudienceFormat::LinkedInCompanies,
        &[account],
        &mapping,
    )
    .expect("export");
    assert_eq!(
        written(tmp.path(), "full.csv"),
        format!(
            "{LINKEDIN_HEADER}Delta Freight,https://delta.example,,https://www.linkedin.com/company/delta,,Logistics,,,,\n"
        )
    );
}

#[test]
fn csv_and_jsonl_list_id_name_domain_tier_score_and_reasons() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let mapping = LinkedInMapping::default();
    export_accounts(
        &tmp.path().join("csv"),
        AudienceFormat::Csv,
        &accounts(),
        &mapping,
    )
    .expect("csv");
    export_accounts(
        &tmp.path().join("jsonl"),
        AudienceFormat::Jsonl,
        &accounts(),
        &mapping,
    )
    .expect("jsonl");
    assert_eq!(
        written(&tmp.path().join("csv"), "full.csv"),
        fixture("accounts.csv")
    );
    assert_eq!(
        written(&tmp.path().join("jsonl"), "full.jsonl"),
        fixture("accounts.jsonl")
    );
    assert_eq!(written(&tmp.path().join("jsonl"), "removes.jsonl"), "");
}

fn contact(email: &str, phone: &str, first: &str, last: &str, country: &str, zip: &str) -> Contact {
    let opt = |s: &str| (!s.is_empty()).then(|| s.to_string());
    Contact {
        account_id: "hubspot:101".to_string(),
        email: opt(email),
        phone: opt(phone),
        first_name: opt(first),
        last_name: opt(last),
        country: opt(country),
        zip: opt(zip),
    }
}

fn contacts() -> Vec<Contact> {
    vec![
        contact(
            " Jane.Doe@Acme.example ",
            "(650) 555-1212",
            "Jane",
            "Doe",
            "US",
            "78701-1234",
        ),
        contact("", "+44 20 7183 8750", "Ömer", "O'Brien", "GB", "SW1A 1AA"),
        contact("bob@borealis.example", "555 0199", "", "", "", ""),
        contact("", "", "Ann", "", "", ""),
    ]
}

#[test]
fn google_customer_match_rows_are_normalised_and_hashed_as_google_documents() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = tmp.path().join("google");
    let report = export_contacts(&dir, AudienceFormat::GoogleCustomerMatch, &contacts()).expect("export");
    assert_eq!(written(&dir, "full.csv"), fixture("google-full.csv"));
    assert_eq!((report.rows, report.skipped, report.phones_dropped), (3, 1, 1));

    // The state kept for the next diff holds hashes, never a raw email, phone or name.
    let state = written(&dir, ".tierd-audience.jsonl");
    for raw in ["jane", "Jane", "bob@", "650", "O'Brien"] {
        assert!(!state.contains(raw), "{raw} in {state}");
    }

    let mut fewer = contacts();
    fewer.remove(1);
    let second = export_contacts(&dir, AudienceFormat::GoogleCustomerMatch, &fewer).expect("export");
    assert_eq!((second.added, second.removed), (0, 1));
    assert_eq!(written(&dir, "removes.csv"), fixture("google-removes-second.csv"));
    assert_eq!(
        written(&dir, "adds.csv"),
        "Email,Phone,First Name,Last Name,Country,Zip\n"
    );
}

#[test]
fn meta_custom_audience_rows_are_normalised_and_hashed_as_meta_documents() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let report =
        export_contacts(tmp.path(), AudienceFormat::MetaCustomAudience, &contacts()).expect("export");
    assert_eq!(written(tmp.path(), "full.csv"), fixture("meta-full.csv"));
    assert_eq!(report.rows, 3);
    assert!(
        report
            .warnings
            .iter()
            .any(|w| w.contains("fewer than 100 people")),
        "{:?}",
        report.warnings
    );
    // Debug output of a contact shows the account only.
    let debug = format!("{:?}", contacts()[0]);
    assert!(!debug.contains("Jane") && !debug.contains("650"), "{debug}");
}

#[test]
fn an_export_path_that_cannot_be_written_is_named_in_the_error() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let file = tmp.path().join("not-a-directory");
    fs::write(&file, "x").expect("write");
    let err = export_accounts(
        &file.join("tier_1"),
        AudienceFormat::Csv,
        &accounts(),
        &LinkedInMapping::default(),
    )
    .expect_err("cannot create a directory under a file");
    assert!(matches!(err, ExportError::Io { .. }));
    let text = err.to_string();
    assert!(text.contains("not-a-directory/tier_1"), "{text}");

    let wrong =
        export_contacts(tmp.path(), AudienceFormat::Csv, &contacts()).expect_err("csv lists companies");
    assert!(wrong.to_string().contains("export_accounts"), "{wrong}");
}

#[test]
fn a_shorter_list_leaves_no_stale_parts() {
    let tmp = tempfile::tempdir().expect("temp dir");
    fs::write(tmp.path().join("full-2.csv"), "stale").expect("write");
    fs::write(tmp.path().join("full-notes.csv"), "kept").expect("write");
    export_accounts(
        tmp.path(),
        AudienceFormat::Csv,
        &accounts(),
        &LinkedInMapping::default(),
    )
    .expect("export");
    assert!(!tmp.path().join("full-2.csv").exists());
    assert!(
        tmp.path().join("full-notes.csv").exists(),
        "only tierd's parts are removed"
    );
}

#[test]
fn a_directory_keeps_one_audience_format() {
    let tmp = tempfile::tempdir().expect("temp dir");
    export_accounts(
        tmp.path(),
        AudienceFormat::Csv,
        &accounts(),
        &LinkedInMapping::default(),
    )
    .expect("csv");
    let err = export_accounts(
        tmp.path(),
        AudienceFormat::LinkedInCompanies,
        &accounts(),
        &LinkedInMapping::default(),
    )
    .expect_err("a csv audience's directory");
    let text = err.to_string();
    assert!(
        text.contains("holds a csv audience, not linkedin-companies"),
        "{text}"
    );
    assert!(text.contains(".tierd-audience.jsonl"), "{text}");
}
