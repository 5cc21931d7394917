//! The generator's contract: determinism, the prefix property, parseable cells in both
//! formats, uniqueness, internal consistency and loose distribution bounds.

use std::collections::{BTreeSet, HashSet};

use proptest::prelude::*;
use tierd_core::date::Date;
use tierd_core::fact::{FactType, FactValue};
use tierd_gen::{write_csv, write_jsonl, GenOptions, Generator, SyntheticAccount, COLUMNS};

fn opts(seed: u64) -> GenOptions {
    GenOptions {
        seed,
        as_of: Date::from_ymd(2026, 3, 31).expect("valid date"),
    }
}

fn csv_bytes(count: u64, opts: GenOptions) -> Vec<u8> {
    let mut out = Vec::new();
    write_csv(&mut out, count, opts).expect("writing to a Vec");
    out
}

fn jsonl_bytes(count: u64, opts: GenOptions) -> Vec<u8> {
    let mut out = Vec::new();
    write_jsonl(&mut out, count, opts).expect("writing to a Vec");
    out
}

/// The fact type of each column after `id`, `name` and `domain`.
fn column_type(column: &str) -> FactType {
    match column {
        "firmographic.employee_count"
        | "firmographic.annual_revenue"
        | "engagement.site_visits_30d"
        | "crm.expected_acv" => FactType::Number,
        "technographic.technologies" => FactType::StringList,
        "contracts.renewal_date" => FactType::Date,
        "contracts.is_competitor" => FactType::Bool,
        "engagement.demo_requests" | "engagement.webinars" | "engagement.content_downloads" => {
            FactType::DateList
        }
        _ => FactType::String,
    }
}

fn fnv1a(bytes: &[u8]) -> u64 {
    use std::hash::Hasher;
    let mut h = fnv::FnvHasher::default();
    h.write(bytes);
    h.finish()
}

#[test]
fn same_options_give_identical_bytes_and_other_seeds_differ() {
    let a = csv_bytes(1000, opts(42));
    assert_eq!(a, csv_bytes(1000, opts(42)));
    assert_ne!(a, csv_bytes(1000, opts(43)));
    assert_eq!(jsonl_bytes(1000, opts(42)), jsonl_bytes(1000, opts(42)));
    assert_ne!(jsonl_bytes(1000, opts(42)), jsonl_bytes(1000, opts(43)));
}

/// The data set for a seed is frozen forever: tests and benchmarks elsewhere rely on it.
/// If this fails, the generator's output changed; that must be deliberate and announced.
#[test]
fn output_is_frozen() {
    let csv = csv_bytes(1000, opts(42));
    let jsonl = jsonl_bytes(1000, opts(42));
    let text = String::from_utf8(csv.clone()).expect("utf-8");
    let first_rows: Vec<&str> = text.lines().skip(1).take(3).collect();
    assert_eq!(first_rows, FROZEN_ROWS);
    assert_eq!((fnv1a(&csv), fnv1a(&jsonl)), FROZEN_HASHES);
}

const FROZEN_ROWS: [&str; 3] = [
    "acc-00000001,Telerford Financial,telerford-financial-1.com,Financial Services,13,2537000,North America,US,private,HubSpot;Hightouch;Slack,Hightouch,2027-02-15,true,7,,,,",
    "acc-00000002,Granix Partners,granix-partners-2.de,Professional Services,56,15183000,EMEA,DE,private,Segment;Cloudflare,,,,40,2026-03-17;2026-02-26;2026-02-12,2025-05-17,,",
    "acc-00000003,Jasworth AI,jasworth-ai-3.com,,357,,North America,US,private,Google Analytics;Salesforce;Slack;Jira,,,,0,,,,",
];
const FROZEN_HASHES: (u64, u64) = (10_611_115_880_092_209_588, 2_047_659_166_676_759_114);

#[test]
fn an_account_does_not_depend_on_how_many_are_generated() {
    let small: Vec<SyntheticAccount> = Generator::new(opts(9)).take(10).collect();
    let large: Vec<SyntheticAccount> = Generator::new(opts(9)).take(1000).collect();
    assert_eq!(small[..], large[..10]);
    assert_eq!(Generator::new(opts(9)).nth(500).as_ref(), Some(&large[500]));
    let mut skipped = Generator::new(opts(9)).skip(998);
    assert_eq!(skipped.next().as_ref(), Some(&large[998]));
    assert_eq!(skipped.next().as_ref(), Some(&large[999]));
    let (csv10, csv1000) = (csv_bytes(10, opts(9)), csv_bytes(1000, opts(9)));
    assert!(csv1000.starts_with(&csv10));
}

#[test]
fn every_csv_cell_parses_as_its_fact_type_and_matches_facts() {
    let csv = csv_bytes(2000, opts(1));
    let mut reader = csv::Reader::from_reader(&csv[..]);
    let header: Vec<String> = reader
        .headers()
        .expect("header")
        .iter()
        .map(String::from)
        .collect();
    assert_eq!(header, COLUMNS);
    let mut accounts = Generator::new(opts(1));
    let mut rows = 0;
    for record in reader.records() {
        let record = record.expect("well-formed CSV");
        let account = accounts.next().expect("endless");
        assert_eq!(record.len(), COLUMNS.len());
        assert_eq!(&record[0], account.id);
        assert_eq!(&record[1], account.name);
        assert_eq!(&record[2], account.domain);
        let facts = account.facts();
        assert_eq!(facts.len(), COLUMNS.len() - 3);
        for ((column, cell), (name, value)) in COLUMNS[3..].iter().zip(record.iter().skip(3)).zip(facts) {
            assert_eq!(*column, name);
            let parsed = column_type(column)
                .parse(cell)
                .unwrap_or_else(|e| panic!("{}: {column}: {e}", account.id));
            assert_eq!(parsed, value, "{}: {column}", account.id);
            if let Some(v) = &value {
                assert_eq!(v.fact_type(), column_type(column));
                if let FactValue::Number(n) = v {
                    assert!(n.fract() == 0.0 && *n >= 0.0, "{column} = {n}");
                    assert!(!cell.contains(['e', 'E', '.']), "{column} = {cell}");
                }
            }
        }
        rows += 1;
    }
    assert_eq!(rows, 2000);
}

#[test]
fn jsonl_lines_are_flat_objects_matching_the_accounts() {
    let jsonl = String::from_utf8(jsonl_bytes(2000, opts(2))).expect("utf-8");
    let mut lines = 0;
    for (line, account) in jsonl.lines().zip(Generator::new(opts(2))) {
        let value: serde_json::Value = serde_json::from_str(line).expect("a JSON line");
        let object = value.as_object().expect("an object");
        let expected: BTreeSet<&str> = ["id", "name", "domain"]
            .into_iter()
            .chain(
                account
                    .facts()
                    .iter()
                    .filter(|(_, v)| v.is_some())
                    .map(|(k, _)| *k),
            )
            .collect();
        let keys: BTreeSet<&str> = object.keys().map(String::as_str).collect();
        assert_eq!(keys, expected, "{line}");
        assert_eq!(object["id"], account.id.as_str());
        assert_eq!(object["name"], account.name.as_str());
        for (column, fact) in account.facts() {
            let Some(fact) = fact else { continue };
            let json = &object[column];
            let ok = match &fact {
                FactValue::Number(n) => json.as_u64().map(|j| j as f64) == Some(*n),
                FactValue::String(s) => json.as_str() == Some(s.as_str()),
                FactValue::Bool(b) => json.as_bool() == Some(*b),
                FactValue::Date(d) => json.as_str() == Some(d.to_string().as_str()),
                FactValue::StringList(items) => {
                    json.as_array()
                        .map(|a| a.iter().map(|v| v.as_str()).collect::<Vec<_>>())
                        == Some(items.iter().map(|s| Some(s.as_str())).collect())
                }
                FactValue::DateList(items) => {
                    json.as_array()
                        .map(|a| a.iter().map(|v| v.as_str().map(String::from)).collect::<Vec<_>>())
                        == Some(items.iter().map(|d| Some(d.to_string())).collect())
                }
            };
            assert!(ok, "{column}: {json} vs {fact:?}");
        }
        lines += 1;
    }
    assert_eq!(lines, 2000);
}

#[test]
fn ids_and_domains_are_unique() {
    let mut ids = HashSet::new();
    let mut domains = HashSet::new();
    for (i, account) in Generator::new(opts(3)).take(10_000).enumerate() {
        assert_eq!(account.id, format!("acc-{:08}", i + 1));
        let domain_ok = account
            .domain
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.');
        assert!(domain_ok && account.domain.contains('.'), "{}", account.domain);
        assert!(!account.name.contains([',', '"', '\n']), "{}", account.name);
        assert!(ids.insert(account.id));
        assert!(domains.insert(account.domain));
    }
}

const COMPETITORS: [&str; 3] = ["Hightouch", "Census", "RudderStack"];

/// Rules every account obeys, whatever the seed.
fn check_consistency(a: &SyntheticAccount, as_of: Date) {
    let id = &a.id;
    assert_eq!(a.renewal_date.is_some(), a.current_vendor.is_some(), "{id}");
    assert_eq!(
        a.is_competitor,
        a.current_vendor.map(|v| COMPETITORS.contains(&v)),
        "{id}"
    );
    if let Some(renewal) = a.renewal_date {
        assert!((-60..=540).contains(&as_of.days_until(renewal)), "{id}");
    }
    for (dates, window) in [
        (&a.demo_requests, 180),
        (&a.webinars, 365),
        (&a.content_downloads, 180),
    ] {
        assert!(
            dates.windows(2).all(|w| w[0] >= w[1]),
            "{id}: not most recent first"
        );
        assert!(
            dates.iter().all(|d| (0..window).contains(&d.days_until(as_of))),
            "{id}"
        );
    }
    let countries: &[&str] = match a.region {
        Some("North America") => &["US", "CA"],
        Some("EMEA") => &["GB", "DE", "FR", "NL", "SE"],
        Some("APAC") => &["AU", "JP", "SG", "IN"],
        Some("LATAM") => &["BR", "MX"],
        None => &[],
        Some(other) => panic!("{id}: region {other}"),
    };
    assert_eq!(a.country.is_some(), a.region.is_some(), "{id}");
    assert!(a.country.is_none_or(|c| countries.contains(&c)), "{id}");
    match (a.industry, a.org_type) {
        (Some("Government"), Some(t)) => assert_eq!(t, "government", "{id}"),
        (Some("Non-profit"), Some(t)) => assert_eq!(t, "nonprofit", "{id}"),
        (Some("Education"), Some(t)) => assert!(t != "public" && t != "government", "{id}"),
        (_, Some(t)) => {
            assert!(["public", "private", "nonprofit", "education", "government"].contains(&t))
        }
        (_, None) => {}
    }
    if let (Some(employees), false) = (a.employee_count, a.technologies.is_empty()) {
        let n = a.technologies.len();
        match employees {
            0..=49 => assert!(n <= 4, "{id}: {n} techs at {employees} employees"),
            1000.. => assert!((5..=15).contains(&n), "{id}: {n} techs at {employees} employees"),
            _ => {}
        }
    }
    if let Some(acv) = a.expected_acv {
        assert!((5_000..=500_000).contains(&acv), "{id}: acv {acv}");
    }
    if let Some(employees) = a.employee_count {
        assert!((1..=250_000).contains(&employees), "{id}");
    }
    let unique: BTreeSet<_> = a.technologies.iter().collect();
    assert_eq!(unique.len(), a.technologies.len(), "{id}");
}

#[test]
fn accounts_are_internally_consistent() {
    let o = opts(4);
    for account in Generator::new(o).take(20_000) {
        check_consistency(&account, o.as_of);
    }
}

fn share(accounts: &[SyntheticAccount], f: impl Fn(&SyntheticAccount) -> bool) -> f64 {
    accounts.iter().filter(|a| f(a)).count() as f64 / accounts.len() as f64
}

fn assert_within(what: &str, value: f64, range: std::ops::RangeInclusive<f64>) {
    assert!(
        range.contains(&value),
        "{what} = {value:.4}, expected within {range:?}"
    );
}

fn median(mut values: Vec<u64>) -> u64 {
    values.sort_unstable();
    values[values.len() / 2]
}

#[test]
fn distributions_are_plausible() {
    let all: Vec<SyntheticAccount> = Generator::new(opts(5)).take(20_000).collect();
    let all = &all[..];
    let known = |a: &SyntheticAccount| a.employee_count.is_some();
    let warehouses = ["Snowflake", "Databricks", "BigQuery", "Redshift"];
    let has_warehouse = |a: &SyntheticAccount| a.technologies.iter().any(|t| warehouses.contains(t));

    // Missing values.
    assert_within(
        "industry unknown",
        share(all, |a| a.industry.is_none()),
        0.015..=0.05,
    );
    assert_within("employees unknown", share(all, |a| !known(a)), 0.025..=0.06);
    assert_within(
        "revenue unknown",
        share(all, |a| a.annual_revenue.is_none()),
        0.07..=0.13,
    );
    assert_within("region unknown", share(all, |a| a.region.is_none()), 0.01..=0.035);
    assert_within(
        "technologies unknown",
        share(all, |a| a.technologies.is_empty()),
        0.06..=0.10,
    );

    // Firmographics.
    let employees: Vec<u64> = all.iter().filter_map(|a| a.employee_count).collect();
    assert_within("median employees", median(employees.clone()) as f64, 30.0..=150.0);
    let max = employees.iter().copied().max().unwrap_or(0);
    assert!((10_000..=250_000).contains(&max), "max employees {max}");
    let per_employee: Vec<u64> = all
        .iter()
        .filter_map(|a| Some(a.annual_revenue? / a.employee_count?))
        .collect();
    assert_within(
        "median revenue per employee",
        median(per_employee) as f64,
        120_000.0..=250_000.0,
    );
    let industry_share = |name: &str| share(all, |a| a.industry == Some(name));
    assert_within("Software share", industry_share("Software"), 0.18..=0.32);
    assert!(industry_share("Software") > industry_share("Healthcare"));
    assert!(industry_share("Healthcare") > industry_share("Logistics"));
    assert!(industry_share("Logistics") > 0.01);
    let region_share = |name: &str| share(all, |a| a.region == Some(name));
    assert_within("North America", region_share("North America"), 0.40..=0.49);
    assert_within("EMEA", region_share("EMEA"), 0.25..=0.34);
    assert_within("APAC", region_share("APAC"), 0.14..=0.22);
    assert_within("LATAM", region_share("LATAM"), 0.04..=0.10);
    let big: Vec<SyntheticAccount> = all
        .iter()
        .filter(|a| a.employee_count >= Some(1000) && !a.technologies.is_empty())
        .cloned()
        .collect();
    let small: Vec<SyntheticAccount> = all
        .iter()
        .filter(|a| a.employee_count.is_some_and(|e| e < 50) && !a.technologies.is_empty())
        .cloned()
        .collect();
    assert!(
        big.len() > 300 && small.len() > 5000,
        "{} big, {} small",
        big.len(),
        small.len()
    );
    assert_within(
        "public among big",
        share(&big, |a| a.org_type == Some("public")),
        0.2..=0.7,
    );
    assert_within(
        "public among small",
        share(&small, |a| a.org_type == Some("public")),
        0.0..=0.03,
    );

    // Technologies.
    assert_within("warehouse among big", share(&big, has_warehouse), 0.35..=0.70);
    assert_within("warehouse among small", share(&small, has_warehouse), 0.0..=0.08);
    let competitor_in_stack = share(all, |a| a.technologies.iter().any(|t| COMPETITORS.contains(t)));
    assert_within("competitor in stack", competitor_in_stack, 0.03..=0.10);

    // Contracts.
    assert_within(
        "has a vendor",
        share(all, |a| a.current_vendor.is_some()),
        0.38..=0.52,
    );
    assert_within(
        "competitor vendor",
        share(all, |a| a.is_competitor == Some(true)),
        0.03..=0.12,
    );

    // Engagement.
    assert_within(
        "no site visits",
        share(all, |a| a.site_visits_30d == 0),
        0.62..=0.78,
    );
    let max_visits = all.iter().map(|a| a.site_visits_30d).max().unwrap_or(0);
    assert!((100..=1000).contains(&max_visits), "max visits {max_visits}");
    assert_within(
        "demo requests",
        share(all, |a| !a.demo_requests.is_empty()),
        0.02..=0.08,
    );
    assert!(all.iter().any(|a| a.demo_requests.len() >= 2));
    assert_within("webinars", share(all, |a| !a.webinars.is_empty()), 0.06..=0.14);
    assert_within(
        "downloads",
        share(all, |a| !a.content_downloads.is_empty()),
        0.10..=0.20,
    );
    let engaged = |a: &SyntheticAccount| a.site_visits_30d > 0;
    assert!(share(&big, engaged) > share(&small, engaged) + 0.05);

    // CRM.
    assert_within(
        "expected ACV",
        share(all, |a| a.expected_acv.is_some()),
        0.10..=0.20,
    );
    assert!(share(&big, |a| a.expected_acv.is_some()) > 2.0 * share(&small, |a| a.expected_acv.is_some()));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Any account of any data set is consistent, and jumping to it gives the same account.
    #[test]
    fn any_account_is_consistent(seed in any::<u64>(), index in 0usize..50_000_000, as_of in 0i32..40_000) {
        let o = GenOptions { seed, as_of: Date::from_days(as_of) };
        let jumped = Generator::new(o).nth(index).expect("endless");
        prop_assert_eq!(&jumped.id, &format!("acc-{:08}", index + 1));
        check_consistency(&jumped, o.as_of);
        if index < 3 {
            let walked = Generator::new(o).take(index + 1).last();
            prop_assert_eq!(Some(jumped), walked);
        }
    }
}
