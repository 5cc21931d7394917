//! The JSON messages exchanged with a plugin. The same JSON flows across the C ABI (in-process
//! and isolated modes) and over the stdio protocol (exec mode, see `docs/plugin-protocol.md`).
//!
//! Every optional field has a serde default, so a plugin built against an older minor version
//! (which omits newer fields) still parses.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// What a plugin declares about itself (`describe`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Description {
    /// The plugin's name, e.g. `firmographic`; facts should live under `name.*`.
    pub name: String,
    /// The plugin's version; part of the cache key, so bump it when results change.
    pub version: String,
    /// Every fact the plugin may return, with its type. Anything else is dropped by the host.
    #[serde(default)]
    pub facts: Vec<FactSpec>,
    /// Signal kinds the plugin may emit, e.g. `technology_adopted`.
    #[serde(default)]
    pub signals: Vec<String>,
    /// Hosts the plugin may call through the HTTP capability: names, `"*"` for any, or
    /// `"{account.domain}"` for the domains of the accounts in the current batch.
    #[serde(default)]
    pub hosts: Vec<String>,
    /// Preferred accounts per `enrich` call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch_size: Option<u32>,
    /// HTTP requests per minute the plugin's source allows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit_per_minute: Option<u32>,
    /// The plugin's config keys, for `tierd plugins list` and for validating config.
    #[serde(default)]
    pub config: Vec<ConfigField>,
}

/// One fact a plugin produces.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FactSpec {
    /// Full fact name, `namespace.fact`.
    pub name: String,
    /// The JSON shape of its values.
    #[serde(rename = "type")]
    pub fact_type: FactType,
}

impl FactSpec {
    /// A fact named `name` of type `fact_type`.
    pub fn new(name: impl Into<String>, fact_type: FactType) -> Self {
        Self {
            name: name.into(),
            fact_type,
        }
    }
}

/// The type of a fact's values, mirroring tierd-core's fact types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FactType {
    /// A JSON number.
    Number,
    /// A JSON string.
    String,
    /// A JSON boolean.
    Bool,
    /// A `YYYY-MM-DD` string.
    Date,
    /// An array of strings.
    StringList,
    /// An array of `YYYY-MM-DD` strings.
    DateList,
}

impl FactType {
    /// Whether `value` has this type. `null` is never accepted: omit a fact you do not know.
    pub fn accepts(self, value: &Value) -> bool {
        match self {
            FactType::Number => value.as_f64().is_some_and(f64::is_finite),
            FactType::String => value.is_string(),
            FactType::Bool => value.is_boolean(),
            FactType::Date => value.as_str().is_some_and(is_iso_date),
            FactType::StringList => value
                .as_array()
                .is_some_and(|items| items.iter().all(Value::is_string)),
            FactType::DateList => value
                .as_array()
                .is_some_and(|items| items.iter().all(|v| v.as_str().is_some_and(is_iso_date))),
        }
    }

    /// The name used in JSON (`number`, `string_list`...).
    pub fn as_str(self) -> &'static str {
        match self {
            FactType::Number => "number",
            FactType::String => "string",
            FactType::Bool => "bool",
            FactType::Date => "date",
            FactType::StringList => "string_list",
            FactType::DateList => "date_list",
        }
    }
}

impl fmt::Display for FactType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `YYYY-MM-DD` with a plausible month and day.
fn is_iso_date(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return false;
    }
    let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
    if !(digits(0..4) && digits(5..7) && digits(8..10)) {
        return false;
    }
    let month = (b[5] - b'0') * 10 + (b[6] - b'0');
    let day = (b[8] - b'0') * 10 + (b[9] - b'0');
    (1..=12).contains(&month) && (1..=31).contains(&day)
}

/// One config key a plugin understands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigField {
    /// Key under `[plugins.<name>.config]`.
    pub name: String,
    /// A secret (API key): the host never logs it; it may come from `api_key_env`.
    #[serde(default)]
    pub secret: bool,
    /// `init` fails without it.
    #[serde(default)]
    pub required: bool,
    /// One line for people.
    #[serde(default)]
    pub description: String,
}

/// A batch of accounts to enrich.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EnrichRequest {
    /// The run's date, `YYYY-MM-DD`; plugins date their signals and compute day counts with it.
    pub as_of: String,
    /// The accounts, in no particular order.
    pub accounts: Vec<AccountInput>,
}

/// One account in an [`EnrichRequest`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AccountInput {
    /// The cache key the host chose (the domain, or the id when there is none); echo it in the result.
    pub key: String,
    /// CRM id, e.g. `hubspot:123`.
    pub id: String,
    /// Company name.
    #[serde(default)]
    pub name: String,
    /// Company web domain, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    /// Facts known so far (CRM properties and earlier plugins), by full name.
    #[serde(default)]
    pub facts: Map<String, Value>,
    /// Related CRM records by kind, e.g. `contracts`.
    #[serde(default)]
    pub related: Map<String, Value>,
    /// What this plugin returned as `state` for this account last time (`null` the first time).
    #[serde(default)]
    pub state: Value,
}

/// The answer to an [`EnrichRequest`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EnrichResponse {
    /// One result per account, matched by `key`. An account without a result is treated as failed.
    pub results: Vec<AccountResult>,
}

/// What a plugin found about one account.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AccountResult {
    /// The account's `key` from the request.
    pub key: String,
    /// Facts by full name; each must be declared in `describe` with a matching type.
    #[serde(default)]
    pub facts: Map<String, Value>,
    /// Dated events found for this account.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub signals: Vec<Signal>,
    /// Anything the plugin wants back next time for this account (kept by the host with the cache).
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub state: Value,
    /// Set when this account failed: its previous facts are kept and marked stale.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The source knows nothing about this account (not an error).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub no_match: bool,
}

impl AccountResult {
    /// An empty successful result for `key`.
    pub fn new(key: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            ..Self::default()
        }
    }

    /// A failed result for `key`.
    pub fn failed(key: impl Into<String>, error: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            error: Some(error.into()),
            ..Self::default()
        }
    }

    /// A "source knows nothing" result for `key`.
    pub fn no_match(key: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            no_match: true,
            ..Self::default()
        }
    }
}

/// A dated event, e.g. `{"kind": "technology_adopted", "subject": "Snowflake", "date": "2026-11-24"}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Signal {
    /// Kind, declared in `describe().signals`.
    pub kind: String,
    /// What it is about (a technology, a vendor...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// When it happened, `YYYY-MM-DD`.
    pub date: String,
    /// Extra detail, e.g. `{"days": 90}` for `renewal_within`.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub detail: Map<String, Value>,
}

/// A batch of HTTP requests for the host's HTTP capability.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HttpBatch {
    /// Run concurrently; answered in the same order.
    pub requests: Vec<HttpRequest>,
}

/// The answers to an [`HttpBatch`], in request order.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HttpResults {
    /// One per request.
    pub responses: Vec<HttpResponse>,
}

/// One HTTP request. Its Debug output never shows header values (they carry API keys).
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct HttpRequest {
    /// `GET`, `POST`...
    #[serde(default = "default_method")]
    pub method: String,
    /// Absolute URL; its host must be allowed for the plugin.
    pub url: String,
    /// Request headers.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Request body (UTF-8).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// Per-request timeout; the host caps it with its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
}

fn default_method() -> String {
    "GET".to_owned()
}

impl HttpRequest {
    /// A GET of `url`.
    pub fn get(url: impl Into<String>) -> Self {
        Self {
            method: default_method(),
            url: url.into(),
            headers: BTreeMap::new(),
            body: None,
            timeout_ms: None,
        }
    }

    /// Adds a header.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.insert(name.into(), value.into());
        self
    }
}

impl fmt::Debug for HttpRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let headers: Vec<_> = self.headers.keys().map(|k| format!("{k}: ***")).collect();
        f.debug_struct("HttpRequest")
            .field("method", &self.method)
            .field("url", &self.url)
            .field("headers", &headers)
            .field("body_len", &self.body.as_ref().map(String::len))
            .field("timeout_ms", &self.timeout_ms)
            .finish()
    }
}

/// One HTTP response. `status` 0 with `error` set means no response: refused by the allowlist,
/// timed out, or the connection failed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HttpResponse {
    /// HTTP status, or 0 when there was no response.
    pub status: u16,
    /// Response headers, names lower-cased; a header sent more than once (`set-cookie`) has its
    /// values joined by newlines.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Response body (lossy UTF-8).
    #[serde(default)]
    pub body: String,
    /// Why there is no response.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Over HTTPS, the issuer of the server's certificate as an RFC 4514 name
    /// (`C=US, O=Let's Encrypt, CN=R3`); absent over plain HTTP and from older hosts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_issuer: Option<String>,
}

impl HttpResponse {
    /// A "no response" answer.
    pub fn failed(error: impl Into<String>) -> Self {
        Self {
            error: Some(error.into()),
            ..Self::default()
        }
    }

    /// A header by lower-case name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }
}

/// A batch of DNS queries for the host's DNS capability (ABI 1.1).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DnsBatch {
    /// Resolved concurrently; answered in the same order.
    pub queries: Vec<DnsQuery>,
}

/// The answers to a [`DnsBatch`], in query order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DnsResults {
    /// One per query.
    pub answers: Vec<DnsAnswer>,
}

/// The record types the DNS capability resolves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum DnsKind {
    /// Text records (verification tokens, SPF).
    #[serde(rename = "TXT")]
    Txt,
    /// Mail exchangers.
    #[serde(rename = "MX")]
    Mx,
}

/// One DNS question: the records of `kind` at `name`. The host allows the domains of the
/// accounts in the current batch (a leading `www.` dropped) and their subdomains, plus the names
/// configured for the plugin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DnsQuery {
    /// A host name, e.g. `acme.com`.
    pub name: String,
    /// `TXT` or `MX`.
    #[serde(rename = "type")]
    pub kind: DnsKind,
}

impl DnsQuery {
    /// The TXT records of `name`.
    pub fn txt(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            kind: DnsKind::Txt,
        }
    }

    /// The MX records of `name`.
    pub fn mx(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            kind: DnsKind::Mx,
        }
    }
}

/// One resource record of an answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum DnsRecord {
    /// A TXT record: its character-strings in order (lossy UTF-8). A long record is split into
    /// several strings of at most 255 bytes; SPF joins them with nothing, Wappalyzer with a space.
    #[serde(rename = "TXT")]
    Txt {
        /// The character-strings.
        strings: Vec<String>,
    },
    /// An MX record.
    #[serde(rename = "MX")]
    Mx {
        /// Lower is preferred.
        preference: u16,
        /// The mail server's host name, without the trailing dot.
        exchange: String,
    },
}

/// The answer to one [`DnsQuery`]. A name without records of that type (or that does not exist)
/// is an answer with no records and no error; `error` means no answer: refused by the allowlist
/// or the rate limit, timed out, or the server failed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DnsAnswer {
    /// The records found, in the order the server gave them.
    #[serde(default)]
    pub records: Vec<DnsRecord>,
    /// Why there is no answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl DnsAnswer {
    /// A "no answer" answer.
    pub fn failed(error: impl Into<String>) -> Self {
        Self {
            records: Vec::new(),
            error: Some(error.into()),
        }
    }
}

/// The body of every error return: `{"error": "..."}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorReply {
    /// What went wrong, for people.
    pub error: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fact_types_accept_only_their_shape() {
        assert!(FactType::Number.accepts(&json!(12.5)));
        assert!(!FactType::Number.accepts(&json!("12")));
        assert!(FactType::Date.accepts(&json!("2026-11-24")));
        assert!(!FactType::Date.accepts(&json!("2026-13-01")));
        assert!(!FactType::Date.accepts(&json!("24/11/2026")));
        assert!(FactType::StringList.accepts(&json!(["a", "b"])));
        assert!(!FactType::StringList.accepts(&json!(["a", 1])));
        assert!(FactType::DateList.accepts(&json!(["2026-01-01"])));
        assert!(!FactType::Bool.accepts(&Value::Null));
    }

    #[test]
    fn description_parses_the_contract_example() {
        let d: Description = serde_json::from_value(json!({"name": "firmographic", "version": "0.1.0",
            "facts": [{"name": "firmographic.employee_count", "type": "number"}],
            "signals": ["technology_adopted"], "hosts": ["api.peopledatalabs.com"], "batch_size": 100,
            "rate_limit_per_minute": 100,
            "config": [{"name": "api_key", "secret": true, "required": false, "description": "..."}]}))
        .unwrap();
        assert_eq!(d.facts[0].fact_type, FactType::Number);
        assert_eq!(d.batch_size, Some(100));
        assert!(d.config[0].secret);
    }

    #[test]
    fn account_result_omits_empty_fields() {
        let r = AccountResult::no_match("acme.com");
        assert_eq!(
            serde_json::to_value(&r).unwrap(),
            json!({"key": "acme.com", "facts": {}, "no_match": true})
        );
    }

    #[test]
    fn dns_messages_use_the_documented_json() {
        let batch = DnsBatch {
            queries: vec![DnsQuery::txt("acme.com"), DnsQuery::mx("acme.com")],
        };
        assert_eq!(
            serde_json::to_value(&batch).unwrap(),
            json!({"queries": [{"name": "acme.com", "type": "TXT"}, {"name": "acme.com", "type": "MX"}]})
        );
        let results: DnsResults = serde_json::from_value(json!({"answers": [
            {"records": [{"type": "TXT", "strings": ["v=spf1 ", "-all"]},
                         {"type": "MX", "preference": 10, "exchange": "mx.acme.com"}]},
            {"error": "refused"}]}))
        .unwrap();
        assert_eq!(
            results.answers[0].records[1],
            DnsRecord::Mx {
                preference: 10,
                exchange: "mx.acme.com".into()
            }
        );
        assert_eq!(results.answers[1], DnsAnswer::failed("refused"));
    }

    #[test]
    fn http_request_debug_hides_header_values() {
        let r = HttpRequest::get("https://x.test/").header("X-Api-Key", "sekrit");
        let shown = format!("{r:?}");
        assert!(!shown.contains("sekrit"), "{shown}");
        assert!(shown.contains("X-Api-Key: ***"));
    }
}
