//! One company as either source describes it, and the `firmographic.*` facts made from it.

use serde_json::{json, Map, Value};

use crate::normalise;

/// What a source knows about a company, already in the model's vocabulary where it has one.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Company {
    pub(crate) industry: Option<String>,
    pub(crate) employee_count: Option<f64>,
    pub(crate) size_range: Option<String>,
    pub(crate) annual_revenue: Option<f64>,
    /// ISO alpha-2.
    pub(crate) country: Option<String>,
    pub(crate) org_type: Option<String>,
    pub(crate) founded_year: Option<f64>,
    pub(crate) tags: Vec<String>,
}

impl Company {
    /// A PDL Company Enrichment 200 body (fields at the top level).
    pub(crate) fn from_pdl(record: &Value) -> Company {
        let text = |field: &str| {
            record
                .get(field)
                .and_then(Value::as_str)
                .filter(|s| !s.trim().is_empty())
        };
        let size_range = text("size").map(str::to_owned);
        let employee_count = record
            .get("employee_count")
            .and_then(Value::as_f64)
            .or_else(|| size_range.as_deref().and_then(normalise::size_midpoint));
        let location = record.get("location");
        let country = location
            .and_then(|l| l.get("country"))
            .and_then(Value::as_str)
            .and_then(normalise::country_code)
            .map(str::to_owned);
        Company {
            industry: text("industry").map(normalise::industry),
            size_range: size_range.or_else(|| employee_count.map(|e| normalise::size_range(e).to_owned())),
            employee_count,
            annual_revenue: text("inferred_revenue").and_then(normalise::revenue_midpoint),
            country,
            org_type: text("type").map(normalise::org_type),
            founded_year: record.get("founded").and_then(Value::as_f64),
            tags: record
                .get("tags")
                .and_then(Value::as_array)
                .map(|t| t.iter().filter_map(Value::as_str).map(str::to_owned).collect())
                .unwrap_or_default(),
        }
    }

    /// The facts this company gives; unknown values are left out, never null.
    pub(crate) fn facts(&self) -> Map<String, Value> {
        let mut f = Map::new();
        let mut put = |name: &str, v: Value| {
            f.insert(format!("firmographic.{name}"), v);
        };
        if let Some(v) = &self.industry {
            put("industry", json!(v));
        }
        if let Some(v) = self.employee_count {
            put("employee_count", json!(v));
        }
        if let Some(v) = &self.size_range {
            put("size_range", json!(v));
        }
        if let Some(v) = self.annual_revenue {
            put("annual_revenue", json!(v));
        }
        if let Some(code) = &self.country {
            put("country", json!(code));
            if let Some(region) = normalise::region(code) {
                put("region", json!(region));
            }
        }
        if let Some(v) = &self.org_type {
            put("org_type", json!(v));
        }
        if let Some(v) = self.founded_year {
            put("founded_year", json!(v));
        }
        if !self.tags.is_empty() {
            put("tags", json!(self.tags));
        }
        f
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pdl_record_becomes_model_facts() {
        let record = json!({
            "status": 200, "name": "people data labs", "display_name": "People Data Labs",
            "size": "51-200", "employee_count": 84, "founded": 2015, "inferred_revenue": "$50M-$100M",
            "industry": "computer software", "type": "private",
            "location": {"country": "united states", "continent": "north america"},
            "tags": ["data", "b2b"], "likelihood": 6
        });
        let facts = Company::from_pdl(&record).facts();
        assert_eq!(
            Value::Object(facts),
            json!({
                "firmographic.industry": "Software", "firmographic.employee_count": 84.0,
                "firmographic.size_range": "51-200", "firmographic.annual_revenue": 75_000_000.0,
                "firmographic.country": "US", "firmographic.region": "North America",
                "firmographic.org_type": "private", "firmographic.founded_year": 2015.0,
                "firmographic.tags": ["data", "b2b"]
            })
        );
    }

    #[test]
    fn nulls_are_left_out_and_size_fills_a_missing_count() {
        let record = json!({"size": "1001-5000", "employee_count": null, "industry": null, "location": null});
        let facts = Company::from_pdl(&record).facts();
        assert_eq!(
            Value::Object(facts),
            json!({"firmographic.employee_count": 3001.0, "firmographic.size_range": "1001-5000"})
        );
    }
}
