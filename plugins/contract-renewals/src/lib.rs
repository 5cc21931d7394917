//! contract-renewals: tierd's built-in contract-renewals provider.
//!
//! Reads each account's contracts from three places: related contract records in the request
//! (e.g. Salesforce `Contract`s), the CRM properties `contracts.current_vendor` /
//! `contracts.renewal_date`, and a contracts CSV exported from a contract or procurement tool.
//! The renewal date is the end date, else start date + term (Salesforce's convention: the day
//! before the anniversary). The live contract renewing soonest is the one reported, with
//! `renewal_within` signals for each configured window it falls in.
//!
//! Written only against `tierd-plugin-api`; it makes no HTTP calls.

mod contracts;
mod provider;

pub use provider::ContractRenewals;

tierd_plugin_api::export_plugin!(ContractRenewals);
