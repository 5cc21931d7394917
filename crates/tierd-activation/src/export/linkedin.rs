//! LinkedIn Matched Audiences company lists: the template's columns, filled from an account's
//! facts by a configurable mapping.
//!
//! The header is the Campaign Manager company-list template's, lower case, in this order:
//! `companyname,companywebsite,companyemaildomain,linkedincompanypageurl,stocksymbol,industry,
//! city,state,companycountry,zipcode` (LinkedIn rejects uploads whose template headers were
//! changed or removed; blank cells are allowed). LinkedIn's list limits: at least 300 rows to
//! upload, at most 300,000 rows or 20 MB per file (linkedin.com/help/lms/answer/a1489764).

use serde::Deserialize;
use tierd_core::fact::FactName;
use tierd_core::ConfigErrors;

use super::AudienceAccount;

/// The template's columns, in order.
pub const LINKEDIN_HEADER: [&str; 10] = [
    "companyname",
    "companywebsite",
    "companyemaildomain",
    "linkedincompanypageurl",
    "stocksymbol",
    "industry",
    "city",
    "state",
    "companycountry",
    "zipcode",
];

/// Where a column's value comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ColumnSource {
    /// The account's name.
    Name,
    /// The account's domain.
    Domain,
    /// `https://` and the account's domain.
    Website,
    /// A fact of the account (its value; a list joined with `; `).
    Fact(FactName),
    /// Always blank.
    Blank,
}

/// `[exports.linkedin]` as written: one optional source per column, each `name`, `domain`,
/// `website`, `none` or a fact name such as `firmographic.industry`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLinkedInMapping {
    #[serde(default)]
    companyname: Option<String>,
    #[serde(default)]
    companywebsite: Option<String>,
    #[serde(default)]
    companyemaildomain: Option<String>,
    #[serde(default)]
    linkedincompanypageurl: Option<String>,
    #[serde(default)]
    stocksymbol: Option<String>,
    #[serde(default)]
    industry: Option<String>,
    #[serde(default)]
    city: Option<String>,
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    companycountry: Option<String>,
    #[serde(default)]
    zipcode: Option<String>,
}

/// The checked mapping: one source per template column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkedInMapping {
    columns: [ColumnSource; 10],
}

/// The defaults: name, website and email domain from the account; the rest from firmographic
/// facts of those names, blank when the account has none.
const DEFAULTS: [&str; 10] = [
    "name",
    "website",
    "domain",
    "firmographic.linkedin_url",
    "firmographic.ticker",
    "firmographic.industry",
    "firmographic.city",
    "firmographic.state",
    "firmographic.country",
    "firmographic.postal_code",
];

fn source(text: &str) -> Result<ColumnSource, String> {
    match text.trim() {
        "name" => Ok(ColumnSource::Name),
        "domain" => Ok(ColumnSource::Domain),
        "website" => Ok(ColumnSource::Website),
        "none" | "" => Ok(ColumnSource::Blank),
        fact => FactName::new(fact).map(ColumnSource::Fact).map_err(|e| {
            format!("expected name, domain, website, none or a fact name such as firmographic.industry: {e}")
        }),
    }
}

impl Default for LinkedInMapping {
    fn default() -> Self {
        LinkedInMapping::compile(&RawLinkedInMapping::default(), "exports.linkedin")
            .expect("the default mapping is valid")
    }
}

impl LinkedInMapping {
    /// Checks a mapping; every problem is reported at `prefix.<column>`.
    pub fn compile(raw: &RawLinkedInMapping, prefix: &str) -> Result<LinkedInMapping, ConfigErrors> {
        let given = [
            &raw.companyname,
            &raw.companywebsite,
            &raw.companyemaildomain,
            &raw.linkedincompanypageurl,
            &raw.stocksymbol,
            &raw.industry,
            &raw.city,
            &raw.state,
            &raw.companycountry,
            &raw.zipcode,
        ];
        let mut errors = ConfigErrors::default();
        let mut columns: [ColumnSource; 10] = std::array::from_fn(|_| ColumnSource::Blank);
        for (i, value) in given.into_iter().enumerate() {
            match source(value.as_deref().unwrap_or(DEFAULTS[i])) {
                Ok(s) => columns[i] = s,
                Err(e) => errors.push(format!("{prefix}.{}", LINKEDIN_HEADER[i]), e),
            }
        }
        errors.into_result(LinkedInMapping { columns })
    }

    /// The template row for an account.
    pub(crate) fn row(&self, a: &AudienceAccount) -> Vec<String> {
        self.columns
            .iter()
            .map(|c| match c {
                ColumnSource::Name => a.name.clone(),
                ColumnSource::Domain => a.domain.clone().unwrap_or_default(),
                ColumnSource::Website => a
                    .domain
                    .as_ref()
                    .map(|d| format!("https://{d}"))
                    .unwrap_or_default(),
                ColumnSource::Fact(name) => fact_text(&a.facts, name.as_str()),
                ColumnSource::Blank => String::new(),
            })
            .collect()
    }
}

/// A fact's value as cell text: the store's facts JSON holds `{name: {value, source,
/// observed_at}}`; a bare value is read as the value.
fn fact_text(facts: &serde_json::Value, name: &str) -> String {
    let fact = &facts[name];
    let value = match fact.get("value") {
        Some(v) => v,
        None => fact,
    };
    text(value)
}

fn text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Null => String::new(),
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Array(items) => items.iter().map(text).collect::<Vec<_>>().join("; "),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_source_is_reported_at_its_column() {
        let raw: RawLinkedInMapping =
            toml::from_str("industry = \"Industry!\"\ncity = \"none\"").expect("parse");
        let errors = LinkedInMapping::compile(&raw, "exports.linkedin").expect_err("invalid");
        assert_eq!(errors.0.len(), 1);
        assert_eq!(errors.0[0].path, "exports.linkedin.industry");
    }

    #[test]
    fn unknown_columns_are_refused() {
        assert!(toml::from_str::<RawLinkedInMapping>("company = \"name\"").is_err());
    }
}
