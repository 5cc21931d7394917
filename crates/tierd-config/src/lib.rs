//! tierd-config: `tierd.toml`, every section's type, default and validation.
//!
//! Where the configuration comes from, in order: `--config PATH`, the `TIERD_CONFIG`
//! variable, `./config/tierd.toml` when it exists, else the defaults built into the binary
//! (the same files as `config/` in the repository), so `tierd` works from any directory.
//! The file is layered with `TIERD__SECTION__KEY` environment overrides (the `config` crate),
//! then each section is read on its own ([`section`]) so one bad section does not hide another's
//! problems. Every problem is reported with its key path; unknown keys are errors.
//!
//! Must not: start anything (no store connection, no plugin, no network). Secrets are read by
//! the crates that use them, when they start, so `tierd config validate` works without them.

pub mod activation;
pub mod api;
pub mod engine;
pub mod log;
pub mod schedule;

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use serde::Deserialize;
use tierd_core::tier::RawTierPolicy;
use tierd_core::{ConfigErrors, FactSchema, Model, TierPolicy};

/// The annotated default configuration, built in.
pub const DEFAULT_CONFIG: &str = include_str!("../../../config/tierd.toml");
/// The default scoring model, built in.
pub const DEFAULT_MODEL: &str = include_str!("../../../config/model.toml");

/// Prefix of environment overrides: `TIERD__TIERING__TIER_1=4.4`.
const ENV_PREFIX: &str = "TIERD";
const SECTIONS: &[&str] = &[
    "model",
    "tiering",
    "output",
    "plugins",
    "store",
    "connector",
    "pipeline",
    "schedule",
    "api",
    "log",
    "budget",
    "webhooks",
    "exports",
    "crm_lists",
    "shadow",
    "outcomes",
];

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct ModelSection {
    /// The model file, relative to the configuration file.
    path: PathBuf,
}

/// `[shadow]`: a candidate model scored beside the live one on every committing run.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct ShadowSection {
    /// The candidate model file, relative to the configuration file.
    model: PathBuf,
}

/// `[output]`: how scores are written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputSettings {
    /// Reasons up shown in the compact explanation.
    #[serde(default = "default_reasons_up")]
    pub reasons_up: usize,
    /// Reasons down shown in the compact explanation.
    #[serde(default = "default_reasons_down")]
    pub reasons_down: usize,
}

fn default_reasons_up() -> usize {
    3
}
fn default_reasons_down() -> usize {
    2
}

impl Default for OutputSettings {
    fn default() -> Self {
        OutputSettings {
            reasons_up: default_reasons_up(),
            reasons_down: default_reasons_down(),
        }
    }
}

/// `[outcomes]`: what the funnel report compares tiers with, beyond the untiered baseline.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutcomesSettings {
    /// A flag fact that is `true` for the accounts on the CRM's own target list (HubSpot's
    /// `hs_is_target_account` is mapped to `crm.target_account` by default): the funnel report
    /// then has a row for the accounts not on it.
    pub target_list_fact: Option<tierd_core::fact::FactName>,
}

/// A checked configuration, ready to score.
pub struct Settings {
    /// Where it came from, for messages.
    pub origin: String,
    /// The scoring model.
    pub model: Model,
    /// The model file as written, for tools that write a variant of it for a person to review
    /// (`tierd calibrate --suggest-weights`).
    pub model_text: String,
    /// The tiering policy.
    pub policy: TierPolicy,
    /// The facts rows must carry: the model's, then the policy's, then `[outcomes]`'s.
    pub schema: FactSchema,
    /// Output options.
    pub output: OutputSettings,
    /// `[plugins.<name>]`: enrichment plugins, paths made relative to the config file.
    pub plugins: std::collections::BTreeMap<String, tierd_plugin_host::PluginConfig>,
    /// `[store]`: where runs and account state are kept.
    pub store: engine::StoreSettings,
    /// `[connector]`: the CRM; `None` when the section is absent (offline commands need none).
    pub connector: Option<engine::ConnectorSettings>,
    /// `[pipeline]`: batch sizes and concurrency of runs.
    pub pipeline: engine::PipelineSettings,
    /// `[schedule]`: when the daemon's leader starts runs.
    pub schedule: schedule::ScheduleSettings,
    /// `[api]`: the admin API.
    pub api: api::ApiSettings,
    /// `[log]`: log format and filter.
    pub log: log::LogSettings,
    /// `[budget]`: spend per account per tier, when configured.
    pub budget: Option<tierd_activation::budget::Budget>,
    /// `[[webhooks]]` as written: checked here except for the secrets, which are read from the
    /// environment by whoever delivers (`tierd_activation::webhooks::Webhooks::compile_usable`).
    pub webhooks: Vec<tierd_activation::webhooks::RawWebhook>,
    /// `[exports]`: audiences written after each committing run.
    pub exports: activation::ExportSettings,
    /// `[crm_lists]`: a CRM list per tier kept in step after each committing run.
    pub crm_lists: activation::CrmListSettings,
    /// `[shadow] model`: a candidate model scored beside the live one on every committing run,
    /// stored and never pushed (`None` without the section).
    pub shadow: Option<Model>,
    /// `[outcomes]`: the funnel report's comparison groups.
    pub outcomes: OutcomesSettings,
}

/// Which configuration file to use (`None`: the built-in defaults).
pub fn locate(explicit: Option<&Path>) -> Option<PathBuf> {
    if let Some(p) = explicit {
        return Some(p.to_path_buf());
    }
    if let Some(p) = std::env::var_os("TIERD_CONFIG").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p));
    }
    let local = Path::new("config/tierd.toml");
    local.exists().then(|| local.to_path_buf())
}

/// Locates and loads the configuration (`--config PATH`, `TIERD_CONFIG`, `./config/tierd.toml`,
/// else the built-in defaults), every problem listed in one error.
pub fn load(explicit: Option<&Path>) -> anyhow::Result<Settings> {
    let path = locate(explicit);
    Settings::load(path.as_deref()).map_err(|e| match e {
        LoadError::Io(e) => e,
        LoadError::Invalid(origin, errors) => {
            anyhow::anyhow!("{origin} is not valid ({} problems):\n{errors}", errors.0.len())
        }
    })
}

/// Why a configuration could not be loaded: either it could not be read at all,
/// or it was read and has problems (all of them listed).
pub enum LoadError {
    /// A file could not be read.
    Io(anyhow::Error),
    /// The problems found, each with its key path.
    Invalid(String, ConfigErrors),
}

impl Settings {
    /// Loads and checks the configuration at `path` (or the built-in defaults).
    pub fn load(path: Option<&Path>) -> Result<Settings, LoadError> {
        let (origin, text, base_dir) = match path {
            Some(p) => {
                let text = std::fs::read_to_string(p)
                    .with_context(|| format!("cannot read configuration {}", p.display()))
                    .map_err(LoadError::Io)?;
                let dir = p.parent().map(Path::to_path_buf).unwrap_or_default();
                (p.display().to_string(), text, Some(dir))
            }
            None => ("built-in defaults".to_string(), DEFAULT_CONFIG.to_string(), None),
        };
        let invalid = |errors: ConfigErrors| LoadError::Invalid(origin.clone(), errors);
        let mut errors = ConfigErrors::default();
        // The TOML itself first, so a value the parser refuses is reported at its key.
        if let Err(e) = text.parse::<toml::Table>() {
            let (path, message) = toml_problem(&text, &e);
            errors.push(path, message);
            return Err(invalid(errors));
        }
        let cfg = config::Config::builder()
            .add_source(config::File::from_str(&text, config::FileFormat::Toml))
            .add_source(
                config::Environment::with_prefix(ENV_PREFIX)
                    .prefix_separator("__")
                    .separator("__")
                    .try_parsing(true),
            )
            .build();
        let cfg = match cfg {
            Ok(c) => c,
            Err(e) => {
                errors.push("config", e.to_string());
                return Err(invalid(errors));
            }
        };
        let root: config::Map<String, config::Value> = cfg.clone().try_deserialize().unwrap_or_default();
        for key in root.keys() {
            if !SECTIONS.contains(&key.as_str()) {
                errors.push(
                    key.clone(),
                    format!("unknown section (expected one of: {})", SECTIONS.join(", ")),
                );
            }
        }
        // Each section is read on its own so one bad section does not hide the others' problems.
        let model_section: Option<ModelSection> = section(&cfg, &mut errors, "model");
        let raw_policy: RawTierPolicy = section(&cfg, &mut errors, "tiering").unwrap_or_default();
        let output: OutputSettings = section(&cfg, &mut errors, "output").unwrap_or_default();
        let outcomes: OutcomesSettings = section(&cfg, &mut errors, "outcomes").unwrap_or_default();
        let plugins = plugins_section(&cfg, &mut errors, base_dir.as_deref());
        let (store, connector, pipeline) = engine::read_sections(&cfg, &mut errors);
        let schedule: schedule::ScheduleSettings = checked(&cfg, &mut errors, "schedule");
        let api: api::ApiSettings = checked(&cfg, &mut errors, "api");
        let log: log::LogSettings = checked(&cfg, &mut errors, "log");
        let (budget, webhooks, exports) = activation::read_sections(&cfg, &mut errors, base_dir.as_deref());
        let crm_lists =
            activation::read_crm_lists(&cfg, &mut errors, connector.as_ref().map(|c| c.kind.as_str()));

        let model_text = match (&model_section, &base_dir) {
            (Some(m), Some(dir)) => {
                let model_path = dir.join(&m.path);
                match std::fs::read_to_string(&model_path) {
                    Ok(t) => Some(t),
                    Err(e) => {
                        errors.push("model.path", format!("cannot read {}: {e}", model_path.display()));
                        None
                    }
                }
            }
            // The built-in configuration points at the built-in model.
            (Some(_), None) => Some(DEFAULT_MODEL.to_string()),
            (None, _) => {
                errors.push("model", "missing: add [model] path = \"model.toml\"");
                None
            }
        };
        let model = model_text
            .as_deref()
            .and_then(|t| Model::from_toml(t, "model").map_err(|e| errors.extend(e)).ok());
        let shadow = section::<ShadowSection>(&cfg, &mut errors, "shadow").and_then(|sh| {
            let path = base_dir.as_deref().unwrap_or(Path::new(".")).join(&sh.model);
            match std::fs::read_to_string(&path) {
                Ok(text) => Model::from_toml(&text, "shadow.model")
                    .map_err(|e| errors.extend(e))
                    .ok(),
                Err(e) => {
                    errors.push("shadow.model", format!("cannot read {}: {e}", path.display()));
                    None
                }
            }
        });
        // The policy is checked even when the model is not, so every problem shows at once.
        let mut schema = model.as_ref().map(|m| m.schema().clone()).unwrap_or_default();
        let policy = TierPolicy::compile(&raw_policy, &mut schema, "tiering").map_err(|e| errors.extend(e));
        // Facts outside the schema are not kept from the CRM: the target list's flag must be in it.
        if let Some(fact) = &outcomes.target_list_fact {
            if let Err(e) = schema.require(fact, tierd_core::fact::FactType::Bool) {
                errors.push("outcomes.target_list_fact", e);
            }
        }
        if let Ok(p) = &policy {
            for (i, sized) in p.budget_caps.iter().enumerate() {
                if *sized && budget.as_ref().and_then(|b| b.total).is_none() {
                    errors.push(
                        format!("tiering.tier_{}_cap.budget", i + 1),
                        "sizes the cap from the budget: add [budget] with a total",
                    );
                }
            }
        }
        match (model, policy) {
            (Some(model), Ok(policy)) if errors.is_empty() => Ok(Settings {
                origin,
                model,
                model_text: model_text.unwrap_or_default(),
                policy,
                schema,
                output,
                plugins,
                store,
                connector,
                pipeline,
                schedule,
                api,
                log,
                budget,
                webhooks,
                exports,
                crm_lists,
                shadow,
                outcomes,
            }),
            _ => Err(invalid(errors)),
        }
    }
}

/// Reads `[plugins.*]`, one table at a time so each plugin reports its own problems.
fn plugins_section(
    cfg: &config::Config,
    errors: &mut ConfigErrors,
    base_dir: Option<&Path>,
) -> std::collections::BTreeMap<String, tierd_plugin_host::PluginConfig> {
    let names: config::Map<String, config::Value> = section(cfg, errors, "plugins").unwrap_or_default();
    let mut plugins = std::collections::BTreeMap::new();
    for name in names.keys() {
        let key = format!("plugins.{name}");
        let Some(mut plugin) = section::<tierd_plugin_host::PluginConfig>(cfg, errors, &key) else {
            continue;
        };
        if let Some(dir) = base_dir {
            plugin.resolve_paths(dir);
        }
        for (field, problem) in plugin.problems() {
            errors.push(format!("{key}.{field}"), problem);
        }
        plugins.insert(name.clone(), plugin);
    }
    plugins
}

/// The key path (`section.key`) of the line a TOML parse error points at, and the error.
fn toml_problem(text: &str, e: &toml::de::Error) -> (String, String) {
    let message = e.message().trim().to_string();
    let Some(span) = e.span() else {
        return ("config".into(), message);
    };
    let before = &text[..span.start.min(text.len())];
    let line_no = before.matches('\n').count() + 1;
    let line = text.lines().nth(line_no - 1).unwrap_or_default();
    let section = before
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| l.starts_with('[') && l.ends_with(']'))
        .map(|l| l.trim_matches(|c| c == '[' || c == ']').trim().to_string());
    let key = line
        .split_once('=')
        .map(|(k, _)| k.trim().trim_matches('"').to_string());
    let path = match (section, key) {
        (Some(s), Some(k)) => format!("{s}.{k}"),
        (None, Some(k)) => k,
        (Some(s), None) => s,
        (None, None) => "config".into(),
    };
    (path, format!("{message} (line {line_no})"))
}

/// A section that reports its own problems as (key under the section, what is wrong).
pub trait Checked {
    /// Each problem as (key under the section, what is wrong).
    fn problems(&self) -> Vec<(&'static str, String)>;
}

/// Reads a section that has defaults and checks it; each problem is recorded under
/// `name.key`, and a section that cannot be read gives its defaults.
pub fn checked<T: serde::de::DeserializeOwned + Default + Checked>(
    cfg: &config::Config,
    errors: &mut ConfigErrors,
    name: &str,
) -> T {
    let value: T = section(cfg, errors, name).unwrap_or_default();
    for (key, problem) in value.problems() {
        errors.push(format!("{name}.{key}"), problem);
    }
    value
}

/// Reads one section; a problem is recorded under the section's name and gives `None`.
pub fn section<T: serde::de::DeserializeOwned>(
    cfg: &config::Config,
    errors: &mut ConfigErrors,
    name: &str,
) -> Option<T> {
    // Through a JSON value so that a problem deep inside the section is reported at its own key
    // (`pipeline.batch_size`), not at the section; and strictly typed: `enabled = -1` is not a
    // boolean, a NaN is not a number.
    let value: serde_json::Value = match cfg.get(name) {
        Ok(v) => v,
        Err(config::ConfigError::NotFound(_)) => return None,
        Err(e) => {
            errors.push(name, e.to_string());
            return None;
        }
    };
    match serde_path_to_error::deserialize::<_, T>(value) {
        Ok(v) => Some(v),
        Err(e) => {
            let path = e.path().to_string();
            let key = if path.is_empty() || path == "." {
                name.to_string()
            } else {
                format!("{name}.{path}")
            };
            let message = match e.inner().to_string() {
                m if m.contains("invalid type: null") => {
                    format!("{m} (NaN and infinities are not numbers here)")
                }
                m => m,
            };
            errors.push(key, message);
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo_file(path: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").join(path)
    }

    /// `config/tierd.production.toml` passes `tierd config validate`, and its connector section
    /// builds a HubSpot connector once the secrets it names are in the environment.
    #[test]
    fn the_production_config_is_valid() {
        let path = repo_file("config/tierd.production.toml");
        let settings = match Settings::load(Some(&path)) {
            Ok(s) => s,
            Err(LoadError::Invalid(origin, errors)) => panic!("{origin}:\n{errors}"),
            Err(LoadError::Io(e)) => panic!("{e:#}"),
        };
        assert!(settings.store.url.starts_with("postgres://"));
        assert_eq!(settings.log.format, log::LogFormat::Json);
        assert_eq!(settings.schedule, schedule::ScheduleSettings::default());
        assert_eq!(settings.api.token_env, "TIERD_API_TOKEN");
        assert_eq!(settings.plugins.len(), 3);
        let connector = settings.connector.as_ref().expect("[connector]");
        let env = |var: &str| (var == "HUBSPOT_TOKEN").then(|| "pat-dummy-token".to_string());
        let config = connector.resolved(env).expect("HUBSPOT_TOKEN is the only secret");
        tierd_connectors::registry::build(&connector.kind, config).expect("the hubspot keys are known");
    }

    fn load_text(text: &str) -> Result<Settings, LoadError> {
        let dir = std::env::temp_dir().join(format!("tierd-config-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        // Written aside and renamed into place: tests run in parallel, and a reader must never
        // see the file truncated by another test's write.
        let aside = dir.join(format!(
            "model.{:x}.tmp",
            tierd_core::hash::fnv1a(text.as_bytes())
        ));
        std::fs::write(&aside, DEFAULT_MODEL).expect("model");
        std::fs::rename(&aside, dir.join("model.toml")).expect("model");
        let path = dir.join(format!("{:x}.toml", tierd_core::hash::fnv1a(text.as_bytes())));
        std::fs::write(&path, format!("[model]\npath = \"model.toml\"\n{text}")).expect("config");
        Settings::load(Some(&path))
    }

    fn problems(text: &str) -> Vec<String> {
        match load_text(text) {
            Ok(_) => Vec::new(),
            Err(LoadError::Invalid(_, errors)) => errors.0.iter().map(ToString::to_string).collect(),
            Err(LoadError::Io(e)) => panic!("{e:#}"),
        }
    }

    #[test]
    fn the_target_list_fact_must_be_a_fact_name() {
        let p = problems("[outcomes]\ntarget_list_fact = \"Target Account\"\n");
        assert!(
            p.len() == 1 && p[0].starts_with("outcomes.target_list_fact: "),
            "{p:?}"
        );
        let p = problems("[outcomes]\ntarget_list = \"crm.target_account\"\n");
        assert!(p.len() == 1 && p[0].starts_with("outcomes"), "{p:?}");
        // The flag joins the schema, so the CRM's value is kept with the account's facts.
        let Ok(s) = load_text("[outcomes]\ntarget_list_fact = \"crm.target_account\"\n") else {
            panic!("loads")
        };
        let slot = s.schema.slot("crm.target_account").expect("in the schema");
        assert_eq!(s.schema.fact_type(slot), tierd_core::fact::FactType::Bool);
        // A fact the model reads as a number cannot be the list's flag.
        let p = problems("[outcomes]\ntarget_list_fact = \"firmographic.employee_count\"\n");
        assert!(
            p.len() == 1 && p[0].starts_with("outcomes.target_list_fact: "),
            "{p:?}"
        );
    }

    #[test]
    fn a_problem_inside_a_section_names_its_own_key_and_types_are_strict() {
        // Regression (issue 12 #10): these were reported at the section, or coerced.
        let p = problems("[pipeline]\nbatch_size = -1\n");
        assert!(p.len() == 1 && p[0].starts_with("pipeline.batch_size: "), "{p:?}");
        let p = problems("[api]\nenabled = -1\n");
        assert!(p.len() == 1 && p[0].starts_with("api.enabled: "), "{p:?}");
        let p = problems("[pipeline]\nscore_step = nan\n");
        assert!(p.len() == 1 && p[0].starts_with("pipeline.score_step: "), "{p:?}");
        let p = problems("[pipeline]\nstale_work_secs = 18446744073709551615\n");
        assert!(p.iter().all(|e| e.starts_with("pipeline")), "{p:?}");
        assert!(problems("[api]\nenabled = false\n").is_empty());
    }

    #[test]
    fn activation_sections_are_checked_by_key_without_their_secrets() {
        let text = r#"
[budget]
tier_1 = 50
tier_2 = 30
tier_3 = 5
period = "week"
currency = "USD"

[[webhooks]]
name = "sales"
url = "not a url"
secret_env = "TIERD_NO_SUCH_SECRET_VARIABLE"
events = ["tier.changed", "tier.exploded"]

[[webhooks]]
name = "ops"
url = "https://hooks.example.com/tierd"
secret_env = "TIERD_NO_SUCH_SECRET_VARIABLE"
events = ["run.failed"]

[exports.linkedin]
industry = "firmographic.industry"

[[exports.audiences]]
name = "t1-linkedin"
tiers = ["tier_1", "tier_9"]
format = "linkedin"
directory = "audiences/t1"
"#;
        let p = problems(text);
        let has = |prefix: &str| p.iter().any(|e| e.starts_with(prefix));
        assert!(has("budget.period: "), "{p:?}");
        assert!(has("webhooks[0].url: "), "{p:?}");
        assert!(has("webhooks[0].events[1]: "), "{p:?}");
        assert!(has("exports.audiences[0].tiers[1]: "), "{p:?}");
        assert!(has("exports.audiences[0].format: "), "{p:?}");
        // The secret is read by whoever delivers: validation works without it.
        assert!(!p.iter().any(|e| e.contains("secret_env")), "{p:?}");
        assert!(!p.iter().any(|e| e.starts_with("webhooks[1]")), "{p:?}");
        assert_eq!(p.len(), 5, "{p:?}");

        let good = text
            .replace("\"week\"", "\"month\"")
            .replace("not a url", "https://a.example/x")
            .replace(", \"tier.exploded\"", "")
            .replace(", \"tier_9\"", "")
            .replace("\"linkedin\"", "\"linkedin-companies\"");
        let settings = match load_text(&good) {
            Ok(s) => s,
            Err(LoadError::Invalid(_, e)) => panic!("{e}"),
            Err(LoadError::Io(e)) => panic!("{e:#}"),
        };
        let p = problems(&good.replace("[budget]", "[tiering]\ntier_1_cap = { budget = true }\n[budget]"));
        assert_eq!(
            p,
            ["tiering.tier_1_cap.budget: sizes the cap from the budget: add [budget] with a total"]
        );
        assert!(problems(&good.replace(
            "[budget]",
            "[tiering]\ntier_1_cap = { budget = true }\n[budget]\ntotal = 900"
        ))
        .is_empty());
        let budget = settings.budget.expect("[budget]");
        assert_eq!(budget.per_account, [50.0, 30.0, 5.0]);
        assert_eq!(settings.webhooks.len(), 2);
        assert_eq!(settings.webhooks[1].name(), "ops");
        let audience = &settings.exports.audiences[0];
        assert_eq!(audience.tiers, vec![tierd_core::Tier::Tier1]);
        assert!(audience.directory.ends_with("audiences/t1") && audience.directory.is_absolute());
    }

    #[test]
    fn crm_lists_are_checked_by_key_and_need_a_connector_with_lists() {
        let hubspot = "[connector]\ntype = \"hubspot\"\ntoken = \"pat-x\"\n";
        let lists = "[crm_lists]\ntier_1 = \" tierd: Tier 1 \"\ntier_3 = \"tierd: Tier 3\"\n";
        let settings = match load_text(&format!("{hubspot}{lists}")) {
            Ok(s) => s,
            Err(LoadError::Invalid(_, e)) => panic!("{e}"),
            Err(LoadError::Io(e)) => panic!("{e:#}"),
        };
        let got: Vec<(tierd_core::Tier, &str, &str)> = settings
            .crm_lists
            .lists
            .iter()
            .map(|l| (l.tier, l.name.as_str(), l.key.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                (tierd_core::Tier::Tier1, "tierd: Tier 1", "crm_lists.tier_1"),
                (tierd_core::Tier::Tier3, "tierd: Tier 3", "crm_lists.tier_3")
            ]
        );
        // Only this section's problems: the model file these tests share is rewritten by each.
        let ours = |text: &str| -> Vec<String> {
            problems(text)
                .into_iter()
                .filter(|p| p.starts_with("crm_lists"))
                .collect()
        };
        let file = "[connector]\ntype = \"file\"\npath = \"a.csv\"\noutput = \"t.csv\"\n";
        assert_eq!(
            ours(&format!("{file}{lists}")),
            ["crm_lists.enabled: the file connector keeps no CRM lists: use hubspot, salesforce, or set enabled = false"]
        );
        assert!(ours(&format!("{file}{lists}enabled = false\n")).is_empty());
        assert_eq!(
            ours(lists),
            ["crm_lists.enabled: CRM lists need a [connector] that keeps them (hubspot, salesforce)"]
        );
        let bad = "[crm_lists]\ntier_1 = \"Tier 1\"\ntier_2 = \"tier 1\"\ntier_3 = \" \"\n";
        assert_eq!(
            ours(&format!("{hubspot}{bad}")),
            [
                "crm_lists.tier_2: 'tier 1' is also crm_lists.tier_1's list: each tier needs a list of its own",
                "crm_lists.tier_3: must name a list (or leave the key out)"
            ]
        );
        let p = ours(&format!("{hubspot}[crm_lists]\ntier_4 = \"x\"\n"));
        assert!(
            p.len() == 1 && p[0].starts_with("crm_lists.tier_4: unknown field"),
            "{p:?}"
        );
        assert_eq!(
            ours(&format!("{hubspot}[crm_lists]\n")),
            ["crm_lists: names no list: set tier_1, tier_2 and/or tier_3 to a list name (or enabled = false)"]
        );
    }

    #[test]
    fn a_plugin_dns_table_is_read_and_its_problems_are_named_by_key() {
        let ok = "[plugins.t]\npath = \"x.so\"\n[plugins.t.dns]\nnameservers = [\"127.0.0.1:5353\"]\n\
                  allow = [\"*.vendor.test\"]\nrate_limit_per_minute = 60\n";
        let Ok(settings) = load_text(ok) else {
            panic!("invalid: {:?}", problems(ok));
        };
        let dns = &settings.plugins["t"].dns;
        assert_eq!(
            (dns.enabled, dns.nameservers.as_slice(), dns.rate_limit_per_minute),
            (true, &["127.0.0.1:5353".to_owned()][..], Some(60))
        );
        let p = problems("[plugins.t]\npath = \"x.so\"\n[plugins.t.dns]\nnameservers = [\"dns.test\"]\n");
        // Only the plugin's own problem: exactly one, under its key (the model file these tests share
        // is rewritten by each, so its problems are not this test's).
        let named = |p: &[String], start: &str| {
            let plugin: Vec<&String> = p.iter().filter(|e| e.starts_with("plugins")).collect();
            plugin.len() == 1 && plugin[0].starts_with(start)
        };
        assert!(
            named(&p, "plugins.t.dns.nameservers: \"dns.test\" is not an IP:port"),
            "{p:?}"
        );
        let p = problems("[plugins.t]\npath = \"x.so\"\n[plugins.t.dns]\nresolver = \"x\"\n");
        assert!(
            named(&p, "plugins.t.dns.resolver: unknown field") && !p.is_empty(),
            "{p:?}"
        );
    }
}
