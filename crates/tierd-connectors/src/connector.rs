//! The one shape every connector has: pull accounts since a watermark as a stream of
//! pages (each carrying how far the pull got), push tier updates with an outcome per
//! record, and make sure the CRM has tierd's fields.
//!
//! The trait is object-safe (boxed futures and streams) so the daemon holds a
//! `Box<dyn Connector>` built by [`crate::registry`] from config, whatever the CRM.
//! Nothing here knows any CRM's wire format.

use std::fmt;
use std::future::Future;
use std::pin::Pin;

use futures_util::Stream;
use tierd_core::fact::Facts;
use tierd_core::tier::Tier;

use crate::files::FileError;
use crate::http::{HttpError, HttpStats};

/// A boxed future, so the trait stays object-safe.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Pages of accounts, in the order the CRM gives them.
pub type PageStream<'a> = Pin<Box<dyn Stream<Item = Result<AccountPage, ConnectorError>> + Send + 'a>>;

/// A CRM (or file) that accounts come from and tiers go to.
pub trait Connector: Send + Sync {
    /// The registry name (`hubspot`, `salesforce`, `file`).
    fn kind(&self) -> &'static str;

    /// Accounts changed since `since` (all of them when `None`), page by page. A malformed
    /// record is quarantined in its page and the rest of the page goes on.
    ///
    /// Each page carries the watermark reached so far ([`AccountPage::watermark`], never
    /// below `since`): the last page's is where the next incremental pull starts, once the
    /// run that consumed the whole stream has succeeded. A pull that yields no page found
    /// nothing new, and the watermark stays at `since`. The connector keeps no state
    /// between pulls: the caller stores the watermark.
    fn pull(&self, since: Option<Watermark>) -> PageStream<'_>;

    /// Writes `updates`, one outcome per update, in the same order. Errors that stop
    /// the whole push (bad credentials) are `Err`; a record the CRM refuses is an outcome.
    fn push<'a>(
        &'a self,
        updates: &'a [TierUpdate],
    ) -> BoxFuture<'a, Result<Vec<PushOutcome>, ConnectorError>>;

    /// Creates tierd's fields where the connector can, and reports what exists and what is missing.
    fn ensure_schema(&self) -> BoxFuture<'_, Result<SchemaReport, ConnectorError>>;

    /// Deals (opportunities) of these accounts, for funnel reports, each with its pipeline,
    /// currency and the dates its stages were entered where the CRM keeps them. A deal of several
    /// accounts is returned once per account asked for; one without an account (a deals file's)
    /// may be returned with every call. The file connector reads its `deals` file
    /// ([`crate::deals_file`]).
    fn deals_for<'a>(&'a self, account_ids: &'a [String])
        -> BoxFuture<'a, Result<Vec<Deal>, ConnectorError>>;

    /// HTTP counters (requests, retries, 429s, waits, API usage); zero for files.
    fn http_stats(&self) -> HttpStats {
        HttpStats::default()
    }

    /// The CRM's lists kept in step with tiers ([`crate::lists`]); `None` for a connector
    /// without lists (account files).
    fn lists(&self) -> Option<&dyn CrmLists> {
        None
    }

    // --- Contacts (people formats of audience exports) ---

    /// The people of these accounts (HubSpot contacts associated with the companies,
    /// Salesforce Contacts of the Accounts, the rows of a contacts file), for the audience
    /// exports that match people. What cannot be read is in [`Contacts::unreadable`], named by
    /// contact id or file line, never by its values. The caller holds them in memory only.
    fn contacts_for<'a>(
        &'a self,
        account_ids: &'a [String],
    ) -> BoxFuture<'a, Result<Contacts, ConnectorError>>;
}

/// A person at an account, as the CRM holds them: raw personal data, to be normalised and
/// hashed by the export and never stored, logged or put in an error. `Debug` shows ids only.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct CrmContact {
    /// The contact's own id in the CRM (`hubspot:501`, `salesforce:003...`, `file line 4`).
    pub id: String,
    /// The connector's account id it belongs to.
    pub account_id: String,
    /// Email address.
    pub email: Option<String>,
    /// Phone number as the CRM holds it (the mobile number when there is no other).
    pub phone: Option<String>,
    /// First name.
    pub first_name: Option<String>,
    /// Last name.
    pub last_name: Option<String>,
    /// Country as the CRM holds it (an ISO 3166-1 alpha-2 code where the CRM keeps one).
    pub country: Option<String>,
    /// Postal code.
    pub zip: Option<String>,
}

impl fmt::Debug for CrmContact {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CrmContact")
            .field("id", &self.id)
            .field("account_id", &self.account_id)
            .finish_non_exhaustive()
    }
}

/// What [`Connector::contacts_for`] found.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Contacts {
    /// The contacts, sorted by account id then contact id, so an export repeats byte for byte.
    pub contacts: Vec<CrmContact>,
    /// Records that could not be read (a file's bad line), by id or line and reason.
    pub unreadable: Vec<Quarantined>,
}

impl Contacts {
    /// Puts the contacts in their documented order.
    pub(crate) fn sort(&mut self) {
        self.contacts
            .sort_by(|a, b| (&a.account_id, &a.id).cmp(&(&b.account_id, &b.id)));
    }
}

/// A CRM whose named lists tierd can keep in step (HubSpot lists, Salesforce Campaigns).
pub trait CrmLists: Send + Sync {
    /// Brings the list called `name` to exactly `members` (the connector's account ids,
    /// `hubspot:123`), creating the list when the CRM has none by that name and finding it
    /// again by name on later calls. Reads the current membership (paged), then adds and removes
    /// in batches within the vendor's limits. A member the CRM refuses (an id it does not know)
    /// is reported in [`ListSync::refused`](crate::lists::ListSync::refused) and the rest go on; an error that stops the whole
    /// sync (credentials, a list tierd may not change) is `Err`.
    fn sync_list<'a>(
        &'a self,
        name: &'a str,
        members: &'a [String],
    ) -> BoxFuture<'a, Result<crate::lists::ListSync, ConnectorError>>;
}

/// A point in time as milliseconds since 1970-01-01 UTC: how far a pull got.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct Watermark(pub i64);

impl Watermark {
    /// Parses an RFC 3339 / ISO-8601 timestamp as CRMs send them: `2026-11-24T10:00:00Z`,
    /// `2026-11-24T10:00:00.123+0000`, `...+01:00`, or a date alone (its midnight UTC); or
    /// epoch milliseconds.
    pub fn parse(text: &str) -> Option<Watermark> {
        let t = text.trim();
        if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
            return t.parse().ok().map(Watermark);
        }
        // RFC 3339 proper, then the offset without a colon that Salesforce prints.
        let at = chrono::DateTime::parse_from_rfc3339(t)
            .or_else(|_| chrono::DateTime::parse_from_str(t, "%Y-%m-%dT%H:%M:%S%.f%z"));
        if let Ok(at) = at {
            return Some(Watermark(at.timestamp_millis()));
        }
        let date: tierd_core::Date = (t.len() == 10).then(|| t.parse().ok())??;
        Some(Watermark(i64::from(date.days()) * 86_400_000))
    }

    /// Milliseconds since the epoch.
    pub fn millis(self) -> i64 {
        self.0
    }

    /// This watermark moved back by `ms` milliseconds (to overlap pulls across index lag).
    pub fn minus_millis(self, ms: i64) -> Watermark {
        Watermark(self.0.saturating_sub(ms))
    }
}

impl fmt::Display for Watermark {
    /// RFC 3339 in UTC with milliseconds: `2026-11-24T10:00:00.000Z`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match chrono::DateTime::from_timestamp_millis(self.0) {
            Some(at) => f.write_str(&at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
            // Beyond chrono's ±262,000 years: only a corrupt store holds such a value.
            None => write!(f, "{} ms since 1970-01-01", self.0),
        }
    }
}

/// One account as a CRM holds it, its facts typed at the edge.
#[derive(Debug, Clone, PartialEq)]
pub struct CrmAccount {
    /// `hubspot:123`, `salesforce:001...`, or a file's own id.
    pub id: String,
    /// Display name.
    pub name: Option<String>,
    /// Web domain.
    pub domain: Option<String>,
    /// Facts read through the connector's mapping (source: the connector's name).
    pub facts: Facts,
    /// The tier the CRM holds now (tierd's field), whoever set it. A value that is not a
    /// tier quarantines the record (a person's value tierd cannot read is never overwritten).
    pub crm_tier: Option<Tier>,
    /// Whether a person locked the tier.
    pub locked: bool,
    /// When the CRM last changed the record.
    pub updated_at: Option<Watermark>,
}

/// A record that could not be read, kept out of the run and reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quarantined {
    /// The record's id (`hubspot:123`, or `line 12` in a file without one).
    pub id: String,
    /// The CRM field (or file column) that did not parse, when it was one field.
    pub field: Option<String>,
    /// Why, in words: `'12k' is not a number`.
    pub reason: String,
}

impl fmt::Display for Quarantined {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.field {
            Some(field) => write!(f, "{}: field '{field}': {}", self.id, self.reason),
            None => write!(f, "{}: {}", self.id, self.reason),
        }
    }
}

/// One page of a pull.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AccountPage {
    /// Usable accounts.
    pub accounts: Vec<CrmAccount>,
    /// Records that were not.
    pub quarantined: Vec<Quarantined>,
    /// The highest modification time seen so far in this pull (at least the pull's `since`).
    /// The last page's is the watermark to store once the run has succeeded; `None` when
    /// neither `since` nor any record so far had a modification time.
    pub watermark: Option<Watermark>,
}

/// What tierd wants one account to hold.
#[derive(Debug, Clone, PartialEq)]
pub struct TierUpdate {
    /// The connector's account id (`hubspot:123`).
    pub id: String,
    /// The new tier.
    pub tier: Tier,
    /// Score, 0..=5.
    pub score: f32,
    /// Coverage, 0..=1 (written to files; CRMs do not store it).
    pub coverage: f32,
    /// The compact reasons.
    pub reason: String,
    /// `name@version` of the model.
    pub model: String,
    /// When it was scored.
    pub scored_at: Watermark,
}

/// What happened to one account in a push.
#[derive(Debug, Clone, PartialEq)]
pub enum PushOutcome {
    /// The CRM accepted the update.
    Written,
    /// Nothing differs from what tierd last pushed; not sent.
    Unchanged,
    /// A person locked the tier; not sent.
    SkippedLocked,
    /// A person changed the tier since tierd last pushed it; not sent.
    SkippedOverridden {
        /// The tier the CRM holds (`None`: a person emptied the field, see
        /// `PlanOptions::respect_cleared`).
        crm_tier: Option<Tier>,
    },
    /// The CRM refused the record.
    Rejected {
        /// The CRM's words.
        reason: String,
        /// True when retrying cannot help (a validation error); false to try again next run.
        permanent: bool,
    },
    /// Not sent in this run (e.g. the daily API limit was reached); try again next run.
    Deferred {
        /// Why.
        reason: String,
    },
}

impl PushOutcome {
    /// Whether the record should be offered again in a later run.
    pub fn retry_later(&self) -> bool {
        matches!(
            self,
            PushOutcome::Deferred { .. } | PushOutcome::Rejected { permanent: false, .. }
        )
    }
}

/// What `ensure_schema` found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SchemaReport {
    /// Fields (or groups) created now.
    pub created: Vec<String>,
    /// Fields that were already there.
    pub existing: Vec<String>,
    /// Fields tierd needs that are missing and that it cannot create (Salesforce: an admin must).
    pub missing: Vec<String>,
}

impl SchemaReport {
    /// Whether pushing can go ahead.
    pub fn is_complete(&self) -> bool {
        self.missing.is_empty()
    }
}

/// A deal (HubSpot) or opportunity (Salesforce) of an account, for funnels.
#[derive(Debug, Clone, PartialEq)]
pub struct Deal {
    /// The connector's account id it belongs to.
    pub account_id: String,
    /// The deal's own id in the CRM.
    pub id: String,
    /// Amount, when set.
    pub amount: Option<f64>,
    /// Stage (`closedwon`, `Prospecting`...).
    pub stage: Option<String>,
    /// Won, when the CRM says so (Salesforce `IsWon`; HubSpot: stage `closedwon`).
    pub won: Option<bool>,
    /// Closed (won or lost).
    pub closed: Option<bool>,
    /// Close date.
    pub close_date: Option<tierd_core::Date>,
    /// When it was created.
    pub created: Option<Watermark>,
    /// Pipeline (HubSpot `pipeline`), when the CRM has several.
    pub pipeline: Option<String>,
    /// Currency of the amount (HubSpot `deal_currency_code`), when the CRM says.
    pub currency: Option<String>,
    /// When each stage was entered, oldest first (HubSpot `hs_v2_date_entered_<stage>`,
    /// Salesforce `OpportunityHistory`).
    pub stage_entries: Vec<(String, Watermark)>,
}

/// Why a connector could not do what it was asked.
#[derive(Debug, thiserror::Error)]
pub enum ConnectorError {
    /// The HTTP layer gave up or got something unreadable.
    #[error(transparent)]
    Http(#[from] HttpError),
    /// The CRM refused the credentials.
    #[error("{connector}: {what}: authentication failed (HTTP {status}): {message}; check the token or client credentials")]
    Auth {
        /// Which connector.
        connector: &'static str,
        /// What was being done.
        what: String,
        /// The HTTP status.
        status: u16,
        /// The CRM's words.
        message: String,
    },
    /// The CRM answered with an error that stops the operation.
    #[error("{connector}: {what}: HTTP {status}: {message}")]
    Api {
        /// Which connector.
        connector: &'static str,
        /// What was being done.
        what: String,
        /// The HTTP status.
        status: u16,
        /// The CRM's words.
        message: String,
    },
    /// The configuration cannot work.
    #[error("connector.{key}: {message}")]
    Config {
        /// The key's path within the `[connector]` section (`token`, `retry.timeout`,
        /// `mapping[2].type`), or `type` for the choice of connector.
        key: String,
        /// What is wrong and what to set.
        message: String,
    },
    /// tierd's fields are missing in the CRM and cannot be created by tierd.
    #[error("{connector}: missing fields {}: create them in the CRM before pushing", fields.join(", "))]
    SchemaMissing {
        /// Which connector.
        connector: &'static str,
        /// The missing fields, by name.
        fields: Vec<String>,
    },
    /// Reading or writing an account file failed.
    #[error(transparent)]
    File(#[from] FileError),
}

impl ConnectorError {
    /// A config problem at `key` (its path within the `[connector]` section).
    pub fn config(key: impl Into<String>, message: impl Into<String>) -> ConnectorError {
        ConnectorError::Config {
            key: key.into(),
            message: message.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watermarks_parse_the_forms_crms_send() {
        let base = Watermark::parse("2026-11-24T10:00:00Z").expect("parses");
        assert_eq!(base.to_string(), "2026-11-24T10:00:00.000Z");
        assert_eq!(Watermark::parse("2026-11-24T10:00:00.000+0000"), Some(base));
        assert_eq!(Watermark::parse("2026-11-24T11:00:00+01:00"), Some(base));
        assert_eq!(
            Watermark::parse("2026-11-24T10:00:00.5Z"),
            Some(Watermark(base.0 + 500))
        );
        assert_eq!(
            Watermark::parse(&base.0.to_string()),
            Some(base),
            "epoch milliseconds"
        );
        assert_eq!(
            Watermark::parse("2026-11-24"),
            Some(Watermark(base.0 - 10 * 3_600_000))
        );
        assert_eq!(
            Watermark::parse("2026-11-24T10:00:00.000+0000")
                .map(|w| w.to_string())
                .as_deref(),
            Some("2026-11-24T10:00:00.000Z")
        );
        for bad in [
            "",
            "yesterday",
            "2026-11-24T10:00",
            "2026-11-24T10:00:00",
            "2026-02-30T10:00:00Z",
            "2026-11-24T25:00:00Z",
            "2026-11-24T10:00:00+1",
        ] {
            assert_eq!(Watermark::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn only_deferred_and_retryable_rejections_come_back() {
        assert!(PushOutcome::Deferred {
            reason: "limit".into()
        }
        .retry_later());
        assert!(PushOutcome::Rejected {
            reason: "locked row".into(),
            permanent: false
        }
        .retry_later());
        assert!(!PushOutcome::Rejected {
            reason: "bad value".into(),
            permanent: true
        }
        .retry_later());
        assert!(!PushOutcome::Written.retry_later());
    }
}
