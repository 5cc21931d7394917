//! The CRM search endpoint's request language: `filterGroups` (OR of ANDed filters),
//! `sorts`, and a free-text `query`, evaluated against the search index's view.

use std::cmp::Ordering;

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use super::world::{PropertyDef, Storage, Val, View, World};
use crate::clock::{self, DAY_MS};

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SearchRequest {
    #[serde(default)]
    pub(crate) filter_groups: Vec<FilterGroup>,
    #[serde(default)]
    pub(crate) sorts: Vec<Sort>,
    #[serde(default, skip_serializing)]
    pub(crate) properties: Vec<String>,
    #[serde(default, skip_serializing)]
    pub(crate) limit: Option<Json>,
    #[serde(default, skip_serializing)]
    pub(crate) after: Option<Json>,
    #[serde(default)]
    pub(crate) query: Option<String>,
}

#[derive(Debug, Deserialize, Serialize)]
pub(crate) struct FilterGroup {
    #[serde(default)]
    filters: Vec<Filter>,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
struct Filter {
    property_name: String,
    operator: String,
    #[serde(default)]
    value: Option<Json>,
    #[serde(default)]
    values: Option<Vec<Json>>,
    #[serde(default)]
    high_value: Option<Json>,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(untagged)]
pub(crate) enum Sort {
    Full {
        #[serde(rename = "propertyName")]
        property_name: String,
        #[serde(default)]
        direction: Option<String>,
    },
    Name(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Eq,
    Neq,
    Gt,
    Gte,
    Lt,
    Lte,
    In,
    NotIn,
    Has,
    NotHas,
    Between,
    ContainsToken,
}

#[derive(Debug)]
enum Operand {
    None,
    Num(f64),
    Nums(Vec<f64>),
    Text(String),
    Texts(Vec<String>),
    Range(f64, f64),
}

#[derive(Debug)]
struct Cond {
    def: usize,
    numeric: bool,
    op: Op,
    operand: Operand,
}

/// A search compiled against the schema: unknown properties and operators are refused here.
#[derive(Debug)]
pub(crate) struct Compiled {
    groups: Vec<Vec<Cond>>,
    sorts: Vec<(usize, bool)>,
    query: Option<String>,
}

fn numeric(def: &PropertyDef) -> bool {
    def.is_numeric() || def.storage == Storage::ObjectId
}

fn json_text(v: &Json) -> Option<String> {
    match v {
        Json::String(s) => Some(s.clone()),
        Json::Number(n) => Some(n.to_string()),
        Json::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// A filter value as a number: plain numbers, epoch milliseconds, or for date properties
/// `YYYY-MM-DD` and ISO datetimes.
fn operand_num(def: &PropertyDef, v: &Json) -> Result<f64, String> {
    let text =
        json_text(v).ok_or_else(|| format!("filter value for {} must be a string or number", def.name))?;
    if let Ok(n) = text.trim().parse::<f64>() {
        return Ok(n);
    }
    if matches!(def.kind.as_str(), "date" | "datetime") {
        if let Some(ms) =
            clock::parse_datetime(&text).or_else(|| clock::parse_date(&text).map(|d| d * DAY_MS))
        {
            return Ok(ms as f64);
        }
    }
    Err(format!(
        "'{text}' is not a valid value for property {} of type {}",
        def.name, def.kind
    ))
}

/// A stored value as a number, `None` when absent or unparseable.
fn value_num(def: &PropertyDef, v: Val<'_>) -> Option<f64> {
    match v {
        Val::Null => None,
        Val::Id(id) => Some(id as f64),
        Val::Ms(ms) => Some(ms as f64),
        Val::Text(s) => match def.kind.as_str() {
            "date" => clock::parse_date(s).map(|d| (d * DAY_MS) as f64),
            "datetime" => clock::parse_datetime(s)
                .map(|ms| ms as f64)
                .or_else(|| s.parse().ok()),
            _ => s.parse().ok(),
        },
    }
}

fn value_text(v: Val<'_>) -> Option<std::borrow::Cow<'_, str>> {
    match v {
        Val::Null => None,
        Val::Text(s) => Some(s.into()),
        other => other.to_owned_string().map(Into::into),
    }
}

impl SearchRequest {
    /// The part of the request that decides the result set (not the page), as a cache key.
    pub(crate) fn cache_key(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    pub(crate) fn compile(&self, world: &World) -> Result<Compiled, String> {
        let schema = &world.schema;
        let mut groups = Vec::new();
        for g in &self.filter_groups {
            let mut conds = Vec::new();
            for f in &g.filters {
                let def_idx = schema.index(&f.property_name).ok_or_else(|| {
                    format!(
                        "There was a problem with the request. Property '{}' does not exist",
                        f.property_name
                    )
                })?;
                let def = &schema.defs[def_idx];
                let is_num = numeric(def);
                let op = match f.operator.as_str() {
                    "EQ" => Op::Eq,
                    "NEQ" => Op::Neq,
                    "GT" => Op::Gt,
                    "GTE" => Op::Gte,
                    "LT" => Op::Lt,
                    "LTE" => Op::Lte,
                    "IN" => Op::In,
                    "NOT_IN" => Op::NotIn,
                    "HAS_PROPERTY" => Op::Has,
                    "NOT_HAS_PROPERTY" => Op::NotHas,
                    "BETWEEN" => Op::Between,
                    "CONTAINS_TOKEN" => Op::ContainsToken,
                    other => return Err(format!("Unsupported filter operator '{other}'")),
                };
                fn need<'a>(v: &'a Option<Json>, def: &PropertyDef, op: &str) -> Result<&'a Json, String> {
                    v.as_ref()
                        .ok_or_else(|| format!("filter on {} with {op} needs a value", def.name))
                }
                let operand = match op {
                    Op::Has | Op::NotHas => Operand::None,
                    Op::In | Op::NotIn => {
                        let vals = f.values.as_ref().ok_or_else(|| {
                            format!("filter on {} with {} needs values", def.name, f.operator)
                        })?;
                        if is_num {
                            Operand::Nums(
                                vals.iter()
                                    .map(|v| operand_num(def, v))
                                    .collect::<Result<_, _>>()?,
                            )
                        } else {
                            Operand::Texts(vals.iter().filter_map(json_text).collect())
                        }
                    }
                    Op::Between => {
                        let lo = operand_num(def, need(&f.value, def, &f.operator)?)?;
                        let hi = operand_num(def, need(&f.high_value, def, &f.operator)?)?;
                        Operand::Range(lo, hi)
                    }
                    _ if is_num && op != Op::ContainsToken => {
                        Operand::Num(operand_num(def, need(&f.value, def, &f.operator)?)?)
                    }
                    _ => Operand::Text(
                        json_text(need(&f.value, def, &f.operator)?)
                            .ok_or_else(|| format!("bad filter value for {}", def.name))?,
                    ),
                };
                conds.push(Cond {
                    def: def_idx,
                    numeric: is_num,
                    op,
                    operand,
                });
            }
            groups.push(conds);
        }
        let mut sorts = Vec::new();
        for s in &self.sorts {
            let (name, descending) = match s {
                Sort::Full {
                    property_name,
                    direction,
                } => (property_name.as_str(), direction.as_deref() == Some("DESCENDING")),
                Sort::Name(n) => match n.strip_prefix('-') {
                    Some(n) => (n, true),
                    None => (n.as_str(), false),
                },
            };
            let idx = schema
                .index(name)
                .ok_or_else(|| format!("Cannot sort on unknown property '{name}'"))?;
            sorts.push((idx, descending));
        }
        let query = self
            .query
            .as_ref()
            .map(|q| q.trim().to_lowercase())
            .filter(|q| !q.is_empty());
        Ok(Compiled { groups, sorts, query })
    }
}

impl Cond {
    fn matches(&self, world: &World, k: u32) -> bool {
        let def = &world.schema.defs[self.def];
        let v = world.value(k, def, View::Search);
        match self.op {
            Op::Has => return value_text(v).is_some_and(|s| !s.is_empty()),
            Op::NotHas => return value_text(v).is_none_or(|s| s.is_empty()),
            _ => {}
        }
        if self.numeric {
            let n = value_num(def, v);
            match (&self.operand, n) {
                (Operand::Num(x), Some(n)) => match self.op {
                    Op::Eq => n == *x,
                    Op::Neq => n != *x,
                    Op::Gt => n > *x,
                    Op::Gte => n >= *x,
                    Op::Lt => n < *x,
                    Op::Lte => n <= *x,
                    _ => false,
                },
                (Operand::Nums(xs), Some(n)) => xs.contains(&n) == (self.op == Op::In),
                (Operand::Range(lo, hi), Some(n)) => *lo <= n && n <= *hi,
                (Operand::Nums(_), None) => self.op == Op::NotIn,
                (_, None) => self.op == Op::Neq,
                _ => false,
            }
        } else {
            let s = value_text(v);
            let Some(s) = s else {
                return matches!(self.op, Op::Neq | Op::NotIn);
            };
            match &self.operand {
                Operand::Text(x) => match self.op {
                    Op::Eq => s.eq_ignore_ascii_case(x),
                    Op::Neq => !s.eq_ignore_ascii_case(x),
                    Op::Gt => *s > **x,
                    Op::Gte => *s >= **x,
                    Op::Lt => *s < **x,
                    Op::Lte => *s <= **x,
                    Op::ContainsToken => {
                        let x = x.trim_matches('*').to_lowercase();
                        s.to_lowercase()
                            .split(|c: char| !c.is_alphanumeric())
                            .any(|t| t.starts_with(&x))
                    }
                    _ => false,
                },
                Operand::Texts(xs) => xs.iter().any(|x| s.eq_ignore_ascii_case(x)) == (self.op == Op::In),
                _ => false,
            }
        }
    }
}

impl Compiled {
    fn matches(&self, world: &World, k: u32) -> bool {
        if let Some(q) = &self.query {
            let hit = ["name", "domain"].iter().any(|p| {
                world.schema.get(p).is_some_and(|def| {
                    value_text(world.value(k, def, View::Search))
                        .is_some_and(|s| s.to_lowercase().contains(q))
                })
            });
            if !hit {
                return false;
            }
        }
        self.groups.is_empty() || self.groups.iter().any(|g| g.iter().all(|c| c.matches(world, k)))
    }

    fn compare(&self, world: &World, a: u32, b: u32) -> Ordering {
        for &(idx, descending) in &self.sorts {
            let def = &world.schema.defs[idx];
            let (va, vb) = (
                world.value(a, def, View::Search),
                world.value(b, def, View::Search),
            );
            let ord = if numeric(def) {
                match (value_num(def, va), value_num(def, vb)) {
                    (Some(x), Some(y)) => x.partial_cmp(&y).unwrap_or(Ordering::Equal),
                    (x, y) => y.is_some().cmp(&x.is_some()),
                }
            } else {
                match (value_text(va), value_text(vb)) {
                    (Some(x), Some(y)) => x.to_lowercase().cmp(&y.to_lowercase()),
                    (x, y) => y.is_some().cmp(&x.is_some()),
                }
            };
            let ord = if descending { ord.reverse() } else { ord };
            if ord != Ordering::Equal {
                return ord;
            }
        }
        a.cmp(&b)
    }

    /// Every matching company, in the requested order (ties and no sort: by id).
    pub(crate) fn run(&self, world: &World) -> Vec<u32> {
        let mut hits: Vec<u32> = (0..world.companies.len() as u32)
            .filter(|&k| self.matches(world, k))
            .collect();
        if !self.sorts.is_empty() {
            hits.sort_by(|&a, &b| self.compare(world, a, b));
        }
        hits
    }
}
