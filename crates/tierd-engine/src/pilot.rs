//! Which accounts a pilot takes part: a deterministic sample by account id and a fact filter.

use tierd_core::codec::StoredFacts;
use tierd_core::fact::FactValue;

use crate::PilotSpec;

/// Whether a pilot includes the account `id` with `facts`.
pub(crate) fn includes(spec: &PilotSpec, id: &str, facts: &StoredFacts) -> bool {
    if let Some(share) = spec.sample {
        if tierd_core::hash::unit_interval(id.as_bytes()) >= share {
            return false;
        }
    }
    if let Some(filter) = &spec.filter {
        let Some((name, want)) = filter.split_once('=') else {
            return false;
        };
        let (name, want) = (name.trim(), want.trim());
        let Some(stored) = facts.iter().find(|(n, _)| n.as_str() == name).map(|(_, f)| f) else {
            return false;
        };
        return match &stored.fact.value {
            FactValue::StringList(items) => items.iter().any(|i| i.eq_ignore_ascii_case(want)),
            other => other.to_string().eq_ignore_ascii_case(want),
        };
    }
    true
}

#[cfg(test)]
mod tests {
    use tierd_core::codec::StoredFact;
    use tierd_core::fact::{Fact, FactName};

    use super::*;

    #[test]
    fn pilots_sample_deterministically_and_filter_by_fact() {
        let none = StoredFacts::new();
        let spec = PilotSpec {
            sample: Some(0.3),
            ..PilotSpec::default()
        };
        let picked: Vec<bool> = (0..1000)
            .map(|i| includes(&spec, &format!("hubspot:{i}"), &none))
            .collect();
        let share = picked.iter().filter(|b| **b).count();
        assert!((220..380).contains(&share), "{share} of 1000 for 0.3");
        let again: Vec<bool> = (0..1000)
            .map(|i| includes(&spec, &format!("hubspot:{i}"), &none))
            .collect();
        assert_eq!(picked, again);

        let mut facts = StoredFacts::new();
        facts.insert(
            FactName::new("firmographic.region").expect("name"),
            StoredFact::new(Fact {
                value: FactValue::String("EMEA".into()),
                source: "crm".into(),
                observed_at: None,
            }),
        );
        let spec = PilotSpec {
            filter: Some("firmographic.region=emea".into()),
            ..PilotSpec::default()
        };
        assert!(includes(&spec, "a", &facts));
        assert!(!includes(&spec, "a", &none));
    }
}
