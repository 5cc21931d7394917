//! CRM lists over HTTP, as a connector sees them: HubSpot's Lists API (both paths, paging,
//! refusals) and Salesforce Campaigns with their members (create, delete, limits, duplicates).

use reqwest::{Client, Method, StatusCode};
use serde_json::{json, Value};
use tierd_emulators::{HubSpotConfig, HubSpotEmulator, SalesforceConfig, SalesforceEmulator};

async fn call(
    c: &Client,
    method: Method,
    url: String,
    token: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut r = c.request(method, url).bearer_auth(token);
    if let Some(b) = body {
        r = r.json(&b);
    }
    let r = r.send().await.expect("request");
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn hubspot_lists_page_memberships_refuse_dynamic_and_spell_added_per_path() {
    let mut cfg = HubSpotConfig::unlimited(600, 1);
    cfg.list_batch_max = 300;
    let emu = HubSpotEmulator::start(cfg).await.expect("emulator");
    let (c, base) = (Client::new(), emu.base_url());
    let t = "test-token";
    let create = json!({"name": "Tier 1", "objectTypeId": "0-2", "processingType": "MANUAL"});
    let (s, created) = call(
        &c,
        Method::POST,
        format!("{base}/crm/lists/2026-03/"),
        t,
        Some(create.clone()),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{created}");
    let id = created["list"]["listId"].as_str().expect("list id").to_string();
    assert_eq!(created["list"]["processingType"], "MANUAL");
    // Names are unique across lists, whatever the case.
    let dup = json!({"name": "tier 1", "objectTypeId": "0-2", "processingType": "MANUAL"});
    let (s, body) = call(&c, Method::POST, format!("{base}/crm/v3/lists/"), t, Some(dup)).await;
    assert_eq!(
        (s, body["category"].as_str()),
        (StatusCode::BAD_REQUEST, Some("VALIDATION_ERROR"))
    );
    // Found by name in any case, under the object type.
    let (s, found) = call(
        &c,
        Method::GET,
        format!("{base}/crm/v3/lists/object-type-id/0-2/name/TIER%201"),
        t,
        None,
    )
    .await;
    assert_eq!(
        (s, found["list"]["listId"].as_str()),
        (StatusCode::OK, Some(id.as_str()))
    );
    let (s, body) = call(
        &c,
        Method::GET,
        format!("{base}/crm/v3/lists/object-type-id/0-1/name/Tier%201"),
        t,
        None,
    )
    .await;
    assert_eq!(
        (s, body["category"].as_str()),
        (StatusCode::NOT_FOUND, Some("OBJECT_NOT_FOUND"))
    );

    // 2026-03 spells the added ids `recordsIdsAdded`; v3 `recordIdsAdded`.
    let ids: Vec<String> = (0..300).map(|k| (1_000_000_000u64 + k).to_string()).collect();
    let change = json!({"recordIdsToAdd": ids, "recordIdsToRemove": []});
    let url = |p: &str| format!("{base}{p}/{id}/memberships/add-and-remove");
    let (s, body) = call(&c, Method::PUT, url("/crm/lists/2026-03"), t, Some(change)).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(body["recordsIdsAdded"].as_array().map(Vec::len), Some(300));
    let change =
        json!({"recordIdsToAdd": ["1000000000", "1000000300", "42"], "recordIdsToRemove": ["1000000001"]});
    let (s, body) = call(&c, Method::PUT, url("/crm/v3/lists"), t, Some(change)).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        body["recordIdsAdded"],
        json!(["1000000300"]),
        "a member already there is not added again"
    );
    assert_eq!(body["recordIdsRemoved"], json!(["1000000001"]));
    assert_eq!(body["recordIdsMissing"], json!(["42"]));
    // Over the per-call limit: refused whole.
    let many: Vec<String> = (0..301).map(|k| k.to_string()).collect();
    let (s, body) = call(
        &c,
        Method::PUT,
        url("/crm/v3/lists"),
        t,
        Some(json!({"recordIdsToAdd": many, "recordIdsToRemove": []})),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{body}");

    // 300 members in record-id order, at most 250 a page.
    let page = |after: Option<&str>, limit: u32| {
        let after = after.map(|a| format!("&after={a}")).unwrap_or_default();
        format!("{base}/crm/lists/2026-03/{id}/memberships?limit={limit}{after}")
    };
    let (s, body) = call(&c, Method::GET, page(None, 251), t, None).await;
    assert_eq!(
        (s, body["category"].as_str()),
        (StatusCode::BAD_REQUEST, Some("VALIDATION_ERROR"))
    );
    let (_, first) = call(&c, Method::GET, page(None, 250), t, None).await;
    let after = first["paging"]["next"]["after"]
        .as_str()
        .expect("a next page")
        .to_string();
    let (_, second) = call(&c, Method::GET, page(Some(&after), 250), t, None).await;
    assert!(second.get("paging").is_none(), "the last page has no paging");
    let read: Vec<&str> = first["results"]
        .as_array()
        .into_iter()
        .chain(second["results"].as_array())
        .flatten()
        .filter_map(|m| m["recordId"].as_str())
        .collect();
    assert_eq!(read.len(), 300);
    assert!(read
        .windows(2)
        .all(|w| w[0].parse::<u64>().ok() < w[1].parse::<u64>().ok()));

    // A DYNAMIC list takes no changes, in HubSpot's error envelope.
    let dynamic = emu.create_company_list("Engaged", "DYNAMIC");
    let change = json!({"recordIdsToAdd": ["1000000000"], "recordIdsToRemove": []});
    let (s, body) = call(
        &c,
        Method::PUT,
        format!("{base}/crm/v3/lists/{dynamic}/memberships/add-and-remove"),
        t,
        Some(change),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(
        (body["status"].as_str(), body["category"].as_str()),
        (Some("error"), Some("VALIDATION_ERROR"))
    );
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.contains("MANUAL or SNAPSHOT")),
        "{body}"
    );
    assert!(body["correlationId"].is_string());
    assert_eq!(emu.list_members("Engaged"), Some(vec![]));
    emu.shutdown().await;
}

async fn salesforce() -> (SalesforceEmulator, Client, String, String) {
    let emu = SalesforceEmulator::start(SalesforceConfig::unlimited(250, 2))
        .await
        .expect("emulator");
    let c = Client::new();
    let base = emu.base_url();
    let body = "grant_type=client_credentials&client_id=any-app&client_secret=test-secret";
    let r = c
        .post(format!("{base}/services/oauth2/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .expect("token");
    let token: Value = r.json().await.expect("json");
    let token = token["access_token"].as_str().expect("access token").to_string();
    (emu, c, base, token)
}

async fn account_ids(c: &Client, base: &str, token: &str) -> Vec<String> {
    let (_, body) = call(
        c,
        Method::GET,
        format!("{base}/services/data/v61.0/query?q=SELECT+Id+FROM+Account+ORDER+BY+Id"),
        token,
        None,
    )
    .await;
    body["records"]
        .as_array()
        .expect("records")
        .iter()
        .filter_map(|r| r["Id"].as_str().map(str::to_string))
        .collect()
}

#[tokio::test]
async fn salesforce_campaign_members_are_created_and_deleted_200_at_a_time() {
    let (emu, c, base, t) = salesforce().await;
    let accounts = account_ids(&c, &base, &t).await;
    let data = format!("{base}/services/data/v61.0");
    let (s, body) = call(
        &c,
        Method::POST,
        format!("{data}/sobjects/Campaign"),
        &t,
        Some(json!({"Name": "Tier 1", "IsActive": true})),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    let campaign = body["id"].as_str().expect("campaign id").to_string();
    let member =
        |a: &str| json!({"attributes": {"type": "CampaignMember"}, "CampaignId": campaign, "AccountId": a});

    // More than 200 records in one call is refused whole.
    let records: Vec<Value> = accounts[..201].iter().map(|a| member(a)).collect();
    let (s, body) = call(
        &c,
        Method::POST,
        format!("{data}/composite/sobjects"),
        &t,
        Some(json!({"allOrNone": false, "records": records})),
    )
    .await;
    assert_eq!(
        (s, body[0]["errorCode"].as_str()),
        (StatusCode::BAD_REQUEST, Some("EXCEEDED_ID_LIMIT"))
    );

    // Per record, in order: a duplicate in the same call and an unknown account fail alone.
    let mut records: Vec<Value> = accounts[..3].iter().map(|a| member(a)).collect();
    records.push(member(&accounts[0]));
    records.push(member("001000000000zzzAAA"));
    let (s, body) = call(
        &c,
        Method::POST,
        format!("{data}/composite/sobjects"),
        &t,
        Some(json!({"allOrNone": false, "records": records})),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let codes: Vec<&str> = body
        .as_array()
        .expect("results")
        .iter()
        .map(|r| match r["success"].as_bool() {
            Some(true) => "ok",
            _ => r["errors"][0]["statusCode"].as_str().unwrap_or("?"),
        })
        .collect();
    assert_eq!(
        codes,
        ["ok", "ok", "ok", "DUPLICATE_VALUE", "INVALID_CROSS_REFERENCE_KEY"]
    );
    let first_member = body[0]["id"].as_str().expect("member id").to_string();
    assert!(first_member.starts_with("00v"));
    assert_eq!(emu.campaign_accounts("Tier 1").map(|v| v.len()), Some(3));

    // Deleted members leave queries; deleting again is ENTITY_IS_DELETED.
    let del = format!("{data}/composite/sobjects?ids={first_member},{first_member}&allOrNone=false");
    let (s, body) = call(&c, Method::DELETE, del, &t, None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(body[0]["success"], true);
    assert_eq!(body[1]["errors"][0]["statusCode"], "ENTITY_IS_DELETED");
    let q =
        format!("{data}/query?q=SELECT+Id,+AccountId+FROM+CampaignMember+WHERE+CampaignId+=+'{campaign}'");
    let (_, body) = call(&c, Method::GET, q, &t, None).await;
    assert_eq!(body["totalSize"], 2);
    let (s, body) = call(&c, Method::DELETE, format!("{data}/composite/sobjects"), &t, None).await;
    assert_eq!(
        (s, body[0]["errorCode"].as_str()),
        (StatusCode::BAD_REQUEST, Some("MISSING_ARGUMENT"))
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn without_the_setting_campaign_members_have_no_account_id() {
    let mut cfg = SalesforceConfig::unlimited(5, 3);
    cfg.accounts_as_campaign_members = false;
    let emu = SalesforceEmulator::start(cfg).await.expect("emulator");
    let c = Client::new();
    let base = emu.base_url();
    let r = c
        .post(format!("{base}/services/oauth2/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("grant_type=client_credentials&client_id=x&client_secret=test-secret")
        .send()
        .await
        .expect("token");
    let token: Value = r.json().await.expect("json");
    let t = token["access_token"].as_str().expect("token");
    let (_, d) = call(
        &c,
        Method::GET,
        format!("{base}/services/data/v61.0/sobjects/CampaignMember/describe"),
        t,
        None,
    )
    .await;
    let names: Vec<&str> = d["fields"]
        .as_array()
        .expect("fields")
        .iter()
        .filter_map(|f| f["name"].as_str())
        .collect();
    assert!(
        names.contains(&"CampaignId") && !names.contains(&"AccountId"),
        "{names:?}"
    );
    let (s, body) = call(
        &c,
        Method::GET,
        format!("{base}/services/data/v61.0/query?q=SELECT+AccountId+FROM+CampaignMember"),
        t,
        None,
    )
    .await;
    assert_eq!(
        (s, body[0]["errorCode"].as_str()),
        (StatusCode::BAD_REQUEST, Some("INVALID_FIELD"))
    );
    emu.shutdown().await;
}
