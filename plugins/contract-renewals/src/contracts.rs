//! Contract records from every source, their renewal dates, and the choice of the contract
//! that matters now.

use std::collections::HashMap;

use serde_json::{Map, Value};

use tierd_plugin_api::Date;

/// One contract, whatever its source.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Contract {
    pub(crate) vendor: Option<String>,
    /// The renewal (end) date.
    pub(crate) renewal: Date,
    pub(crate) annual_value: Option<f64>,
    pub(crate) active: bool,
}

/// Statuses that take a contract out of consideration (any case); anything else counts as live.
const INACTIVE: [&str; 8] = [
    "expired",
    "cancelled",
    "canceled",
    "terminated",
    "draft",
    "rejected",
    "lost",
    "inactive",
];

fn is_active(status: Option<&str>) -> bool {
    status.is_none_or(|s| !INACTIVE.iter().any(|i| i.eq_ignore_ascii_case(s.trim())))
}

/// The renewal date: the end date, else start + term (months).
pub(crate) fn renewal(
    end: Option<&str>,
    start: Option<&str>,
    term_months: Option<f64>,
) -> Result<Date, String> {
    if let Some(end) = end.filter(|e| !e.trim().is_empty()) {
        return end
            .parse()
            .map_err(|_| format!("end_date {end:?} is not a YYYY-MM-DD date"));
    }
    match (start.filter(|s| !s.trim().is_empty()), term_months) {
        (Some(start), Some(months)) if months.fract() == 0.0 && months > 0.0 => {
            let start: Date = start
                .parse()
                .map_err(|_| format!("start_date {start:?} is not a YYYY-MM-DD date"))?;
            // Salesforce's convention: a 12-month term from 2025-01-01 ends 2025-12-31 (the
            // anniversary, its day clamped to the month's length, minus one day).
            i32::try_from(months as i64)
                .ok()
                .and_then(|m| start.add_months(m))
                .map(|anniversary| anniversary.add_days(-1))
                .ok_or_else(|| format!("term_months {months} is too long"))
        }
        (Some(_), Some(months)) => Err(format!("term_months {months} is not a positive whole number")),
        _ => Err("neither end_date nor start_date with term_months".into()),
    }
}

/// A contract from a JSON record: `related.contracts` items in snake case or Salesforce's
/// field names (`EndDate`, `StartDate`, `ContractTerm`, `Status`).
pub(crate) fn from_json(v: &Map<String, Value>) -> Result<Contract, String> {
    let get = |names: &[&str]| names.iter().find_map(|n| v.get(*n)).filter(|x| !x.is_null());
    let text = |names: &[&str]| get(names).and_then(Value::as_str).map(str::to_owned);
    let number = |names: &[&str]| {
        get(names).and_then(|x| {
            x.as_f64()
                .or_else(|| x.as_str().and_then(|s| s.trim().parse().ok()))
        })
    };
    let renewal = renewal(
        text(&["end_date", "EndDate", "renewal_date"]).as_deref(),
        text(&["start_date", "StartDate"]).as_deref(),
        number(&["term_months", "ContractTerm"]),
    )?;
    Ok(Contract {
        vendor: text(&["vendor", "Vendor", "vendor_name"]).filter(|s| !s.trim().is_empty()),
        renewal,
        annual_value: number(&["annual_value", "AnnualValue", "amount"]),
        active: is_active(text(&["status", "Status"]).as_deref()),
    })
}

/// Contracts of a contracts CSV, by normalised domain and by account id.
#[derive(Debug, Default)]
pub(crate) struct ContractFile {
    by_domain: HashMap<String, Vec<Contract>>,
    by_account: HashMap<String, Vec<Contract>>,
    pub(crate) rows: usize,
}

impl ContractFile {
    /// Loads `path`; bad rows are skipped and returned as `path line N: why`.
    pub(crate) fn load(path: &str) -> Result<(ContractFile, Vec<String>), String> {
        let mut reader = csv::ReaderBuilder::new()
            .flexible(true)
            .trim(csv::Trim::All)
            .from_path(path)
            .map_err(|e| format!("cannot open contracts file {path}: {e}"))?;
        let headers = reader
            .headers()
            .map_err(|e| format!("contracts file {path}: cannot read the header row: {e}"))?
            .clone();
        let col = |name: &str| headers.iter().position(|h| h.eq_ignore_ascii_case(name));
        let (domain, account) = (col("domain"), col("account_id"));
        if domain.is_none() && account.is_none() {
            return Err(format!(
                "contracts file {path}: the header row needs a `domain` or an `account_id` column"
            ));
        }
        let (vendor, start, term, end, value, status) = (
            col("vendor"),
            col("start_date"),
            col("term_months"),
            col("end_date"),
            col("annual_value"),
            col("status"),
        );
        let mut file = ContractFile::default();
        let mut problems = Vec::new();
        for record in reader.records() {
            let record = match record {
                Ok(r) => r,
                Err(e) => {
                    problems.push(format!(
                        "{path} line {}: {e}",
                        e.position().map_or(0, |p| p.line())
                    ));
                    continue;
                }
            };
            let line = record.position().map_or(0, |p| p.line());
            let cell = |c: Option<usize>| c.and_then(|i| record.get(i)).filter(|s| !s.is_empty());
            let parsed = (|| -> Result<Contract, String> {
                let number = |c: Option<usize>, what: &str| -> Result<Option<f64>, String> {
                    cell(c)
                        .map(|s| {
                            s.replace(['$', ','], "")
                                .parse::<f64>()
                                .map_err(|_| format!("{what} {s:?} is not a number"))
                        })
                        .transpose()
                };
                Ok(Contract {
                    vendor: cell(vendor).map(str::to_owned),
                    renewal: renewal(cell(end), cell(start), number(term, "term_months")?)?,
                    annual_value: number(value, "annual_value")?,
                    active: is_active(cell(status)),
                })
            })();
            let keys = (
                cell(domain).map(normalise_domain),
                cell(account).map(str::to_owned),
            );
            match (parsed, keys) {
                (Err(why), _) => problems.push(format!("{path} line {line}: {why}")),
                (Ok(_), (None, None)) => {
                    problems.push(format!("{path} line {line}: neither a domain nor an account_id"))
                }
                (Ok(c), (d, a)) => {
                    file.rows += 1;
                    if let Some(d) = d {
                        file.by_domain.entry(d).or_default().push(c.clone());
                    }
                    if let Some(a) = a {
                        file.by_account.entry(a).or_default().push(c);
                    }
                }
            }
        }
        Ok((file, problems))
    }

    /// The account's contracts, by id first, else by domain.
    pub(crate) fn find(&self, id: &str, domain: Option<&str>) -> &[Contract] {
        self.by_account
            .get(id)
            .or_else(|| domain.and_then(|d| self.by_domain.get(&normalise_domain(d))))
            .map_or(&[], Vec::as_slice)
    }
}

pub(crate) fn normalise_domain(d: &str) -> String {
    let d = d.trim().to_ascii_lowercase();
    let d = d
        .strip_prefix("https://")
        .or_else(|| d.strip_prefix("http://"))
        .unwrap_or(&d);
    let d = d.split(['/', '?', '#']).next().unwrap_or_default();
    d.strip_prefix("www.").unwrap_or(d).to_owned()
}

/// The contract that matters on `today`: the live one renewing soonest from today on, else
/// the live one that renewed most recently (its renewal has passed: a lapsed or auto-renewed
/// term the seller should check).
pub(crate) fn next<'a>(
    contracts: impl IntoIterator<Item = &'a Contract>,
    today: Date,
) -> Option<&'a Contract> {
    let live: Vec<&Contract> = contracts.into_iter().filter(|c| c.active).collect();
    live.iter()
        .filter(|c| c.renewal >= today)
        .min_by_key(|c| c.renewal)
        .or_else(|| live.iter().max_by_key(|c| c.renewal))
        .copied()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn contract(v: Value) -> Result<Contract, String> {
        from_json(v.as_object().unwrap())
    }

    #[test]
    fn renewal_comes_from_the_end_date_else_start_plus_term() {
        let c = contract(json!({"vendor": "Talend", "end_date": "2026-12-31", "start_date": "2020-01-01"}))
            .unwrap();
        assert_eq!(c.renewal.to_string(), "2026-12-31");
        let c = contract(
            json!({"Vendor": "Census", "StartDate": "2025-03-01", "ContractTerm": 12, "Status": "Activated"}),
        );
        assert_eq!(c.unwrap().renewal.to_string(), "2026-02-28");
        assert!(contract(json!({"vendor": "X"}))
            .unwrap_err()
            .contains("neither end_date"));
        assert!(contract(json!({"end_date": "31/12/2026"}))
            .unwrap_err()
            .contains("not a YYYY-MM-DD"));
        assert!(
            !contract(json!({"end_date": "2026-01-01", "status": "Expired"}))
                .unwrap()
                .active
        );
    }

    #[test]
    fn the_next_live_contract_wins_else_the_latest_past_one() {
        let at = |s: &str, active| Contract {
            vendor: Some(s.into()),
            renewal: s.parse().unwrap(),
            annual_value: None,
            active,
        };
        let today: Date = "2026-06-01".parse().unwrap();
        let all = [
            at("2026-01-01", true),
            at("2027-01-01", true),
            at("2026-09-01", true),
            at("2026-07-01", false),
        ];
        assert_eq!(next(&all, today).unwrap().vendor.as_deref(), Some("2026-09-01"));
        let past = [at("2025-01-01", true), at("2026-01-01", true)];
        assert_eq!(next(&past, today).unwrap().vendor.as_deref(), Some("2026-01-01"));
        assert!(next(&[at("2027-01-01", false)], today).is_none());
    }

    #[test]
    fn csv_rows_load_by_domain_or_account_and_bad_rows_name_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("contracts.csv");
        std::fs::write(
            &path,
            "domain,account_id,vendor,start_date,term_months,end_date,annual_value,status\n\
             acme.com,,Hightouch,2025-06-01,12,,\"$48,000\",Active\n\
             ,hubspot:9,Census,,,2027-01-31,20000,\n\
             bad.com,,Talend,2025-01-01,twelve,,,\n\
             nodate.com,,MuleSoft,,,,,\n",
        )
        .unwrap();
        let path = path.to_str().unwrap();
        let (file, problems) = ContractFile::load(path).unwrap();
        assert_eq!(file.rows, 2);
        assert_eq!(
            problems,
            [
                format!("{path} line 4: term_months \"twelve\" is not a number"),
                format!("{path} line 5: neither end_date nor start_date with term_months"),
            ]
        );
        let acme = file.find("x", Some("https://www.acme.com"));
        assert_eq!(
            (acme[0].annual_value, acme[0].renewal.to_string()),
            (Some(48_000.0), "2026-05-31".into())
        );
        assert_eq!(file.find("hubspot:9", None)[0].vendor.as_deref(), Some("Census"));
        assert!(file.find("nobody", Some("nobody.com")).is_empty());
    }
}
