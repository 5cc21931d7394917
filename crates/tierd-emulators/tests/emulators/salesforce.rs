//! The Salesforce emulator over HTTP: OAuth, SOQL paging, describe, composite updates,
//! limits and token expiry, as a connector sees them.

use reqwest::{Client, StatusCode};
use serde_json::{json, Value};
use tierd_emulators::{SalesforceConfig, SalesforceEmulator};

async fn start(cfg: SalesforceConfig) -> (SalesforceEmulator, Client, String) {
    let emu = SalesforceEmulator::start(cfg).await.expect("emulator starts");
    let c = Client::new();
    let token = login(&c, &emu.base_url(), "test-secret").await.1["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    (emu, c, token)
}

async fn login(c: &Client, base: &str, secret: &str) -> (StatusCode, Value) {
    let body = format!("grant_type=client_credentials&client_id=any-app&client_secret={secret}");
    let r = c
        .post(format!("{base}/services/oauth2/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap();
    (r.status(), r.json().await.unwrap())
}

async fn soql(
    c: &Client,
    base: &str,
    token: &str,
    q: &str,
) -> (StatusCode, reqwest::header::HeaderMap, Value) {
    let r = c
        .get(format!("{base}/services/data/v61.0/query"))
        .query(&[("q", q)])
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let (s, h) = (r.status(), r.headers().clone());
    (s, h, r.json().await.unwrap())
}

#[tokio::test]
async fn token_endpoint_checks_the_secret_and_returns_the_instance_url() {
    let (emu, c, _) = start(SalesforceConfig::new(3, 1)).await;
    let (s, ok) = login(&c, &emu.base_url(), "test-secret").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(ok["instance_url"], emu.base_url());
    assert_eq!(ok["token_type"], "Bearer");
    assert!(ok["issued_at"].is_string() && ok["signature"].is_string());
    let (s, bad) = login(&c, &emu.base_url(), "nope").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(
        bad,
        json!({"error": "invalid_client", "error_description": "invalid client credentials"})
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn soql_pages_of_2000_follow_next_records_url_until_done() {
    let (emu, c, token) = start(SalesforceConfig::new(4500, 2)).await;
    let base = emu.base_url();
    let (s, h, first) = soql(
        &c,
        &base,
        &token,
        "SELECT Id, Name, Tier__c, SystemModstamp FROM Account ORDER BY SystemModstamp, Id",
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert!(h["sforce-limit-info"].to_str().unwrap().starts_with("api-usage="));
    assert_eq!(
        (first["totalSize"].as_u64(), first["done"].as_bool()),
        (Some(4500), Some(false))
    );
    let rec = &first["records"][0];
    assert_eq!(rec["attributes"]["type"], "Account");
    assert!(rec["attributes"]["url"]
        .as_str()
        .unwrap()
        .starts_with("/services/data/v61.0/sobjects/Account/001"));
    assert!(rec["Tier__c"].is_null() && rec["SystemModstamp"].as_str().unwrap().ends_with("+0000"));
    let mut seen = first["records"].as_array().unwrap().len();
    let mut next = first["nextRecordsUrl"].as_str().map(str::to_string);
    assert!(next.as_deref().unwrap().ends_with("-2000"));
    while let Some(url) = next {
        assert!(url.starts_with("/services/data/v61.0/query/01g"));
        let page: Value = c
            .get(format!("{base}{url}"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        seen += page["records"].as_array().unwrap().len();
        next = page["nextRecordsUrl"].as_str().map(str::to_string);
        assert_eq!(page["done"], next.is_none());
    }
    assert_eq!(seen, 4500);
    let (_, _, limited) = soql(&c, &base, &token, "SELECT Id FROM Account LIMIT 5").await;
    assert_eq!(
        (limited["totalSize"].as_u64(), limited["done"].as_bool()),
        (Some(5), Some(true))
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn incremental_query_sees_a_human_edit_and_bad_queries_get_error_codes() {
    let (emu, c, token) = start(SalesforceConfig::new(20, 3)).await;
    let base = emu.base_url();
    let (_, _, all) = soql(
        &c,
        &base,
        &token,
        "SELECT Id, SystemModstamp FROM Account ORDER BY SystemModstamp DESC LIMIT 1",
    )
    .await;
    let newest = all["records"][0]["SystemModstamp"]
        .as_str()
        .unwrap()
        .replace("+0000", "Z");
    let id = "001000000000005AAA";
    emu.set_fields(id, &[("Tier__c", "tier_2"), ("Tier_Locked__c", "true")]);
    let q = format!("SELECT Id, Tier__c, Tier_Locked__c FROM Account WHERE SystemModstamp > {newest}");
    let (_, _, changed) = soql(&c, &base, &token, &q).await;
    assert_eq!(changed["totalSize"], 1);
    assert_eq!(changed["records"][0]["Id"], id);
    assert_eq!(changed["records"][0]["Tier_Locked__c"], true);
    let (_, _, related) = soql(
        &c,
        &base,
        &token,
        "SELECT AccountId, Vendor__c, EndDate, Status FROM Contract WHERE Status = 'Activated'",
    )
    .await;
    assert!(related["totalSize"].as_u64().unwrap() > 0);
    let (_, _, opps) = soql(
        &c,
        &base,
        &token,
        "SELECT AccountId, Amount, CloseDate, StageName, IsWon, IsClosed, CreatedDate FROM Opportunity",
    )
    .await;
    assert!(opps["records"][0]["Amount"].is_number());
    for (q, code) in [
        ("SELECT Id, Bogus__c FROM Account", "INVALID_FIELD"),
        ("SELECT Id FROM Account WHERE", "MALFORMED_QUERY"),
        (
            "SELECT Id FROM Account WHERE SystemModstamp > '2026-01-01'",
            "INVALID_FIELD",
        ),
    ] {
        let (s, _, body) = soql(&c, &base, &token, q).await;
        assert_eq!(
            (s, body[0]["errorCode"].as_str()),
            (StatusCode::BAD_REQUEST, Some(code)),
            "{q}"
        );
    }
    emu.shutdown().await;
}

#[tokio::test]
async fn expired_token_gets_invalid_session_id_and_a_new_token_works() {
    let (emu, c, token) = start(SalesforceConfig::new(3, 1)).await;
    let base = emu.base_url();
    assert_eq!(
        soql(&c, &base, &token, "SELECT Id FROM Account").await.0,
        StatusCode::OK
    );
    emu.expire_tokens();
    let (s, _, body) = soql(&c, &base, &token, "SELECT Id FROM Account").await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_eq!(
        body,
        json!([{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}])
    );
    let fresh = login(&c, &base, "test-secret").await.1["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        soql(&c, &base, &fresh, "SELECT Id FROM Account").await.0,
        StatusCode::OK
    );
    let mut cfg = SalesforceConfig::new(3, 1);
    cfg.token_ttl = std::time::Duration::ZERO;
    let (short, c2, t2) = start(cfg).await;
    assert_eq!(
        soql(&c2, &short.base_url(), &t2, "SELECT Id FROM Account")
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );
    short.shutdown().await;
    emu.shutdown().await;
}

#[tokio::test]
async fn composite_update_answers_200_with_per_record_results_in_order() {
    let mut cfg = SalesforceConfig::new(10, 4);
    cfg.lock_once = vec!["001000000000004AAA".into()];
    let (emu, c, token) = start(cfg).await;
    let url = format!("{}/services/data/v61.0/composite/sobjects", emu.base_url());
    let rec = |id: &str, extra: Value| {
        let mut r = json!({"attributes": {"type": "Account"}, "id": id});
        r.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        r
    };
    let body = json!({"allOrNone": false, "records": [
        rec("001000000000001AAA", json!({"Tier__c": "tier_1", "Tier_Score__c": 4.5})),
        rec("001000000000002AAA", json!({"Tier__c": "tier_9"})),
        rec("001000000000003AAA", json!({"Nope__c": "x"})),
        rec("001000000000004AAA", json!({"Tier__c": "tier_2"})),
        rec("001000000000099AAA", json!({"Tier__c": "tier_2"})),
    ]});
    let send = |b: Value| c.patch(&url).bearer_auth(&token).json(&b).send();
    let r = send(body.clone()).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let results: Value = r.json().await.unwrap();
    let codes: Vec<Option<&str>> = results
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["errors"][0]["statusCode"].as_str())
        .collect();
    assert_eq!(
        codes,
        [
            None,
            Some("INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"),
            Some("INVALID_FIELD"),
            Some("UNABLE_TO_LOCK_ROW"),
            Some("INVALID_CROSS_REFERENCE_KEY")
        ]
    );
    assert_eq!(results[0]["success"], true);
    assert_eq!(results[2]["errors"][0]["fields"], json!(["Nope__c"]));
    assert_eq!(
        emu.field("001000000000001AAA", "Tier__c").as_deref(),
        Some("tier_1")
    );
    // The lock fails once only.
    let retry =
        json!({"allOrNone": false, "records": [rec("001000000000004AAA", json!({"Tier__c": "tier_2"}))]});
    let again: Value = send(retry).await.unwrap().json().await.unwrap();
    assert_eq!(again[0]["success"], true);
    let log = emu.writes();
    assert_eq!(
        (
            log.total,
            log.count("001000000000001AAA"),
            log.count("001000000000002AAA")
        ),
        (2, 1, 0)
    );
    let too_many: Vec<Value> = (0..201).map(|_| rec("001000000000001AAA", json!({}))).collect();
    let r = send(json!({"allOrNone": false, "records": too_many}))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body[0]["errorCode"], "EXCEEDED_ID_LIMIT");
    emu.shutdown().await;
}

#[tokio::test]
async fn describe_lists_fields_and_leaves_out_omitted_ones() {
    let mut cfg = SalesforceConfig::new(2, 1);
    cfg.omit_fields = vec!["Tier_Reason__c".into()];
    let (emu, c, token) = start(cfg).await;
    let url = format!("{}/services/data/v61.0/sobjects/Account/describe", emu.base_url());
    let d: Value = c
        .get(url)
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let fields = d["fields"].as_array().unwrap();
    let by_name = |n: &str| fields.iter().find(|f| f["name"] == n).cloned();
    assert!(by_name("Tier_Reason__c").is_none());
    let tier = by_name("Tier__c").unwrap();
    assert_eq!(
        (tier["type"].as_str(), tier["updateable"].as_bool()),
        (Some("picklist"), Some(true))
    );
    assert_eq!(tier["picklistValues"].as_array().unwrap().len(), 4);
    assert_eq!(by_name("SystemModstamp").unwrap()["updateable"], false);
    emu.shutdown().await;
}

#[tokio::test]
async fn daily_limit_gives_request_limit_exceeded_and_limits_reports_usage() {
    let mut cfg = SalesforceConfig::new(2, 1);
    cfg.daily_api_limit = 3;
    let (emu, c, token) = start(cfg).await;
    let base = emu.base_url();
    let limits: Value = c
        .get(format!("{base}/services/data/v61.0/limits"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(limits["DailyApiRequests"], json!({"Max": 3, "Remaining": 2}));
    let (_, h, _) = soql(&c, &base, &token, "SELECT Id FROM Account").await;
    assert_eq!(h["sforce-limit-info"], "api-usage=2/3");
    soql(&c, &base, &token, "SELECT Id FROM Account").await;
    let (s, _, body) = soql(&c, &base, &token, "SELECT Id FROM Account").await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert_eq!(
        body,
        json!([{"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}])
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn storm_429_carries_retry_after_and_single_record_get_patch_work() {
    let (emu, c, token) = start(SalesforceConfig::new(3, 1)).await;
    let base = emu.base_url();
    emu.faults().set_rate_limit_storm(1);
    let (s, h, _) = soql(&c, &base, &token, "SELECT Id FROM Account").await;
    assert_eq!(
        (s, h.get("retry-after").map(|v| v.to_str().unwrap())),
        (StatusCode::TOO_MANY_REQUESTS, Some("1"))
    );
    let url = format!("{base}/services/data/v61.0/sobjects/Account/001000000000002AAA");
    let r = c
        .patch(&url)
        .bearer_auth(&token)
        .json(&json!({"Tier__c": "tier_3"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let rec: Value = c
        .get(format!("{url}?fields=Tier__c,Name"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(rec["Tier__c"], "tier_3");
    assert_eq!(emu.writes().count("001000000000002AAA"), 1);
    emu.shutdown().await;
}

#[tokio::test]
async fn malformed_records_carry_garbage_in_a_number_or_date_field() {
    let (emu, c, token) = start(SalesforceConfig::new(50, 8)).await;
    emu.faults().set_malformed_rate(0.3);
    let q = "SELECT Id, NumberOfEmployees, AnnualRevenue, Expected_ACV__c FROM Account";
    let (_, _, page) = soql(&c, &emu.base_url(), &token, q).await;
    let bad: Vec<&Value> = page["records"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| {
            ["NumberOfEmployees", "AnnualRevenue", "Expected_ACV__c"]
                .iter()
                .any(|f| r[*f].is_string())
        })
        .collect();
    assert!(!bad.is_empty() && bad.len() < 50, "{} of 50", bad.len());
    emu.shutdown().await;
}

async fn get_json(c: &Client, url: String, token: &str) -> (StatusCode, Value) {
    let r = c.get(url).bearer_auth(token).send().await.unwrap();
    (r.status(), r.json().await.unwrap())
}

#[tokio::test]
async fn paths_are_served_with_a_trailing_slash_and_query_all_as_salesforce_does() {
    let (emu, c, token) = start(SalesforceConfig::new(3, 1)).await;
    let base = emu.base_url();
    let q = "SELECT Id, Name FROM Account";
    for path in ["query/", "queryAll", "queryAll/"] {
        let r = c
            .get(format!("{base}/services/data/v59.0/{path}"))
            .query(&[("q", q)])
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{path}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(
            (body["totalSize"].as_u64(), body["done"].as_bool()),
            (Some(3), Some(true)),
            "{path}"
        );
    }
    let (s, d) = get_json(
        &c,
        format!("{base}/services/data/v61.0/sobjects/Account/describe/"),
        &token,
    )
    .await;
    assert_eq!((s, d["name"].as_str()), (StatusCode::OK, Some("Account")));
    let (s, l) = get_json(&c, format!("{base}/services/data/v61.0/limits/"), &token).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(l["DailyApiRequests"]["Max"], 100_000);
    let (s, r) = get_json(&c, format!("{base}/services/data/v61.0/"), &token).await;
    assert_eq!(
        (s, r["query"].as_str()),
        (StatusCode::OK, Some("/services/data/v61.0/query"))
    );
    let versions: Value = c
        .get(format!("{base}/services/data/"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(versions
        .as_array()
        .unwrap()
        .iter()
        .any(|v| v["url"] == "/services/data/v61.0"));
    emu.shutdown().await;
}

#[tokio::test]
async fn query_more_follows_next_records_url_with_a_trailing_slash() {
    let (emu, c, token) = start(SalesforceConfig::new(2500, 1)).await;
    let base = emu.base_url();
    let r = c
        .get(format!("{base}/services/data/v61.0/query/"))
        .query(&[("q", "SELECT Id FROM Account")])
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    let first: Value = r.json().await.unwrap();
    let next = first["nextRecordsUrl"].as_str().unwrap();
    let (s, second) = get_json(&c, format!("{base}{next}/"), &token).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(second["records"].as_array().unwrap().len(), 500);
    assert_eq!(second["done"], true);
    emu.shutdown().await;
}

#[tokio::test]
async fn the_default_org_has_an_enterprise_daily_allocation_and_unlimited_has_none() {
    assert_eq!(SalesforceConfig::new(1, 1).daily_api_limit, 100_000);
    let (emu, c, token) = start(SalesforceConfig::unlimited(1, 1)).await;
    let (s, h, _) = soql(&c, &emu.base_url(), &token, "SELECT Id FROM Account").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(h["sforce-limit-info"], format!("api-usage=1/{}", u64::MAX));
    emu.shutdown().await;
}

#[tokio::test]
async fn contacts_are_queried_by_account_and_a_uri_over_16384_bytes_is_refused() {
    let (emu, c, token) = start(SalesforceConfig::new(20, 9)).await;
    let base = emu.base_url();
    let (s, _, accounts) = soql(&c, &base, &token, "SELECT Id FROM Account ORDER BY Id").await;
    assert_eq!(s, StatusCode::OK);
    let ids: Vec<String> = accounts["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| format!("'{}'", r["Id"].as_str().unwrap()))
        .collect();
    let q = format!(
        "SELECT Id, AccountId, Email, Phone, MobilePhone, FirstName, LastName, MailingCountry, \
         MailingPostalCode FROM Contact WHERE AccountId IN ({}) ORDER BY AccountId, Id",
        ids.join(",")
    );
    let (s, _, body) = soql(&c, &base, &token, &q).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let records = body["records"].as_array().unwrap();
    assert!(!records.is_empty());
    for r in records {
        assert_eq!(r["attributes"]["type"], "Contact");
        assert!(r["Id"].as_str().unwrap().starts_with("003"));
        assert!(ids.contains(&format!("'{}'", r["AccountId"].as_str().unwrap())));
        assert!(r["LastName"].is_string() && r.get("MailingPostalCode").is_some());
    }
    // 800 quoted Ids do not fit a request URI: Salesforce answers 414 before anything else.
    let many: Vec<String> = (0..800).map(|n| format!("'001{n:012}AAA'")).collect();
    let q = format!("SELECT Id FROM Contact WHERE AccountId IN ({})", many.join(","));
    let r = c
        .get(format!("{base}/services/data/v61.0/query"))
        .query(&[("q", q.as_str())])
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::URI_TOO_LONG);
    emu.shutdown().await;
}
