//! The HubSpot emulator over HTTP, as a connector sees it: shapes, paging, auth, limits,
//! the search cap and lag, partial failures and faults.

use std::time::Duration;

use reqwest::{Client, StatusCode};
use serde_json::{json, Value};
use tierd_emulators::{HubSpotConfig, HubSpotEmulator};

async fn start(cfg: HubSpotConfig) -> (HubSpotEmulator, Client) {
    (
        HubSpotEmulator::start(cfg).await.expect("emulator starts"),
        Client::new(),
    )
}

async fn get(c: &Client, url: String) -> (StatusCode, reqwest::header::HeaderMap, Value) {
    let r = c
        .get(url)
        .bearer_auth("test-token")
        .send()
        .await
        .expect("request");
    let (s, h) = (r.status(), r.headers().clone());
    (s, h, r.json().await.expect("json body"))
}

async fn post(c: &Client, url: String, body: Value) -> (StatusCode, Value) {
    let r = c
        .post(url)
        .bearer_auth("test-token")
        .json(&body)
        .send()
        .await
        .expect("request");
    (r.status(), r.json().await.expect("json body"))
}

#[tokio::test]
async fn list_pages_with_after_cursor_and_last_page_has_no_paging() {
    let (emu, c) = start(HubSpotConfig::unlimited(25, 3)).await;
    let base = emu.base_url();
    let mut ids = Vec::new();
    let mut after: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut url =
            format!("{base}/crm/v3/objects/companies?limit=10&properties=name,industry,numberofemployees");
        if let Some(a) = &after {
            url.push_str(&format!("&after={a}"));
        }
        let (s, _, body) = get(&c, url).await;
        assert_eq!(s, StatusCode::OK);
        pages += 1;
        for r in body["results"].as_array().unwrap() {
            let p = &r["properties"];
            assert_eq!(r["id"], p["hs_object_id"]);
            assert!(p["name"].is_string() && p.get("industry").is_some() && p["createdate"].is_string());
            assert!(
                p.get("domain").is_none(),
                "only requested properties plus the three defaults"
            );
            assert_eq!(r["archived"], false);
            ids.push(r["id"].as_str().unwrap().to_string());
        }
        match body.get("paging") {
            Some(p) => after = Some(p["next"]["after"].as_str().unwrap().to_string()),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    let expected: Vec<String> = (0..25).map(|k| (1_000_000_000u64 + k).to_string()).collect();
    assert_eq!(ids, expected);
    let (s, _, body) = get(&c, format!("{base}/crm/v3/objects/companies?limit=101")).await;
    assert_eq!(
        (s, body["category"].as_str()),
        (StatusCode::BAD_REQUEST, Some("VALIDATION_ERROR"))
    );
    let (s, _, one) = get(&c, format!("{base}/crm/v3/objects/companies/1000000004")).await;
    assert_eq!(
        (s, one["properties"]["domain"].is_string()),
        (StatusCode::OK, true)
    );
    let (s, _, body) = get(&c, format!("{base}/crm/v3/objects/companies/999")).await;
    assert_eq!(
        (s, body["category"].as_str()),
        (StatusCode::NOT_FOUND, Some("OBJECT_NOT_FOUND"))
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn missing_or_wrong_token_is_401_with_hubspots_error_body() {
    let (emu, c) = start(HubSpotConfig::unlimited(3, 1)).await;
    let url = format!("{}/crm/v3/objects/companies", emu.base_url());
    for req in [c.get(&url), c.get(&url).bearer_auth("wrong")] {
        let r = req.send().await.unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        let b: Value = r.json().await.unwrap();
        assert_eq!(
            (b["status"].as_str(), b["category"].as_str()),
            (Some("error"), Some("INVALID_AUTHENTICATION"))
        );
        assert!(b["correlationId"].as_str().is_some_and(|s| s.len() == 36));
    }
    emu.shutdown().await;
}

#[tokio::test]
async fn ten_second_window_answers_429_without_retry_after_and_counts_down_headers() {
    let mut cfg = HubSpotConfig::new(3, 1);
    cfg.rate_limit = Some(3);
    cfg.daily_limit = Some(1000);
    let (emu, c) = start(cfg).await;
    let url = || format!("{}/crm/v3/objects/companies", emu.base_url());
    for remaining in ["2", "1", "0"] {
        let (s, h, _) = get(&c, url()).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(h["x-hubspot-ratelimit-max"], "3");
        assert_eq!(h["x-hubspot-ratelimit-remaining"], remaining);
        assert_eq!(h["x-hubspot-ratelimit-interval-milliseconds"], "10000");
        assert!(h.contains_key("x-hubspot-ratelimit-daily-remaining"));
    }
    let (s, h, body) = get(&c, url()).await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS);
    assert!(!h.contains_key("retry-after"));
    assert_eq!(body["errorType"], "RATE_LIMIT");
    assert_eq!(body["policyName"], "TEN_SECONDLY_ROLLING");
    assert_eq!(
        body["message"],
        "You have reached your ten_secondly_rolling limit."
    );
    assert_eq!(emu.stats().rate_limited, 1);
    emu.shutdown().await;
}

#[tokio::test]
async fn daily_and_search_per_second_limits_name_their_policy() {
    let mut cfg = HubSpotConfig::new(3, 1);
    cfg.search_rate_per_sec = Some(1);
    cfg.daily_limit = Some(3);
    let (emu, c) = start(cfg).await;
    let search = format!("{}/crm/v3/objects/companies/search", emu.base_url());
    assert_eq!(post(&c, search.clone(), json!({})).await.0, StatusCode::OK);
    let (s, body) = post(&c, search, json!({})).await;
    assert_eq!(
        (s, body["policyName"].as_str()),
        (StatusCode::TOO_MANY_REQUESTS, Some("SECONDLY"))
    );
    let list = format!("{}/crm/v3/objects/companies", emu.base_url());
    assert_eq!(get(&c, list.clone()).await.0, StatusCode::OK);
    assert_eq!(get(&c, list.clone()).await.0, StatusCode::OK);
    let (s, _, body) = get(&c, list).await;
    assert_eq!(
        (s, body["policyName"].as_str()),
        (StatusCode::TOO_MANY_REQUESTS, Some("DAILY"))
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn search_filters_sorts_pages_and_stops_at_the_result_cap() {
    let mut cfg = HubSpotConfig::unlimited(20, 5);
    cfg.search_result_cap = 5;
    let (emu, c) = start(cfg).await;
    let url = format!("{}/crm/v3/objects/companies/search", emu.base_url());
    let all = json!({"filterGroups": [{"filters": [
            {"propertyName": "hs_lastmodifieddate", "operator": "GTE", "value": "0"}]}],
        "sorts": [{"propertyName": "hs_object_id", "direction": "ASCENDING"}],
        "properties": ["name", "hs_lastmodifieddate"], "limit": 2});
    let (s, page) = post(&c, url.clone(), all.clone()).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(page["total"], 20);
    assert_eq!(page["results"][0]["id"], "1000000000");
    assert_eq!(page["paging"]["next"]["after"], "2");
    let mut req = all.clone();
    req["after"] = json!("4");
    let (s, page) = post(&c, url.clone(), req.clone()).await;
    assert_eq!(
        (s, page["results"].as_array().unwrap().len()),
        (StatusCode::OK, 1)
    );
    assert_eq!(page["paging"]["next"]["after"], "5");
    req["after"] = json!("5");
    let (s, err) = post(&c, url.clone(), req).await;
    assert_eq!(
        (s, err["category"].as_str()),
        (StatusCode::BAD_REQUEST, Some("VALIDATION_ERROR"))
    );
    // The documented way past the cap: restart with hs_object_id GT the last id seen.
    let restart = json!({"filterGroups": [{"filters": [
            {"propertyName": "hs_object_id", "operator": "GT", "value": "1000000014"}]}],
        "sorts": [{"propertyName": "hs_object_id", "direction": "DESCENDING"}], "limit": 200});
    let (_, page) = post(&c, url.clone(), restart).await;
    assert_eq!(page["total"], 5);
    assert_eq!(page["results"][0]["id"], "1000000019");
    assert!(page.get("paging").is_none());
    let (s, _) = post(&c, url.clone(), json!({"limit": 201})).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let in_filter = json!({"filterGroups": [
        {"filters": [{"propertyName": "hs_object_id", "operator": "IN", "values": ["1000000001", "1000000003"]}]},
        {"filters": [{"propertyName": "hs_object_id", "operator": "EQ", "value": "1000000007"}]}]});
    assert_eq!(post(&c, url.clone(), in_filter).await.1["total"], 3);
    let bad =
        json!({"filterGroups": [{"filters": [{"propertyName": "nope", "operator": "EQ", "value": "x"}]}]});
    assert_eq!(post(&c, url, bad).await.0, StatusCode::BAD_REQUEST);
    emu.shutdown().await;
}

#[tokio::test]
async fn search_sees_a_write_only_after_the_index_lag() {
    for (lag, visible) in [(Duration::from_secs(3600), false), (Duration::ZERO, true)] {
        let mut cfg = HubSpotConfig::unlimited(10, 2);
        cfg.search_index_lag = lag;
        let (emu, c) = start(cfg).await;
        emu.set_properties("1000000003", &[("name", "Renamed Corp")]);
        assert_eq!(
            emu.property("1000000003", "name").as_deref(),
            Some("Renamed Corp")
        );
        let url = format!("{}/crm/v3/objects/companies/search", emu.base_url());
        let q = json!({"filterGroups": [{"filters": [{"propertyName": "name", "operator": "EQ", "value": "Renamed Corp"}]}]});
        assert_eq!(
            post(&c, url, q).await.1["total"],
            u64::from(visible),
            "lag {lag:?}"
        );
        emu.shutdown().await;
    }
}

#[tokio::test]
async fn batch_update_reports_207_per_record_and_counts_writes() {
    let mut cfg = HubSpotConfig::unlimited(10, 4);
    cfg.tierd_properties = true;
    let (emu, c) = start(cfg).await;
    let url = format!("{}/crm/v3/objects/companies/batch/update", emu.base_url());
    let ok = json!({"inputs": [
        {"id": "1000000001", "properties": {"tierd_tier": "tier_1", "tierd_score": "4.2"}},
        {"id": "1000000002", "properties": {"tierd_tier": "tier_3"}}]});
    let (s, body) = post(&c, url.clone(), ok).await;
    assert_eq!((s, body["status"].as_str()), (StatusCode::OK, Some("COMPLETE")));
    assert_eq!(body["results"].as_array().unwrap().len(), 2);
    assert!(body["startedAt"].is_string() && body["completedAt"].is_string() && body.get("errors").is_none());
    let before = emu.property("1000000001", "hs_lastmodifieddate");
    let mixed = json!({"inputs": [
        {"id": "1000000001", "properties": {"tierd_tier": "tier_2"}},
        {"id": "1000000003", "properties": {"tierd_tier": "tier_9"}},
        {"id": "1000000004", "properties": {"no_such_property": "x"}},
        {"id": "1999999999", "properties": {"tierd_tier": "tier_1"}}]});
    let (s, body) = post(&c, url.clone(), mixed).await;
    assert_eq!(s, StatusCode::MULTI_STATUS);
    assert_eq!(body["numErrors"], 3);
    let errors = body["errors"].as_array().unwrap();
    let by_id = |id: &str| {
        errors
            .iter()
            .find(|e| e["context"]["ids"][0] == id)
            .unwrap()
            .clone()
    };
    assert_eq!(by_id("1000000003")["category"], "VALIDATION_ERROR");
    assert!(by_id("1000000003")["message"]
        .as_str()
        .unwrap()
        .contains("tier_9"));
    assert_eq!(by_id("1000000004")["category"], "VALIDATION_ERROR");
    assert_eq!(by_id("1999999999")["category"], "OBJECT_NOT_FOUND");
    assert_eq!(
        emu.property("1000000001", "tierd_tier").as_deref(),
        Some("tier_2")
    );
    assert_ne!(emu.property("1000000001", "hs_lastmodifieddate"), before);
    assert_eq!(emu.property("1000000003", "tierd_tier"), None);
    let log = emu.writes();
    assert_eq!(
        (log.total, log.count("1000000001"), log.count("1000000003")),
        (3, 2, 0)
    );
    let too_many: Vec<Value> = (0..101)
        .map(|k| json!({"id": (1_000_000_000 + k).to_string(), "properties": {}}))
        .collect();
    assert_eq!(
        post(&c, url, json!({"inputs": too_many})).await.0,
        StatusCode::BAD_REQUEST
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn creating_an_existing_property_or_group_is_409() {
    let (emu, c) = start(HubSpotConfig::unlimited(2, 1)).await;
    let base = emu.base_url();
    let group = json!({"name": "tierd", "label": "tierd", "displayOrder": 1});
    assert_eq!(
        post(
            &c,
            format!("{base}/crm/v3/properties/companies/groups"),
            group.clone()
        )
        .await
        .0,
        StatusCode::CREATED
    );
    let (s, body) = post(&c, format!("{base}/crm/v3/properties/companies/groups"), group).await;
    assert_eq!(
        (s, body["category"].as_str()),
        (StatusCode::CONFLICT, Some("OBJECT_ALREADY_EXISTS"))
    );
    let prop = json!({"name": "tierd_tier", "label": "Tier", "type": "enumeration", "fieldType": "select",
        "groupName": "tierd", "options": [{"label": "Tier 1", "value": "tier_1"}, {"label": "Untiered", "value": "untiered"}]});
    let url = format!("{base}/crm/v3/properties/companies");
    let (s, created) = post(&c, url.clone(), prop.clone()).await;
    assert_eq!(
        (s, created["name"].as_str()),
        (StatusCode::CREATED, Some("tierd_tier"))
    );
    let (s, body) = post(&c, url.clone(), prop).await;
    assert_eq!(s, StatusCode::CONFLICT);
    assert!(body["message"].as_str().unwrap().contains("already exists"));
    let (_, _, list) = get(&c, url).await;
    let names: Vec<&str> = list["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    for n in [
        "tierd_tier",
        "hs_ideal_customer_profile",
        "hs_is_target_account",
        "region",
        "hs_lastmodifieddate",
    ] {
        assert!(names.contains(&n), "{n} missing from {names:?}");
    }
    emu.shutdown().await;
}

#[tokio::test]
async fn deals_and_company_deal_associations() {
    let (emu, c) = start(HubSpotConfig::unlimited(12, 9)).await;
    let base = emu.base_url();
    let (s, _, deals) = get(
        &c,
        format!("{base}/crm/v3/objects/deals?limit=100&properties=amount,dealstage,closedate"),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let deals = deals["results"].as_array().unwrap().clone();
    assert!(!deals.is_empty());
    assert!(deals
        .iter()
        .all(|d| d["properties"]["amount"].is_string() && d["properties"]["createdate"].is_string()));
    let inputs: Vec<Value> = (0..12)
        .map(|k| json!({"id": (1_000_000_000 + k).to_string()}))
        .collect();
    let (s, assoc) = post(
        &c,
        format!("{base}/crm/v4/associations/companies/deals/batch/read"),
        json!({"inputs": inputs}),
    )
    .await;
    assert!(s == StatusCode::OK || s == StatusCode::MULTI_STATUS);
    let linked: usize = assoc["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["to"].as_array().unwrap().len())
        .sum();
    assert_eq!(linked, deals.len(), "every deal belongs to exactly one company");
    let first = &assoc["results"][0]["to"][0];
    assert_eq!(first["associationTypes"][0]["typeId"], 342);
    let id = first["toObjectId"].to_string();
    let (s, read) = post(
        &c,
        format!("{base}/crm/v3/objects/deals/batch/read"),
        json!({"inputs": [{"id": id}]}),
    )
    .await;
    assert_eq!(
        (s, read["results"].as_array().unwrap().len()),
        (StatusCode::OK, 1)
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn faults_storm_5xx_drops_and_malformed_records_are_injected_and_counted() {
    let (emu, c) = start(HubSpotConfig::unlimited(40, 6)).await;
    let base = emu.base_url();
    let url = format!("{base}/crm/v3/objects/companies?limit=100&properties=numberofemployees,annualrevenue,contract_renewal_date,site_visits_30d,expected_acv");
    emu.faults().set_rate_limit_storm(2);
    assert_eq!(get(&c, url.clone()).await.0, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(get(&c, url.clone()).await.0, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(get(&c, url.clone()).await.0, StatusCode::OK);
    emu.faults().set_error_rate(1.0);
    assert_eq!(get(&c, url.clone()).await.0, StatusCode::INTERNAL_SERVER_ERROR);
    emu.faults().reset();
    emu.faults().set_drop_rate(1.0);
    let dropped = c.get(&url).bearer_auth("test-token").send().await;
    let failed = match dropped {
        Err(_) => true,
        Ok(r) => r.bytes().await.is_err(),
    };
    assert!(failed, "a dropped connection must not yield a complete response");
    // Over the admin endpoint: clear everything, spoil half the records.
    let r = c
        .post(format!("{base}/__admin/faults"))
        .json(&json!({"reset": true, "malformed_rate": 0.5}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let (s, _, page) = get(&c, url.clone()).await;
    assert_eq!(s, StatusCode::OK);
    let spoiled = |page: &Value| -> Vec<String> {
        page["results"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| {
                r["properties"].as_object().unwrap().iter().any(|(k, v)| {
                    let v = v.as_str().unwrap_or("0");
                    match k.as_str() {
                        "contract_renewal_date" => v.len() != 10 || v.contains("-13-") || v.contains('/'),
                        "createdate" | "hs_lastmodifieddate" | "hs_object_id" => false,
                        _ => v.parse::<f64>().is_err() || v.contains('x'),
                    }
                })
            })
            .map(|r| r["id"].as_str().unwrap().to_string())
            .collect()
    };
    let first = spoiled(&page);
    assert!(
        !first.is_empty() && first.len() < 40,
        "{} of 40 spoiled",
        first.len()
    );
    assert_eq!(
        spoiled(&get(&c, url).await.2),
        first,
        "the same records are spoiled on every read"
    );
    let stats: Value = c
        .get(format!("{base}/__admin/stats"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(stats["rate_limited"], 2);
    assert_eq!(stats["server_errors"], 1);
    assert_eq!(stats["dropped"], 1);
    assert_eq!(stats["requests"], 7);
    emu.shutdown().await;
}

#[tokio::test]
async fn by_default_a_private_app_gets_100_requests_per_ten_seconds_then_429() {
    let cfg = HubSpotConfig::new(3, 1);
    assert_eq!(
        (cfg.rate_limit, cfg.search_rate_per_sec, cfg.daily_limit),
        (Some(100), Some(5), Some(250_000))
    );
    let (emu, c) = start(cfg).await;
    let url = || format!("{}/crm/v3/objects/companies", emu.base_url());
    let (s, h, _) = get(&c, url()).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(h["x-hubspot-ratelimit-max"], "100");
    assert_eq!(h["x-hubspot-ratelimit-remaining"], "99");
    assert_eq!(h["x-hubspot-ratelimit-daily"], "250000");
    assert_eq!(h["x-hubspot-ratelimit-daily-remaining"], "249999");
    for _ in 1..100 {
        assert_eq!(get(&c, url()).await.0, StatusCode::OK);
    }
    let (s, h, body) = get(&c, url()).await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS);
    assert!(!h.contains_key("retry-after"));
    assert_eq!(
        (body["errorType"].as_str(), body["policyName"].as_str()),
        (Some("RATE_LIMIT"), Some("TEN_SECONDLY_ROLLING"))
    );
    assert_eq!(emu.stats().rate_limited, 1);
    emu.shutdown().await;
}

#[tokio::test]
async fn by_default_search_allows_five_requests_per_second() {
    let (emu, c) = start(HubSpotConfig::new(3, 1)).await;
    let search = format!("{}/crm/v3/objects/companies/search", emu.base_url());
    let answers = futures_util::future::join_all((0..6).map(|_| post(&c, search.clone(), json!({})))).await;
    let limited: Vec<&Value> = answers
        .iter()
        .filter(|(s, _)| *s == StatusCode::TOO_MANY_REQUESTS)
        .map(|(_, b)| b)
        .collect();
    assert_eq!(limited.len(), 1, "{answers:?}");
    assert_eq!(limited[0]["policyName"], "SECONDLY");
    emu.shutdown().await;
}

#[tokio::test]
async fn unlimited_serves_a_burst_past_the_vendor_window() {
    let (emu, c) = start(HubSpotConfig::unlimited(3, 1)).await;
    let url = format!("{}/crm/v3/objects/companies", emu.base_url());
    for _ in 0..150 {
        let (s, h, _) = get(&c, url.clone()).await;
        assert_eq!(s, StatusCode::OK);
        assert!(!h.contains_key("x-hubspot-ratelimit-max"));
    }
    assert_eq!(emu.stats().rate_limited, 0);
    emu.shutdown().await;
}

#[tokio::test]
async fn company_contact_associations_page_per_company_and_contacts_read_in_batches_of_100() {
    let cfg = HubSpotConfig {
        association_page_size: 1,
        ..HubSpotConfig::unlimited(40, 9)
    };
    let (emu, c) = start(cfg).await;
    let base = emu.base_url();
    let url = format!("{base}/crm/v4/associations/companies/contacts/batch/read");
    let companies: Vec<String> = (0..40).map(|k| (1_000_000_000u64 + k).to_string()).collect();
    // Page through every company's contacts one association at a time, as a client must.
    let mut pending: Vec<Value> = companies.iter().map(|id| json!({"id": id})).collect();
    let mut contacts: Vec<(String, String)> = Vec::new();
    let mut rounds = 0;
    let mut without = 0;
    while !pending.is_empty() {
        rounds += 1;
        let (s, body) = post(&c, url.clone(), json!({"inputs": pending})).await;
        assert!(
            s == StatusCode::OK || s == StatusCode::MULTI_STATUS,
            "{s}: {body}"
        );
        if rounds == 1 {
            without = body["numErrors"].as_u64().unwrap_or(0);
            if without > 0 {
                assert_eq!(s, StatusCode::MULTI_STATUS);
                assert_eq!(
                    body["errors"][0]["subCategory"],
                    "crm.associations.NO_ASSOCIATIONS_FOUND"
                );
            }
        }
        pending = Vec::new();
        for r in body["results"].as_array().expect("results") {
            let from = r["from"]["id"].as_str().expect("from id").to_string();
            let to = r["to"].as_array().expect("to");
            assert_eq!(to.len(), 1, "one per page: {r}");
            assert_eq!(to[0]["associationTypes"][0]["typeId"], 280);
            contacts.push((from.clone(), to[0]["toObjectId"].to_string()));
            if let Some(after) = r["paging"]["next"]["after"].as_str() {
                pending.push(json!({"id": from, "after": after}));
            }
        }
    }
    assert!(
        (2..=4).contains(&rounds),
        "up to three contacts a company: {rounds}"
    );
    assert!(without > 0, "some companies have no contacts");
    assert!(contacts.len() > 20, "{}", contacts.len());

    // The contacts, in batches of at most 100, with the properties asked for.
    let read = format!("{base}/crm/v3/objects/contacts/batch/read");
    let inputs: Vec<Value> = contacts.iter().map(|(_, id)| json!({"id": id})).collect();
    let (s, body) = post(
        &c,
        read.clone(),
        json!({"properties": ["email", "phone", "mobilephone", "firstname", "lastname", "country", "zip"],
               "inputs": inputs}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let results = body["results"].as_array().expect("results");
    assert_eq!(results.len(), contacts.len());
    for r in results {
        let p = &r["properties"];
        assert!(p["firstname"].is_string() && p["lastname"].is_string(), "{r}");
        assert!(p.get("email").is_some() && p.get("mobilephone").is_some(), "{r}");
    }
    let too_many: Vec<Value> = (0..101)
        .map(|n| json!({"id": (3_000_000_000u64 + n).to_string()}))
        .collect();
    let (s, body) = post(&c, read, json!({"inputs": too_many})).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(body["category"], "VALIDATION_ERROR");
    assert_eq!(body["message"], "Batch input limit is 100, got 101 inputs");
    let too_many: Vec<Value> = (0..1001)
        .map(|n| json!({"id": (1_000_000_000u64 + n).to_string()}))
        .collect();
    let (s, body) = post(&c, url, json!({"inputs": too_many})).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(body["message"], "Batch input limit is 1000, got 1001 inputs");
    emu.shutdown().await;
}
