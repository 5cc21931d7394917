//! The activation sections: `[budget]`, `[[webhooks]]` and `[exports]` (what tierd does with
//! tiers once decided). Their types and checks are `tierd-activation`'s; this module reads them
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
