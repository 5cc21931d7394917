//! The accounts of an audience, read from the store: every account whose committed tier is one of
//! the audience's, with its facts and reasons, paged so memory follows the audience, not the
//! population.

use tierd_core::Tier;
use tierd_store::{Store, StoreError};

use super::AudienceAccount;

/// Accounts read per page.
const PAGE: u32 = 2_000;

/// The ids of every tiered account whose tier is in `tiers`, in id order: what a people
/// audience asks the connector about (no facts or explanations read).
pub async fn account_ids_in_tiers(store: &Store, tiers: &[Tier]) -> Result<Vec<String>, StoreError> {
    let mut out = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = store.account_summaries(after.as_deref(), PAGE).await?;
        let Some(last) = page.last() else { break };
        after = Some(last.id.clone());
        out.extend(
            page.into_iter()
                .filter(|a| a.tiered && tiers.contains(&a.tier))
                .map(|a| a.id),
        );
    }
    Ok(out)
}

/// Every tiered account whose tier is in `tiers`, by id.
pub async fn accounts_in_tiers(store: &Store, tiers: &[Tier]) -> Result<Vec<AudienceAccount>, StoreError> {
    let mut out = Vec::new();
    for ids in account_ids_in_tiers(store, tiers).await?.chunks(PAGE as usize) {
        let mut states = store.accounts(ids).await?;
        for id in ids {
            let Some(s) = states.remove(id) else { continue };
            let reasons = s.explanation["reasons"]
                .as_str()
                .unwrap_or_default()
                .split("; ")
                .filter(|r| !r.is_empty())
                .map(str::to_string)
                .collect();
            out.push(AudienceAccount {
                id: s.id,
                name: s.name,
                domain: s.domain,
                tier: s.tier,
                score: s.score,
                reasons,
                facts: s.facts,
            });
        }
    }
    Ok(out)
}

/// Why an audience could not be exported from the store.
#[derive(Debug, thiserror::Error)]
pub enum AudienceError {
    /// The store could not be read.
    #[error("cannot read the accounts: {0}")]
    Store(#[from] StoreError),
    /// The files could not be written (the message names the path).
    #[error(transparent)]
    Export(#[from] super::ExportError),
    /// A people format: it needs the contacts of the accounts, which the caller must pull.
    #[error("the {0} format lists people: it needs the contacts of the tier's accounts, which this export was not given")]
    NeedsContacts(super::AudienceFormat),
}

/// Exports the accounts in `tiers` as the company audience `format` into `dir` (see
/// [`super::export_accounts`]); people formats need contacts and are refused.
pub async fn export_tiers(
    store: &Store,
    dir: &std::path::Path,
    format: super::AudienceFormat,
    tiers: &[Tier],
    linkedin: &super::LinkedInMapping,
) -> Result<super::ExportReport, AudienceError> {
    if format.needs_contacts() {
        return Err(AudienceError::NeedsContacts(format));
    }
    let accounts = accounts_in_tiers(store, tiers).await?;
    Ok(super::export_accounts(dir, format, &accounts, linkedin)?)
}
