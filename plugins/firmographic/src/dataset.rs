//! The local CSV dataset: the second source, used when the API has no match or is not
//! configured. Columns (header names, any case; only `domain` or `name` is required):
//! `domain` (or `website`), `name`, `industry`, `employee_count`, `annual_revenue`, `country`
//! (name or ISO code), `org_type` (or `type`), `founded`, `tags` (separated by `;`).
//! Bad rows are skipped and reported with the file and line.

use std::collections::HashMap;

use crate::company::Company;
use crate::normalise;

/// The companies of one CSV file, by domain and by lower-cased name.
#[derive(Debug, Default)]
pub(crate) struct Dataset {
    rows: Vec<Company>,
    by_domain: HashMap<String, usize>,
    by_name: HashMap<String, usize>,
}

/// What loading found.
#[derive(Debug)]
pub(crate) struct Loaded {
    pub(crate) dataset: Dataset,
    /// `path line N: what is wrong` for every skipped row.
    pub(crate) problems: Vec<String>,
}

impl Dataset {
    pub(crate) fn load(path: &str) -> Result<Loaded, String> {
        let mut reader = csv::ReaderBuilder::new()
            .flexible(true)
            .trim(csv::Trim::All)
            .from_path(path)
            .map_err(|e| format!("cannot open dataset {path}: {e}"))?;
        let headers = reader
            .headers()
            .map_err(|e| format!("dataset {path}: cannot read the header row: {e}"))?;
        let column = |names: &[&str]| {
            headers
                .iter()
                .position(|h| names.iter().any(|n| h.eq_ignore_ascii_case(n)))
        };
        let domain_col = column(&["domain", "website"]);
        let name_col = column(&["name", "company", "company_name"]);
        if domain_col.is_none() && name_col.is_none() {
            return Err(format!(
                "dataset {path}: the header row needs a `domain` or a `name` column"
            ));
        }
        let cols = [
            column(&["industry"]),
            column(&["employee_count", "employees"]),
            column(&["annual_revenue", "revenue"]),
            column(&["country"]),
            column(&["org_type", "type"]),
            column(&["founded", "founded_year"]),
            column(&["tags"]),
        ];
        let mut loaded = Loaded {
            dataset: Dataset::default(),
            problems: Vec::new(),
        };
        for record in reader.records() {
            let record = match record {
                Ok(r) => r,
                Err(e) => {
                    let line = e.position().map_or(0, |p| p.line());
                    loaded.problems.push(format!("{path} line {line}: {e}"));
                    continue;
                }
            };
            let line = record.position().map_or(0, |p| p.line());
            let cell = |c: Option<usize>| c.and_then(|i| record.get(i)).filter(|s| !s.is_empty());
            let number = |c: Option<usize>, what: &str| -> Result<Option<f64>, String> {
                match cell(c) {
                    None => Ok(None),
                    Some(s) => s
                        .replace(['$', ','], "")
                        .parse::<f64>()
                        .ok()
                        .filter(|v| v.is_finite() && *v >= 0.0)
                        .map(Some)
                        .ok_or_else(|| {
                            format!("{path} line {line}: {what} {s:?} is not a non-negative number")
                        }),
                }
            };
            let parsed = (|| -> Result<Company, String> {
                let country = match cell(cols[3]) {
                    None => None,
                    Some(c) => Some(
                        normalise::country_code(c)
                            .ok_or_else(|| {
                                format!("{path} line {line}: unknown country {c:?} (use an ISO code)")
                            })?
                            .to_owned(),
                    ),
                };
                let employee_count = number(cols[1], "employee_count")?;
                Ok(Company {
                    industry: cell(cols[0]).map(normalise::industry),
                    size_range: employee_count.map(|e| normalise::size_range(e).to_owned()),
                    employee_count,
                    annual_revenue: number(cols[2], "annual_revenue")?,
                    country,
                    org_type: cell(cols[4]).map(normalise::org_type),
                    founded_year: number(cols[5], "founded")?,
                    tags: cell(cols[6])
                        .map(|t| {
                            t.split(';')
                                .map(str::trim)
                                .filter(|t| !t.is_empty())
                                .map(str::to_owned)
                                .collect()
                        })
                        .unwrap_or_default(),
                })
            })();
            let (domain, name) = (
                cell(domain_col).map(normalise_domain),
                cell(name_col).map(str::to_lowercase),
            );
            if domain.is_none() && name.is_none() {
                loaded
                    .problems
                    .push(format!("{path} line {line}: neither a domain nor a name"));
                continue;
            }
            match parsed {
                Ok(company) => {
                    let d = &mut loaded.dataset;
                    let i = d.rows.len();
                    d.rows.push(company);
                    if let Some(domain) = domain {
                        d.by_domain.insert(domain, i);
                    }
                    if let Some(name) = name {
                        d.by_name.insert(name, i);
                    }
                }
                Err(problem) => loaded.problems.push(problem),
            }
        }
        Ok(loaded)
    }

    /// The company with this domain, else this name.
    pub(crate) fn find(&self, domain: Option<&str>, name: &str) -> Option<&Company> {
        domain
            .and_then(|d| self.by_domain.get(&normalise_domain(d)))
            .or_else(|| self.by_name.get(&name.trim().to_lowercase()))
            .map(|&i| &self.rows[i])
    }

    pub(crate) fn len(&self) -> usize {
        self.rows.len()
    }
}

/// `https://www.Acme.com/x` -> `acme.com`.
pub(crate) fn normalise_domain(d: &str) -> String {
    let d = d.trim().to_ascii_lowercase();
    let d = d
        .strip_prefix("https://")
        .or_else(|| d.strip_prefix("http://"))
        .unwrap_or(&d);
    let d = d.split(['/', '?', '#']).next().unwrap_or_default();
    d.strip_prefix("www.").unwrap_or(d).to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_load_by_domain_and_name_and_bad_rows_are_reported_with_their_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("companies.csv");
        std::fs::write(
            &path,
            "Domain,Name,Industry,Employee_Count,Annual_Revenue,Country,Org_Type,Founded,Tags\n\
             acme.com,Acme,computer software,1200,\"$150,000,000\",united states,private,1999,saas; b2b\n\
             bad.com,Bad,Retail,lots,,US,,,\n\
             ,Nameonly Ltd,Retail,40,,GB,,,\n\
             where.com,Where,Retail,10,,Atlantis,,,\n",
        )
        .unwrap();
        let path = path.to_str().unwrap();
        let loaded = Dataset::load(path).unwrap();
        assert_eq!(loaded.dataset.len(), 2);
        assert_eq!(loaded.problems.len(), 2, "{:?}", loaded.problems);
        assert_eq!(
            loaded.problems[0],
            format!("{path} line 3: employee_count \"lots\" is not a non-negative number")
        );
        assert!(loaded.problems[1].starts_with(&format!("{path} line 5: unknown country \"Atlantis\"")));

        let acme = loaded.dataset.find(Some("https://www.ACME.com/"), "").unwrap();
        assert_eq!(acme.industry.as_deref(), Some("Software"));
        assert_eq!(acme.annual_revenue, Some(150_000_000.0));
        assert_eq!(acme.tags, ["saas", "b2b"]);
        assert_eq!(acme.size_range.as_deref(), Some("1001-5000"));
        assert!(loaded.dataset.find(None, "nameonly ltd").is_some());
        assert!(loaded.dataset.find(Some("other.com"), "Other").is_none());
    }

    #[test]
    fn a_dataset_without_key_columns_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.csv");
        std::fs::write(&path, "industry,employees\nRetail,3\n").unwrap();
        let e = Dataset::load(path.to_str().unwrap()).unwrap_err();
        assert!(e.contains("needs a `domain` or a `name` column"), "{e}");
        assert!(Dataset::load("/nonexistent.csv")
            .unwrap_err()
            .contains("cannot open dataset /nonexistent.csv"));
    }
}
