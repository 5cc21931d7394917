//! The candidate model file of a [`Suggestion`]: the live model file as written, comments and
//! layout kept, with the suggested weights, a new version, and comments saying where each weight
//! came from. A file for a person to read, edit and adopt; tierd never applies it.
//!
//! Owns the text edit only (through `toml_edit`, so nothing a person wrote is lost); knows no
//! path and no store. The result is checked by the caller with `Model::from_toml`.

use toml_edit::{DocumentMut, Item, TableLike, Value};

use crate::suggest::Suggestion;

fn set_weight(table: &mut dyn TableLike, weight: f64, note: Option<&str>) -> Result<(), String> {
    let item = table
        .get_mut("weight")
        .ok_or_else(|| "has no `weight`".to_string())?;
    let Some(old) = item.as_value_mut() else {
        return Err("`weight` is not a number".into());
    };
    let prefix = old.decor().prefix().cloned();
    let mut new = Value::from(weight);
    if let Some(p) = prefix {
        new.decor_mut().set_prefix(p);
    }
    match note {
        Some(n) => new.decor_mut().set_suffix(format!("  # {n}")),
        None => new.decor_mut().set_suffix(""),
    }
    *old = new;
    Ok(())
}

fn pct(x: f64) -> String {
    format!("{:.1}%", x * 100.0)
}

/// The live model's text with `s`'s weights. `header` (lines without `#`) is written first as
/// comments. Fails, naming what, when the text does not hold a weight the model has.
pub fn candidate_model(live_text: &str, s: &Suggestion, header: &[String]) -> Result<String, String> {
    let mut doc: DocumentMut = live_text
        .parse()
        .map_err(|e| format!("the live model is not TOML: {e}"))?;
    if let Some(version) = doc.get_mut("version").and_then(Item::as_value_mut) {
        let live = version.as_str().unwrap_or("").to_string();
        let mut new = Value::from(format!("{live}-suggested"));
        new.decor_mut().set_prefix(" ");
        new.decor_mut()
            .set_suffix(format!("  # the live model is {live}; bump as you adopt it"));
        *version = new;
    }
    let components = doc
        .get_mut("components")
        .and_then(Item::as_table_like_mut)
        .ok_or("the live model has no [components]")?;
    for c in &s.components {
        let item = components
            .get_mut(&c.name)
            .ok_or_else(|| format!("components.{}: not in the live model's text", c.name))?;
        // An inline table's values cannot carry comments (TOML ends them at the line's end).
        let inline = item.is_inline_table();
        let table = item
            .as_table_like_mut()
            .ok_or_else(|| format!("components.{}: not a table", c.name))?;
        let note = format!(
            "fitted: {} of the score (live weight {})",
            share_of(s, &c.name),
            c.live_weight
        );
        set_weight(table, c.weight, (!inline).then_some(note.as_str()))
            .map_err(|e| format!("components.{}: {e}", c.name))?;
    }
    let criteria = doc
        .get_mut("criteria")
        .ok_or("the live model has no [[criteria]]")?;
    let inline = criteria.as_array_of_tables().is_none();
    let mut tables: Vec<&mut dyn TableLike> = match criteria {
        Item::ArrayOfTables(aot) => aot.iter_mut().map(|t| t as &mut dyn TableLike).collect(),
        Item::Value(Value::Array(arr)) => arr
            .iter_mut()
            .filter_map(Value::as_inline_table_mut)
            .map(|t| t as &mut dyn TableLike)
            .collect(),
        _ => return Err("the live model's `criteria` is not an array of tables".into()),
    };
    for c in &s.criteria {
        let table = tables
            .iter_mut()
            .find(|t| t.get("name").and_then(Item::as_str) == Some(c.name.as_str()))
            .ok_or_else(|| format!("criteria '{}': not in the live model's text", c.name))?;
        let note = if c.dropped {
            format!(
                "dropped from the fit: its coefficient came out negative (unconstrained {:+.3}); live weight {}, {}",
                c.unconstrained_coefficient,
                c.live_weight,
                pct(c.live_share)
            )
        } else {
            format!(
                "fitted {:+.3} log-odds per point: {} of the score (live weight {}, {})",
                c.coefficient,
                pct(c.share),
                c.live_weight,
                pct(c.live_share)
            )
        };
        set_weight(&mut **table, c.weight, (!inline).then_some(note.as_str()))
            .map_err(|e| format!("criteria '{}': {e}", c.name))?;
    }
    let mut out = String::new();
    for line in header {
        out.push_str("# ");
        out.push_str(line);
        out.push('\n');
    }
    out.push('\n');
    out.push_str(&doc.to_string());
    Ok(out)
}

fn share_of(s: &Suggestion, component: &str) -> String {
    let share: f64 = s
        .criteria
        .iter()
        .filter(|c| c.component == component)
        .map(|c| c.share)
        .sum();
    pct(share)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::suggest::{SuggestedComponent, SuggestedCriterion};
    use tierd_core::Model;

    fn suggestion() -> Suggestion {
        let criterion = |name: &str, coefficient: f64, weight: f64| SuggestedCriterion {
            name: name.into(),
            component: "fit".into(),
            coefficient,
            dropped: coefficient == 0.0,
            unconstrained_coefficient: if coefficient == 0.0 { -0.5 } else { coefficient },
            live_share: 0.5,
            share: if coefficient == 0.0 { 0.0 } else { 1.0 },
            live_weight: 1.0,
            weight,
        };
        Suggestion {
            live_model: "inline@1".into(),
            train_deals: 70,
            holdout_deals: 30,
            holdout_share: 0.3,
            l2: 1.0,
            scored_on_later_facts: 0,
            train_auc: Some(0.7),
            holdout_auc: Some(0.65),
            live_holdout_auc: Some(0.6),
            unconstrained_holdout_auc: Some(0.66),
            intercept: -1.0,
            criteria: vec![criterion("a", 0.8, 1.999), criterion("b", 0.0, 0.001)],
            components: vec![SuggestedComponent {
                name: "fit".into(),
                live_weight: 1.0,
                weight: 1.0,
            }],
        }
    }

    #[test]
    fn inline_tables_get_weights_without_comments() {
        // Comments cannot sit inside inline tables: the weights change, the notes stay out.
        let live = r#"name = "inline"
version = "1"
components = { fit = { weight = 1 } }
criteria = [
  { name = "a", component = "fit", weight = 1, fact = "x.a", rule = { bool = { true = 5, false = 0 } } },
  { name = "b", component = "fit", weight = 1, fact = "x.b", rule = { bool = { true = 5, false = 0 } } },
]
"#;
        let text = candidate_model(live, &suggestion(), &[]).expect("candidate");
        let model = Model::from_toml(&text, "model").expect("loads");
        let weights: Vec<f32> = model.criteria.iter().map(|c| c.weight).collect();
        assert_eq!(weights, vec![1.999, 0.001]);
        assert_eq!(model.version, "1-suggested");
        assert!(!text.contains("log-odds"), "{text}");
    }

    #[test]
    fn standard_tables_say_where_each_weight_came_from() {
        let live = "name = \"inline\"\nversion = \"1\"\n[components.fit]\nweight = 1 # was one\n\
                    [[criteria]]\nname = \"a\"\ncomponent = \"fit\"\nweight = 1\nfact = \"x.a\"\n[criteria.rule]\nbool = { true = 5, false = 0 }\n\
                    [[criteria]]\nname = \"b\"\ncomponent = \"fit\"\nweight = 1\nfact = \"x.b\"\n[criteria.rule]\nbool = { true = 5, false = 0 }\n";
        let text = candidate_model(live, &suggestion(), &["line one".into()]).expect("candidate");
        assert!(text.starts_with("# line one\n\n"), "{text}");
        assert!(
            text.contains("weight = 1.999  # fitted +0.800 log-odds per point: 100.0% of the score (live weight 1, 50.0%)"),
            "{text}"
        );
        assert!(
            text.contains("weight = 0.001  # dropped from the fit: its coefficient came out negative (unconstrained -0.500); live weight 1, 50.0%"),
            "{text}"
        );
        assert!(
            !text.contains("was one"),
            "the old weight's note is replaced: {text}"
        );
        Model::from_toml(&text, "model").expect("loads");
    }

    #[test]
    fn a_criterion_missing_from_the_text_is_an_error() {
        let live = "name = \"x\"\nversion = \"1\"\n[components.fit]\nweight = 1\n\
                    [[criteria]]\nname = \"a\"\ncomponent = \"fit\"\nweight = 1\nfact = \"x.a\"\n[criteria.rule]\nbool = { true = 5, false = 0 }\n";
        let e = candidate_model(live, &suggestion(), &[]).expect_err("b is missing");
        assert_eq!(e, "criteria 'b': not in the live model's text");
    }
}
