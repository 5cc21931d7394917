//! HubSpot's data: the company property schema, the companies seeded from `tierd-gen`,
//! their deals and contacts, and the search index's view of them (which lags writes).
//!
//! Company `k` (0-based) has id `1_000_000_000 + k`, so ids sort like indexes and a list
//! cursor is an index: every read is O(page). Property values are stored as HubSpot
//! serves them, as strings; `hs_object_id`, `createdate` and `hs_lastmodifieddate` are
//! computed from the record.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use tierd_gen::{GenOptions, Generator, SyntheticAccount};

use crate::clock::{self, DAY_MS};
use crate::faults::splitmix;
use crate::people::{people_of, Person};
use crate::server::push_json_str;

pub(crate) const FIRST_COMPANY_ID: u64 = 1_000_000_000;
pub(crate) const FIRST_DEAL_ID: u64 = 5_000_000_000;
/// Days after as-of in which the seeded script opens its later deals.
pub(crate) const FUTURE_DAYS: i64 = 90;
/// Contact `j` of company `k` has id `FIRST_CONTACT_ID + k * 4 + j`.
pub(crate) const FIRST_CONTACT_ID: u64 = 3_000_000_000;

/// Generator industry -> HubSpot's internal `industry` value.
pub(crate) const INDUSTRY_VALUES: [(&str, &str); 13] = [
    ("Software", "COMPUTER_SOFTWARE"),
    ("Financial Services", "FINANCIAL_SERVICES"),
    ("Healthcare", "HOSPITAL_HEALTH_CARE"),
    ("Manufacturing", "MACHINERY"),
    ("Retail", "RETAIL"),
    ("Professional Services", "MANAGEMENT_CONSULTING"),
    ("Telecommunications", "TELECOMMUNICATIONS"),
    ("Media", "MEDIA_PRODUCTION"),
    ("Education", "EDUCATION_MANAGEMENT"),
    ("Government", "GOVERNMENT_ADMINISTRATION"),
    ("Energy", "OIL_ENERGY"),
    ("Non-profit", "NON_PROFIT_ORGANIZATION_MANAGEMENT"),
    ("Logistics", "LOGISTICS_AND_SUPPLY_CHAIN"),
];

const DEAL_STAGES: [&str; 7] = [
    "appointmentscheduled",
    "qualifiedtobuy",
    "presentationscheduled",
    "decisionmakerboughtin",
    "contractsent",
    "closedwon",
    "closedlost",
];

/// Where a property's value lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Storage {
    Slot(usize),
    ObjectId,
    Created,
    Modified,
}

#[derive(Debug, Clone)]
pub(crate) struct PropertyDef {
    pub(crate) name: String,
    pub(crate) label: String,
    /// `string`, `number`, `date`, `datetime`, `enumeration`, `bool`.
    pub(crate) kind: String,
    pub(crate) field_type: String,
    pub(crate) group: String,
    pub(crate) description: String,
    /// (label, value)
    pub(crate) options: Vec<(String, String)>,
    pub(crate) hubspot_defined: bool,
    pub(crate) storage: Storage,
    pub(crate) created_ms: i64,
}

impl PropertyDef {
    pub(crate) fn read_only(&self) -> bool {
        !matches!(self.storage, Storage::Slot(_))
    }

    pub(crate) fn is_numeric(&self) -> bool {
        matches!(self.kind.as_str(), "number" | "date" | "datetime")
    }

    pub(crate) fn to_json(&self) -> serde_json::Value {
        let options: Vec<_> = self
            .options
            .iter()
            .enumerate()
            .map(|(i, (label, value))| {
                serde_json::json!({"label": label, "value": value, "displayOrder": i, "hidden": false})
            })
            .collect();
        let stamp = clock::iso_utc(self.created_ms);
        serde_json::json!({
            "name": self.name, "label": self.label, "type": self.kind, "fieldType": self.field_type,
            "description": self.description, "groupName": self.group, "options": options,
            "displayOrder": -1, "calculated": false, "externalOptions": false, "hasUniqueValue": false,
            "hidden": false, "hubspotDefined": self.hubspot_defined, "formField": !self.read_only(),
            "createdAt": stamp, "updatedAt": stamp, "archived": false,
            "modificationMetadata": {"archivable": !self.hubspot_defined, "readOnlyDefinition": self.hubspot_defined,
                "readOnlyValue": self.read_only()},
        })
    }
}

#[derive(Debug, Clone)]
pub(crate) struct PropertyGroup {
    pub(crate) name: String,
    pub(crate) label: String,
    pub(crate) display_order: i64,
}

impl PropertyGroup {
    pub(crate) fn to_json(&self) -> serde_json::Value {
        serde_json::json!({"name": self.name, "label": self.label, "displayOrder": self.display_order, "archived": false})
    }
}

/// The company property schema: HubSpot's native properties, the seeded custom ones, and
/// any created through the API.
#[derive(Debug, Default)]
pub(crate) struct Schema {
    pub(crate) defs: Vec<PropertyDef>,
    by_name: HashMap<String, usize>,
    pub(crate) groups: Vec<PropertyGroup>,
    slots: usize,
}

/// What a new property looks like, before it gets a slot.
pub(crate) struct NewProperty<'a> {
    pub(crate) name: &'a str,
    pub(crate) label: &'a str,
    pub(crate) kind: &'a str,
    pub(crate) field_type: &'a str,
    pub(crate) group: &'a str,
    pub(crate) options: Vec<(String, String)>,
    pub(crate) description: &'a str,
}

impl Schema {
    pub(crate) fn get(&self, name: &str) -> Option<&PropertyDef> {
        self.by_name.get(name).map(|&i| &self.defs[i])
    }

    pub(crate) fn index(&self, name: &str) -> Option<usize> {
        self.by_name.get(name).copied()
    }

    pub(crate) fn group_exists(&self, name: &str) -> bool {
        self.groups.iter().any(|g| g.name == name)
    }

    pub(crate) fn add_group(&mut self, name: &str, label: &str) {
        let display_order = self.groups.len() as i64;
        self.groups.push(PropertyGroup {
            name: name.into(),
            label: label.into(),
            display_order,
        });
    }

    fn add_virtual(&mut self, name: &str, label: &str, kind: &str, field_type: &str, storage: Storage) {
        self.by_name.insert(name.to_string(), self.defs.len());
        self.defs.push(PropertyDef {
            name: name.into(),
            label: label.into(),
            kind: kind.into(),
            field_type: field_type.into(),
            group: "companyinformation".into(),
            description: String::new(),
            options: Vec::new(),
            hubspot_defined: true,
            storage,
            created_ms: 0,
        });
    }

    /// Adds a stored property; returns its slot.
    pub(crate) fn add(&mut self, p: NewProperty<'_>, hubspot_defined: bool, created_ms: i64) -> usize {
        let slot = self.slots;
        self.slots += 1;
        self.by_name.insert(p.name.to_string(), self.defs.len());
        self.defs.push(PropertyDef {
            name: p.name.into(),
            label: p.label.into(),
            kind: p.kind.into(),
            field_type: p.field_type.into(),
            group: p.group.into(),
            description: p.description.into(),
            options: p.options,
            hubspot_defined,
            storage: Storage::Slot(slot),
            created_ms,
        });
        slot
    }

    /// HubSpot's default company properties and tierd's seeded custom ones. Slot numbers are
    /// fixed by this order (see the `S_*` constants).
    fn seeded(technologies: &[&str], tierd_properties: bool, created_ms: i64) -> Schema {
        let mut s = Schema::default();
        s.add_group("companyinformation", "Company information");
        s.add_group("account_data", "Account data");
        s.add_virtual("hs_object_id", "Record ID", "number", "number", Storage::ObjectId);
        s.add_virtual("createdate", "Create Date", "datetime", "date", Storage::Created);
        s.add_virtual(
            "hs_lastmodifieddate",
            "Last Modified Date",
            "datetime",
            "date",
            Storage::Modified,
        );
        let opts = |v: &[&str]| {
            v.iter()
                .map(|x| (x.to_string(), x.to_string()))
                .collect::<Vec<_>>()
        };
        let bools = vec![
            ("True".to_string(), "true".to_string()),
            ("False".to_string(), "false".to_string()),
        ];
        let native = |name, label, kind, field_type, options| NewProperty {
            name,
            label,
            kind,
            field_type,
            group: "companyinformation",
            options,
            description: "",
        };
        let custom = |name, label, kind, field_type, options| NewProperty {
            group: "account_data",
            ..native(name, label, kind, field_type, options)
        };
        let industries = INDUSTRY_VALUES
            .iter()
            .map(|(g, v)| (g.to_string(), v.to_string()))
            .collect();
        let tiers = opts(&["tier_1", "tier_2", "tier_3"]);
        let defs = [
            (native("name", "Name", "string", "text", vec![]), true),
            (
                native("domain", "Company Domain Name", "string", "text", vec![]),
                true,
            ),
            (
                native("industry", "Industry", "enumeration", "select", industries),
                true,
            ),
            (
                native(
                    "numberofemployees",
                    "Number of Employees",
                    "number",
                    "number",
                    vec![],
                ),
                true,
            ),
            (
                native("annualrevenue", "Annual Revenue", "number", "number", vec![]),
                true,
            ),
            (
                native("country", "Country/Region", "string", "text", vec![]),
                true,
            ),
            (
                native(
                    "web_technologies",
                    "Web Technologies",
                    "enumeration",
                    "checkbox",
                    opts(technologies),
                ),
                true,
            ),
            (
                native(
                    "hs_ideal_customer_profile",
                    "Ideal Customer Profile Tier",
                    "enumeration",
                    "radio",
                    tiers,
                ),
                true,
            ),
            (
                native(
                    "hs_is_target_account",
                    "Target Account",
                    "enumeration",
                    "booleancheckbox",
                    bools.clone(),
                ),
                true,
            ),
            (custom("region", "Region", "string", "text", vec![]), false),
            (
                custom("org_type", "Organisation type", "string", "text", vec![]),
                false,
            ),
            (
                custom("current_vendor", "Current vendor", "string", "text", vec![]),
                false,
            ),
            (
                custom(
                    "contract_renewal_date",
                    "Contract renewal date",
                    "date",
                    "date",
                    vec![],
                ),
                false,
            ),
            (
                custom(
                    "is_competitor_customer",
                    "Competitor customer",
                    "enumeration",
                    "booleancheckbox",
                    bools,
                ),
                false,
            ),
            (
                custom(
                    "site_visits_30d",
                    "Site visits (30 days)",
                    "number",
                    "number",
                    vec![],
                ),
                false,
            ),
            (
                custom(
                    "demo_request_dates",
                    "Demo request dates",
                    "string",
                    "text",
                    vec![],
                ),
                false,
            ),
            (
                custom("webinar_dates", "Webinar dates", "string", "text", vec![]),
                false,
            ),
            (
                custom(
                    "content_download_dates",
                    "Content download dates",
                    "string",
                    "text",
                    vec![],
                ),
                false,
            ),
            (
                custom("expected_acv", "Expected ACV", "number", "number", vec![]),
                false,
            ),
        ];
        for (p, native) in defs {
            s.add(p, native, created_ms);
        }
        if tierd_properties {
            s.add_tierd(created_ms);
        }
        s
    }

    /// The properties tierd's connector creates in `ensure_schema`, for worlds that start with them.
    fn add_tierd(&mut self, created_ms: i64) {
        self.add_group("tierd", "tierd");
        let tiers = ["tier_1", "tier_2", "tier_3", "untiered"]
            .iter()
            .map(|t| (t.to_string(), t.to_string()));
        let bools = vec![
            ("True".to_string(), "true".to_string()),
            ("False".to_string(), "false".to_string()),
        ];
        let p = |name, label, kind, field_type, options| NewProperty {
            name,
            label,
            kind,
            field_type,
            group: "tierd",
            options,
            description: "",
        };
        for prop in [
            p("tierd_tier", "Tier", "enumeration", "select", tiers.collect()),
            p("tierd_score", "Tier score", "number", "number", vec![]),
            p("tierd_scored_at", "Tier scored at", "datetime", "date", vec![]),
            p("tierd_model", "Tier model", "string", "text", vec![]),
            p("tierd_reason", "Tier reason", "string", "textarea", vec![]),
            p(
                "tierd_tier_locked",
                "Tier locked",
                "enumeration",
                "booleancheckbox",
                bools,
            ),
        ] {
            self.add(prop, false, created_ms);
        }
    }
}

// Slots of the seeded properties, in `Schema::seeded` order.
const S_NAME: usize = 0;
const S_DOMAIN: usize = 1;
const S_INDUSTRY: usize = 2;
const S_EMPLOYEES: usize = 3;
const S_REVENUE: usize = 4;
const S_COUNTRY: usize = 5;
const S_TECH: usize = 6;
const S_TARGET: usize = 8;
const S_REGION: usize = 9;
const S_ORG_TYPE: usize = 10;
const S_VENDOR: usize = 11;
const S_RENEWAL: usize = 12;
const S_COMPETITOR: usize = 13;
const S_VISITS: usize = 14;
const S_DEMOS: usize = 15;
const S_WEBINARS: usize = 16;
const S_DOWNLOADS: usize = 17;
const S_ACV: usize = 18;
const SEEDED_SLOTS: usize = 19;

pub(crate) type Value = Option<Box<str>>;

#[derive(Debug, Clone)]
pub(crate) struct Company {
    values: Vec<Value>,
    pub(crate) created_ms: i64,
    pub(crate) modified_ms: i64,
}

impl Company {
    pub(crate) fn slot(&self, slot: usize) -> Option<&str> {
        self.values.get(slot).and_then(|v| v.as_deref())
    }

    fn set(&mut self, slot: usize, v: Value) {
        if self.values.len() <= slot {
            self.values.resize(slot + 1, None);
        }
        self.values[slot] = v;
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Deal {
    pub(crate) id: u64,
    pub(crate) name: String,
    pub(crate) amount: u64,
    /// Whether it is won when it closes (drawn at seeding: the emulator's script).
    pub(crate) won: bool,
    /// Its stage while open.
    pub(crate) open_stage: &'static str,
    pub(crate) pipeline: &'static str,
    pub(crate) close_ms: i64,
    pub(crate) created_ms: i64,
}

pub(crate) const DEAL_PROPERTIES: [&str; 18] = [
    "dealname",
    "amount",
    "dealstage",
    "pipeline",
    "closedate",
    "createdate",
    "hs_lastmodifieddate",
    "hs_object_id",
    "hs_is_closed",
    "hs_is_closed_won",
    "deal_currency_code",
    // Stage-calculated properties, one per stage of the default pipeline.
    "hs_v2_date_entered_appointmentscheduled",
    "hs_v2_date_entered_qualifiedtobuy",
    "hs_v2_date_entered_presentationscheduled",
    "hs_v2_date_entered_decisionmakerboughtin",
    "hs_v2_date_entered_contractsent",
    "hs_v2_date_entered_closedwon",
    "hs_v2_date_entered_closedlost",
];

impl Deal {
    /// Whether the deal exists at `now` (epoch ms of the deal clock): created by then.
    pub(crate) fn visible(&self, now: i64) -> bool {
        self.created_ms <= now
    }

    /// Closed by `now`.
    pub(crate) fn is_closed(&self, now: i64) -> bool {
        self.close_ms <= now
    }

    /// Its stage at `now`: the open stage until its close date, then won or lost.
    pub(crate) fn stage(&self, now: i64) -> &'static str {
        match (self.is_closed(now), self.won) {
            (false, _) => self.open_stage,
            (true, true) => "closedwon",
            (true, false) => "closedlost",
        }
    }

    /// Its last change by `now`: creation, or its close.
    fn modified_ms(&self, now: i64) -> i64 {
        if self.is_closed(now) {
            self.close_ms.max(self.created_ms)
        } else {
            self.created_ms
        }
    }

    pub(crate) fn property(&self, name: &str, now: i64) -> Option<String> {
        let stage = self.stage(now);
        let closed = self.is_closed(now);
        Some(match name {
            "dealname" => self.name.clone(),
            "amount" => self.amount.to_string(),
            "dealstage" => stage.to_string(),
            "pipeline" => self.pipeline.to_string(),
            "closedate" => clock::iso_utc(self.close_ms),
            "createdate" => clock::iso_utc(self.created_ms),
            "hs_lastmodifieddate" => clock::iso_utc(self.modified_ms(now)),
            "hs_object_id" => self.id.to_string(),
            "hs_is_closed" => closed.to_string(),
            "hs_is_closed_won" => (stage == "closedwon").to_string(),
            "deal_currency_code" => "USD".to_string(),
            other => {
                // Every deal entered the first stage when created, and its closing stage on its
                // close date; the stages between are not dated (HubSpot leaves them empty when
                // a deal skipped them).
                let stage = other.strip_prefix("hs_v2_date_entered_")?;
                if stage == DEAL_STAGES[0] {
                    clock::iso_utc(self.created_ms)
                } else if stage == self.stage(now) && closed {
                    clock::iso_utc(self.close_ms)
                } else {
                    return None;
                }
            }
        })
    }

    /// `{"id","properties",...}` with the requested (or default) properties.
    pub(crate) fn render(&self, props: &[&str], now: i64, out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"id\":\"");
        out.extend_from_slice(self.id.to_string().as_bytes());
        out.extend_from_slice(b"\",\"properties\":{");
        let always = ["createdate", "hs_lastmodifieddate", "hs_object_id"];
        let extra = always.iter().filter(|a| !props.contains(a));
        for (i, name) in props.iter().chain(extra).enumerate() {
            if i > 0 {
                out.push(b',');
            }
            push_json_str(out, name);
            out.push(b':');
            match self.property(name, now) {
                Some(v) => push_json_str(out, &v),
                None => out.extend_from_slice(b"null"),
            }
        }
        out.extend_from_slice(b"},\"createdAt\":\"");
        out.extend_from_slice(clock::iso_utc(self.created_ms).as_bytes());
        out.extend_from_slice(b"\",\"updatedAt\":\"");
        out.extend_from_slice(clock::iso_utc(self.modified_ms(now)).as_bytes());
        out.extend_from_slice(b"\",\"archived\":false}");
    }
}

/// A contact and the company it is associated with.
#[derive(Debug, Clone)]
pub(crate) struct Contact {
    pub(crate) id: u64,
    pub(crate) person: Person,
    pub(crate) created_ms: i64,
}

/// The contact properties the emulator holds (HubSpot's default contact properties by their
/// internal names).
pub(crate) const CONTACT_PROPERTIES: [&str; 10] = [
    "email",
    "firstname",
    "lastname",
    "phone",
    "mobilephone",
    "country",
    "zip",
    "createdate",
    "lastmodifieddate",
    "hs_object_id",
];

/// What a contact read returns without `properties` (HubSpot's defaults for contacts).
pub(crate) const CONTACT_DEFAULTS: [&str; 3] = ["email", "firstname", "lastname"];

impl Contact {
    pub(crate) fn property(&self, name: &str) -> Option<String> {
        let p = &self.person;
        match name {
            "email" => p.email.clone(),
            "firstname" => Some(p.first_name.to_string()),
            "lastname" => Some(p.last_name.to_string()),
            "phone" => p.phone.clone(),
            "mobilephone" => p.mobile.clone(),
            "country" => p.country.map(str::to_string),
            "zip" => p.zip.clone(),
            "createdate" | "lastmodifieddate" => Some(clock::iso_utc(self.created_ms)),
            "hs_object_id" => Some(self.id.to_string()),
            _ => None,
        }
    }

    /// `{"id","properties",...}` with the requested properties (and the ones always sent).
    pub(crate) fn render(&self, props: &[&str], out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"id\":\"");
        out.extend_from_slice(self.id.to_string().as_bytes());
        out.extend_from_slice(b"\",\"properties\":{");
        let always = ["createdate", "lastmodifieddate", "hs_object_id"];
        let extra = always.iter().filter(|a| !props.contains(a));
        for (i, name) in props.iter().chain(extra).enumerate() {
            if i > 0 {
                out.push(b',');
            }
            push_json_str(out, name);
            out.push(b':');
            match self.property(name) {
                Some(v) => push_json_str(out, &v),
                None => out.extend_from_slice(b"null"),
            }
        }
        let stamp = clock::iso_utc(self.created_ms);
        out.extend_from_slice(b"},\"createdAt\":\"");
        out.extend_from_slice(stamp.as_bytes());
        out.extend_from_slice(b"\",\"updatedAt\":\"");
        out.extend_from_slice(stamp.as_bytes());
        out.extend_from_slice(b"\",\"archived\":false}");
    }
}

/// Old values of a company the search index has not caught up with yet.
#[derive(Debug)]
struct Stale {
    slots: Vec<(usize, Value)>,
    modified_ms: i64,
    visible_at: Instant,
}

/// One property value as a reader sees it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Val<'a> {
    Null,
    Text(&'a str),
    /// Epoch milliseconds (`createdate`, `hs_lastmodifieddate`).
    Ms(i64),
    Id(u64),
}

impl Val<'_> {
    pub(crate) fn render(self, out: &mut Vec<u8>) {
        match self {
            Val::Null => out.extend_from_slice(b"null"),
            Val::Text(s) => push_json_str(out, s),
            Val::Ms(ms) => push_json_str(out, &clock::iso_utc(ms)),
            Val::Id(id) => {
                out.push(b'"');
                out.extend_from_slice(id.to_string().as_bytes());
                out.push(b'"');
            }
        }
    }

    pub(crate) fn to_owned_string(self) -> Option<String> {
        match self {
            Val::Null => None,
            Val::Text(s) => Some(s.to_string()),
            Val::Ms(ms) => Some(clock::iso_utc(ms)),
            Val::Id(id) => Some(id.to_string()),
        }
    }
}

/// Which copy of the data a read sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum View {
    Live,
    Search,
}

#[derive(Debug)]
pub(crate) struct World {
    pub(crate) schema: Schema,
    pub(crate) companies: Vec<Company>,
    pub(crate) deals: Vec<Deal>,
    /// Per company, the range of its deals in `deals`.
    deal_ranges: Vec<(u32, u8)>,
    /// Contacts by id (so by company).
    pub(crate) contacts: Vec<Contact>,
    /// Per company, the range of its contacts in `contacts`.
    contact_ranges: Vec<(u32, u8)>,
    stale: HashMap<u32, Stale>,
    pending: VecDeque<(Instant, u32)>,
    /// Bumped whenever what search sees changes; keys the search cache.
    pub(crate) generation: u64,
    /// The latest seeded modification stamp.
    pub(crate) seeded_until_ms: i64,
    /// The deal clock (epoch ms): deals created after it do not exist yet, and deals close
    /// when it passes their close date. Starts at as-of; [`World::advance_deals`] moves it.
    pub(crate) deals_now_ms: i64,
}

fn list(dates: &[impl std::fmt::Display]) -> Value {
    if dates.is_empty() {
        return None;
    }
    let mut s = String::new();
    for (i, d) in dates.iter().enumerate() {
        if i > 0 {
            s.push(';');
        }
        s.push_str(&d.to_string());
    }
    Some(s.into())
}

fn company_values(a: &SyntheticAccount) -> Vec<Value> {
    let text = |s: &str| Some(Box::<str>::from(s));
    let num = |n: Option<u64>| n.map(|n| n.to_string().into_boxed_str());
    let mut v: Vec<Value> = vec![None; SEEDED_SLOTS];
    v[S_NAME] = text(&a.name);
    v[S_DOMAIN] = text(&a.domain);
    v[S_INDUSTRY] = a
        .industry
        .and_then(|i| INDUSTRY_VALUES.iter().find(|(g, _)| *g == i))
        .map(|(_, h)| Box::from(*h));
    v[S_EMPLOYEES] = num(a.employee_count);
    v[S_REVENUE] = num(a.annual_revenue);
    v[S_COUNTRY] = a.country.map(Box::from);
    v[S_TECH] = list(&a.technologies);
    v[S_REGION] = a.region.map(Box::from);
    v[S_ORG_TYPE] = a.org_type.map(Box::from);
    v[S_VENDOR] = a.current_vendor.map(Box::from);
    v[S_RENEWAL] = a.renewal_date.map(|d| d.to_string().into_boxed_str());
    v[S_COMPETITOR] = a
        .is_competitor
        .map(|b| Box::from(if b { "true" } else { "false" }));
    v[S_VISITS] = num(Some(a.site_visits_30d));
    v[S_DEMOS] = list(&a.demo_requests);
    v[S_WEBINARS] = list(&a.webinars);
    v[S_DOWNLOADS] = list(&a.content_downloads);
    v[S_ACV] = num(a.expected_acv);
    v[S_TARGET] = is_target_account(a).then(|| Box::from("true"));
    v
}

/// Whether the seeded portal has the company on its target-account list (`hs_is_target_account`).
/// A sales team's hand-made list: the large companies by head count as the CRM knows it, whatever
/// their fit otherwise, so the funnel report can set tierd's tiers beside it.
fn is_target_account(a: &SyntheticAccount) -> bool {
    a.employee_count.is_some_and(|n| n >= 1000)
}

impl World {
    /// Seeds `accounts` companies (and their deals) from the generator.
    pub(crate) fn seed(opts: GenOptions, accounts: u64, tierd_properties: bool) -> World {
        let as_of_ms = i64::from(opts.as_of.days()) * DAY_MS;
        let mut companies = Vec::with_capacity(accounts as usize);
        let mut deals = Vec::new();
        let mut deal_ranges = Vec::with_capacity(accounts as usize);
        let mut contacts = Vec::new();
        let mut contact_ranges = Vec::with_capacity(accounts as usize);
        let mut techs: Vec<&'static str> = Vec::new();
        let mut seeded_until_ms = as_of_ms - DAY_MS;
        for (k, a) in Generator::new(opts).take(accounts as usize).enumerate() {
            for t in &a.technologies {
                if !techs.contains(t) {
                    techs.push(t);
                }
            }
            let h = splitmix(opts.seed ^ (k as u64).wrapping_mul(0x9E37));
            let created_ms = as_of_ms - (365 + (h % 1500) as i64) * DAY_MS - (h >> 40) as i64 % DAY_MS;
            let modified_ms = as_of_ms - 1 - ((h >> 20) % (30 * DAY_MS as u64)) as i64;
            seeded_until_ms = seeded_until_ms.max(modified_ms);
            // Deals follow the generator's hidden quality: better accounts open more deals,
            // win more of them and close faster, so a model that reads the facts behind quality
            // shows lift in the funnel and a random one does not.
            let q = f64::from(a.quality) / 1000.0;
            let jitter = ((h >> 12) % 1000) as f64 / 1000.0;
            let n_deals = (0.2 + 2.4 * q + jitter - 0.5).round().clamp(0.0, 3.0) as u64;
            // The script goes on after as-of: one more deal, opened within the next
            // FUTURE_DAYS, for about a third of the companies (more of the better ones). It is
            // invisible until the deal clock ([`World::advance_deals`]) passes its creation.
            let future = splitmix(h ^ 0xF0);
            let n_future = u64::from(((future % 1000) as f64) < (0.10 + 0.45 * q) * 1000.0);
            deal_ranges.push((deals.len() as u32, (n_deals + n_future) as u8));
            for j in 0..n_deals + n_future {
                let d = splitmix(h ^ (j + 1));
                let deal_created = if j < n_deals {
                    // Created in the 18 months before as-of, never before the company.
                    (as_of_ms - ((d % 540) as i64 + 1) * DAY_MS).max(created_ms + DAY_MS)
                } else {
                    as_of_ms
                        + ((future >> 16) % FUTURE_DAYS as u64) as i64 * DAY_MS
                        + ((future >> 40) % 36_000_000) as i64
                        + 1
                };
                let cycle_days = 15 + ((1.0 - q) * 90.0) as i64 + ((d >> 24) % 30) as i64;
                let close_ms = deal_created + cycle_days * DAY_MS;
                let p_win = 0.08 + 0.55 * q;
                deals.push(Deal {
                    id: FIRST_DEAL_ID + k as u64 * 4 + j,
                    name: format!("{} - deal {}", a.name, j + 1),
                    amount: (a.expected_acv.unwrap_or(20_000) / 1000 * (50 + (d >> 8) % 100)) * 10,
                    won: (((d >> 32) % 1000) as f64) < p_win * 1000.0,
                    open_stage: DEAL_STAGES[((d >> 16) % 5) as usize],
                    pipeline: if (d >> 44) % 5 == 0 { "renewals" } else { "default" },
                    close_ms,
                    created_ms: deal_created,
                });
            }
            let people = people_of(opts.seed, k as u64, &a);
            contact_ranges.push((contacts.len() as u32, people.len() as u8));
            for (j, person) in people.into_iter().enumerate() {
                contacts.push(Contact {
                    id: FIRST_CONTACT_ID + k as u64 * 4 + j as u64,
                    person,
                    created_ms: created_ms + (j as i64 + 1) * DAY_MS,
                });
            }
            companies.push(Company {
                values: company_values(&a),
                created_ms,
                modified_ms,
            });
        }
        World {
            schema: Schema::seeded(&techs, tierd_properties, as_of_ms - 2000 * DAY_MS),
            companies,
            deals,
            deal_ranges,
            contacts,
            contact_ranges,
            stale: HashMap::new(),
            pending: VecDeque::new(),
            generation: 0,
            seeded_until_ms,
            deals_now_ms: as_of_ms,
        }
    }

    /// Moves the deal clock to `to_ms` (never back): deals created by then appear, open deals
    /// whose close date has passed close won or lost, as the seeded script says. Each company
    /// with such a deal is modified at `stamp`, as HubSpot's deal roll-ups on the company
    /// (`num_associated_deals`, `hs_num_open_deals`, `recent_deal_close_date`) change its
    /// `hs_lastmodifieddate`, so an incremental pull sees it. Returns (opened, closed) deals.
    pub(crate) fn advance_deals(
        &mut self,
        to_ms: i64,
        stamp: i64,
        lag: Duration,
        now: Instant,
    ) -> (u64, u64) {
        let from = self.deals_now_ms;
        if to_ms <= from {
            return (0, 0);
        }
        let (mut opened, mut closed) = (0, 0);
        let mut touched = Vec::new();
        for k in 0..self.companies.len() as u32 {
            let mut changed = false;
            for d in self.deals_of(k) {
                let opens = !d.visible(from) && d.visible(to_ms);
                let closes = !d.is_closed(from) && d.is_closed(to_ms);
                opened += u64::from(opens);
                closed += u64::from(closes);
                changed |= opens || closes;
            }
            if changed {
                touched.push(k);
            }
        }
        self.deals_now_ms = to_ms;
        for k in touched {
            self.write(k, Vec::new(), stamp, lag, now);
        }
        self.generation += 1;
        (opened, closed)
    }

    /// Index of company `id`, if it exists.
    pub(crate) fn company_index(&self, id: &str) -> Option<u32> {
        let n: u64 = id.parse().ok()?;
        let k = n.checked_sub(FIRST_COMPANY_ID)?;
        (k < self.companies.len() as u64 && id.len() == 10).then_some(k as u32)
    }

    pub(crate) fn deals_of(&self, k: u32) -> &[Deal] {
        let (start, n) = self.deal_ranges[k as usize];
        &self.deals[start as usize..start as usize + n as usize]
    }

    pub(crate) fn contacts_of(&self, k: u32) -> &[Contact] {
        let (start, n) = self.contact_ranges[k as usize];
        &self.contacts[start as usize..start as usize + n as usize]
    }

    pub(crate) fn contact_index(&self, id: &str) -> Option<usize> {
        let n: u64 = id.parse().ok()?;
        self.contacts.binary_search_by_key(&n, |c| c.id).ok()
    }

    pub(crate) fn deal_index(&self, id: &str) -> Option<usize> {
        let n: u64 = id.parse().ok()?;
        self.deals.binary_search_by_key(&n, |d| d.id).ok()
    }

    /// The value of property `def` on company `k`, as `view` sees it.
    pub(crate) fn value(&self, k: u32, def: &PropertyDef, view: View) -> Val<'_> {
        let c = &self.companies[k as usize];
        let stale = match view {
            View::Search => self.stale.get(&k),
            View::Live => None,
        };
        match def.storage {
            Storage::ObjectId => Val::Id(FIRST_COMPANY_ID + u64::from(k)),
            Storage::Created => Val::Ms(c.created_ms),
            Storage::Modified => Val::Ms(stale.map_or(c.modified_ms, |s| s.modified_ms)),
            Storage::Slot(slot) => {
                if let Some((_, old)) = stale.and_then(|s| s.slots.iter().find(|(s, _)| *s == slot)) {
                    return old.as_deref().map_or(Val::Null, Val::Text);
                }
                c.slot(slot).map_or(Val::Null, Val::Text)
            }
        }
    }

    /// Applies one company write at `stamp`; with a lag, search keeps seeing the old values
    /// until `now + lag`.
    pub(crate) fn write(
        &mut self,
        k: u32,
        values: Vec<(usize, Value)>,
        stamp: i64,
        lag: Duration,
        now: Instant,
    ) {
        let c = &mut self.companies[k as usize];
        if lag.is_zero() {
            self.generation += 1;
        } else {
            let visible_at = now + lag;
            let stale = self.stale.entry(k).or_insert_with(|| Stale {
                slots: Vec::new(),
                modified_ms: c.modified_ms,
                visible_at,
            });
            for (slot, _) in &values {
                if !stale.slots.iter().any(|(s, _)| s == slot) {
                    stale.slots.push((*slot, c.slot(*slot).map(Box::from)));
                }
            }
            stale.visible_at = visible_at;
            self.pending.push_back((visible_at, k));
        }
        for (slot, v) in values {
            c.set(slot, v);
        }
        c.modified_ms = stamp;
    }

    /// Whether some lagging write has become visible to search.
    pub(crate) fn search_catch_up_due(&self, now: Instant) -> bool {
        self.pending.front().is_some_and(|(t, _)| *t <= now)
    }

    /// Lets search see the writes whose lag has passed.
    pub(crate) fn search_catch_up(&mut self, now: Instant) {
        let mut changed = false;
        while let Some(&(t, k)) = self.pending.front() {
            if t > now {
                break;
            }
            self.pending.pop_front();
            if self.stale.get(&k).is_some_and(|s| s.visible_at <= now) {
                self.stale.remove(&k);
                changed = true;
            }
        }
        if changed {
            self.generation += 1;
        }
    }
}

/// A garbage value for a numeric or date property of a malformed record.
pub(crate) fn garbage_for(def: &PropertyDef, pick: u64) -> &'static str {
    match def.kind.as_str() {
        "date" | "datetime" => ["2026-13-45", "not a date", "31/31/2026"][(pick % 3) as usize],
        _ => ["12,5OO", "n/a", "1e999x"][(pick % 3) as usize],
    }
}

/// Which properties of a company are numeric or dates and so can be spoiled.
pub(crate) const SPOILABLE: [&str; 5] = [
    "numberofemployees",
    "annualrevenue",
    "contract_renewal_date",
    "site_visits_30d",
    "expected_acv",
];

#[cfg(test)]
mod tests {
    use super::*;

    fn opts() -> GenOptions {
        GenOptions {
            seed: 5,
            as_of: "2026-11-24".parse().expect("date"),
        }
    }

    /// Won and closed deals, and deals per account, of the accounts whose hidden quality is in
    /// `range` (thousandths).
    fn outcomes(w: &World, qualities: &[u16], range: std::ops::Range<u16>) -> (u64, u64, f64) {
        let (mut won, mut closed, mut deals, mut accounts) = (0u64, 0u64, 0u64, 0u64);
        for (k, q) in qualities.iter().enumerate() {
            if !range.contains(q) {
                continue;
            }
            accounts += 1;
            for d in w.deals_of(k as u32) {
                if !d.visible(w.deals_now_ms) {
                    continue;
                }
                deals += 1;
                closed += u64::from(d.is_closed(w.deals_now_ms));
                won += u64::from(d.stage(w.deals_now_ms) == "closedwon");
            }
        }
        (won, closed, deals as f64 / accounts.max(1) as f64)
    }

    #[test]
    fn better_accounts_open_more_deals_and_win_more_of_them_the_same_for_a_seed() {
        let n = 3000;
        let w = World::seed(opts(), n, false);
        let qualities: Vec<u16> = Generator::new(opts())
            .take(n as usize)
            .map(|a| a.quality)
            .collect();
        let (won_hi, closed_hi, per_hi) = outcomes(&w, &qualities, 500..1001);
        let (won_lo, closed_lo, per_lo) = outcomes(&w, &qualities, 0..300);
        assert!(closed_hi > 30 && closed_lo > 30, "{closed_hi} {closed_lo}");
        let (rate_hi, rate_lo) = (won_hi as f64 / closed_hi as f64, won_lo as f64 / closed_lo as f64);
        assert!(rate_hi > 1.5 * rate_lo, "win rates {rate_hi} vs {rate_lo}");
        assert!(per_hi > 1.5 * per_lo, "deals per account {per_hi} vs {per_lo}");
        // Lost deals, open deals and both pipelines exist.
        assert!(w.deals.iter().any(|d| d.stage(w.deals_now_ms) == "closedlost"));
        assert!(w
            .deals
            .iter()
            .any(|d| d.visible(w.deals_now_ms) && !d.is_closed(w.deals_now_ms)));
        assert!(w.deals.iter().any(|d| d.pipeline == "renewals"));
        let again = World::seed(opts(), n, false);
        let key = |w: &World| {
            w.deals
                .iter()
                .map(|d| (d.id, d.stage(w.deals_now_ms), d.close_ms, d.amount))
                .collect::<Vec<_>>()
        };
        assert_eq!(key(&w), key(&again));
    }

    #[test]
    fn the_deal_clock_opens_the_scripted_deals_and_closes_open_ones_and_touches_their_companies() {
        let mut w = World::seed(opts(), 2000, false);
        let now = w.deals_now_ms;
        let visible = |w: &World| w.deals.iter().filter(|d| d.visible(w.deals_now_ms)).count() as u64;
        let open = |w: &World| {
            w.deals
                .iter()
                .filter(|d| d.visible(w.deals_now_ms) && !d.is_closed(w.deals_now_ms))
                .count() as u64
        };
        let hidden = w.deals.len() as u64 - visible(&w);
        assert!(
            hidden > 300,
            "about a third of 2000 companies get a later deal: {hidden}"
        );
        let (visible_before, open_before) = (visible(&w), open(&w));
        let modified_before: Vec<i64> = w.companies.iter().map(|c| c.modified_ms).collect();
        let stamp = now + 1;
        let (opened, closed) =
            w.advance_deals(now + FUTURE_DAYS * DAY_MS, stamp, Duration::ZERO, Instant::now());
        // Every scripted deal opens within FUTURE_DAYS; the counts agree with what is visible.
        assert_eq!(opened, hidden);
        assert_eq!(visible(&w), visible_before + opened);
        assert_eq!(open(&w), open_before + opened - closed);
        assert!(closed > 0);
        // Exactly the companies with a deal that opened or closed were modified at `stamp`.
        let touched = (0..w.companies.len() as u32)
            .filter(|k| {
                w.deals_of(*k).iter().any(|d| {
                    (!d.visible(now) && d.visible(w.deals_now_ms))
                        || (!d.is_closed(now) && d.is_closed(w.deals_now_ms))
                })
            })
            .count();
        let stamped = w.companies.iter().filter(|c| c.modified_ms == stamp).count();
        assert_eq!(stamped, touched);
        assert!(w
            .companies
            .iter()
            .zip(&modified_before)
            .all(|(c, before)| c.modified_ms == stamp || c.modified_ms == *before));
        // The clock never goes back.
        assert_eq!(
            w.advance_deals(now, stamp + 1, Duration::ZERO, Instant::now()),
            (0, 0)
        );
    }
}
