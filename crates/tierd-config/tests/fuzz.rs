//! A configuration fuzz test: the shipped `tierd.toml` (with a `[connector]` section) and
//! `model.toml`, mutated value by value with a fixed seed. Loading must never panic; a
//! configuration that validates must score every generated account to a finite score in 0..=5;
//! one that does not must name a key path for every problem.

use std::path::Path;

use tierd_config::{LoadError, Settings, DEFAULT_CONFIG, DEFAULT_MODEL};
use tierd_connectors::files::{AccountReader, ReadItem};

/// Values a person (or a template gone wrong) might put anywhere.
const BAD_VALUES: &[&str] = &[
    "1e308",
    "-5",
    "nan",
    "inf",
    "-inf",
    "4294967296",
    "-1",
    "0",
    "\"x\"",
    "true",
    "[]",
    "{}",
    "1e-320",
    "18446744073709551615",
    "3.4e39",
    "\"\"",
    "-0.0",
    "99999999999",
];

const CONNECTOR: &str = r#"
[connector]
type = "hubspot"
base_url = "http://127.0.0.1:9"
token_env = "HUBSPOT_TOKEN"
rate_limit = 100
search_rate_per_sec = 4
"#;

/// xorshift64*: a fixed, dependency-free sequence so every CI run tries the same mutations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// One mutation of one `key = value` line: another value, a misspelt key, or no line.
fn mutate(text: &str, rng: &mut Rng) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let candidates: Vec<usize> = (0..lines.len())
        .filter(|&i| {
            let l = lines[i].trim_start();
            !l.starts_with('#') && !l.starts_with('[') && l.contains(" = ")
        })
        .collect();
    let Some(&at) = candidates.get(rng.below(candidates.len().max(1))) else {
        return text.to_string();
    };
    let (key, _) = lines[at].split_once(" = ").expect("a key = value line");
    let replacement = match rng.below(10) {
        0 => format!("{key}x = 1"),
        1 => String::new(),
        _ => format!("{key} = {}", BAD_VALUES[rng.below(BAD_VALUES.len())]),
    };
    let mut out: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
    out[at] = replacement;
    out.join("\n") + "\n"
}

fn generated_accounts(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("accounts.csv");
    let file = std::fs::File::create(&path).expect("create accounts");
    let opts = tierd_gen::GenOptions {
        seed: 3,
        as_of: "2026-11-24".parse().expect("date"),
    };
    tierd_gen::write_csv(file, 300, opts).expect("generate accounts");
    path
}

#[test]
fn mutated_configurations_never_panic_and_never_score_nan() {
    let dir = tempfile::TempDir::new().expect("temp dir");
    let accounts = generated_accounts(dir.path());
    let base_config = format!("{DEFAULT_CONFIG}\n{CONNECTOR}");
    let mut rng = Rng(0x7469_6572_6421);
    let (mut valid, mut invalid) = (0, 0);
    for round in 0..300 {
        let (config, model) = if round % 2 == 0 {
            (mutate(&base_config, &mut rng), DEFAULT_MODEL.to_string())
        } else {
            (base_config.clone(), mutate(DEFAULT_MODEL, &mut rng))
        };
        std::fs::write(dir.path().join("tierd.toml"), &config).expect("write config");
        std::fs::write(dir.path().join("model.toml"), &model).expect("write model");
        let path = dir.path().join("tierd.toml");
        let loaded = std::panic::catch_unwind(|| Settings::load(Some(&path)))
            .unwrap_or_else(|_| panic!("round {round}: loading panicked on\n{config}\n{model}"));
        match loaded {
            Ok(settings) => {
                valid += 1;
                let as_of = "2026-11-24".parse().expect("date");
                let reader = AccountReader::open(&accounts, &settings.schema).expect("accounts file");
                for item in reader {
                    let ReadItem::Account(account) = item.expect("readable") else {
                        continue;
                    };
                    let card = settings.model.score(&account.facts, as_of);
                    assert!(
                        card.score.is_finite() && (0.0..=5.0).contains(&card.score) && card.coverage.is_finite(),
                        "round {round}: {} scored {} (coverage {}) under a configuration that validates:\n{model}",
                        account.id,
                        card.score,
                        card.coverage
                    );
                }
            }
            Err(LoadError::Invalid(_, errors)) => {
                invalid += 1;
                for e in &errors.0 {
                    assert!(
                        !e.path.is_empty() && e.path != "config",
                        "round {round}: a problem without a key path: {e}"
                    );
                }
            }
            Err(LoadError::Io(e)) => panic!("round {round}: {e:#}"),
        }
    }
    assert!(valid > 20 && invalid > 20, "{valid} valid, {invalid} invalid");
}
