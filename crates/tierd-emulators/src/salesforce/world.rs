//! Salesforce's data: Account, Contract, Opportunity (and OpportunityHistory) and Contact tables
//! seeded from `tierd-gen` (Contacts: the shared people of [`crate::people`]), Campaign and
//! CampaignMember tables that start empty (`campaigns.rs` fills them), with typed fields so SOQL
//! compares dates as dates and numbers as numbers.
//!
//! Row `k` of a table has an 18-character Id: the object's key prefix (`001`, `800`,
//! `006`, `008`, `003`, `701`, `00v`), `k` in base 62 zero-padded to 12 characters (digits, then upper, then lower
//! case, which is also ASCII order, so Ids sort like rows), and Salesforce's 3-character
//! case-checksum suffix, which makes the 18-character form safe to compare without case.

use std::collections::HashMap;

use tierd_gen::{GenOptions, Generator, SyntheticAccount};

use crate::clock::{self, DAY_MS};
use crate::faults::splitmix;
use crate::people::people_of;

/// Generator industry -> Salesforce's standard Industry picklist value.
pub(crate) const INDUSTRY_VALUES: [(&str, &str); 13] = [
    ("Software", "Technology"),
    ("Financial Services", "Finance"),
    ("Healthcare", "Healthcare"),
    ("Manufacturing", "Manufacturing"),
    ("Retail", "Retail"),
    ("Professional Services", "Consulting"),
    ("Telecommunications", "Telecommunications"),
    ("Media", "Media"),
    ("Education", "Education"),
    ("Government", "Government"),
    ("Energy", "Energy"),
    ("Non-profit", "Not For Profit"),
    ("Logistics", "Transportation"),
];

const STAGES: [&str; 7] = [
    "Prospecting",
    "Qualification",
    "Needs Analysis",
    "Proposal/Price Quote",
    "Negotiation/Review",
    "Closed Won",
    "Closed Lost",
];

const ACCOUNT_TYPES: [&str; 4] = ["Prospect", "Customer - Direct", "Customer - Channel", "Other"];

/// A field's type, as `describe` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FieldType {
    Id,
    String,
    Textarea,
    Url,
    Picklist,
    MultiPicklist,
    Reference,
    Int,
    Double,
    Currency,
    Date,
    DateTime,
    Boolean,
}

impl FieldType {
    pub(crate) fn name(self) -> &'static str {
        match self {
            FieldType::Id => "id",
            FieldType::String => "string",
            FieldType::Textarea => "textarea",
            FieldType::Url => "url",
            FieldType::Picklist => "picklist",
            FieldType::MultiPicklist => "multipicklist",
            FieldType::Reference => "reference",
            FieldType::Int => "int",
            FieldType::Double => "double",
            FieldType::Currency => "currency",
            FieldType::Date => "date",
            FieldType::DateTime => "datetime",
            FieldType::Boolean => "boolean",
        }
    }

    pub(crate) fn is_text(self) -> bool {
        matches!(
            self,
            FieldType::Id
                | FieldType::String
                | FieldType::Textarea
                | FieldType::Url
                | FieldType::Picklist
                | FieldType::MultiPicklist
                | FieldType::Reference
        )
    }

    pub(crate) fn is_number(self) -> bool {
        matches!(self, FieldType::Int | FieldType::Double | FieldType::Currency)
    }
}

#[derive(Debug, Clone)]
pub(crate) struct FieldDef {
    pub(crate) name: &'static str,
    pub(crate) label: &'static str,
    pub(crate) ty: FieldType,
    pub(crate) updateable: bool,
    pub(crate) picklist: &'static [&'static str],
    pub(crate) restricted: bool,
}

impl FieldDef {
    pub(crate) fn custom(&self) -> bool {
        self.name.ends_with("__c")
    }

    pub(crate) fn to_json(&self) -> serde_json::Value {
        let picklist: Vec<_> = self
            .picklist
            .iter()
            .map(|v| serde_json::json!({"active": true, "defaultValue": false, "label": v, "validFor": null, "value": v}))
            .collect();
        let length = if self.ty.is_text() { 255 } else { 0 };
        serde_json::json!({
            "name": self.name, "label": self.label, "type": self.ty.name(), "length": length,
            "custom": self.custom(), "updateable": self.updateable, "createable": self.updateable,
            "nillable": self.ty != FieldType::Id && self.ty != FieldType::Boolean, "filterable": true,
            "sortable": self.ty != FieldType::Textarea, "picklistValues": picklist,
            "restrictedPicklist": self.restricted,
        })
    }
}

const fn f(name: &'static str, label: &'static str, ty: FieldType, updateable: bool) -> FieldDef {
    FieldDef {
        name,
        label,
        ty,
        updateable,
        picklist: &[],
        restricted: false,
    }
}

const fn pick(
    name: &'static str,
    label: &'static str,
    values: &'static [&'static str],
    restricted: bool,
) -> FieldDef {
    FieldDef {
        name,
        label,
        ty: FieldType::Picklist,
        updateable: true,
        picklist: values,
        restricted,
    }
}

use FieldType as T;

const INDUSTRY_PICKLIST: [&str; 13] = [
    "Technology",
    "Finance",
    "Healthcare",
    "Manufacturing",
    "Retail",
    "Consulting",
    "Telecommunications",
    "Media",
    "Education",
    "Government",
    "Energy",
    "Not For Profit",
    "Transportation",
];

/// The Account fields, in storage order (see the `A_*` constants).
fn account_fields() -> Vec<FieldDef> {
    vec![
        f("Id", "Account ID", T::Id, false),
        f("Name", "Account Name", T::String, true),
        f("Website", "Website", T::Url, true),
        pick("Industry", "Industry", &INDUSTRY_PICKLIST, false),
        f("NumberOfEmployees", "Employees", T::Int, true),
        f("AnnualRevenue", "Annual Revenue", T::Currency, true),
        f("BillingCountry", "Billing Country", T::String, true),
        pick("Type", "Account Type", &ACCOUNT_TYPES, false),
        f("OwnerId", "Owner ID", T::Reference, true),
        f("CreatedDate", "Created Date", T::DateTime, false),
        f("LastModifiedDate", "Last Modified Date", T::DateTime, false),
        f("SystemModstamp", "System Modstamp", T::DateTime, false),
        f("Region__c", "Region", T::String, true),
        f("Org_Type__c", "Org Type", T::String, true),
        f("Technologies__c", "Technologies", T::MultiPicklist, true),
        f("Site_Visits_30d__c", "Site Visits (30d)", T::Double, true),
        f("Demo_Request_Dates__c", "Demo Request Dates", T::Textarea, true),
        f("Webinar_Dates__c", "Webinar Dates", T::Textarea, true),
        f(
            "Content_Download_Dates__c",
            "Content Download Dates",
            T::Textarea,
            true,
        ),
        f("Expected_ACV__c", "Expected ACV", T::Currency, true),
        pick(
            "Tier__c",
            "Tier",
            &["tier_1", "tier_2", "tier_3", "untiered"],
            true,
        ),
        f("Tier_Score__c", "Tier Score", T::Double, true),
        f("Tier_Scored_At__c", "Tier Scored At", T::DateTime, true),
        f("Tier_Model__c", "Tier Model", T::String, true),
        f("Tier_Reason__c", "Tier Reason", T::Textarea, true),
        f("Tier_Locked__c", "Tier Locked", T::Boolean, true),
    ]
}

fn contract_fields() -> Vec<FieldDef> {
    vec![
        f("Id", "Contract ID", T::Id, false),
        f("AccountId", "Account ID", T::Reference, true),
        f("StartDate", "Contract Start Date", T::Date, true),
        f("ContractTerm", "Contract Term (months)", T::Int, true),
        f("EndDate", "Contract End Date", T::Date, false),
        pick(
            "Status",
            "Status",
            &["Draft", "In Approval Process", "Activated"],
            true,
        ),
        f("Vendor__c", "Vendor", T::String, true),
        f("Description", "Description", T::Textarea, true),
        f("CreatedDate", "Created Date", T::DateTime, false),
        f("LastModifiedDate", "Last Modified Date", T::DateTime, false),
        f("SystemModstamp", "System Modstamp", T::DateTime, false),
    ]
}

fn opportunity_fields() -> Vec<FieldDef> {
    vec![
        f("Id", "Opportunity ID", T::Id, false),
        f("AccountId", "Account ID", T::Reference, true),
        f("Name", "Name", T::String, true),
        f("Amount", "Amount", T::Currency, true),
        f("CloseDate", "Close Date", T::Date, true),
        pick("StageName", "Stage", &STAGES, false),
        f("IsWon", "Won", T::Boolean, false),
        f("IsClosed", "Closed", T::Boolean, false),
        f("CreatedDate", "Created Date", T::DateTime, false),
        f("LastModifiedDate", "Last Modified Date", T::DateTime, false),
        f("SystemModstamp", "System Modstamp", T::DateTime, false),
    ]
}

fn opportunity_history_fields() -> Vec<FieldDef> {
    vec![
        f("Id", "Opportunity History ID", T::Id, false),
        f("OpportunityId", "Opportunity ID", T::Reference, false),
        pick("StageName", "Stage Name", &STAGES, false),
        f("Amount", "Amount", T::Currency, false),
        f("CloseDate", "Close Date", T::Date, false),
        f("CreatedDate", "Created Date", T::DateTime, false),
        f("SystemModstamp", "System Modstamp", T::DateTime, false),
    ]
}

/// Campaign fields (a subset of Salesforce's).
fn campaign_fields() -> Vec<FieldDef> {
    vec![
        f("Id", "Campaign ID", T::Id, false),
        f("Name", "Campaign Name", T::String, true),
        f("IsActive", "Active", T::Boolean, true),
        pick(
            "Status",
            "Status",
            &["Planned", "In Progress", "Completed", "Aborted"],
            false,
        ),
        f("Description", "Description", T::Textarea, true),
        f("CreatedDate", "Created Date", T::DateTime, false),
        f("LastModifiedDate", "Last Modified Date", T::DateTime, false),
        f("SystemModstamp", "System Modstamp", T::DateTime, false),
        f("IsDeleted", "Deleted", T::Boolean, false),
    ]
}

/// CampaignMember fields. `AccountId` exists only in orgs with the Accounts as Campaign
/// Members setting (API 50.0 and later); [`World::seed`] leaves it out otherwise.
fn campaign_member_fields() -> Vec<FieldDef> {
    vec![
        f("Id", "Campaign Member ID", T::Id, false),
        f("CampaignId", "Campaign ID", T::Reference, true),
        f("AccountId", "Account ID", T::Reference, true),
        f("ContactId", "Contact ID", T::Reference, true),
        f("LeadId", "Lead ID", T::Reference, true),
        f("Status", "Status", T::String, true),
        f("CreatedDate", "Created Date", T::DateTime, false),
        f("LastModifiedDate", "Last Modified Date", T::DateTime, false),
        f("SystemModstamp", "System Modstamp", T::DateTime, false),
        f("IsDeleted", "Deleted", T::Boolean, false),
    ]
}

/// Contact fields (a subset of Salesforce's).
fn contact_fields() -> Vec<FieldDef> {
    vec![
        f("Id", "Contact ID", T::Id, false),
        f("AccountId", "Account ID", T::Reference, true),
        f("FirstName", "First Name", T::String, true),
        f("LastName", "Last Name", T::String, true),
        f("Email", "Email", T::String, true),
        f("Phone", "Business Phone", T::String, true),
        f("MobilePhone", "Mobile Phone", T::String, true),
        f("MailingCountry", "Mailing Country", T::String, true),
        f("MailingPostalCode", "Mailing Zip/Postal Code", T::String, true),
        f("CreatedDate", "Created Date", T::DateTime, false),
        f("LastModifiedDate", "Last Modified Date", T::DateTime, false),
        f("SystemModstamp", "System Modstamp", T::DateTime, false),
    ]
}

/// A stored field value.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum V {
    Null,
    Str(Box<str>),
    Num(f64),
    Bool(bool),
    /// Days since 1970-01-01.
    Date(i64),
    /// Epoch milliseconds.
    DateTime(i64),
}

impl V {
    fn text(s: impl Into<Box<str>>) -> V {
        V::Str(s.into())
    }

    /// Appends the JSON form: numbers as numbers, dates `YYYY-MM-DD`, datetimes `...+0000`.
    pub(crate) fn render(&self, ty: FieldType, out: &mut Vec<u8>) {
        match self {
            V::Null => out.extend_from_slice(b"null"),
            V::Str(s) => crate::server::push_json_str(out, s),
            V::Num(n) if ty == FieldType::Int => out.extend_from_slice((*n as i64).to_string().as_bytes()),
            V::Num(n) => out.extend_from_slice(
                serde_json::Number::from_f64(*n)
                    .map_or("null".into(), |n| {
                        let s = n.to_string();
                        if s.contains('.') || s.contains('e') {
                            s
                        } else {
                            format!("{s}.0")
                        }
                    })
                    .as_bytes(),
            ),
            V::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
            V::Date(d) => crate::server::push_json_str(out, &clock::date_string(*d)),
            V::DateTime(ms) => crate::server::push_json_str(out, &clock::sf_datetime(*ms)),
        }
    }

    /// The value as text (for the Rust API).
    pub(crate) fn to_text(&self, ty: FieldType) -> Option<String> {
        match self {
            V::Null => None,
            V::Str(s) => Some(s.to_string()),
            V::Num(n) if ty == FieldType::Int => Some((*n as i64).to_string()),
            V::Num(n) => Some(n.to_string()),
            V::Bool(b) => Some(b.to_string()),
            V::Date(d) => Some(clock::date_string(*d)),
            V::DateTime(ms) => Some(clock::sf_datetime(*ms)),
        }
    }
}

/// The objects the emulator holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Object {
    Account,
    Contract,
    Opportunity,
    OpportunityHistory,
    Campaign,
    CampaignMember,
    Contact,
}

const OBJECTS: [Object; 7] = [
    Object::Account,
    Object::Contract,
    Object::Opportunity,
    Object::OpportunityHistory,
    Object::Campaign,
    Object::CampaignMember,
    Object::Contact,
];

impl Object {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Object::Account => "Account",
            Object::Contract => "Contract",
            Object::Opportunity => "Opportunity",
            Object::OpportunityHistory => "OpportunityHistory",
            Object::Campaign => "Campaign",
            Object::CampaignMember => "CampaignMember",
            Object::Contact => "Contact",
        }
    }

    pub(crate) fn parse(name: &str) -> Option<Object> {
        OBJECTS.into_iter().find(|o| o.name().eq_ignore_ascii_case(name))
    }

    pub(crate) fn prefix(self) -> &'static str {
        match self {
            Object::Account => "001",
            Object::Contract => "800",
            Object::Opportunity => "006",
            Object::OpportunityHistory => "008",
            Object::Campaign => "701",
            Object::CampaignMember => "00v",
            Object::Contact => "003",
        }
    }
}

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// The 18-character Id of row `k`.
pub(crate) fn record_id(prefix: &str, k: u64) -> String {
    let mut digits = [b'0'; 12];
    let mut n = k;
    for d in digits.iter_mut().rev() {
        *d = BASE62[(n % 62) as usize];
        n /= 62;
    }
    let id15 = format!("{prefix}{}", String::from_utf8_lossy(&digits));
    let suffix = case_suffix(&id15);
    id15 + &suffix
}

const SUFFIX_CHARS: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ012345";

/// Salesforce's suffix of a 15-character Id: per 5-character chunk, bit i set when character i
/// is an upper-case letter, written as one of `A-Z0-5`.
fn case_suffix(id15: &str) -> String {
    id15.as_bytes()
        .chunks(5)
        .map(|chunk| {
            let bits = chunk
                .iter()
                .enumerate()
                .filter(|(_, c)| c.is_ascii_uppercase())
                .fold(0usize, |acc, (i, _)| acc | (1 << i));
            SUFFIX_CHARS[bits] as char
        })
        .collect()
}

/// The case-sensitive 15-character Id an 18-character one stands for, whatever case it was
/// written in (as Salesforce resolves it), or `None` when the suffix is not its checksum.
fn restore_case(id18: &str) -> Option<String> {
    let (body, suffix) = id18.split_at(15);
    let mut out = Vec::with_capacity(15);
    for (chunk, s) in body.as_bytes().chunks(5).zip(suffix.bytes()) {
        let bits = SUFFIX_CHARS.iter().position(|&c| c == s.to_ascii_uppercase())?;
        for (i, c) in chunk.iter().enumerate() {
            out.push(match bits & (1 << i) != 0 {
                true => c.to_ascii_uppercase(),
                false => c.to_ascii_lowercase(),
            });
        }
    }
    let id15 = String::from_utf8(out).ok()?;
    // A suffix that marks a digit as upper case is no checksum of any Id.
    (case_suffix(&id15) == suffix.to_ascii_uppercase()).then_some(id15)
}

/// The row of an Id, when it has this table's shape (15- or 18-character Ids both work).
pub(crate) fn row_of(prefix: &str, id: &str) -> Option<u64> {
    let id15 = match id.len() {
        15 => id.to_string(),
        18 => restore_case(id)?,
        _ => return None,
    };
    if !id15.starts_with(prefix) {
        return None;
    }
    let mut k: u64 = 0;
    for b in id15[3..15].bytes() {
        let d = BASE62.iter().position(|&c| c == b)? as u64;
        k = k.checked_mul(62)?.checked_add(d)?;
    }
    Some(k)
}

/// Whether `id` is shaped like a Salesforce Id at all.
pub(crate) fn well_formed_id(id: &str) -> bool {
    (id.len() == 15 || id.len() == 18) && id.bytes().all(|b| b.is_ascii_alphanumeric())
}

#[derive(Debug)]
pub(crate) struct Table {
    pub(crate) object: Object,
    pub(crate) fields: Vec<FieldDef>,
    by_name: HashMap<String, usize>,
    pub(crate) rows: Vec<Vec<V>>,
}

impl Table {
    fn new(object: Object, all: Vec<FieldDef>, omit: &[String]) -> Table {
        let fields: Vec<FieldDef> = all
            .into_iter()
            .filter(|f| !omit.iter().any(|o| o == f.name))
            .collect();
        let by_name = fields
            .iter()
            .enumerate()
            .map(|(i, f)| (f.name.to_ascii_lowercase(), i))
            .collect();
        Table {
            object,
            fields,
            by_name,
            rows: Vec::new(),
        }
    }

    /// Field index by name, case-insensitively as SOQL does.
    pub(crate) fn field(&self, name: &str) -> Option<usize> {
        self.by_name.get(&name.to_ascii_lowercase()).copied()
    }

    /// Builds a row from (field name, value) pairs; fields left out by `omit_fields` are dropped.
    fn push(&mut self, values: Vec<(&str, V)>) {
        let mut row = vec![V::Null; self.fields.len()];
        for (name, v) in values {
            if let Some(i) = self.field(name) {
                row[i] = v;
            }
        }
        self.rows.push(row);
    }

    pub(crate) fn row(&self, id: &str) -> Option<usize> {
        let k = row_of(self.object.prefix(), id)? as usize;
        (k < self.rows.len()).then_some(k)
    }

    /// Whether row `k` was deleted (its `IsDeleted` is true; tables without one keep every row).
    pub(crate) fn is_deleted(&self, row: &[V]) -> bool {
        self.field("IsDeleted")
            .is_some_and(|f| row.get(f) == Some(&V::Bool(true)))
    }

    /// Appends a record made through the API: its Id, stamps and `IsDeleted = false`, then
    /// `values` (field index, value); returns its row and Id.
    pub(crate) fn insert(&mut self, values: Vec<(usize, V)>, stamp: i64) -> (usize, String) {
        let k = self.rows.len();
        let id = record_id(self.object.prefix(), k as u64);
        let mut row = vec![V::Null; self.fields.len()];
        row[0] = V::text(id.as_str());
        for (f, v) in values {
            row[f] = v;
        }
        for name in ["CreatedDate", "LastModifiedDate", "SystemModstamp"] {
            if let Some(i) = self.field(name) {
                row[i] = V::DateTime(stamp);
            }
        }
        if let Some(i) = self.field("IsDeleted") {
            row[i] = V::Bool(false);
        }
        self.rows.push(row);
        (k, id)
    }

    /// Appends one record with the given fields, as the REST API serves it.
    /// `spoil` (from fault injection) replaces one numeric or date field with garbage.
    pub(crate) fn render(
        &self,
        k: usize,
        fields: &[usize],
        version: &str,
        spoil: Option<u64>,
        out: &mut Vec<u8>,
    ) {
        let row = &self.rows[k];
        let id = match &row[0] {
            V::Str(s) => s.as_ref(),
            _ => "",
        };
        let spoilable: Vec<usize> = fields
            .iter()
            .copied()
            .filter(|&i| {
                let d = &self.fields[i];
                d.ty.is_number() || d.ty == FieldType::Date || (d.ty == FieldType::DateTime && d.custom())
            })
            .collect();
        let spoiled = spoil
            .filter(|_| !spoilable.is_empty())
            .map(|p| (spoilable[(p % spoilable.len() as u64) as usize], p));
        out.extend_from_slice(b"{\"attributes\":{\"type\":\"");
        out.extend_from_slice(self.object.name().as_bytes());
        out.extend_from_slice(
            format!(
                "\",\"url\":\"/services/data/{version}/sobjects/{}/{id}\"}}",
                self.object.name()
            )
            .as_bytes(),
        );
        for &i in fields {
            out.push(b',');
            crate::server::push_json_str(out, self.fields[i].name);
            out.push(b':');
            match spoiled {
                Some((bad, p)) if bad == i => {
                    let garbage = if self.fields[i].ty.is_number() {
                        ["\"12,5OO\"", "\"n/a\""]
                    } else {
                        ["\"2026-13-45\"", "\"31/31/2026\""]
                    };
                    out.extend_from_slice(garbage[(p % 2) as usize].as_bytes());
                }
                _ => row[i].render(self.fields[i].ty, out),
            }
        }
        out.push(b'}');
    }

    /// Row `k`'s Id.
    pub(crate) fn id(&self, k: usize) -> Option<&str> {
        match self.rows.get(k)?.first()? {
            V::Str(s) => Some(s),
            _ => None,
        }
    }

    /// Sets a row's stamps after a write.
    pub(crate) fn touch(&mut self, k: usize, stamp: i64) {
        for name in ["LastModifiedDate", "SystemModstamp"] {
            if let Some(i) = self.field(name) {
                self.rows[k][i] = V::DateTime(stamp);
            }
        }
    }
}

#[derive(Debug)]
pub(crate) struct World {
    pub(crate) accounts: Table,
    pub(crate) contracts: Table,
    pub(crate) opportunities: Table,
    pub(crate) opportunity_history: Table,
    pub(crate) campaigns: Table,
    pub(crate) campaign_members: Table,
    pub(crate) contacts: Table,
    pub(crate) seeded_until_ms: i64,
    /// What the seeded script does to Opportunities after as-of, by time: opportunities opened,
    /// open ones closed won or lost.
    script: Vec<(i64, Scripted)>,
}

/// One step of the seeded opportunity script.
#[derive(Debug, Clone)]
enum Scripted {
    /// A new Opportunity for the account, closing at `close_ms`, won or not.
    Open {
        account: String,
        name: String,
        amount: f64,
        close_ms: i64,
        won: bool,
    },
    /// Opportunity `oid` closes won or lost.
    Close { oid: String, won: bool },
}

fn joined(items: &[impl std::fmt::Display]) -> V {
    if items.is_empty() {
        return V::Null;
    }
    V::text(
        items
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(";"),
    )
}

fn opt_num(n: Option<u64>) -> V {
    n.map_or(V::Null, |n| V::Num(n as f64))
}

fn opt_text(s: Option<&str>) -> V {
    s.map_or(V::Null, V::text)
}

/// The calendar date `months` months before `days` (day clamped to the month's length).
fn months_before(days: i64, months: u32) -> i64 {
    let (y, m, d) = clock::civil(days);
    let total = y * 12 + i64::from(m) - 1 - i64::from(months);
    let (ny, nm) = (total.div_euclid(12), total.rem_euclid(12) as u32 + 1);
    (1..=d)
        .rev()
        .find_map(|day| clock::days_from_civil(ny, nm, day))
        .unwrap_or(days)
}

impl World {
    /// Accounts from the generator, with their Contracts and Opportunities; no Campaigns. `omit`
    /// names Account fields the org lacks, and `AccountId` among them also leaves it off
    /// CampaignMember (the Accounts as Campaign Members setting is off).
    pub(crate) fn seed(opts: GenOptions, accounts: u64, omit: &[String]) -> World {
        let as_of_days = i64::from(opts.as_of.days());
        let as_of_ms = as_of_days * DAY_MS;
        let mut w = World {
            accounts: Table::new(Object::Account, account_fields(), omit),
            contracts: Table::new(Object::Contract, contract_fields(), &[]),
            opportunities: Table::new(Object::Opportunity, opportunity_fields(), &[]),
            opportunity_history: Table::new(Object::OpportunityHistory, opportunity_history_fields(), &[]),
            campaigns: Table::new(Object::Campaign, campaign_fields(), &[]),
            campaign_members: Table::new(Object::CampaignMember, campaign_member_fields(), omit),
            contacts: Table::new(Object::Contact, contact_fields(), &[]),
            seeded_until_ms: as_of_ms - DAY_MS,
            script: Vec::new(),
        };
        for (k, a) in Generator::new(opts).take(accounts as usize).enumerate() {
            w.seed_account(opts.seed, k as u64, &a, as_of_ms);
            w.seed_contacts(opts.seed, k as u64, &a, as_of_ms - 365 * DAY_MS);
        }
        w.script.sort_by_key(|(at, _)| *at);
        w
    }

    /// Moves the deal clock to `to_ms` and plays the script up to it (what was played stays): opportunities
    /// opened (with their first stage in OpportunityHistory) and open ones closed won or lost
    /// (StageName, IsWon, IsClosed, LastModifiedDate and a history row at the close). As in
    /// Salesforce, the Account itself is not modified. Returns (opened, closed).
    pub(crate) fn advance_deals(&mut self, to_ms: i64) -> (u64, u64) {
        let (mut opened, mut closed) = (0, 0);
        while let Some((at, _)) = self.script.first() {
            if *at > to_ms {
                break;
            }
            let (at, step) = self.script.remove(0);
            match step {
                Scripted::Open {
                    account,
                    name,
                    amount,
                    close_ms,
                    won,
                } => {
                    let oid = self.push_opportunity(&account, &name, amount, at, close_ms, STAGES[0], at);
                    let i = self.script.partition_point(|(t, _)| *t <= close_ms);
                    self.script.insert(i, (close_ms, Scripted::Close { oid, won }));
                    opened += 1;
                }
                Scripted::Close { oid, won } => {
                    let stage = if won { "Closed Won" } else { "Closed Lost" };
                    let Some(r) = self.opportunities.row(&oid) else {
                        continue;
                    };
                    let t = &mut self.opportunities;
                    for (field, v) in [
                        ("StageName", V::text(stage)),
                        ("IsWon", V::Bool(won)),
                        ("IsClosed", V::Bool(true)),
                        ("LastModifiedDate", V::DateTime(at)),
                        ("SystemModstamp", V::DateTime(at)),
                    ] {
                        if let Some(f) = t.field(field) {
                            t.rows[r][f] = v;
                        }
                    }
                    let amount = t.field("Amount").map_or(V::Null, |f| t.rows[r][f].clone());
                    let close = t.field("CloseDate").map_or(V::Null, |f| t.rows[r][f].clone());
                    self.push_history(&oid, stage, amount, close, at);
                    closed += 1;
                }
            }
        }
        (opened, closed)
    }

    /// Appends an Opportunity of `account` and its first OpportunityHistory row; its Id.
    #[allow(clippy::too_many_arguments)]
    fn push_opportunity(
        &mut self,
        account: &str,
        name: &str,
        amount: f64,
        opened: i64,
        close_ms: i64,
        stage: &'static str,
        modified: i64,
    ) -> String {
        let oid = record_id(Object::Opportunity.prefix(), self.opportunities.rows.len() as u64);
        let closed = stage.starts_with("Closed");
        self.opportunities.push(vec![
            ("Id", V::text(oid.as_str())),
            ("AccountId", V::text(account)),
            ("Name", V::text(name)),
            ("Amount", V::Num(amount)),
            ("CloseDate", V::Date(close_ms / DAY_MS)),
            ("StageName", V::text(stage)),
            ("IsWon", V::Bool(stage == "Closed Won")),
            ("IsClosed", V::Bool(closed)),
            ("CreatedDate", V::DateTime(opened)),
            ("LastModifiedDate", V::DateTime(modified)),
            ("SystemModstamp", V::DateTime(modified)),
        ]);
        self.push_history(
            &oid,
            STAGES[0],
            V::Num(amount),
            V::Date(close_ms / DAY_MS),
            opened,
        );
        if stage != STAGES[0] {
            let at = if closed { close_ms } else { opened + DAY_MS };
            self.push_history(&oid, stage, V::Num(amount), V::Date(close_ms / DAY_MS), at);
        }
        oid
    }

    fn push_history(&mut self, oid: &str, stage: &str, amount: V, close: V, at: i64) {
        let hid = record_id(
            Object::OpportunityHistory.prefix(),
            self.opportunity_history.rows.len() as u64,
        );
        self.opportunity_history.push(vec![
            ("Id", V::text(hid)),
            ("OpportunityId", V::text(oid)),
            ("StageName", V::text(stage)),
            ("Amount", amount),
            ("CloseDate", close),
            ("CreatedDate", V::DateTime(at)),
            ("SystemModstamp", V::DateTime(at)),
        ]);
    }

    fn seed_account(&mut self, seed: u64, k: u64, a: &SyntheticAccount, as_of_ms: i64) {
        let h = splitmix(seed ^ k.wrapping_mul(0x5F5E_1000_0000_0001));
        let created = as_of_ms - (365 + (h % 1500) as i64) * DAY_MS - (h >> 40) as i64 % DAY_MS;
        let modified = as_of_ms - 1 - ((h >> 20) % (30 * DAY_MS as u64)) as i64;
        self.seeded_until_ms = self.seeded_until_ms.max(modified);
        let id = record_id(Object::Account.prefix(), k);
        let industry = a
            .industry
            .and_then(|i| INDUSTRY_VALUES.iter().find(|(g, _)| *g == i))
            .map(|(_, s)| *s);
        let account_type = if a.current_vendor.is_some() {
            ACCOUNT_TYPES[0]
        } else {
            ACCOUNT_TYPES[(h % 4) as usize]
        };
        self.accounts.push(vec![
            ("Id", V::text(id.as_str())),
            ("Name", V::text(a.name.as_str())),
            ("Website", V::text(format!("https://www.{}", a.domain))),
            ("Industry", opt_text(industry)),
            ("NumberOfEmployees", opt_num(a.employee_count)),
            ("AnnualRevenue", opt_num(a.annual_revenue)),
            ("BillingCountry", opt_text(a.country)),
            ("Type", V::text(account_type)),
            ("OwnerId", V::text(record_id("005", (h >> 8) % 25))),
            ("CreatedDate", V::DateTime(created)),
            ("LastModifiedDate", V::DateTime(modified)),
            ("SystemModstamp", V::DateTime(modified)),
            ("Region__c", opt_text(a.region)),
            ("Org_Type__c", opt_text(a.org_type)),
            ("Technologies__c", joined(&a.technologies)),
            ("Site_Visits_30d__c", V::Num(a.site_visits_30d as f64)),
            ("Demo_Request_Dates__c", joined(&a.demo_requests)),
            ("Webinar_Dates__c", joined(&a.webinars)),
            ("Content_Download_Dates__c", joined(&a.content_downloads)),
            ("Expected_ACV__c", opt_num(a.expected_acv)),
        ]);
        if let (Some(vendor), Some(renewal)) = (a.current_vendor, a.renewal_date) {
            let end = i64::from(renewal.days());
            let term = [12u32, 24, 36][((h >> 4) % 3) as usize];
            let start = months_before(end + 1, term);
            let cid = record_id(Object::Contract.prefix(), self.contracts.rows.len() as u64);
            self.contracts.push(vec![
                ("Id", V::text(cid)),
                ("AccountId", V::text(id.as_str())),
                ("StartDate", V::Date(start)),
                ("ContractTerm", V::Num(f64::from(term))),
                ("EndDate", V::Date(end)),
                ("Status", V::text("Activated")),
                ("Vendor__c", V::text(vendor)),
                ("Description", V::text(format!("{vendor} subscription"))),
                ("CreatedDate", V::DateTime(start * DAY_MS)),
                ("LastModifiedDate", V::DateTime(start * DAY_MS)),
                ("SystemModstamp", V::DateTime(start * DAY_MS)),
            ]);
        }
        // Opportunities follow the generator's hidden quality (as HubSpot's deals do): better
        // accounts open more, win more and close faster. Each stage entered is a row of
        // OpportunityHistory, dated.
        let q = f64::from(a.quality) / 1000.0;
        let jitter = ((h >> 12) % 1000) as f64 / 1000.0;
        let n = (0.2 + 2.4 * q + jitter - 0.5).round().clamp(0.0, 3.0) as u64;
        // The script goes on after as-of, as HubSpot's does: about a third of the accounts (more
        // of the better ones) open one more opportunity within the next 90 days.
        let future = splitmix(h ^ 0xF0);
        let n_future = u64::from(((future % 1000) as f64) < (0.10 + 0.45 * q) * 1000.0);
        for j in 0..n + n_future {
            let d = splitmix(h ^ (j + 1));
            let opened = if j < n {
                (as_of_ms - ((d % 540) as i64 + 1) * DAY_MS).max(created + DAY_MS)
            } else {
                as_of_ms + ((future >> 16) % 90) as i64 * DAY_MS + ((future >> 40) % 36_000_000) as i64 + 1
            };
            let cycle_days = 15 + ((1.0 - q) * 90.0) as i64 + ((d >> 24) % 30) as i64;
            let close_ms = opened + cycle_days * DAY_MS;
            let p_win = 0.08 + 0.55 * q;
            let won = (((d >> 32) % 1000) as f64) < p_win * 1000.0;
            let amount = ((a.expected_acv.unwrap_or(20_000) / 1000) * (50 + (d >> 8) % 100) * 10) as f64;
            let name = format!("{} - opportunity {}", a.name, j + 1);
            if j >= n {
                self.script.push((
                    opened,
                    Scripted::Open {
                        account: id.clone(),
                        name,
                        amount,
                        close_ms,
                        won,
                    },
                ));
                continue;
            }
            let stage = match (close_ms <= as_of_ms, won) {
                (true, true) => "Closed Won",
                (true, false) => "Closed Lost",
                (false, _) => STAGES[((d >> 16) % 5) as usize],
            };
            let modified = if close_ms <= as_of_ms { close_ms } else { opened };
            let oid = self.push_opportunity(&id, &name, amount, opened, close_ms, stage, modified);
            if close_ms > as_of_ms {
                self.script.push((close_ms, Scripted::Close { oid, won }));
            }
        }
    }

    fn seed_contacts(&mut self, seed: u64, k: u64, a: &SyntheticAccount, created: i64) {
        let account_id = record_id(Object::Account.prefix(), k);
        for (j, p) in people_of(seed, k, a).into_iter().enumerate() {
            let id = record_id(Object::Contact.prefix(), self.contacts.rows.len() as u64);
            let stamp = created + (j as i64 + 1) * DAY_MS;
            self.contacts.push(vec![
                ("Id", V::text(id)),
                ("AccountId", V::text(account_id.as_str())),
                ("FirstName", V::text(p.first_name)),
                ("LastName", V::text(p.last_name)),
                ("Email", p.email.map_or(V::Null, V::text)),
                ("Phone", p.phone.map_or(V::Null, V::text)),
                ("MobilePhone", p.mobile.map_or(V::Null, V::text)),
                ("MailingCountry", opt_text(p.country)),
                ("MailingPostalCode", p.zip.map_or(V::Null, V::text)),
                ("CreatedDate", V::DateTime(stamp)),
                ("LastModifiedDate", V::DateTime(stamp)),
                ("SystemModstamp", V::DateTime(stamp)),
            ]);
        }
    }

    pub(crate) fn table(&self, o: Object) -> &Table {
        match o {
            Object::Account => &self.accounts,
            Object::Contract => &self.contracts,
            Object::Opportunity => &self.opportunities,
            Object::OpportunityHistory => &self.opportunity_history,
            Object::Campaign => &self.campaigns,
            Object::CampaignMember => &self.campaign_members,
            Object::Contact => &self.contacts,
        }
    }

    pub(crate) fn table_mut(&mut self, o: Object) -> &mut Table {
        match o {
            Object::Account => &mut self.accounts,
            Object::Contract => &mut self.contracts,
            Object::Opportunity => &mut self.opportunities,
            Object::OpportunityHistory => &mut self.opportunity_history,
            Object::Campaign => &mut self.campaigns,
            Object::CampaignMember => &mut self.campaign_members,
            Object::Contact => &mut self.contacts,
        }
    }

    /// Which table an Id belongs to, by its key prefix.
    pub(crate) fn object_of(id: &str) -> Option<Object> {
        OBJECTS.into_iter().find(|o| id.starts_with(o.prefix()))
    }
}

/// Converts a client's value (JSON) to a field's type; `Err` names what was wrong.
pub(crate) fn convert(def: &FieldDef, v: &serde_json::Value) -> Result<V, String> {
    use serde_json::Value as J;
    let bad = || format!("{}: value not of required type: {v}", def.label);
    Ok(match (def.ty, v) {
        (_, J::Null) => V::Null,
        (t, J::String(s)) if t.is_text() => {
            if def.restricted && !def.picklist.contains(&s.as_str()) {
                return Err(format!(
                    "{}: bad value for restricted picklist field: {s}",
                    def.label
                ));
            }
            V::text(s.as_str())
        }
        (t, J::Number(n)) if t.is_number() => V::Num(n.as_f64().ok_or_else(bad)?),
        (t, J::String(s)) if t.is_number() => V::Num(s.trim().parse().map_err(|_| bad())?),
        (FieldType::Boolean, J::Bool(b)) => V::Bool(*b),
        (FieldType::Boolean, J::String(s)) if s == "true" || s == "false" => V::Bool(s == "true"),
        (FieldType::Date, J::String(s)) => V::Date(clock::parse_date(s).ok_or_else(bad)?),
        (FieldType::DateTime, J::String(s)) => V::DateTime(clock::parse_datetime(s).ok_or_else(bad)?),
        _ => return Err(bad()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_18_chars_sortable_and_round_trip() {
        let ids: Vec<String> = [0u64, 1, 61, 62, 99_999]
            .iter()
            .map(|&k| record_id("001", k))
            .collect();
        assert!(ids.iter().all(|id| id.len() == 18 && id.starts_with("001")));
        assert!(ids.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(row_of("001", &ids[4]), Some(99_999));
        assert_eq!(row_of("001", &ids[4][..15]), Some(99_999));
        assert_eq!(row_of("006", &ids[4]), None);
        // Rows whose Ids differ only in case have different 18-character forms, and an
        // 18-character Id written in another case still finds its own row.
        let (upper, lower) = (record_id("001", 11), record_id("001", 37));
        assert_eq!(upper[..15].to_lowercase(), lower[..15].to_lowercase());
        assert_ne!(upper.to_lowercase(), lower.to_lowercase());
        assert_eq!(row_of("001", &lower.to_uppercase()), Some(37));
        assert_eq!(row_of("001", &upper.to_lowercase()), Some(11));
    }

    #[test]
    fn contract_start_is_term_months_before_the_day_after_the_end() {
        let end = clock::parse_date("2027-02-28").unwrap();
        assert_eq!(clock::date_string(months_before(end + 1, 12)), "2026-03-01");
        let end = clock::parse_date("2027-03-30").unwrap();
        assert_eq!(clock::date_string(months_before(end + 1, 1)), "2027-02-28");
    }

    #[test]
    fn the_opportunity_script_opens_and_closes_opportunities_with_their_history() {
        let opts = GenOptions {
            seed: 5,
            as_of: "2026-11-24".parse().expect("date"),
        };
        let as_of_ms = i64::from(opts.as_of.days()) * DAY_MS;
        let mut w = World::seed(opts, 2000, &[]);
        let closed_count = |w: &World| {
            let f = w.opportunities.field("IsClosed").expect("field");
            w.opportunities
                .rows
                .iter()
                .filter(|r| r[f] == V::Bool(true))
                .count() as u64
        };
        let (opps, history, closed_before) = (
            w.opportunities.rows.len() as u64,
            w.opportunity_history.rows.len() as u64,
            closed_count(&w),
        );
        let scripted_opens = w
            .script
            .iter()
            .filter(|(_, s)| matches!(s, Scripted::Open { .. }))
            .count() as u64;
        assert!(
            scripted_opens > 300,
            "about a third of 2000 accounts: {scripted_opens}"
        );
        // 90 days on: every scripted opportunity has opened, some have closed, each change with
        // its history row; the Accounts are untouched.
        let accounts_before = w.accounts.rows.clone();
        let (opened, closed) = w.advance_deals(as_of_ms + 90 * DAY_MS);
        assert_eq!(opened, scripted_opens);
        assert!(closed > 0);
        assert_eq!(w.opportunities.rows.len() as u64, opps + opened);
        assert_eq!(closed_count(&w), closed_before + closed);
        assert_eq!(w.opportunity_history.rows.len() as u64, history + opened + closed);
        assert!(w.accounts.rows == accounts_before);
        // What was played is not played again; the same seed plays the same script.
        assert_eq!(w.advance_deals(as_of_ms + 90 * DAY_MS), (0, 0));
        let mut again = World::seed(opts, 2000, &[]);
        assert_eq!(again.advance_deals(as_of_ms + 90 * DAY_MS), (opened, closed));
        assert!(again.opportunities.rows == w.opportunities.rows);
    }
}
