//! `tierd score --enrich`: the configured plugins run over each batch of accounts before it
//! is scored, so an offline file gets the same facts the daemon would add.
//!
//! Plugin facts replace the file's value for the same fact: a provider is the source of truth
//! for what it returns. A plugin that fails for an account leaves that account's facts as the
//! file had them (stale, never zero), and the summary says how many.

use anyhow::Context as _;
use serde_json::{Map, Value};
use tierd_connectors::files::{json_fact, AccountRecord};
use tierd_core::{Date, FactSchema};
use tierd_plugin_host::{AccountInput, HostOptions, Outcome, PluginSet};

use tierd_config::Settings;

/// Problems kept for the report; the rest are counted.
const KEEP_PROBLEMS: usize = 20;

/// What enrichment did, over the whole file.
#[derive(Debug, Default)]
pub struct EnrichSummary {
    /// Plugins that ran.
    pub plugins: Vec<String>,
    /// Plugin results from this run.
    pub fresh: u64,
    /// Plugin results served from the cache.
    pub cached: u64,
    /// Accounts a source knew nothing about.
    pub no_match: u64,
    /// Plugin results that failed; the file's facts were kept.
    pub stale: u64,
    /// Facts dropped: undeclared, mistyped, or not parseable as the model's type.
    pub dropped: u64,
    /// The first problems, for people.
    pub problems: Vec<String>,
}

/// The running plugins and the runtime they need.
pub struct Enricher {
    runtime: tokio::runtime::Runtime,
    set: PluginSet,
    as_of: String,
    summary: EnrichSummary,
}

impl Enricher {
    /// Starts every plugin in `[plugins.*]`; any that cannot start is a fatal error.
    pub fn start(settings: &Settings, as_of: Date) -> anyhow::Result<Enricher> {
        if settings.plugins.is_empty() {
            anyhow::bail!(
                "--enrich needs plugins: add a [plugins.<name>] section to the config (see docs/plugins.md)"
            );
        }
        let runtime = crate::runtime("plugins")?;
        let set = runtime
            .block_on(PluginSet::load(&settings.plugins, &HostOptions::default()))
            .context("cannot start the enrichment plugins")?;
        let plugins = set.plugins().into_iter().map(|p| p.name).collect();
        Ok(Enricher {
            runtime,
            set,
            as_of: as_of.to_string(),
            summary: EnrichSummary {
                plugins,
                ..EnrichSummary::default()
            },
        })
    }

    /// Enriches `accounts` in place.
    pub fn enrich(&mut self, schema: &FactSchema, accounts: &mut [AccountRecord]) {
        let inputs = accounts
            .iter()
            .map(|a| AccountInput {
                key: String::new(),
                id: a.id.clone(),
                name: a.name.clone().unwrap_or_default(),
                domain: a.domain.clone(),
                facts: known_facts(schema, a),
                related: Map::new(),
                state: Value::Null,
            })
            .collect();
        let results = self.runtime.block_on(self.set.enrich(&self.as_of, inputs));
        let s = &mut self.summary;
        for (account, enrichment) in accounts.iter_mut().zip(results) {
            debug_assert_eq!(account.id, enrichment.id, "results come back in account order");
            for result in enrichment.results {
                for bad in &result.rejected {
                    s.dropped += 1;
                    note(&mut s.problems, bad.to_string());
                }
                let facts = match result.outcome {
                    Outcome::Fresh { facts, .. } => {
                        s.fresh += 1;
                        facts
                    }
                    Outcome::Cached { facts, .. } => {
                        s.cached += 1;
                        facts
                    }
                    Outcome::NoMatch => {
                        s.no_match += 1;
                        continue;
                    }
                    Outcome::Stale { reason } => {
                        s.stale += 1;
                        note(
                            &mut s.problems,
                            format!("plugin {}, account {}: {reason}", result.plugin, account.id),
                        );
                        continue;
                    }
                };
                for (name, slot, typed) in typed_plugin_facts(schema, &facts) {
                    match typed {
                        Ok(v) => account.facts.set(slot, v),
                        Err(e) => {
                            s.dropped += 1;
                            note(
                                &mut s.problems,
                                format!("plugin {}, account {}: {name}: {e}", result.plugin, account.id),
                            );
                        }
                    }
                }
            }
        }
    }

    /// Stops the plugins and returns what they did.
    pub fn finish(self) -> EnrichSummary {
        self.runtime.block_on(self.set.shutdown());
        self.summary
    }
}

/// A plugin's facts typed by the model's schema: `(name, slot, value or why not)`. Facts the model
/// does not read are left out (they are of no use to scoring); a plugin value replaces the
/// account's own value for the same fact (the provider is the source of truth for what it
/// returns). Shared by `score --enrich` and the daemon's pipeline.
pub(crate) fn typed_plugin_facts<'a>(
    schema: &'a FactSchema,
    facts: &'a Map<String, Value>,
) -> impl Iterator<
    Item = (
        &'a str,
        tierd_core::model::FactSlot,
        Result<Option<tierd_core::fact::FactValue>, String>,
    ),
> + 'a {
    facts.iter().filter_map(|(name, value)| {
        let slot = schema.slot(name)?;
        Some((name.as_str(), slot, json_fact(schema.fact_type(slot), value)))
    })
}

/// The facts the account already has, as plugins receive them.
fn known_facts(schema: &FactSchema, account: &AccountRecord) -> Map<String, Value> {
    (0..schema.len())
        .filter_map(|slot| {
            let value = account.facts.get(slot)?;
            Some((schema.name(slot).to_string(), serde_json::to_value(value).ok()?))
        })
        .collect()
}

fn note(problems: &mut Vec<String>, problem: String) {
    if problems.len() < KEEP_PROBLEMS {
        problems.push(problem);
    }
}

/// Prints what enrichment did.
pub fn print_summary(out: &mut impl std::io::Write, s: &EnrichSummary) -> std::io::Result<()> {
    writeln!(
        out,
        "Enriched with {}: {} fresh, {} cached, {} no match, {} failed (file facts kept), {} facts dropped.",
        s.plugins.join(", "),
        s.fresh,
        s.cached,
        s.no_match,
        s.stale,
        s.dropped
    )?;
    for p in &s.problems {
        writeln!(out, "  {p}")?;
    }
    Ok(())
}
