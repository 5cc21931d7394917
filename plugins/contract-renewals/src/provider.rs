//! The plugin: config, gathering each account's contracts from the request and the CSV, and
//! the facts and `renewal_within` signals of the contract that matters now.

use serde::Deserialize;
use serde_json::{json, Value};
use tierd_plugin_api::prelude::*;

use crate::contracts::{self, Contract, ContractFile};

/// `[plugins.contract-renewals.config]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub(crate) struct Config {
    /// A contracts CSV exported from a contract or procurement tool.
    pub(crate) contracts_csv: Option<String>,
    /// Vendors that are competitors (any case); `contracts.is_competitor` is only set when this is not empty.
    pub(crate) competitors: Vec<String>,
    /// Day windows for `renewal_within` signals.
    pub(crate) windows: Vec<u32>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            contracts_csv: None,
            competitors: Vec::new(),
            windows: vec![30, 90, 180],
        }
    }
}

/// The contract-renewals provider.
pub struct ContractRenewals {
    config: Config,
    file: Option<ContractFile>,
}

impl ContractRenewals {
    pub(crate) fn new(config: Value, host: Host) -> Result<ContractRenewals, PluginError> {
        let config: Config = serde_json::from_value(config)
            .map_err(|e| PluginError::new(format!("contract-renewals config: {e}")))?;
        if config.windows.is_empty() {
            return Err(PluginError::new(
                "contract-renewals config: windows must list at least one number of days",
            ));
        }
        let file = match &config.contracts_csv {
            None => None,
            Some(path) => {
                let (file, problems) = ContractFile::load(path)
                    .map_err(|e| PluginError::new(format!("contract-renewals: {e}")))?;
                if !problems.is_empty() {
                    host.log(
                        Level::Warn,
                        format!(
                            "{} contract rows skipped: {}",
                            problems.len(),
                            problems.join("; ")
                        ),
                    );
                }
                host.log(
                    Level::Info,
                    format!("contracts file {path}: {} contracts", file.rows),
                );
                Some(file)
            }
        };
        Ok(ContractRenewals { config, file })
    }

    pub(crate) fn description(&self) -> Description {
        let fact = |name: &str, t| FactSpec::new(format!("contracts.{name}"), t);
        let field = |name: &str, description: &str| ConfigField {
            name: name.into(),
            secret: false,
            required: false,
            description: description.into(),
        };
        Description {
            name: "contract-renewals".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            facts: vec![
                fact("renewal_date", FactType::Date),
                fact("days_to_renewal", FactType::Number),
                fact("current_vendor", FactType::String),
                fact("is_competitor", FactType::Bool),
                fact("annual_value", FactType::Number),
            ],
            signals: vec!["renewal_within".into()],
            hosts: vec![],
            batch_size: Some(500),
            rate_limit_per_minute: None,
            config: vec![
                field("contracts_csv", "CSV: domain or account_id, vendor, start_date, term_months or end_date, annual_value, status"),
                field("competitors", "vendors that are competitors, e.g. [\"Hightouch\", \"Census\"]"),
                field("windows", "days for renewal_within signals ([30, 90, 180])"),
            ],
        }
    }

    pub(crate) fn run(&self, request: EnrichRequest) -> Result<EnrichResponse, PluginError> {
        let today: Date = request.as_of.parse().map_err(|_| {
            PluginError::new(format!(
                "enrich request: as_of {:?} is not a YYYY-MM-DD date",
                request.as_of
            ))
        })?;
        let results = request
            .accounts
            .iter()
            .map(|a| self.account(a, &request.as_of, today))
            .collect();
        Ok(EnrichResponse { results })
    }

    fn account(&self, account: &AccountInput, as_of: &str, today: Date) -> AccountResult {
        let mut found: Vec<Contract> = Vec::new();
        let mut problems = Vec::new();
        if let Some(Value::Array(related)) = account.related.get("contracts") {
            for (i, item) in related.iter().enumerate() {
                match item.as_object().map(contracts::from_json) {
                    Some(Ok(c)) => found.push(c),
                    Some(Err(why)) => problems.push(format!("related contract {}: {why}", i + 1)),
                    None => problems.push(format!("related contract {}: not an object", i + 1)),
                }
            }
        }
        // CRM properties: the vendor and contract end date kept on the company itself.
        if let Some(end) = account
            .facts
            .get("contracts.renewal_date")
            .and_then(Value::as_str)
        {
            match end.parse::<Date>() {
                Ok(renewal) => found.push(Contract {
                    vendor: account
                        .facts
                        .get("contracts.current_vendor")
                        .and_then(Value::as_str)
                        .map(str::to_owned),
                    renewal,
                    annual_value: None,
                    active: true,
                }),
                Err(_) => problems.push(format!(
                    "fact contracts.renewal_date {end:?} is not a YYYY-MM-DD date"
                )),
            }
        }
        if let Some(file) = &self.file {
            found.extend(file.find(&account.id, account.domain.as_deref()).iter().cloned());
        }
        let Some(contract) = contracts::next(&found, today) else {
            return if problems.is_empty() {
                AccountResult::no_match(&account.key)
            } else {
                AccountResult::failed(
                    &account.key,
                    format!("account {}: {}", account.id, problems.join("; ")),
                )
            };
        };
        let mut result = AccountResult::new(&account.key);
        let days = i64::from(today.days_until(contract.renewal));
        let facts = &mut result.facts;
        facts.insert(
            "contracts.renewal_date".into(),
            json!(contract.renewal.to_string()),
        );
        facts.insert("contracts.days_to_renewal".into(), json!(days));
        if let Some(vendor) = &contract.vendor {
            facts.insert("contracts.current_vendor".into(), json!(vendor));
            if !self.config.competitors.is_empty() {
                let competitor = self
                    .config
                    .competitors
                    .iter()
                    .any(|c| c.trim().eq_ignore_ascii_case(vendor.trim()));
                facts.insert("contracts.is_competitor".into(), json!(competitor));
            }
        }
        if let Some(value) = contract.annual_value {
            facts.insert("contracts.annual_value".into(), json!(value));
        }
        if days >= 0 {
            for &window in &self.config.windows {
                if days <= i64::from(window) {
                    let mut detail = serde_json::Map::new();
                    detail.insert("days".into(), json!(window));
                    detail.insert("renewal_date".into(), json!(contract.renewal.to_string()));
                    if let Some(vendor) = &contract.vendor {
                        detail.insert("vendor".into(), json!(vendor));
                    }
                    result.signals.push(Signal {
                        kind: "renewal_within".into(),
                        subject: Some(window.to_string()),
                        date: as_of.to_owned(),
                        detail,
                    });
                }
            }
        }
        result
    }
}

impl Provider for ContractRenewals {
    fn init(config: Value, host: Host) -> Result<Self, PluginError> {
        ContractRenewals::new(config, host)
    }

    fn describe(&self) -> Description {
        self.description()
    }

    fn enrich(&mut self, request: EnrichRequest) -> Result<EnrichResponse, PluginError> {
        self.run(request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account(id: &str, domain: Option<&str>, facts: Value, related: Value) -> AccountInput {
        AccountInput {
            key: domain.unwrap_or(id).into(),
            id: id.into(),
            name: String::new(),
            domain: domain.map(str::to_owned),
            facts: facts.as_object().cloned().unwrap_or_default(),
            related: related.as_object().cloned().unwrap_or_default(),
            state: Value::Null,
        }
    }

    fn run(p: &ContractRenewals, accounts: Vec<AccountInput>) -> Vec<AccountResult> {
        p.run(EnrichRequest {
            as_of: "2026-11-24".into(),
            accounts,
        })
        .unwrap()
        .results
    }

    #[test]
    fn related_contracts_give_facts_and_signals_for_each_window_reached() {
        let p =
            ContractRenewals::new(json!({"competitors": ["Hightouch", "census"]}), Host::detached()).unwrap();
        let related = json!({"contracts": [
            {"vendor": "Talend", "start_date": "2023-01-01", "term_months": 24, "status": "Expired"},
            {"vendor": "Census", "start_date": "2026-01-15", "term_months": 12, "status": "Activated", "annual_value": 40000}
        ]});
        let r = &run(
            &p,
            vec![account("hubspot:1", Some("acme.com"), json!({}), related)],
        )[0];
        assert_eq!(
            Value::Object(r.facts.clone()),
            json!({"contracts.renewal_date": "2027-01-14", "contracts.days_to_renewal": 51,
                   "contracts.current_vendor": "Census", "contracts.is_competitor": true,
                   "contracts.annual_value": 40000.0})
        );
        let windows: Vec<&str> = r.signals.iter().map(|s| s.subject.as_deref().unwrap()).collect();
        assert_eq!(windows, ["90", "180"]);
        assert_eq!(r.signals[0].detail["vendor"], "Census");
        assert_eq!(r.signals[0].date, "2026-11-24");
    }

    #[test]
    fn crm_properties_and_the_csv_are_sources_too() {
        let dir = tempfile::tempdir().unwrap();
        let csv = dir.path().join("contracts.csv");
        std::fs::write(
            &csv,
            "account_id,vendor,end_date,annual_value\nsf:7,MuleSoft,2026-12-10,90000\n",
        )
        .unwrap();
        let p = ContractRenewals::new(
            json!({"contracts_csv": csv.to_str().unwrap(), "windows": [30]}),
            Host::detached(),
        )
        .unwrap();
        let crm = json!({"contracts.current_vendor": "Informatica", "contracts.renewal_date": "2027-06-30"});
        let results = run(
            &p,
            vec![
                account("hubspot:2", Some("a.com"), crm, json!({})),
                account("sf:7", None, json!({}), json!({})),
                account("hubspot:3", Some("none.com"), json!({}), json!({})),
            ],
        );
        assert_eq!(results[0].facts["contracts.current_vendor"], "Informatica");
        assert!(
            !results[0].facts.contains_key("contracts.is_competitor"),
            "no competitor list configured"
        );
        assert!(results[0].signals.is_empty());
        assert_eq!(results[1].facts["contracts.days_to_renewal"], 16);
        assert_eq!(results[1].signals.len(), 1);
        assert!(results[2].no_match);
    }

    #[test]
    fn a_passed_renewal_is_reported_without_signals_and_bad_records_fail_the_account() {
        let p = ContractRenewals::new(json!({}), Host::detached()).unwrap();
        let results = run(
            &p,
            vec![
                account(
                    "x:1",
                    None,
                    json!({"contracts.renewal_date": "2026-10-25"}),
                    json!({}),
                ),
                account("x:2", None, json!({}), json!({"contracts": [{"vendor": "Y"}]})),
            ],
        );
        assert_eq!(results[0].facts["contracts.days_to_renewal"], -30);
        assert!(results[0].signals.is_empty());
        assert_eq!(
            results[1].error.as_deref(),
            Some("account x:2: related contract 1: neither end_date nor start_date with term_months")
        );
    }

    #[test]
    fn config_and_request_errors_are_clear() {
        let e = ContractRenewals::new(json!({"windows": []}), Host::detached())
            .err()
            .unwrap();
        assert!(e.message().contains("windows must list"));
        let e = ContractRenewals::new(json!({"contracts_csv": "/none.csv"}), Host::detached())
            .err()
            .unwrap();
        assert!(e.message().contains("cannot open contracts file /none.csv"));
        let p = ContractRenewals::new(json!({}), Host::detached()).unwrap();
        let e = p
            .run(EnrichRequest {
                as_of: "soon".into(),
                accounts: vec![],
            })
            .unwrap_err();
        assert!(e.message().contains("as_of \"soon\""));
    }
}
