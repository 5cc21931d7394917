//! The activation sections: `[budget]`, `[[webhooks]]`, `[exports]` and `[crm_lists]` (what
//! tierd does with tiers once decided). Their types and checks are `tierd-activation`'s; this module reads them
//! from the layered configuration and reports every problem at its key path.
//!
//! Webhook secrets are not read here (`config validate` runs without them): the URL, events,
//! filters and format are checked, and the secret variable is read by whoever delivers.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use tierd_activation::budget::{Budget, RawBudget};
use tierd_activation::export::{AudienceFormat, LinkedInMapping, RawLinkedInMapping};
use tierd_activation::webhooks::{RawWebhook, Webhooks};
use tierd_core::{ConfigErrors, Tier};

use crate::section;

/// `[exports]` as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawExports {
    #[serde(default)]
    linkedin: RawLinkedInMapping,
    #[serde(default)]
    audiences: Vec<RawAudience>,
}

/// One `[[exports.audiences]]` entry as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAudience {
    name: String,
    tiers: Vec<String>,
    format: String,
    directory: PathBuf,
}

/// One audience written after each committing run.
#[derive(Debug, Clone, PartialEq)]
pub struct AudienceSettings {
    /// Its name (for logs and the run's report).
    pub name: String,
    /// The tiers whose accounts it holds.
    pub tiers: Vec<Tier>,
    /// The platform's template.
    pub format: AudienceFormat,
    /// Its directory (relative paths are relative to the configuration file).
    pub directory: PathBuf,
}

/// `[exports]`: the LinkedIn column mapping and the audiences kept after each run.
#[derive(Debug, Clone, Default)]
pub struct ExportSettings {
    /// How LinkedIn company-list columns are filled.
    pub linkedin: LinkedInMapping,
    /// `[[exports.audiences]]`.
    pub audiences: Vec<AudienceSettings>,
}

/// A valid placeholder secret: `config validate` checks everything of a webhook but the secret.
const PLACEHOLDER_SECRET: &str = "whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";

/// Reads `[budget]`, `[[webhooks]]` and `[exports]`.
pub(crate) fn read_sections(
    cfg: &config::Config,
    errors: &mut ConfigErrors,
    base_dir: Option<&Path>,
) -> (Option<Budget>, Vec<RawWebhook>, ExportSettings) {
    let budget = section::<RawBudget>(cfg, errors, "budget")
        .and_then(|raw| Budget::compile(&raw, "budget").map_err(|e| errors.extend(e)).ok());
    let webhooks: Vec<RawWebhook> = section(cfg, errors, "webhooks").unwrap_or_default();
    let (_, problems) =
        Webhooks::compile_usable(&webhooks, |_| Some(PLACEHOLDER_SECRET.to_string()), "webhooks");
    errors.extend(problems);
    let raw_exports: RawExports = section(cfg, errors, "exports").unwrap_or_default();
    let linkedin = LinkedInMapping::compile(&raw_exports.linkedin, "exports.linkedin")
        .map_err(|e| errors.extend(e))
        .unwrap_or_default();
    let mut audiences = Vec::new();
    let mut names = std::collections::HashSet::new();
    for (i, a) in raw_exports.audiences.iter().enumerate() {
        let path = format!("exports.audiences[{i}]");
        if a.name.trim().is_empty() {
            errors.push(format!("{path}.name"), "must not be empty");
        } else if !names.insert(a.name.trim().to_string()) {
            errors.push(
                format!("{path}.name"),
                format!("'{}' is used by another audience", a.name.trim()),
            );
        }
        let mut tiers = Vec::new();
        if a.tiers.is_empty() {
            errors.push(
                format!("{path}.tiers"),
                "list at least one tier (tier_1, tier_2, tier_3)",
            );
        }
        for (j, t) in a.tiers.iter().enumerate() {
            match t.parse::<Tier>() {
                Ok(t) => tiers.push(t),
                Err(e) => errors.push(format!("{path}.tiers[{j}]"), e.to_string()),
            }
        }
        let format = match a.format.parse::<AudienceFormat>() {
            Ok(f) => Some(f),
            Err(e) => {
                errors.push(format!("{path}.format"), e.to_string());
                None
            }
        };
        if a.directory.as_os_str().is_empty() {
            errors.push(format!("{path}.directory"), "must name a directory");
        }
        let directory = match base_dir {
            Some(dir) if a.directory.is_relative() => dir.join(&a.directory),
            _ => a.directory.clone(),
        };
        if let Some(format) = format {
            audiences.push(AudienceSettings {
                name: a.name.trim().to_string(),
                tiers,
                format,
                directory,
            });
        }
    }
    (budget, webhooks, ExportSettings { linkedin, audiences })
}

/// `[crm_lists]` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCrmLists {
    #[serde(default = "enabled_by_default")]
    enabled: bool,
    tier_1: Option<String>,
    tier_2: Option<String>,
    tier_3: Option<String>,
}

fn enabled_by_default() -> bool {
    true
}

/// One CRM list kept in step with a tier after each committing run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrmList {
    /// The tier whose accounts it holds.
    pub tier: Tier,
    /// Its name in the CRM (a HubSpot list, a Salesforce Campaign), found again by name.
    pub name: String,
    /// Its key in the configuration (`crm_lists.tier_1`), for messages.
    pub key: String,
}

/// `[crm_lists]`: a CRM list per tier, kept in step after each committing run. Empty when the
/// section is absent or `enabled = false`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CrmListSettings {
    /// The lists, best tier first.
    pub lists: Vec<CrmList>,
}

/// Reads `[crm_lists]`; `connector` is the `[connector]` type, when there is one: lists need a
/// connector that keeps them (not account files).
pub(crate) fn read_crm_lists(
    cfg: &config::Config,
    errors: &mut ConfigErrors,
    connector: Option<&str>,
) -> CrmListSettings {
    let Some(raw) = section::<RawCrmLists>(cfg, errors, "crm_lists") else {
        return CrmListSettings::default();
    };
    if !raw.enabled {
        return CrmListSettings::default();
    }
    let mut lists = Vec::new();
    let mut names = std::collections::HashMap::new();
    for (tier, name) in [
        (Tier::Tier1, &raw.tier_1),
        (Tier::Tier2, &raw.tier_2),
        (Tier::Tier3, &raw.tier_3),
    ] {
        let Some(name) = name else { continue };
        let key = format!("crm_lists.{}", tier.as_str());
        let name = name.trim();
        if name.is_empty() {
            errors.push(key, "must name a list (or leave the key out)");
            continue;
        }
        if let Some(other) = names.insert(name.to_lowercase(), key.clone()) {
            errors.push(
                key,
                format!("'{name}' is also {other}'s list: each tier needs a list of its own"),
            );
            continue;
        }
        lists.push(CrmList {
            tier,
            name: name.to_string(),
            key,
        });
    }
    if [&raw.tier_1, &raw.tier_2, &raw.tier_3]
        .iter()
        .all(|n| n.is_none())
    {
        errors.push(
            "crm_lists",
            "names no list: set tier_1, tier_2 and/or tier_3 to a list name (or enabled = false)",
        );
    }
    let with_lists = tierd_connectors::registry::with_lists().join(", ");
    match connector.map(tierd_connectors::registry::has_lists) {
        None => errors.push(
            "crm_lists.enabled",
            format!("CRM lists need a [connector] that keeps them ({with_lists})"),
        ),
        Some(Ok(false)) => errors.push(
            "crm_lists.enabled",
            format!(
                "the {} connector keeps no CRM lists: use {with_lists}, or set enabled = false",
                connector.unwrap_or_default()
            ),
        ),
        // An unknown connector type is reported at connector.type.
        Some(Ok(true) | Err(_)) => {}
    }
    CrmListSettings { lists }
}
