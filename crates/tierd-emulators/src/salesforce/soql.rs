//! The SOQL subset tierd and simple scripts use:
//!
//! `SELECT f1, f2 FROM Account|Contract|Opportunity|Campaign|CampaignMember|Contact [WHERE cond [AND cond]*]
//!  [ORDER BY f [ASC|DESC] [NULLS FIRST|LAST][, ...]] [LIMIT n]`
//!
//! where `cond` is `field op literal` (`=`, `!=`, `<>`, `<`, `<=`, `>`, `>=`) or
//! `field [NOT] IN (literal, ...)`, and literals are `'strings'`, numbers, dates
//! (`2026-01-01`), datetimes (`2026-01-01T00:00:00Z`), `true`/`false` and `null`.
//! Anything else is refused with Salesforce's error codes: `MALFORMED_QUERY` for syntax,
//! `INVALID_FIELD` for unknown fields or a literal of the wrong type, `INVALID_TYPE` for
//! an unknown object. Deleted rows (`IsDeleted`) are not returned, as in `query`. `OR`, relationship paths, functions and subqueries are outside the
//! subset and are refused as malformed.

use std::cmp::Ordering;

use super::world::{FieldType, Object, Table, World, V};
use crate::clock;

#[derive(Debug, Clone, PartialEq)]
enum Lit {
    Str(String),
    Num(f64),
    Date(i64),
    DateTime(i64),
    Bool(bool),
    Null,
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Word(String),
    Lit(Lit),
    Sym(&'static str),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    In,
    NotIn,
}

#[derive(Debug)]
struct Cond {
    field: usize,
    op: Op,
    lits: Vec<Lit>,
}

/// A parsed query, checked against the object's fields.
#[derive(Debug)]
pub(crate) struct Query {
    pub(crate) object: Object,
    pub(crate) fields: Vec<usize>,
    conds: Vec<Cond>,
    /// (field, descending, nulls last)
    order: Vec<(usize, bool, bool)>,
    limit: Option<usize>,
}

/// Why a query was refused: (errorCode, message).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct QueryError {
    pub(crate) code: &'static str,
    pub(crate) message: String,
}

struct Parser<'q> {
    text: &'q str,
    toks: Vec<(Tok, usize)>,
    pos: usize,
}

fn tokenize(q: &str) -> Result<Vec<(Tok, usize)>, (usize, String)> {
    let b = q.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let start = i;
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        if c == b'\'' {
            let mut s = Vec::new();
            i += 1;
            loop {
                match b.get(i) {
                    None => return Err((start, "unterminated string literal".into())),
                    Some(b'\\') => {
                        let esc = *b
                            .get(i + 1)
                            .ok_or((i, "unterminated string literal".to_string()))?;
                        s.push(match esc {
                            b'n' => b'\n',
                            b't' => b'\t',
                            other => other,
                        });
                        i += 2;
                    }
                    Some(b'\'') => {
                        i += 1;
                        break;
                    }
                    Some(&ch) => {
                        s.push(ch);
                        i += 1;
                    }
                }
            }
            out.push((
                Tok::Lit(Lit::Str(String::from_utf8_lossy(&s).into_owned())),
                start,
            ));
            continue;
        }
        if c.is_ascii_digit() || (c == b'-' && b.get(i + 1).is_some_and(u8::is_ascii_digit)) {
            i += 1;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b"-+:.".contains(&b[i])) {
                i += 1;
            }
            let text = &q[start..i];
            let lit = if let Some(ms) = clock::parse_datetime(text) {
                Lit::DateTime(ms)
            } else if let Some(d) = clock::parse_date(text) {
                Lit::Date(d)
            } else if let Ok(n) = text.parse::<f64>() {
                Lit::Num(n)
            } else {
                return Err((start, format!("unexpected token: '{text}'")));
            };
            out.push((Tok::Lit(lit), start));
            continue;
        }
        if c.is_ascii_alphabetic() || c == b'_' {
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] == b'.') {
                i += 1;
            }
            let w = &q[start..i];
            let tok = match w.to_ascii_lowercase().as_str() {
                "true" => Tok::Lit(Lit::Bool(true)),
                "false" => Tok::Lit(Lit::Bool(false)),
                "null" => Tok::Lit(Lit::Null),
                _ => Tok::Word(w.to_string()),
            };
            out.push((tok, start));
            continue;
        }
        let two = q.get(i..i + 2).unwrap_or("");
        let sym = match two {
            "!=" => Some("!="),
            "<>" => Some("!="),
            "<=" => Some("<="),
            ">=" => Some(">="),
            _ => None,
        };
        if let Some(s) = sym {
            out.push((Tok::Sym(s), start));
            i += 2;
            continue;
        }
        let sym = match c {
            b',' => ",",
            b'(' => "(",
            b')' => ")",
            b'=' => "=",
            b'<' => "<",
            b'>' => ">",
            _ => {
                return Err((
                    start,
                    format!(
                        "unexpected token: '{}'",
                        &q[start..].chars().next().unwrap_or(' ')
                    ),
                ))
            }
        };
        out.push((Tok::Sym(sym), start));
        i += 1;
    }
    Ok(out)
}

fn malformed(q: &str, col: usize, msg: &str) -> QueryError {
    QueryError {
        code: "MALFORMED_QUERY",
        message: format!(
            "\n{q}\n{}^\nERROR at Row:1:Column:{}\n{msg}",
            " ".repeat(col),
            col + 1
        ),
    }
}

impl<'q> Parser<'q> {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos).map(|(t, _)| t)
    }

    fn col(&self) -> usize {
        self.toks.get(self.pos).map_or(self.text.len(), |(_, c)| *c)
    }

    fn error(&self, msg: impl AsRef<str>) -> QueryError {
        malformed(self.text, self.col(), msg.as_ref())
    }

    fn unexpected(&self) -> QueryError {
        let what = match self.peek() {
            None => "<EOF>".to_string(),
            Some(Tok::Word(w)) => w.clone(),
            Some(Tok::Sym(s)) => s.to_string(),
            Some(Tok::Lit(_)) => self.text[self.col()..]
                .split_whitespace()
                .next()
                .unwrap_or("")
                .to_string(),
        };
        self.error(format!("unexpected token: '{what}'"))
    }

    fn keyword(&mut self, kw: &str) -> bool {
        if matches!(self.peek(), Some(Tok::Word(w)) if w.eq_ignore_ascii_case(kw)) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expect_keyword(&mut self, kw: &str) -> Result<(), QueryError> {
        if self.keyword(kw) {
            Ok(())
        } else {
            Err(self.unexpected())
        }
    }

    fn sym(&mut self, s: &str) -> bool {
        if matches!(self.peek(), Some(Tok::Sym(x)) if *x == s) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn word(&mut self) -> Result<(String, usize), QueryError> {
        match self.toks.get(self.pos) {
            Some((Tok::Word(w), col)) => {
                self.pos += 1;
                Ok((w.clone(), *col))
            }
            _ => Err(self.unexpected()),
        }
    }

    fn literal(&mut self) -> Result<Lit, QueryError> {
        match self.toks.get(self.pos) {
            Some((Tok::Lit(l), _)) => {
                self.pos += 1;
                Ok(l.clone())
            }
            _ => Err(self.unexpected()),
        }
    }
}

fn field_of(q: &str, table: &Table, name: &str, col: usize) -> Result<usize, QueryError> {
    table.field(name).ok_or_else(|| {
        let why = if name.contains('.') {
            format!("Didn't understand relationship '{}' in field path. This emulator supports no relationship queries.", name.split('.').next().unwrap_or(name))
        } else {
            format!(
                "No such column '{name}' on entity '{}'. If you are attempting to use a custom field, be sure to \
                 append the '__c' after the custom field name. Please reference your WSDL or the describe call for \
                 the appropriate names.",
                table.object.name()
            )
        };
        QueryError {
            code: "INVALID_FIELD",
            message: format!("\n{q}\n{}^\nERROR at Row:1:Column:{}\n{why}", " ".repeat(col), col + 1),
        }
    })
}

fn check_type(table: &Table, field: usize, lit: &Lit) -> Result<(), QueryError> {
    let def = &table.fields[field];
    let ok = match lit {
        Lit::Null => true,
        Lit::Str(_) => def.ty.is_text(),
        Lit::Num(_) => def.ty.is_number(),
        Lit::Date(_) => def.ty == FieldType::Date,
        Lit::DateTime(_) => def.ty == FieldType::DateTime,
        Lit::Bool(_) => def.ty == FieldType::Boolean,
    };
    if ok {
        return Ok(());
    }
    let quoted = if def.ty.is_text() {
        ""
    } else {
        " and should not be enclosed in quotes"
    };
    let ty = match def.ty {
        FieldType::DateTime => "dateTime",
        t => t.name(),
    };
    Err(QueryError {
        code: "INVALID_FIELD",
        message: format!(
            "value of filter criterion for field '{}' must be of type {ty}{quoted}",
            def.name
        ),
    })
}

/// Parses and checks `q` against the world's tables.
pub(crate) fn parse(q: &str, world: &World) -> Result<Query, QueryError> {
    let toks = tokenize(q).map_err(|(col, msg)| malformed(q, col, &msg))?;
    let mut p = Parser {
        text: q,
        toks,
        pos: 0,
    };
    p.expect_keyword("SELECT")?;
    let mut names = vec![p.word()?];
    if p.sym("(") {
        return Err(p.error("aggregate and function queries are not supported by this emulator"));
    }
    while p.sym(",") {
        names.push(p.word()?);
    }
    p.expect_keyword("FROM")?;
    let (object_name, _) = p.word()?;
    let object = Object::parse(&object_name).ok_or_else(|| QueryError {
        code: "INVALID_TYPE",
        message: format!("\n{q}\nsObject type '{object_name}' is not supported. If you are attempting to use a custom object, be sure to append the '__c' after the entity name."),
    })?;
    let table = world.table(object);
    let mut fields = Vec::with_capacity(names.len());
    for (name, col) in &names {
        let f = field_of(q, table, name, *col)?;
        if !fields.contains(&f) {
            fields.push(f);
        }
    }
    let mut conds = Vec::new();
    if p.keyword("WHERE") {
        loop {
            let (name, col) = p.word()?;
            let field = field_of(q, table, &name, col)?;
            let cond = if p.keyword("NOT") {
                p.expect_keyword("IN")?;
                Cond {
                    field,
                    op: Op::NotIn,
                    lits: in_list(&mut p)?,
                }
            } else if p.keyword("IN") {
                Cond {
                    field,
                    op: Op::In,
                    lits: in_list(&mut p)?,
                }
            } else {
                let op = match p.peek() {
                    Some(Tok::Sym("=")) => Op::Eq,
                    Some(Tok::Sym("!=")) => Op::Ne,
                    Some(Tok::Sym("<")) => Op::Lt,
                    Some(Tok::Sym("<=")) => Op::Le,
                    Some(Tok::Sym(">")) => Op::Gt,
                    Some(Tok::Sym(">=")) => Op::Ge,
                    _ => return Err(p.unexpected()),
                };
                p.pos += 1;
                Cond {
                    field,
                    op,
                    lits: vec![p.literal()?],
                }
            };
            for lit in &cond.lits {
                check_type(table, field, lit)?;
            }
            conds.push(cond);
            if p.keyword("OR") {
                p.pos -= 1;
                return Err(p.error("OR is outside the SOQL subset this emulator supports"));
            }
            if !p.keyword("AND") {
                break;
            }
        }
    }
    let mut order = Vec::new();
    if p.keyword("ORDER") {
        p.expect_keyword("BY")?;
        loop {
            let (name, col) = p.word()?;
            let field = field_of(q, table, &name, col)?;
            let desc = if p.keyword("DESC") {
                true
            } else {
                p.keyword("ASC");
                false
            };
            let mut nulls_last = desc;
            if p.keyword("NULLS") {
                nulls_last = if p.keyword("LAST") {
                    true
                } else {
                    p.expect_keyword("FIRST")?;
                    false
                };
            }
            order.push((field, desc, nulls_last));
            if !p.sym(",") {
                break;
            }
        }
    }
    let mut limit = None;
    if p.keyword("LIMIT") {
        match p.literal()? {
            Lit::Num(n) if n >= 0.0 && n.fract() == 0.0 => limit = Some(n as usize),
            _ => {
                p.pos -= 1;
                return Err(p.unexpected());
            }
        }
    }
    if p.peek().is_some() {
        return Err(p.unexpected());
    }
    Ok(Query {
        object,
        fields,
        conds,
        order,
        limit,
    })
}

fn in_list(p: &mut Parser<'_>) -> Result<Vec<Lit>, QueryError> {
    if !p.sym("(") {
        return Err(p.unexpected());
    }
    let mut lits = vec![p.literal()?];
    while p.sym(",") {
        lits.push(p.literal()?);
    }
    if !p.sym(")") {
        return Err(p.unexpected());
    }
    Ok(lits)
}

/// Compares a stored value with a literal of the same type; `None` when either is null.
fn compare(v: &V, lit: &Lit) -> Option<Ordering> {
    match (v, lit) {
        (V::Str(a), Lit::Str(b)) => Some(a.to_lowercase().cmp(&b.to_lowercase())),
        (V::Num(a), Lit::Num(b)) => a.partial_cmp(b),
        (V::Date(a), Lit::Date(b)) => Some(a.cmp(b)),
        (V::DateTime(a), Lit::DateTime(b)) => Some(a.cmp(b)),
        (V::Bool(a), Lit::Bool(b)) => Some(a.cmp(b)),
        _ => None,
    }
}

impl Cond {
    fn matches(&self, row: &[V]) -> bool {
        let v = &row[self.field];
        let eq = |lit: &Lit| match lit {
            Lit::Null => *v == V::Null,
            _ => compare(v, lit) == Some(Ordering::Equal),
        };
        match self.op {
            Op::Eq => eq(&self.lits[0]),
            Op::Ne => !eq(&self.lits[0]),
            Op::In => self.lits.iter().any(eq),
            Op::NotIn => !self.lits.iter().any(eq),
            op => compare(v, &self.lits[0]).is_some_and(|o| match op {
                Op::Lt => o == Ordering::Less,
                Op::Le => o != Ordering::Greater,
                Op::Gt => o == Ordering::Greater,
                _ => o != Ordering::Less,
            }),
        }
    }
}

fn order_values(a: &V, b: &V) -> Ordering {
    match (a, b) {
        (V::Str(x), V::Str(y)) => x.to_lowercase().cmp(&y.to_lowercase()),
        (V::Num(x), V::Num(y)) => x.partial_cmp(y).unwrap_or(Ordering::Equal),
        (V::Date(x), V::Date(y)) | (V::DateTime(x), V::DateTime(y)) => x.cmp(y),
        (V::Bool(x), V::Bool(y)) => x.cmp(y),
        _ => Ordering::Equal,
    }
}

impl Query {
    /// The matching rows, ordered and limited.
    pub(crate) fn run(&self, world: &World) -> Vec<u32> {
        let table = world.table(self.object);
        let mut rows: Vec<u32> = table
            .rows
            .iter()
            .enumerate()
            .filter(|(_, row)| !table.is_deleted(row) && self.conds.iter().all(|c| c.matches(row)))
            .map(|(k, _)| k as u32)
            .collect();
        if !self.order.is_empty() {
            rows.sort_by(|&a, &b| {
                let (ra, rb) = (&table.rows[a as usize], &table.rows[b as usize]);
                for &(f, desc, nulls_last) in &self.order {
                    let (x, y) = (&ra[f], &rb[f]);
                    let o = match (*x == V::Null, *y == V::Null) {
                        (true, true) => Ordering::Equal,
                        (true, false) => {
                            if nulls_last {
                                Ordering::Greater
                            } else {
                                Ordering::Less
                            }
                        }
                        (false, true) => {
                            if nulls_last {
                                Ordering::Less
                            } else {
                                Ordering::Greater
                            }
                        }
                        (false, false) => {
                            let o = order_values(x, y);
                            if desc {
                                o.reverse()
                            } else {
                                o
                            }
                        }
                    };
                    if o != Ordering::Equal {
                        return o;
                    }
                }
                a.cmp(&b)
            });
        }
        if let Some(n) = self.limit {
            rows.truncate(n);
        }
        rows
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn world() -> World {
        let opts = tierd_gen::GenOptions {
            seed: 1,
            as_of: "2026-11-24".parse().unwrap(),
        };
        World::seed(opts, 30, &[])
    }

    #[test]
    fn parses_the_incremental_query_and_orders_by_modstamp_then_id() {
        let w = world();
        let q = parse(
            "SELECT Id, Name, SystemModstamp FROM Account WHERE SystemModstamp > 2000-01-01T00:00:00Z \
             ORDER BY SystemModstamp, Id LIMIT 10",
            &w,
        )
        .unwrap();
        let rows = q.run(&w);
        assert_eq!(rows.len(), 10);
        let stamp = w.accounts.field("SystemModstamp").unwrap();
        let stamps: Vec<&V> = rows
            .iter()
            .map(|&k| &w.accounts.rows[k as usize][stamp])
            .collect();
        assert!(stamps
            .windows(2)
            .all(|p| order_values(p[0], p[1]) != Ordering::Greater));
    }

    #[test]
    fn in_lists_strings_dates_and_null_filter() {
        let w = world();
        let ids = format!(
            "'{}', '{}'",
            super::super::world::record_id("001", 2),
            super::super::world::record_id("001", 5)
        );
        let q = parse(&format!("SELECT Id FROM Account WHERE Id IN ({ids})"), &w).unwrap();
        assert_eq!(q.run(&w), vec![2, 5]);
        let q = parse(
            "select id from contract where EndDate >= 2000-01-01 and Status = 'activated'",
            &w,
        )
        .unwrap();
        assert_eq!(q.run(&w).len(), w.contracts.rows.len());
        let q = parse("SELECT Id FROM Account WHERE Tier__c = null", &w).unwrap();
        assert_eq!(q.run(&w).len(), 30);
    }

    #[test]
    fn refuses_with_salesforce_error_codes() {
        let w = world();
        let code = |q: &str| parse(q, &w).unwrap_err().code;
        assert_eq!(code("SELECT Id, Nope__c FROM Account"), "INVALID_FIELD");
        assert_eq!(
            code("SELECT Id FROM Account WHERE SystemModstamp > '2026-01-01'"),
            "INVALID_FIELD"
        );
        assert_eq!(code("SELECT Id FROM Widget__c"), "INVALID_TYPE");
        assert_eq!(code("SELECT Id FROM Account WHERE"), "MALFORMED_QUERY");
        assert_eq!(
            code("SELECT Id FROM Account WHERE Name = 'a' OR Name = 'b'"),
            "MALFORMED_QUERY"
        );
        assert_eq!(code("SELECT Id Account"), "MALFORMED_QUERY");
        let e = parse("SELECT Id FROM Account LIMIT", &w).unwrap_err();
        assert!(e.message.contains("ERROR at Row:1:Column:"), "{}", e.message);
    }
}
