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

use serde_json::Value;

use crate::date::Date;
use crate::fact::{Fact, FactName, FactType, FactValue, FactValueError, Facts};
use crate::model::FactSchema;

/// A value as JSON: numbers, strings and booleans as themselves, dates as `YYYY-MM-DD`, lists
/// as arrays ([`EncodedValue`] as a tree).
pub fn value_to_json(value: &FactValue) -> Value {
    serde_json::to_value(EncodedValue(value)).unwrap_or(Value::Null)
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

/// `facts` in their stored JSON form, serialised straight to text by serde (no
/// `serde_json::Value` tree in between: building, printing and dropping one was 47k
/// instructions an account of a daemon run's score stage). The one definition of the form:
/// [`encode`] is this as a tree. Keys come in the order a JSON object's sorted keys would:
/// facts by name, and a fact's `observed_at`, `replaced`, `source`, `stale`, `value`.
pub struct Encoded<'a>(pub &'a StoredFacts);

impl serde::Serialize for Encoded<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (name, stored) in self.0 {
            map.serialize_entry(
                name.as_str(),
                &EncodedFact {
                    fact: &stored.fact,
                    stale: stored.stale,
                    replaced: stored.replaced.as_ref(),
                },
            )?;
        }
        map.end()
    }
}

/// One stored fact's object (see [`Encoded`]); `replaced` is a fact's object of its own.
struct EncodedFact<'a> {
    fact: &'a Fact,
    stale: bool,
    replaced: Option<&'a Fact>,
}

impl serde::Serialize for EncodedFact<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(None)?;
        if let Some(d) = &self.fact.observed_at {
            map.serialize_entry("observed_at", &DateText(d))?;
        }
        if let Some(replaced) = self.replaced {
            let replaced = EncodedFact {
                fact: replaced,
                stale: false,
                replaced: None,
            };
            map.serialize_entry("replaced", &replaced)?;
        }
        map.serialize_entry("source", &self.fact.source)?;
        if self.stale {
            map.serialize_entry("stale", &true)?;
        }
        map.serialize_entry("value", &EncodedValue(&self.fact.value))?;
        map.end()
    }
}

/// A value in the stored form: numbers, strings and booleans as themselves (a number that is
/// not finite as `null`), dates as `YYYY-MM-DD`, lists as arrays.
struct EncodedValue<'a>(&'a FactValue);

impl serde::Serialize for EncodedValue<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            // JSON has no such number.
            FactValue::Number(n) if n.is_finite() => serializer.serialize_f64(*n),
            FactValue::Number(_) => serializer.serialize_unit(),
            FactValue::String(s) => serializer.serialize_str(s),
            FactValue::Bool(b) => serializer.serialize_bool(*b),
            FactValue::Date(d) => serializer.collect_str(d),
            FactValue::StringList(items) => serializer.collect_seq(items),
            FactValue::DateList(items) => serializer.collect_seq(items.iter().map(DateText)),
        }
    }
}

/// A date as `YYYY-MM-DD` text.
struct DateText<'a>(&'a Date);

impl serde::Serialize for DateText<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self.0)
    }
}

/// The stored JSON object of `facts` ([`Encoded`] as a tree).
pub fn encode(facts: &StoredFacts) -> Value {
    serde_json::to_value(Encoded(facts)).unwrap_or(Value::Null)
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

    /// The stored form, written out by hand: every kind of value, a stale answer with the fact
    /// it replaced, a number that is not finite, and text that needs escaping.
    #[test]
    fn facts_are_stored_in_the_form_written_out_by_hand() {
        let mut facts = StoredFacts::new();
        let mut put = |name: &str, stored: StoredFact| {
            facts.insert(FactName::new(name).expect("name"), stored);
        };
        put(
            "technographic.technologies",
            StoredFact::new(fact(
                FactValue::StringList(vec!["dbt".into(), "A \"B\"; C".into()]),
                "technographic",
                Some("2026-11-24"),
            )),
        );
        put(
            "contracts.renewal_date",
            StoredFact {
                fact: fact(
                    FactValue::Date("2027-02-03".parse().expect("date")),
                    "contract-renewals",
                    None,
                ),
                stale: true,
                replaced: Some(fact(
                    FactValue::Date("2027-02-01".parse().expect("date")),
                    "crm",
                    Some("2026-11-01"),
                )),
            },
        );
        put(
            "engagement.demo_requests",
            StoredFact::new(fact(
                FactValue::DateList(vec![
                    "2026-11-02".parse().expect("date"),
                    "2026-10-01".parse().expect("date"),
                ]),
                "crm",
                None,
            )),
        );
        put(
            "firmographic.employee_count",
            StoredFact::new(fact(FactValue::Number(81.0), "crm", None)),
        );
        put(
            "firmographic.revenue",
            StoredFact::new(fact(FactValue::Number(1.5e-7), "crm", None)),
        );
        put(
            "firmographic.broken",
            StoredFact::new(fact(FactValue::Number(f64::NAN), "crm", None)),
        );
        put(
            "firmographic.public",
            StoredFact::new(fact(FactValue::Bool(false), "file", None)),
        );
        put(
            "firmographic.name",
            StoredFact::new(fact(FactValue::String("Zoë\tCo".into()), "crm", None)),
        );
        let by_hand = concat!(
            r#"{"contracts.renewal_date":{"replaced":{"observed_at":"2026-11-01","source":"crm","value":"2027-02-01"},"#,
            r#""source":"contract-renewals","stale":true,"value":"2027-02-03"},"#,
            r#""engagement.demo_requests":{"source":"crm","value":["2026-11-02","2026-10-01"]},"#,
            r#""firmographic.broken":{"source":"crm","value":null},"#,
            r#""firmographic.employee_count":{"source":"crm","value":81.0},"#,
            r#""firmographic.name":{"source":"crm","value":"Zoë\tCo"},"#,
            r#""firmographic.public":{"source":"file","value":false},"#,
            r#""firmographic.revenue":{"source":"crm","value":1.5e-7},"#,
            r#""technographic.technologies":{"observed_at":"2026-11-24","source":"technographic","value":["dbt","A \"B\"; C"]}}"#,
        );
        assert_eq!(serde_json::to_string(&Encoded(&facts)).expect("text"), by_hand);
        // The tree's keys are sorted by `serde_json`'s map, the text's by `Encoded`: the same.
        assert_eq!(encode(&facts).to_string(), by_hand);
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
