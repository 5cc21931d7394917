//! The Salesforce connector: Accounts (with their Contracts) in, tiers out, over the
//! REST API with the OAuth 2.0 client-credentials flow.
//!
//! - **Auth**: `POST /services/oauth2/token` gives a token and the `instance_url` every
//!   later call goes to. A 401 `INVALID_SESSION_ID` gets a new token and one retry.
//! - **Pull**: SOQL through `/query`, following `nextRecordsUrl`; incremental pulls filter
//!   `SystemModstamp > since ORDER BY SystemModstamp, Id`. Contract facts (vendor, renewal
//!   date, competitor) come from each page's activated Contracts in one query per chunk
//!   of Account Ids. Only the SOQL subset `SELECT .. FROM .. WHERE a op x AND b IN (..)
//!   ORDER BY .. LIMIT n` is used.
//! - **Schema**: tierd cannot create custom fields (an admin does), so `ensure_schema` is
//!   the `describe` check: it names every missing tierd field, and push refuses to start
//!   while any is missing instead of failing record by record.
//! - **Push**: sObject Collections `PATCH /composite/sobjects`, 200 records per call,
//!   `allOrNone: false`, reading the per-record array; `UNABLE_TO_LOCK_ROW` is retried with
//!   back-off in the same run; `REQUEST_LIMIT_EXCEEDED` stops the push and defers the rest.
//! - **API usage**: `Sforce-Limit-Info` is read on every answer ([`Connector::http_stats`]);
//!   pushing stops while fewer calls than the configured reserve remain.
//! - **Lists**: a Campaign of accounts per tier kept in step (`campaigns.rs`).
//! - **Contacts**: `SELECT .. FROM Contact WHERE AccountId IN (..)`, 300 Account Ids per
//!   query (the query travels in the URI, which Salesforce caps at 16,384 bytes), following
//!   `nextRecordsUrl`.

use std::collections::{HashMap, HashSet};

use futures_util::stream;
use serde::Deserialize;
use serde_json::{json, Value as Json};
use tierd_core::fact::{Fact, FactName, FactValue};

use crate::connector::{
    AccountPage, BoxFuture, Connector, ConnectorError, Contacts, CrmAccount, CrmContact, Deal, PageStream,
    PushOutcome, SchemaReport, TierUpdate, Watermark,
};
use crate::http::{HttpClient, HttpStats, RateLimiter, Reply, RetryPolicy, Secret, Vendor};
use crate::mapping::{self, FieldMapping};

mod campaigns;

const ID_PREFIX: &str = "salesforce:";
const NAME: &str = "salesforce";

/// Config of the `salesforce` connector.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SalesforceConfig {
    /// Where tokens come from: `https://login.salesforce.com`, your My Domain URL, or an emulator.
    pub login_url: String,
    /// The connected app's consumer key.
    pub client_id: String,
    /// The connected app's consumer secret.
    pub client_secret: Secret,
    /// REST API version in paths.
    pub api_version: String,
    /// Account fields read as facts; the contract's defaults when not set.
    pub mapping: Vec<FieldMapping>,
    /// The Account field holding the tier.
    pub tier_field: String,
    /// The checkbox a person ticks to lock the tier.
    pub lock_field: String,
    /// Vendors whose contracts count as a competitor's (`contracts.is_competitor`).
    pub competitors: Vec<String>,
    /// Read activated Contracts for the `contracts.*` facts.
    pub read_contracts: bool,
    /// Records per query page (Salesforce: 200..=2000).
    pub page_size: usize,
    /// Records per composite update (at most 200).
    pub batch_size: usize,
    /// Share of the daily API limit kept for other integrations: pushing stops (deferring
    /// the rest) while fewer calls remain.
    pub api_reserve_share: f64,
    /// Longest reason written (a Text Area field holds 255 characters).
    pub reason_max_chars: usize,
    /// Extra rounds, within one push, for records refused for a reason that may pass.
    pub record_retries: u32,
    /// Requests per second; 0 = no limit (Salesforce counts calls per day, not per second).
    pub rate_per_sec: u32,
    /// Retries and timeouts of single requests.
    pub retry: RetryPolicy,
}

impl Default for SalesforceConfig {
    fn default() -> Self {
        SalesforceConfig {
            login_url: "https://login.salesforce.com".into(),
            client_id: String::new(),
            client_secret: Secret::new(""),
            api_version: "v61.0".into(),
            mapping: mapping::salesforce_defaults(),
            tier_field: "Tier__c".into(),
            lock_field: "Tier_Locked__c".into(),
            competitors: Vec::new(),
            read_contracts: true,
            page_size: 2000,
            batch_size: 200,
            api_reserve_share: 0.01,
            reason_max_chars: 255,
            record_retries: 3,
            rate_per_sec: 0,
            retry: RetryPolicy::default(),
        }
    }
}

/// The Account fields tierd writes, besides the tier and lock fields.
const WRITTEN_FIELDS: [&str; 4] = [
    "Tier_Score__c",
    "Tier_Scored_At__c",
    "Tier_Model__c",
    "Tier_Reason__c",
];

impl SalesforceConfig {
    /// Checks every value, naming the key of the first problem.
    pub fn validate(&self) -> Result<(), ConnectorError> {
        let bad = |key: &str, message: String| Err(ConnectorError::config(key, message));
        if self.client_id.trim().is_empty() {
            return bad(
                "client_id",
                "is empty: set the connected app's consumer key".into(),
            );
        }
        if self.client_secret.is_empty() {
            return bad(
                "client_secret",
                "is empty: set the connected app's consumer secret (or client_secret_env)".into(),
            );
        }
        if reqwest::Url::parse(&self.login_url).is_err() {
            return bad("login_url", format!("'{}' is not a URL", self.login_url));
        }
        let version_ok = self
            .api_version
            .strip_prefix('v')
            .and_then(|v| v.split_once('.'))
            .is_some_and(|(a, b)| !a.is_empty() && a.parse::<u32>().is_ok() && b.parse::<u32>().is_ok());
        if !version_ok {
            return bad("api_version", format!("'{}' is not like v61.0", self.api_version));
        }
        if !(200..=2000).contains(&self.page_size) {
            return bad(
                "page_size",
                format!("must be within 200..=2000, got {}", self.page_size),
            );
        }
        if !(1..=200).contains(&self.batch_size) {
            return bad(
                "batch_size",
                format!("must be within 1..=200, got {}", self.batch_size),
            );
        }
        if !(0.0..1.0).contains(&self.api_reserve_share) {
            return bad(
                "api_reserve_share",
                format!("must be within 0..1, got {}", self.api_reserve_share),
            );
        }
        Ok(())
    }

    /// Validates the config and builds the connector.
    pub fn build(self) -> Result<SalesforceConnector, ConnectorError> {
        self.validate()?;
        let limiter = match self.rate_per_sec {
            0 => RateLimiter::unlimited(),
            n => RateLimiter::for_window(n, std::time::Duration::from_secs(1)),
        };
        Ok(SalesforceConnector {
            http: HttpClient::new(Vendor::Salesforce, self.retry.clone())?,
            limiter,
            session: tokio::sync::Mutex::new(None),
            fields: tokio::sync::Mutex::new(None),
            config: self,
        })
    }
}

#[derive(Clone)]
struct Session {
    token: Secret,
    instance_url: String,
}

/// A connected Salesforce org.
pub struct SalesforceConnector {
    config: SalesforceConfig,
    http: HttpClient,
    limiter: RateLimiter,
    session: tokio::sync::Mutex<Option<Session>>,
    /// Account field names from `describe`, read once.
    fields: tokio::sync::Mutex<Option<HashSet<String>>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct QueryPage {
    #[serde(default)]
    done: bool,
    next_records_url: Option<String>,
    records: Vec<serde_json::Map<String, Json>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SfError {
    #[serde(default)]
    message: String,
    #[serde(default)]
    error_code: String,
    #[serde(default, alias = "statusCode")]
    status_code: String,
}

impl SfError {
    fn code(&self) -> &str {
        if self.error_code.is_empty() {
            &self.status_code
        } else {
            &self.error_code
        }
    }
}

fn first_error(reply: &Reply) -> SfError {
    serde_json::from_slice::<Vec<SfError>>(&reply.body)
        .ok()
        .and_then(|v| v.into_iter().next())
        .unwrap_or_else(|| SfError {
            message: reply.snippet(),
            error_code: String::new(),
            status_code: String::new(),
        })
}

/// A field's JSON value as the text the mapping parses.
fn text_of(v: &Json) -> Option<std::borrow::Cow<'_, str>> {
    match v {
        Json::Null => None,
        Json::String(s) => Some(s.as_str().into()),
        Json::Bool(b) => Some(b.to_string().into()),
        Json::Number(n) => Some(n.to_string().into()),
        other => Some(other.to_string().into()),
    }
}

/// A SOQL string literal.
fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
}

/// Account Ids per Contract/Opportunity/Contact query: 300 quoted, URL-encoded 18-character
/// Ids take about 8,100 bytes, half of the 16,384 Salesforce allows a request's URI and
/// headers (help article 000386264: longer is 414 URI Too Long).
const IDS_PER_QUERY: usize = 300;

impl SalesforceConnector {
    fn data_path(&self, rest: &str) -> String {
        format!("/services/data/{}{rest}", self.config.api_version)
    }

    async fn login(&self) -> Result<Session, ConnectorError> {
        #[derive(Deserialize)]
        struct Token {
            access_token: String,
            instance_url: String,
        }
        let url = format!(
            "{}/services/oauth2/token",
            self.config.login_url.trim_end_matches('/')
        );
        let what = "get an OAuth token";
        let form = [
            ("grant_type", "client_credentials"),
            ("client_id", self.config.client_id.as_str()),
            ("client_secret", self.config.client_secret.expose()),
        ];
        let reply = self
            .http
            .send(what, &self.limiter, |c| c.post(&url).form(&form))
            .await?;
        if !reply.status.is_success() {
            #[derive(Deserialize, Default)]
            struct OAuthError {
                #[serde(default)]
                error: String,
                #[serde(default)]
                error_description: String,
            }
            let e: OAuthError = serde_json::from_slice(&reply.body).unwrap_or_default();
            return Err(ConnectorError::Auth {
                connector: NAME,
                what: what.into(),
                status: reply.status.as_u16(),
                message: format!("{} {}", e.error, e.error_description).trim().to_string(),
            });
        }
        let t: Token = reply.json(what)?;
        Ok(Session {
            token: Secret::new(t.access_token),
            instance_url: t.instance_url.trim_end_matches('/').to_string(),
        })
    }

    /// The current session, logging in when there is none.
    async fn session(&self) -> Result<Session, ConnectorError> {
        let mut s = self.session.lock().await;
        if let Some(session) = s.as_ref() {
            return Ok(session.clone());
        }
        let fresh = self.login().await?;
        *s = Some(fresh.clone());
        Ok(fresh)
    }

    /// A new session unless another task already replaced `stale`.
    async fn renew(&self, stale: &Session) -> Result<Session, ConnectorError> {
        let mut s = self.session.lock().await;
        if let Some(current) = s.as_ref() {
            if current.token != stale.token {
                return Ok(current.clone());
            }
        }
        let fresh = self.login().await?;
        *s = Some(fresh.clone());
        Ok(fresh)
    }

    /// Sends an API call to the instance (`path` starts with `/services/data`), renewing an
    /// expired session once.
    async fn call(
        &self,
        what: &str,
        path: &str,
        build: impl Fn(&reqwest::Client, &str) -> reqwest::RequestBuilder,
    ) -> Result<Reply, ConnectorError> {
        let session = self.session().await?;
        let reply = self.send_as(what, path, &session, &build).await?;
        if reply.status.as_u16() != 401 {
            return Ok(reply);
        }
        tracing::debug!(what, "Salesforce session expired or invalid; getting a new token");
        let session = self.renew(&session).await?;
        self.send_as(what, path, &session, &build).await
    }

    async fn send_as(
        &self,
        what: &str,
        path: &str,
        session: &Session,
        build: &impl Fn(&reqwest::Client, &str) -> reqwest::RequestBuilder,
    ) -> Result<Reply, ConnectorError> {
        let url = format!("{}{path}", session.instance_url);
        let token = session.token.expose();
        Ok(self
            .http
            .send(what, &self.limiter, |c| build(c, &url).bearer_auth(token))
            .await?)
    }

    fn fail(what: &str, reply: &Reply) -> ConnectorError {
        let e = first_error(reply);
        let status = reply.status.as_u16();
        let message = format!("{}: {}", e.code(), e.message);
        match status {
            401 => ConnectorError::Auth {
                connector: NAME,
                what: what.into(),
                status,
                message,
            },
            _ => ConnectorError::Api {
                connector: NAME,
                what: what.into(),
                status,
                message,
            },
        }
    }

    async fn query_page(&self, what: &str, path: &str) -> Result<QueryPage, ConnectorError> {
        self.query_page_as(what, path, Reply::json).await
    }

    /// One query page, decoded by `decode` ([`Reply::json_personal`] for contacts).
    async fn query_page_as(
        &self,
        what: &str,
        path: &str,
        decode: fn(&Reply, &str) -> Result<QueryPage, crate::http::HttpError>,
    ) -> Result<QueryPage, ConnectorError> {
        let size = format!("batchSize={}", self.config.page_size);
        let reply = self
            .call(what, path, |c, url| {
                c.get(url).header("Sforce-Query-Options", size.as_str())
            })
            .await?;
        if !reply.status.is_success() {
            return Err(Self::fail(what, &reply));
        }
        Ok(decode(&reply, what)?)
    }

    fn query_path(&self, soql: &str) -> String {
        let mut url = reqwest::Url::parse("http://x/").expect("a constant URL parses");
        url.query_pairs_mut().append_pair("q", soql);
        format!("{}?{}", self.data_path("/query"), url.query().unwrap_or_default())
    }

    /// Every record a query returns, following `nextRecordsUrl`.
    async fn query_all(
        &self,
        what: &str,
        soql: &str,
    ) -> Result<Vec<serde_json::Map<String, Json>>, ConnectorError> {
        self.query_all_as(what, soql, Reply::json).await
    }

    /// [`Self::query_all`], each page decoded by `decode`.
    async fn query_all_as(
        &self,
        what: &str,
        soql: &str,
        decode: fn(&Reply, &str) -> Result<QueryPage, crate::http::HttpError>,
    ) -> Result<Vec<serde_json::Map<String, Json>>, ConnectorError> {
        let mut out = Vec::new();
        let mut page = self.query_page_as(what, &self.query_path(soql), decode).await?;
        loop {
            out.append(&mut page.records);
            match page.next_records_url.take() {
                Some(next) if !page.done => page = self.query_page_as(what, &next, decode).await?,
                _ => return Ok(out),
            }
        }
    }

    /// Account field names, from `describe` (read once per connector).
    async fn account_fields(&self) -> Result<HashSet<String>, ConnectorError> {
        let mut cached = self.fields.lock().await;
        if let Some(f) = cached.as_ref() {
            return Ok(f.clone());
        }
        #[derive(Deserialize)]
        struct Describe {
            fields: Vec<Field>,
        }
        #[derive(Deserialize)]
        struct Field {
            name: String,
        }
        let what = "describe Account";
        let reply = self
            .call(what, &self.data_path("/sobjects/Account/describe"), |c, url| {
                c.get(url)
            })
            .await?;
        if !reply.status.is_success() {
            return Err(Self::fail(what, &reply));
        }
        let d: Describe = reply.json(what)?;
        let names: HashSet<String> = d.fields.into_iter().map(|f| f.name).collect();
        *cached = Some(names.clone());
        Ok(names)
    }

    fn tierd_fields(&self) -> Vec<&str> {
        let mut v = vec![self.config.tier_field.as_str(), self.config.lock_field.as_str()];
        v.extend(WRITTEN_FIELDS);
        v
    }

    /// The Account SOQL of a pull: the fields the org has, oldest change first.
    async fn account_query(&self, since: Option<Watermark>) -> Result<String, ConnectorError> {
        let have = self.account_fields().await?;
        let mut fields: Vec<&str> = vec!["Id", "Name", "Website", "SystemModstamp"];
        for m in &self.config.mapping {
            if have.contains(&m.field) {
                fields.push(&m.field);
            } else {
                tracing::warn!(field = %m.field, fact = %m.fact, "Salesforce Account has no such field; fact not read");
            }
        }
        for f in [&self.config.tier_field, &self.config.lock_field] {
            if have.contains(f.as_str()) {
                fields.push(f);
            }
        }
        let mut seen = HashSet::new();
        fields.retain(|f| seen.insert(*f));
        let mut soql = format!("SELECT {} FROM Account", fields.join(", "));
        if let Some(since) = since {
            // Whole seconds: a record changed within the watermark's second is read again, never missed.
            let secs = Watermark(since.millis().div_euclid(1000) * 1000);
            let literal = secs.to_string().replace(".000Z", "Z");
            soql.push_str(&format!(" WHERE SystemModstamp > {literal}"));
        }
        soql.push_str(" ORDER BY SystemModstamp, Id");
        Ok(soql)
    }

    /// Turns one query page into accounts, adding Contract facts.
    async fn read_page(
        &self,
        records: Vec<serde_json::Map<String, Json>>,
    ) -> Result<AccountPage, ConnectorError> {
        let mut page = AccountPage::default();
        for r in &records {
            let Some(sf_id) = r.get("Id").and_then(Json::as_str) else {
                continue;
            };
            let id = format!("{ID_PREFIX}{sf_id}");
            let texts: HashMap<&str, std::borrow::Cow<'_, str>> = r
                .iter()
                .filter_map(|(k, v)| text_of(v).map(|t| (k.as_str(), t)))
                .collect();
            let field = |name: &str| texts.get(name).map(|t| t.as_ref());
            let updated_at = field("SystemModstamp").and_then(Watermark::parse);
            if let Some(u) = updated_at {
                page.watermark = Some(page.watermark.map_or(u, |w| w.max(u)));
            }
            let tier_field = &self.config.tier_field;
            let read = mapping::read_facts(&self.config.mapping, &id, NAME, field)
                .and_then(|facts| Ok((facts, mapping::read_tier(&id, tier_field, field(tier_field))?)));
            match read {
                Ok((facts, crm_tier)) => page.accounts.push(CrmAccount {
                    name: field("Name").map(str::to_string),
                    domain: field("Website").map(domain_of),
                    facts,
                    crm_tier,
                    locked: field(&self.config.lock_field).is_some_and(|v| v.eq_ignore_ascii_case("true")),
                    updated_at,
                    id,
                }),
                Err(q) => page.quarantined.push(q),
            }
        }
        if self.config.read_contracts && !page.accounts.is_empty() {
            self.add_contract_facts(&mut page).await?;
        }
        Ok(page)
    }

    /// The latest activated Contract of each account: vendor, renewal (end) date, competitor.
    async fn add_contract_facts(&self, page: &mut AccountPage) -> Result<(), ConnectorError> {
        let ids: Vec<&str> = page
            .accounts
            .iter()
            .filter_map(|a| a.id.strip_prefix(ID_PREFIX))
            .collect();
        let mut latest: HashMap<String, (String, String)> = HashMap::new();
        for chunk in ids.chunks(IDS_PER_QUERY) {
            let list: Vec<String> = chunk.iter().map(|id| quote(id)).collect();
            let soql = format!(
                "SELECT AccountId, Vendor__c, EndDate FROM Contract WHERE Status = 'Activated' AND AccountId IN ({}) \
                 ORDER BY AccountId, EndDate",
                list.join(",")
            );
            for c in self.query_all("read contracts", &soql).await? {
                let account = c.get("AccountId").and_then(Json::as_str).unwrap_or_default();
                let vendor = c.get("Vendor__c").and_then(Json::as_str).unwrap_or_default();
                let end = c.get("EndDate").and_then(Json::as_str).unwrap_or_default();
                if account.is_empty() || vendor.is_empty() {
                    continue;
                }
                // Ordered by end date: the last one seen is the latest.
                latest.insert(account.to_string(), (vendor.to_string(), end.to_string()));
            }
        }
        let competitors: HashSet<String> = self.config.competitors.iter().map(|c| c.to_lowercase()).collect();
        let name = |n: &str| FactName::new(n).unwrap_or_else(|e| panic!("constant fact name: {e}"));
        let fact = |value| Fact {
            value,
            source: NAME.to_string(),
            observed_at: None,
        };
        let mut kept = Vec::with_capacity(page.accounts.len());
        for mut a in page.accounts.drain(..) {
            let sf_id = a.id.strip_prefix(ID_PREFIX).unwrap_or_default();
            if let Some((vendor, end)) = latest.get(sf_id) {
                if !end.is_empty() {
                    match end.parse::<tierd_core::Date>() {
                        Ok(d) => {
                            a.facts
                                .insert(name("contracts.renewal_date"), fact(FactValue::Date(d)));
                        }
                        Err(e) => {
                            page.quarantined.push(crate::connector::Quarantined {
                                id: a.id.clone(),
                                field: Some("Contract.EndDate".into()),
                                reason: e.to_string(),
                            });
                            continue;
                        }
                    }
                }
                let competitor = competitors.contains(&vendor.to_lowercase());
                a.facts.insert(
                    name("contracts.current_vendor"),
                    fact(FactValue::String(vendor.clone())),
                );
                a.facts
                    .insert(name("contracts.is_competitor"), fact(FactValue::Bool(competitor)));
            }
            kept.push(a);
        }
        page.accounts = kept;
        Ok(())
    }

    async fn describe_report(&self) -> Result<SchemaReport, ConnectorError> {
        let have = self.account_fields().await?;
        let mut report = SchemaReport::default();
        for f in self.tierd_fields() {
            if have.contains(f) {
                report.existing.push(f.to_string());
            } else {
                report.missing.push(f.to_string());
            }
        }
        Ok(report)
    }

    fn record_of(&self, sf_id: &str, u: &TierUpdate) -> Json {
        let reason: String = u.reason.chars().take(self.config.reason_max_chars).collect();
        let mut r = serde_json::Map::new();
        r.insert("attributes".into(), json!({"type": "Account"}));
        r.insert("id".into(), json!(sf_id));
        r.insert(self.config.tier_field.clone(), json!(u.tier.as_str()));
        r.insert(
            "Tier_Score__c".into(),
            json!((f64::from(u.score) * 1000.0).round() / 1000.0),
        );
        r.insert("Tier_Scored_At__c".into(), json!(u.scored_at.to_string()));
        r.insert("Tier_Model__c".into(), json!(u.model));
        r.insert("Tier_Reason__c".into(), json!(reason));
        Json::Object(r)
    }

    /// Whether the API calls left today are within the reserve.
    fn within_reserve(&self) -> Option<String> {
        let s = self.http.stats();
        if s.api_max == 0 {
            return None;
        }
        let reserve = (s.api_max as f64 * self.config.api_reserve_share).ceil() as u64;
        let left = s.api_max.saturating_sub(s.api_used);
        (left <= reserve).then(|| {
            format!(
                "Salesforce API usage is {}/{}; keeping the last {reserve} calls in reserve",
                s.api_used, s.api_max
            )
        })
    }

    /// Sends one composite update; returns indexes to retry, or why pushing must stop.
    async fn push_batch(
        &self,
        updates: &[TierUpdate],
        batch: &[usize],
        outcomes: &mut [Option<PushOutcome>],
    ) -> Result<Vec<usize>, Stop> {
        let mut sent = Vec::with_capacity(batch.len());
        let mut records = Vec::with_capacity(batch.len());
        let mut seen = HashSet::new();
        for &i in batch {
            match updates[i].id.strip_prefix(ID_PREFIX) {
                Some(id) if !id.is_empty() && seen.insert(id) => {
                    records.push(self.record_of(id, &updates[i]));
                    sent.push(i);
                }
                _ => {
                    outcomes[i] = Some(PushOutcome::Rejected {
                        reason: format!(
                            "'{}' is not a Salesforce account id (salesforce:<Id>) or repeats one",
                            updates[i].id
                        ),
                        permanent: true,
                    })
                }
            }
        }
        if records.is_empty() {
            return Ok(Vec::new());
        }
        let body = json!({"allOrNone": false, "records": records});
        let what = format!("update {} accounts", records.len());
        let reply = self
            .call(&what, &self.data_path("/composite/sobjects"), |c, url| {
                c.patch(url).json(&body)
            })
            .await
            .map_err(|e| match e {
                ConnectorError::Http(h) => Stop::Transient(h.to_string()),
                other => Stop::Fatal(other),
            })?;
        let status = reply.status.as_u16();
        if !reply.status.is_success() {
            let e = first_error(&reply);
            return match (status, e.code()) {
                (403, "REQUEST_LIMIT_EXCEEDED") => Err(Stop::Transient(format!(
                    "Salesforce's daily API limit is reached ({})",
                    e.message
                ))),
                (401, _) => Err(Stop::Fatal(Self::fail(&what, &reply))),
                _ => {
                    for &i in &sent {
                        outcomes[i] = Some(PushOutcome::Rejected {
                            reason: format!("{}: {}", e.code(), e.message),
                            permanent: status < 500,
                        });
                    }
                    Ok(Vec::new())
                }
            };
        }
        #[derive(Deserialize)]
        struct Result_ {
            #[serde(default)]
            success: bool,
            #[serde(default)]
            errors: Vec<SfError>,
        }
        let results: Vec<Result_> = reply.json(&what).map_err(|e| Stop::Transient(e.to_string()))?;
        let mut retry = Vec::new();
        for (n, &i) in sent.iter().enumerate() {
            match results.get(n) {
                Some(r) if r.success => outcomes[i] = Some(PushOutcome::Written),
                Some(r) => {
                    let code = r.errors.first().map_or("UNKNOWN", SfError::code);
                    let retryable = matches!(code, "UNABLE_TO_LOCK_ROW" | "REQUEST_RUNNING_TOO_LONG");
                    let reason = r
                        .errors
                        .iter()
                        .map(|e| format!("{}: {}", e.code(), e.message))
                        .collect::<Vec<_>>()
                        .join("; ");
                    outcomes[i] = Some(PushOutcome::Rejected {
                        reason,
                        permanent: !retryable,
                    });
                    if retryable {
                        retry.push(i);
                    }
                }
                None => {
                    outcomes[i] = Some(PushOutcome::Rejected {
                        reason: "Salesforce returned no result for this record".into(),
                        permanent: false,
                    });
                    retry.push(i);
                }
            }
        }
        Ok(retry)
    }

    async fn push_all(&self, updates: &[TierUpdate]) -> Result<Vec<PushOutcome>, ConnectorError> {
        if updates.is_empty() {
            return Ok(Vec::new());
        }
        let report = self.describe_report().await?;
        if !report.is_complete() {
            return Err(ConnectorError::SchemaMissing {
                connector: NAME,
                fields: report.missing,
            });
        }
        let mut outcomes: Vec<Option<PushOutcome>> = vec![None; updates.len()];
        let mut pending: Vec<usize> = (0..updates.len()).collect();
        let mut stopped: Option<String> = None;
        'rounds: for round in 0..=self.config.record_retries {
            if pending.is_empty() {
                break;
            }
            if round > 0 {
                tokio::time::sleep(self.http.backoff(round)).await;
            }
            let mut retry = Vec::new();
            for batch in pending.chunks(self.config.batch_size) {
                if let Some(reason) = self.within_reserve() {
                    stopped = Some(reason);
                    break 'rounds;
                }
                match self.push_batch(updates, batch, &mut outcomes).await {
                    Ok(r) => retry.extend(r),
                    Err(Stop::Fatal(e)) => return Err(e),
                    Err(Stop::Transient(reason)) => {
                        stopped = Some(reason);
                        break 'rounds;
                    }
                }
            }
            pending = retry;
        }
        Ok(outcomes
            .into_iter()
            .map(|o| match (o, &stopped) {
                (Some(PushOutcome::Rejected { permanent: false, .. }) | None, Some(reason)) => {
                    PushOutcome::Deferred {
                        reason: reason.clone(),
                    }
                }
                (Some(o), _) => o,
                (None, None) => PushOutcome::Deferred {
                    reason: "not sent".into(),
                },
            })
            .collect())
    }

    /// Each opportunity's stage changes from `OpportunityHistory` (one row per change of stage,
    /// amount, probability or close date; `CreatedDate` is when it happened), as the dates its
    /// stages were entered.
    async fn stage_history(&self, deals: &mut [Deal]) -> Result<(), ConnectorError> {
        let mut entries: HashMap<String, Vec<(String, Watermark)>> = HashMap::new();
        let ids: Vec<String> = deals.iter().map(|d| d.id.clone()).collect();
        for chunk in ids.chunks(IDS_PER_QUERY) {
            let list: Vec<String> = chunk.iter().map(|id| quote(id)).collect();
            let soql = format!(
                "SELECT OpportunityId, StageName, CreatedDate FROM OpportunityHistory \
                 WHERE OpportunityId IN ({}) ORDER BY OpportunityId, CreatedDate",
                list.join(",")
            );
            for h in self.query_all("read opportunity history", &soql).await? {
                let s = |k: &str| h.get(k).and_then(Json::as_str);
                let (Some(opp), Some(stage), Some(at)) = (
                    s("OpportunityId"),
                    s("StageName"),
                    s("CreatedDate").and_then(Watermark::parse),
                ) else {
                    continue;
                };
                let list = entries.entry(opp.to_string()).or_default();
                // A row per change of any tracked field: keep only changes of stage.
                if list.last().is_none_or(|(last, _)| last != stage) {
                    list.push((stage.to_string(), at));
                }
            }
        }
        for d in deals {
            if let Some(e) = entries.get(&d.id) {
                d.stage_entries = e.clone();
            }
        }
        Ok(())
    }

    async fn opportunities(&self, account_ids: &[String]) -> Result<Vec<Deal>, ConnectorError> {
        let ids: Vec<&str> = account_ids
            .iter()
            .filter_map(|i| i.strip_prefix(ID_PREFIX))
            .collect();
        let mut deals = Vec::new();
        for chunk in ids.chunks(IDS_PER_QUERY) {
            let list: Vec<String> = chunk.iter().map(|id| quote(id)).collect();
            let soql = format!(
                "SELECT Id, AccountId, Amount, StageName, CloseDate, IsWon, IsClosed, CreatedDate FROM Opportunity \
                 WHERE AccountId IN ({}) ORDER BY AccountId, CreatedDate",
                list.join(",")
            );
            let wanted: HashSet<&str> = chunk.iter().copied().collect();
            for o in self.query_all("read opportunities", &soql).await? {
                let s = |k: &str| o.get(k).and_then(Json::as_str);
                // SOQL compares text without case; Ids are case-sensitive, so check exactly.
                if !s("AccountId").is_some_and(|a| wanted.contains(a)) {
                    continue;
                }
                deals.push(Deal {
                    account_id: format!("{ID_PREFIX}{}", s("AccountId").unwrap_or_default()),
                    id: s("Id").unwrap_or_default().to_string(),
                    amount: o.get("Amount").and_then(Json::as_f64),
                    stage: s("StageName").map(str::to_string),
                    won: o.get("IsWon").and_then(Json::as_bool),
                    closed: o.get("IsClosed").and_then(Json::as_bool),
                    close_date: s("CloseDate").and_then(|d| d.parse().ok()),
                    created: s("CreatedDate").and_then(Watermark::parse),
                    pipeline: None,
                    currency: None,
                    stage_entries: Vec::new(),
                });
            }
        }
        self.stage_history(&mut deals).await?;
        Ok(deals)
    }

    /// Contacts of the given Accounts, by chunks of Account Ids.
    async fn contacts(&self, account_ids: &[String]) -> Result<Contacts, ConnectorError> {
        let ids: Vec<&str> = account_ids
            .iter()
            .filter_map(|i| i.strip_prefix(ID_PREFIX))
            .collect();
        let mut found = Contacts::default();
        for chunk in ids.chunks(IDS_PER_QUERY) {
            let list: Vec<String> = chunk.iter().map(|id| quote(id)).collect();
            let soql = format!(
                "SELECT Id, AccountId, Email, Phone, MobilePhone, FirstName, LastName, MailingCountry, \
                 MailingPostalCode FROM Contact WHERE AccountId IN ({}) ORDER BY AccountId, Id",
                list.join(",")
            );
            let wanted: HashSet<&str> = chunk.iter().copied().collect();
            for r in self
                .query_all_as("read contacts", &soql, Reply::json_personal)
                .await?
            {
                let text = |k: &str| {
                    r.get(k)
                        .and_then(Json::as_str)
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(str::to_string)
                };
                // SOQL compares text without case; Ids are case-sensitive, so check exactly.
                let Some(account) = text("AccountId").filter(|a| wanted.contains(a.as_str())) else {
                    continue;
                };
                found.contacts.push(CrmContact {
                    id: format!("{ID_PREFIX}{}", text("Id").unwrap_or_default()),
                    account_id: format!("{ID_PREFIX}{account}"),
                    email: text("Email"),
                    phone: text("Phone").or_else(|| text("MobilePhone")),
                    first_name: text("FirstName"),
                    last_name: text("LastName"),
                    country: text("MailingCountry"),
                    zip: text("MailingPostalCode"),
                });
            }
        }
        found.sort();
        Ok(found)
    }
}

/// The company's domain, `acme.com`, from a website such as `https://www.acme.com/about`.
fn domain_of(website: &str) -> String {
    let w = website.trim();
    let w = w.split_once("://").map_or(w, |(_, rest)| rest);
    let host = w.split(['/', '?', '#']).next().unwrap_or(w).to_ascii_lowercase();
    match host.strip_prefix("www.") {
        Some(bare) if bare.contains('.') => bare.to_string(),
        _ => host,
    }
}

/// Why a push stopped before the end.
enum Stop {
    /// Nothing more can be written this run; the rest is deferred.
    Transient(String),
    /// The push cannot work at all.
    Fatal(ConnectorError),
}

impl Connector for SalesforceConnector {
    fn kind(&self) -> &'static str {
        NAME
    }

    fn pull(&self, since: Option<Watermark>) -> PageStream<'_> {
        enum Step {
            Start,
            Next(String),
            Done,
        }
        Box::pin(stream::unfold(
            Some((Step::Start, since)),
            move |state| async move {
                let (step, mut mark) = state?;
                let what = "query accounts";
                let page = match step {
                    Step::Done => return None,
                    Step::Start => match self.account_query(since).await {
                        Ok(soql) => self.query_page(what, &self.query_path(&soql)).await,
                        Err(e) => Err(e),
                    },
                    Step::Next(path) => self.query_page(what, &path).await,
                };
                let page = match page {
                    Ok(p) => p,
                    Err(e) => return Some((Err(e), None)),
                };
                let next = match page.next_records_url {
                    Some(url) if !page.done => Step::Next(url),
                    _ => Step::Done,
                };
                match self.read_page(page.records).await {
                    Ok(mut accounts) => {
                        mark = mark.max(accounts.watermark);
                        accounts.watermark = mark;
                        Some((Ok(accounts), Some((next, mark))))
                    }
                    Err(e) => Some((Err(e), None)),
                }
            },
        ))
    }

    fn push<'a>(
        &'a self,
        updates: &'a [TierUpdate],
    ) -> BoxFuture<'a, Result<Vec<PushOutcome>, ConnectorError>> {
        Box::pin(self.push_all(updates))
    }

    fn ensure_schema(&self) -> BoxFuture<'_, Result<SchemaReport, ConnectorError>> {
        Box::pin(async move {
            // A fresh look: an admin may have added fields since the last describe.
            *self.fields.lock().await = None;
            self.describe_report().await
        })
    }

    fn deals_for<'a>(
        &'a self,
        account_ids: &'a [String],
    ) -> BoxFuture<'a, Result<Vec<Deal>, ConnectorError>> {
        Box::pin(self.opportunities(account_ids))
    }

    fn http_stats(&self) -> HttpStats {
        self.http.stats()
    }

    fn lists(&self) -> Option<&dyn crate::connector::CrmLists> {
        Some(self)
    }

    fn contacts_for<'a>(
        &'a self,
        account_ids: &'a [String],
    ) -> BoxFuture<'a, Result<Contacts, ConnectorError>> {
        Box::pin(self.contacts(account_ids))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_is_validated_with_the_key_named() {
        let err = SalesforceConfig::default().build().err().expect("no credentials");
        assert!(
            err.to_string().starts_with("connector.client_id: is empty"),
            "{err}"
        );
        let cfg = SalesforceConfig {
            client_id: "id".into(),
            client_secret: Secret::new("s"),
            api_version: "61".into(),
            ..SalesforceConfig::default()
        };
        let err = cfg.build().err().expect("bad version");
        assert!(
            err.to_string().starts_with("connector.api_version: '61'"),
            "{err}"
        );
    }

    #[test]
    fn soql_literals_are_quoted_and_domains_trimmed() {
        assert_eq!(quote("O'Brien"), r"'O\'Brien'");
        assert_eq!(domain_of("https://www.Acme.com/about"), "acme.com");
        assert_eq!(domain_of("acme.io"), "acme.io");
    }

    #[test]
    fn the_secret_does_not_show_in_debug_output() {
        let cfg = SalesforceConfig {
            client_secret: Secret::new("s3cr3t"),
            ..SalesforceConfig::default()
        };
        assert!(!format!("{cfg:?}").contains("s3cr3t"));
    }
}
