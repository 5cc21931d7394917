//! The one JSON form of facts, used wherever facts are kept or carried as JSON: the store's
//! account state, the work queue's items, the plugin protocol's fact maps and the admin API.
//!
//! It is schema-aware: a value is read as the type the model declares for its fact, item by item
//! for lists, so a list item holding `;` or `,` survives any number of round trips (the flat text
//! form with [`LIST_SEPARATOR`](crate::fact::LIST_SEPARATOR) is for CSV cells and CRM text fields
//! only, and is accepted here as input from those).
//!
//! A stored fact is `{"value": V, "source": S, "observed_at": "YYYY-MM-DD"}` plus, when set,
//! `"stale": true` (a plugin failed and this is its previous answer) and `"replaced": {...}` (the
//! fact a plugin's answer replaced, kept so that the account's own CRM value is not lost when the
//! account is re-enriched from storage).
//!
//! Must not: know where the JSON goes (store, queue, HTTP).

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::date::Date;
use crate::fact::{Fact, FactName, FactType, FactValue, FactValueError, Facts};
use crate::model::FactSchema;

/// A value as JSON: numbers, strings and booleans as themselves, dates as `YYYY-MM-DD`, lists
/// as arrays.
pub fn value_to_json(value: &FactValue) -> Value {
    match value {
        FactValue::Number(n) => serde_json::Number::from_f64(*n).map_or(Value::Null, Value::Number),
        FactValue::String(s) => Value::String(s.clone()),
        FactValue::Bool(b) => Value::Bool(*b),
        FactValue::Date(d) => Value::String(d.to_string()),
        FactValue::StringList(items) => Value::Array(items.iter().cloned().map(Value::String).collect()),
        FactValue::DateList(items) => {
            Value::Array(items.iter().map(|d| Value::String(d.to_string())).collect())
        }
    }
}

/// Reads a JSON value as a fact of type `ty`; `null` (and an empty text or list) is no value.
/// Text is read as its flat form; a list's array items are read one by one, never joined.
pub fn value_from_json(ty: FactType, value: &Value) -> Result<Option<FactValue>, FactValueError> {
    let mismatch = || FactValueError {
        value: value.to_string(),
        expected: ty,
    };
    match (ty, value) {
        (_, Value::Null) => Ok(None),
        (_, Value::String(s)) => ty.parse(s),
        (FactType::Number, Value::Number(n)) => match n.as_f64() {
            Some(x) if x.is_finite() => Ok(Some(FactValue::Number(x))),
            _ => Err(mismatch()),
        },
        (FactType::Bool, Value::Bool(b)) => Ok(Some(FactValue::Bool(*b))),
        (FactType::StringList, Value::Array(items)) => {
            let mut out = Vec::with_capacity(items.len());
            for item in items {
                match item {
                    Value::String(s) if s.trim().is_empty() => {}
                    Value::String(s) => out.push(s.trim().to_string()),
                    _ => return Err(mismatch()),
                }
            }
            Ok((!out.is_empty()).then_some(FactValue::StringList(out)))
        }
        (FactType::DateList, Value::Array(items)) => {
            let mut out = Vec::with_capacity(items.len());
            for item in items {
                match item {
                    Value::String(s) if s.trim().is_empty() => {}
                    Value::String(s) => out.push(s.trim().parse::<Date>().map_err(|_| mismatch())?),
                    _ => return Err(mismatch()),
                }
            }
            out.sort_unstable_by(|a, b| b.cmp(a));
            Ok((!out.is_empty()).then_some(FactValue::DateList(out)))
        }
        _ => Err(mismatch()),
    }
}

/// One fact as kept between runs.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredFact {
    /// The fact.
    pub fact: Fact,
    /// A plugin failed this run; this is its previous answer.
    pub stale: bool,
    /// The fact this one replaced (the account's own value, when a plugin answered for it).
    pub replaced: Option<Fact>,
}

impl StoredFact {
    /// A fact that replaced nothing and is fresh.
    pub fn new(fact: Fact) -> Self {
        StoredFact {
            fact,
            stale: false,
            replaced: None,
        }
    }
}

/// Everything kept about one account's facts, by name.
pub type StoredFacts = BTreeMap<FactName, StoredFact>;

fn fact_to_json(fact: &Fact) -> Map<String, Value> {
    let mut out = Map::new();
    out.insert("value".into(), value_to_json(&fact.value));
    out.insert("source".into(), Value::String(fact.source.clone()));
    if let Some(d) = fact.observed_at {
        out.insert("observed_at".into(), Value::String(d.to_string()));
    }
    out
}

/// The stored JSON object of `facts`.
pub fn encode(facts: &StoredFacts) -> Value {
    let mut out = Map::new();
    for (name, stored) in facts {
        let mut entry = fact_to_json(&stored.fact);
        if stored.stale {
            entry.insert("stale".into(), Value::Bool(true));
        }
        if let Some(replaced) = &stored.replaced {
            entry.insert("replaced".into(), Value::Object(fact_to_json(replaced)));
        }
        out.insert(name.as_str().to_string(), Value::Object(entry));
    }
    Value::Object(out)
}

/// Why a stored fact could not be read back.
#[derive(Debug, Clone, PartialEq)]
pub struct DecodeProblem {
    /// The fact's name.
    pub fact: String,
    /// What is wrong.
    pub problem: String,
}

fn fact_from_json(ty: FactType, entry: &Value) -> Result<Option<Fact>, String> {
    let Some(value) = value_from_json(ty, &entry["value"]).map_err(|e| e.to_string())? else {
        return Ok(None);
    };
    let observed_at = match &entry["observed_at"] {
        Value::Null => None,
        Value::String(s) => Some(
            s.parse::<Date>()
                .map_err(|_| format!("observed_at '{s}' is not a date (YYYY-MM-DD)"))?,
        ),
        other => return Err(format!("observed_at {other} is not a date (YYYY-MM-DD)")),
    };
    Ok(Some(Fact {
        value,
        source: entry["source"].as_str().unwrap_or("crm").to_string(),
        observed_at,
    }))
}

/// Reads stored facts back, typed by `schema`. Facts the schema does not read are left out (they
/// are of no use to scoring); a fact that does not fit its type is left out and reported.
pub fn decode(schema: &FactSchema, stored: &Value) -> (StoredFacts, Vec<DecodeProblem>) {
    let mut facts = StoredFacts::new();
    let mut problems = Vec::new();
    let Value::Object(map) = stored else {
        return (facts, problems);
    };
    for (name, entry) in map {
        let (Some(slot), Ok(fact_name)) = (schema.slot(name), FactName::new(name)) else {
            continue;
        };
        let ty = schema.fact_type(slot);
        let fact = match fact_from_json(ty, entry) {
            Ok(Some(f)) => f,
            Ok(None) => continue,
            Err(problem) => {
                problems.push(DecodeProblem {
                    fact: name.clone(),
                    problem,
                });
                continue;
            }
        };
        let replaced = match entry.get("replaced") {
            Some(r @ Value::Object(_)) => fact_from_json(ty, r).ok().flatten(),
            _ => None,
        };
        facts.insert(
            fact_name,
            StoredFact {
                fact,
                stale: entry["stale"].as_bool().unwrap_or(false),
                replaced,
            },
        );
    }
    (facts, problems)
}

/// The facts to score: each stored fact's current value.
pub fn current(facts: &StoredFacts) -> Facts {
    facts.iter().map(|(n, s)| (n.clone(), s.fact.clone())).collect()
}

/// The account's own facts, as its source (the CRM or the file) gave them: plugin answers are
/// taken back out, and the values they replaced put back. What an account re-enriched from storage
/// starts from, so a plugin sees the same input it saw when the account was pulled.
pub fn own_facts(facts: &StoredFacts, is_own: impl Fn(&str) -> bool) -> StoredFacts {
    let mut out = StoredFacts::new();
    for (name, stored) in facts {
        let own = if is_own(&stored.fact.source) {
            Some(stored.fact.clone())
        } else {
            stored.replaced.clone()
        };
        if let Some(fact) = own {
            out.insert(name.clone(), StoredFact::new(fact));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fact::FactType;

    fn schema() -> FactSchema {
        let mut s = FactSchema::default();
        for (n, t) in [
            ("technographic.technologies", FactType::StringList),
            ("contracts.renewal_date", FactType::Date),
            ("engagement.demo_requests", FactType::DateList),
            ("firmographic.employee_count", FactType::Number),
        ] {
            s.require(&FactName::new(n).expect("name"), t).expect("slot");
        }
        s
    }

    fn fact(value: FactValue, source: &str, observed: Option<&str>) -> Fact {
        Fact {
            value,
            source: source.into(),
            observed_at: observed.map(|d| d.parse().expect("date")),
        }
    }

    #[test]
    fn list_items_holding_separators_survive_round_trips() {
        let mut facts = StoredFacts::new();
        facts.insert(
            FactName::new("technographic.technologies").expect("name"),
            StoredFact::new(fact(
                FactValue::StringList(vec!["Acme; Inc".into(), "a,b".into(), "dbt".into()]),
                "technographic",
                Some("2026-11-24"),
            )),
        );
        let mut json = encode(&facts);
        for _ in 0..3 {
            let (back, problems) = decode(&schema(), &json);
            assert!(problems.is_empty(), "{problems:?}");
            assert_eq!(back, facts);
            json = encode(&back);
        }
        assert_eq!(
            json["technographic.technologies"]["value"],
            serde_json::json!(["Acme; Inc", "a,b", "dbt"])
        );
        assert_eq!(json["technographic.technologies"]["observed_at"], "2026-11-24");
    }

    #[test]
    fn flat_text_is_still_read_for_lists_from_crm_fields() {
        let v = value_from_json(FactType::StringList, &Value::String("a; b;;c".into())).expect("ok");
        assert_eq!(
            v,
            Some(FactValue::StringList(vec!["a".into(), "b".into(), "c".into()]))
        );
        let d = value_from_json(
            FactType::DateList,
            &serde_json::json!(["2026-01-01", "2026-03-01"]),
        )
        .expect("ok");
        let expect: Vec<Date> = ["2026-03-01", "2026-01-01"]
            .iter()
            .map(|d| d.parse().expect("date"))
            .collect();
        assert_eq!(d, Some(FactValue::DateList(expect)));
        assert!(value_from_json(FactType::Number, &serde_json::json!("x")).is_err());
        assert!(value_from_json(FactType::StringList, &serde_json::json!([1])).is_err());
    }

    #[test]
    fn a_plugin_answer_keeps_the_value_it_replaced_and_own_facts_restore_it() {
        let name = FactName::new("contracts.renewal_date").expect("name");
        let crm = fact(FactValue::Date("2027-02-01".parse().expect("date")), "crm", None);
        let plugin = fact(
            FactValue::Date("2027-02-03".parse().expect("date")),
            "contract-renewals",
            Some("2026-11-24"),
        );
        let mut facts = StoredFacts::new();
        facts.insert(
            name.clone(),
            StoredFact {
                fact: plugin.clone(),
                stale: true,
                replaced: Some(crm.clone()),
            },
        );
        let tech = FactName::new("technographic.technologies").expect("name");
        facts.insert(
            tech.clone(),
            StoredFact::new(fact(
                FactValue::StringList(vec!["dbt".into()]),
                "technographic",
                None,
            )),
        );
        let (back, _) = decode(&schema(), &encode(&facts));
        assert_eq!(back, facts);
        let own = own_facts(&back, |s| s == "crm");
        assert_eq!(own.len(), 1);
        assert_eq!(own[&name].fact, crm);
        assert_eq!(current(&back)[&name], plugin);
    }

    #[test]
    fn bad_stored_values_are_reported_with_the_fact_name() {
        let json = serde_json::json!({
            "firmographic.employee_count": {"value": "many", "source": "crm"},
            "contracts.renewal_date": {"value": "2027-01-01", "source": "crm", "observed_at": "yesterday"},
            "unknown.fact": {"value": 1, "source": "crm"},
        });
        let (facts, problems) = decode(&schema(), &json);
        assert!(facts.is_empty());
        let names: Vec<&str> = problems.iter().map(|p| p.fact.as_str()).collect();
        assert_eq!(names, ["contracts.renewal_date", "firmographic.employee_count"]);
    }
}
