//! One audience export with its inputs, the path both `tierd export audience` and the
//! configured `[[exports.audiences]]` take: the tier's accounts from the store and, for the
//! formats that match people (Google Customer Match, Meta), their contacts from the connector,
//! turned into `tierd-activation`'s `Contact`s in memory, written hashed, then dropped.
//!
//! Raw contact values (emails, phones, names) live only in memory for the length of one
//! export: they are never stored, and logs, warnings and errors name a contact by its id or
//! file line only. Knows nothing of how values are normalised or hashed (`tierd-activation`
//! does that) nor of any CRM's wire format (connectors do).

use std::path::Path;

use anyhow::Context as _;
use tierd_activation::export::{self, AudienceFormat, Contact, ExportReport, LinkedInMapping};
use tierd_connectors::connector::{Connector, CrmContact};
use tierd_core::Tier;
use tierd_store::Store;

/// Warnings name at most this many unreadable contact records; the rest are counted.
const NAMED_UNREADABLE: usize = 5;

/// Writes the audience of `tiers` in `format` to `dir`, with its adds and removes since the
/// previous export there. People formats read the contacts of the tier's accounts through
/// `connector` (none given: an error saying to configure one).
pub async fn export_audience(
    store: &Store,
    connector: Option<&dyn Connector>,
    dir: &Path,
    format: AudienceFormat,
    tiers: &[Tier],
    linkedin: &LinkedInMapping,
) -> anyhow::Result<ExportReport> {
    if !format.needs_contacts() {
        return Ok(export::export_tiers(store, dir, format, tiers, linkedin).await?);
    }
    let connector = connector.with_context(|| {
        format!(
            "the {format} format lists people: it reads the contacts of the tier's accounts through \
             the connector; add a [connector] section"
        )
    })?;
    let ids = export::account_ids_in_tiers(store, tiers)
        .await
        .context("cannot read the tier's accounts from the store")?;
    let found = connector.contacts_for(&ids).await.with_context(|| {
        format!(
            "cannot read the contacts of {} accounts from the {} connector",
            ids.len(),
            connector.kind()
        )
    })?;
    let unreadable = found.unreadable;
    let contacts: Vec<Contact> = found.contacts.into_iter().map(to_export).collect();
    let mut report = export::export_contacts(dir, format, &contacts)?;
    drop(contacts);
    if !unreadable.is_empty() {
        let named: Vec<String> = unreadable
            .iter()
            .take(NAMED_UNREADABLE)
            .map(ToString::to_string)
            .collect();
        let more = unreadable.len().saturating_sub(NAMED_UNREADABLE);
        report.warnings.push(format!(
            "{} contact records could not be read and were left out: {}{}",
            unreadable.len(),
            named.join("; "),
            if more > 0 {
                format!(" (and {more} more)")
            } else {
                String::new()
            }
        ));
    }
    Ok(report)
}

/// The connector's contact as the export's: the same fields, moved.
fn to_export(c: CrmContact) -> Contact {
    Contact {
        account_id: c.account_id,
        email: c.email,
        phone: c.phone,
        first_name: c.first_name,
        last_name: c.last_name,
        country: c.country,
        zip: c.zip,
    }
}
