//! CRM fields to tierd facts: which field feeds which fact, as what type, with which
//! value translation (e.g. HubSpot's `COMPUTER_SOFTWARE` to `Software`).
//!
//! One mapping type for every CRM connector, configurable per connector; the defaults
//! follow the shared CRM contract. Parsing goes through [`FactType::parse`], the same
//! parser account files use, so a value means the same wherever it comes from.

use std::collections::BTreeMap;

use tierd_core::fact::{Fact, FactName, FactType, FactValue, Facts};
use tierd_core::tier::Tier;

use crate::connector::Quarantined;

/// One CRM field read as one fact.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldMapping {
    /// The fact it feeds (`firmographic.employee_count`).
    pub fact: FactName,
    /// The CRM field (`numberofemployees`, `NumberOfEmployees`).
    pub field: String,
    /// The fact's type.
    #[serde(rename = "type")]
    pub kind: FactType,
    /// CRM value to fact value (for enumerations and picklists); values not listed pass as they are.
    #[serde(default)]
    pub values: BTreeMap<String, String>,
}

impl FieldMapping {
    /// A mapping without value translation.
    pub(crate) fn new(fact: &str, field: &str, kind: FactType) -> FieldMapping {
        FieldMapping {
            // The defaults are literals checked by the tests below.
            fact: FactName::new(fact).unwrap_or_else(|e| panic!("default mapping: {e}")),
            field: field.to_string(),
            kind,
            values: BTreeMap::new(),
        }
    }

    /// With value translation.
    pub(crate) fn with_values(mut self, values: &[(&str, &str)]) -> FieldMapping {
        self.values = values
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        self
    }

    /// Reads this field's raw text into `facts`; an unparseable value quarantines the record.
    pub(crate) fn read(
        &self,
        record_id: &str,
        raw: Option<&str>,
        source: &str,
        facts: &mut Facts,
    ) -> Result<(), Quarantined> {
        let Some(raw) = raw.map(str::trim).filter(|s| !s.is_empty()) else {
            return Ok(());
        };
        let text = self.values.get(raw).map_or(raw, String::as_str);
        let parsed = match (self.kind, self.kind.parse(text)) {
            // CRMs send dates either as ISO strings or as epoch milliseconds.
            (FactType::Date, Err(e)) => epoch_millis_date(text).ok_or(e).map(Some),
            (_, r) => r,
        };
        match parsed {
            Ok(Some(value)) => {
                facts.insert(
                    self.fact.clone(),
                    Fact {
                        value,
                        source: source.to_string(),
                        observed_at: None,
                    },
                );
                Ok(())
            }
            Ok(None) => Ok(()),
            Err(e) => Err(Quarantined {
                id: record_id.to_string(),
                field: Some(self.field.clone()),
                reason: format!("{e} (read as {})", self.fact),
            }),
        }
    }
}

fn epoch_millis_date(text: &str) -> Option<FactValue> {
    let ms: i64 = text
        .parse()
        .ok()
        .filter(|_| text.bytes().all(|b| b.is_ascii_digit()))?;
    Some(FactValue::Date(tierd_core::Date::from_unix_seconds(ms / 1000)))
}

/// Reads the CRM's tier field: empty is no tier; a value that is not a tier quarantines the
/// record, naming the field, so a person's value tierd cannot read is reported and never
/// overwritten.
pub(crate) fn read_tier(
    record_id: &str,
    field: &str,
    raw: Option<&str>,
) -> Result<Option<Tier>, Quarantined> {
    let Some(raw) = raw.map(str::trim).filter(|s| !s.is_empty()) else {
        return Ok(None);
    };
    raw.parse()
        .map(Some)
        .map_err(|e: tierd_core::tier::TierParseError| Quarantined {
            id: record_id.to_string(),
            field: Some(field.to_string()),
            reason: format!("{e}; set a tier tierd knows or clear the field"),
        })
}

/// Reads every mapped field of one record; the first bad field quarantines it.
pub(crate) fn read_facts<'a>(
    mappings: &[FieldMapping],
    record_id: &str,
    source: &str,
    field: impl Fn(&str) -> Option<&'a str>,
) -> Result<Facts, Quarantined> {
    let mut facts = Facts::new();
    for m in mappings {
        m.read(record_id, field(&m.field), source, &mut facts)?;
    }
    Ok(facts)
}

/// The generator's industries and HubSpot's internal `industry` values (shared CRM contract).
pub(crate) const HUBSPOT_INDUSTRIES: [(&str, &str); 13] = [
    ("COMPUTER_SOFTWARE", "Software"),
    ("FINANCIAL_SERVICES", "Financial Services"),
    ("HOSPITAL_HEALTH_CARE", "Healthcare"),
    ("MACHINERY", "Manufacturing"),
    ("RETAIL", "Retail"),
    ("MANAGEMENT_CONSULTING", "Professional Services"),
    ("TELECOMMUNICATIONS", "Telecommunications"),
    ("MEDIA_PRODUCTION", "Media"),
    ("EDUCATION_MANAGEMENT", "Education"),
    ("GOVERNMENT_ADMINISTRATION", "Government"),
    ("OIL_ENERGY", "Energy"),
    ("NON_PROFIT_ORGANIZATION_MANAGEMENT", "Non-profit"),
    ("LOGISTICS_AND_SUPPLY_CHAIN", "Logistics"),
];

/// Salesforce's standard `Industry` picklist values that differ from the generator's names.
pub(crate) const SALESFORCE_INDUSTRIES: [(&str, &str); 5] = [
    ("Technology", "Software"),
    ("Finance", "Financial Services"),
    ("Consulting", "Professional Services"),
    ("Not For Profit", "Non-profit"),
    ("Transportation", "Logistics"),
];

/// The default HubSpot company mapping.
pub(crate) fn hubspot_defaults() -> Vec<FieldMapping> {
    use FactType::*;
    vec![
        FieldMapping::new("firmographic.industry", "industry", String).with_values(&HUBSPOT_INDUSTRIES),
        FieldMapping::new("firmographic.employee_count", "numberofemployees", Number),
        FieldMapping::new("firmographic.annual_revenue", "annualrevenue", Number),
        FieldMapping::new("firmographic.region", "region", String),
        FieldMapping::new("firmographic.country", "country", String),
        FieldMapping::new("firmographic.org_type", "org_type", String),
        FieldMapping::new("technographic.technologies", "web_technologies", StringList),
        FieldMapping::new("contracts.current_vendor", "current_vendor", String),
        FieldMapping::new("contracts.renewal_date", "contract_renewal_date", Date),
        FieldMapping::new("contracts.is_competitor", "is_competitor_customer", Bool),
        FieldMapping::new("engagement.site_visits_30d", "site_visits_30d", Number),
        FieldMapping::new("engagement.demo_requests", "demo_request_dates", DateList),
        FieldMapping::new("engagement.webinars", "webinar_dates", DateList),
        FieldMapping::new("engagement.content_downloads", "content_download_dates", DateList),
        FieldMapping::new("crm.expected_acv", "expected_acv", Number),
        FieldMapping::new("crm.target_account", "hs_is_target_account", Bool),
    ]
}

/// The default Salesforce Account mapping (contract facts come from Contracts, not Account fields).
pub(crate) fn salesforce_defaults() -> Vec<FieldMapping> {
    use FactType::*;
    vec![
        FieldMapping::new("firmographic.industry", "Industry", String).with_values(&SALESFORCE_INDUSTRIES),
        FieldMapping::new("firmographic.employee_count", "NumberOfEmployees", Number),
        FieldMapping::new("firmographic.annual_revenue", "AnnualRevenue", Number),
        FieldMapping::new("firmographic.region", "Region__c", String),
        FieldMapping::new("firmographic.country", "BillingCountry", String),
        FieldMapping::new("firmographic.org_type", "Org_Type__c", String),
        FieldMapping::new("technographic.technologies", "Technologies__c", StringList),
        FieldMapping::new("engagement.site_visits_30d", "Site_Visits_30d__c", Number),
        FieldMapping::new("engagement.demo_requests", "Demo_Request_Dates__c", DateList),
        FieldMapping::new("engagement.webinars", "Webinar_Dates__c", DateList),
        FieldMapping::new(
            "engagement.content_downloads",
            "Content_Download_Dates__c",
            DateList,
        ),
        FieldMapping::new("crm.expected_acv", "Expected_ACV__c", Number),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_translate_industries() {
        let maps = hubspot_defaults();
        assert_eq!(maps.len(), 16);
        assert_eq!(salesforce_defaults().len(), 12);
        let facts = read_facts(&maps, "hubspot:1", "hubspot", |f| match f {
            "industry" => Some("COMPUTER_SOFTWARE"),
            "numberofemployees" => Some("1200"),
            "contract_renewal_date" => Some("1767225600000"),
            "web_technologies" => Some("Snowflake;Segment"),
            "hs_is_target_account" => Some("true"),
            _ => None,
        })
        .expect("reads");
        let get = |n: &str| facts.get(n).map(|f| f.value.to_string());
        assert_eq!(get("firmographic.industry").as_deref(), Some("Software"));
        assert_eq!(get("firmographic.employee_count").as_deref(), Some("1200"));
        assert_eq!(get("contracts.renewal_date").as_deref(), Some("2026-01-01"));
        assert_eq!(
            get("technographic.technologies").as_deref(),
            Some("Snowflake;Segment")
        );
        assert_eq!(get("crm.target_account").as_deref(), Some("true"));
        assert_eq!(facts.len(), 5);
    }

    #[test]
    fn the_crm_tier_is_parsed_and_an_unknown_one_reported() {
        assert_eq!(
            read_tier("hubspot:1", "tierd_tier", Some(" tier_2 ")),
            Ok(Some(Tier::Tier2))
        );
        assert_eq!(read_tier("hubspot:1", "tierd_tier", Some("")), Ok(None));
        assert_eq!(read_tier("hubspot:1", "tierd_tier", None), Ok(None));
        let q = read_tier("hubspot:1", "tierd_tier", Some("Gold")).expect_err("not a tier");
        assert_eq!(
            (q.id.as_str(), q.field.as_deref()),
            ("hubspot:1", Some("tierd_tier"))
        );
        assert!(q.reason.contains("'Gold' is not a tier"), "{}", q.reason);
    }

    #[test]
    fn a_bad_value_names_the_record_and_field() {
        let q = read_facts(&hubspot_defaults(), "hubspot:7", "hubspot", |f| {
            (f == "annualrevenue").then_some("lots")
        })
        .expect_err("quarantined");
        assert_eq!(q.id, "hubspot:7");
        assert_eq!(q.field.as_deref(), Some("annualrevenue"));
        assert!(q.reason.contains("'lots' is not a number"), "{}", q.reason);
    }
}
