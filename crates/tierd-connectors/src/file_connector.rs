//! The account-file connector: a CSV or JSONL accounts file in, a tiers file out, behind
//! the same [`Connector`] trait as the CRMs, so `tierd sync` works on files too.
//!
//! Reading and writing are [`crate::files`]'s (the formats of `tierd score`); this module
//! only pages them. A file has no modification times per record, so an incremental pull
//! reads the whole file when the file changed after the watermark, and nothing otherwise.
//! The people of the accounts, for audience exports, come from an optional contacts file
//! (`contacts_file.rs`).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::UNIX_EPOCH;

use tierd_core::fact::{Fact, FactName, FactType, Facts};
use tierd_core::model::FactSchema;

use crate::connector::{
    AccountPage, BoxFuture, Connector, ConnectorError, Contacts, CrmAccount, Deal, PageStream, PushOutcome,
    Quarantined, SchemaReport, TierUpdate, Watermark,
};
use crate::files::{AccountReader, FileError, FileFormat, ReadItem, TierRecord, TierWriter, TIER_COLUMNS};
use crate::mapping;

/// Config of the `file` connector.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// The accounts file (`.csv` or `.jsonl`).
    pub path: PathBuf,
    /// Where tiers are written (`.csv` or `.jsonl`), replaced by the first push of a run.
    pub output: PathBuf,
    /// Types of fact columns beyond the contract's defaults (`"crm.num_seats" = "number"`).
    #[serde(default)]
    pub facts: BTreeMap<FactName, FactType>,
    /// Accounts per page.
    #[serde(default = "default_page_size")]
    pub page_size: usize,
    /// A deals file (`.csv` or `.jsonl`, see [`crate::deals_file`]), for the funnel per tier.
    #[serde(default)]
    pub deals: Option<PathBuf>,
    /// The people of the accounts (`.csv` or `.jsonl`: `account_id, email, phone,
    /// first_name, last_name, country, zip`), for audience exports that match people.
    #[serde(default)]
    pub contacts: Option<PathBuf>,
}

fn default_page_size() -> usize {
    1000
}

impl FileConfig {
    /// Checks every value, naming the key of the first problem, and returns the facts schema.
    fn checked_schema(&self) -> Result<FactSchema, ConnectorError> {
        let contacts = self.contacts.iter().map(|c| ("contacts", c));
        for (key, path) in [("path", &self.path), ("output", &self.output)]
            .into_iter()
            .chain(self.deals.as_ref().map(|d| ("deals", d)))
            .chain(contacts)
        {
            FileFormat::from_path(path).map_err(|e| ConnectorError::config(key, e.to_string()))?;
        }
        if self.page_size == 0 {
            return Err(ConnectorError::config("page_size", "must be at least 1"));
        }
        let mut schema = FactSchema::default();
        // The contract's facts with their types, then the configured ones (which may retype).
        let mut types: BTreeMap<FactName, FactType> = mapping::hubspot_defaults()
            .into_iter()
            .map(|m| (m.fact, m.kind))
            .collect();
        types.extend(self.facts.clone());
        for (name, ty) in &types {
            schema
                .require(name, *ty)
                .map_err(|e| ConnectorError::config(format!("facts.\"{name}\""), e.to_string()))?;
        }
        Ok(schema)
    }

    /// Checks every value, naming the key of the first problem.
    pub fn validate(&self) -> Result<(), ConnectorError> {
        self.checked_schema().map(drop)
    }

    /// Validates the config and opens nothing yet.
    pub fn build(self) -> Result<FileConnector, ConnectorError> {
        let schema = self.checked_schema()?;
        Ok(FileConnector {
            config: self,
            schema,
            writer: Mutex::new(None),
        })
    }
}

/// Reads accounts from a file and writes tiers to another.
pub struct FileConnector {
    config: FileConfig,
    schema: FactSchema,
    writer: Mutex<Option<TierWriter>>,
}

impl FileConnector {
    fn modified(&self) -> Result<Watermark, ConnectorError> {
        let io = |source| FileError::Io {
            path: self.config.path.clone(),
            source,
        };
        let modified = std::fs::metadata(&self.config.path)
            .and_then(|m| m.modified())
            .map_err(io)?;
        let millis = modified
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        Ok(Watermark(millis))
    }

    /// Reads up to `page_size` records; `None` at the end of the file.
    fn read_page(
        reader: &mut AccountReader,
        schema: &FactSchema,
        page_size: usize,
        watermark: Watermark,
    ) -> Result<Option<AccountPage>, ConnectorError> {
        let mut page = AccountPage {
            watermark: Some(watermark),
            ..AccountPage::default()
        };
        let mut read = 0;
        while read < page_size {
            let Some(item) = reader.next() else { break };
            read += 1;
            match item? {
                ReadItem::Account(a) => {
                    let mut facts = Facts::new();
                    for (slot, value) in a.facts.0.into_iter().enumerate() {
                        if let Some(value) = value {
                            let fact = Fact {
                                value,
                                source: "file".into(),
                                observed_at: None,
                            };
                            facts.insert(schema.name(slot).clone(), fact);
                        }
                    }
                    page.accounts.push(CrmAccount {
                        id: a.id,
                        name: a.name,
                        domain: a.domain,
                        facts,
                        crm_tier: a.lock,
                        locked: a.lock.is_some(),
                        updated_at: None,
                    });
                }
                ReadItem::Rejected(r) => page.quarantined.push(Quarantined {
                    id: r.id.unwrap_or_else(|| format!("line {}", r.line)),
                    field: None,
                    reason: format!("line {}: {}", r.line, r.reason),
                }),
            }
        }
        Ok((read > 0).then_some(page))
    }
}

impl Connector for FileConnector {
    fn kind(&self) -> &'static str {
        "file"
    }

    fn pull(&self, since: Option<Watermark>) -> PageStream<'_> {
        struct State<'a> {
            this: &'a FileConnector,
            reader: Option<AccountReader>,
            watermark: Watermark,
            done: bool,
        }
        let start = async move {
            let watermark = self.modified()?;
            if since.is_some_and(|s| watermark <= s) {
                return Ok(None);
            }
            let schema = self.schema.clone();
            let path = self.config.path.clone();
            let reader = tokio::task::spawn_blocking(move || AccountReader::open(&path, &schema))
                .await
                .map_err(|e| FileError::Io {
                    path: self.config.path.clone(),
                    source: std::io::Error::other(e.to_string()),
                })??;
            Ok::<_, ConnectorError>(Some((reader, watermark)))
        };
        let stream = futures_util::stream::once(start);
        Box::pin(futures_util::StreamExt::flat_map(stream, move |opened| {
            let state = match opened {
                Ok(Some((reader, watermark))) => State {
                    this: self,
                    reader: Some(reader),
                    watermark,
                    done: false,
                },
                Ok(None) => State {
                    this: self,
                    reader: None,
                    watermark: Watermark(0),
                    done: true,
                },
                Err(e) => {
                    return futures_util::StreamExt::boxed(futures_util::stream::iter([Err(e)]));
                }
            };
            futures_util::StreamExt::boxed(futures_util::stream::unfold(state, |mut st| async move {
                if st.done {
                    return None;
                }
                let mut reader = st.reader.take()?;
                let (schema, size, mark) = (st.this.schema.clone(), st.this.config.page_size, st.watermark);
                let joined = tokio::task::spawn_blocking(move || {
                    let page = FileConnector::read_page(&mut reader, &schema, size, mark);
                    (reader, page)
                })
                .await;
                match joined {
                    Ok((reader, Ok(Some(page)))) => {
                        st.reader = Some(reader);
                        Some((Ok(page), st))
                    }
                    Ok((_, Ok(None))) => None,
                    Ok((_, Err(e))) => {
                        st.done = true;
                        Some((Err(e), st))
                    }
                    Err(e) => {
                        st.done = true;
                        let e = FileError::Io {
                            path: st.this.config.path.clone(),
                            source: std::io::Error::other(e.to_string()),
                        };
                        Some((Err(e.into()), st))
                    }
                }
            }))
        }))
    }

    fn push<'a>(
        &'a self,
        updates: &'a [TierUpdate],
    ) -> BoxFuture<'a, Result<Vec<PushOutcome>, ConnectorError>> {
        Box::pin(async move {
            let mut guard = self.writer.lock().unwrap_or_else(|p| p.into_inner());
            if guard.is_none() {
                *guard = Some(TierWriter::create(&self.config.output)?);
            }
            let Some(writer) = guard.as_mut() else {
                return Ok(Vec::new());
            };
            for u in updates {
                writer.write(&TierRecord {
                    id: &u.id,
                    score: u.score,
                    tier: u.tier,
                    coverage: u.coverage,
                    model_version: &u.model,
                    explanation: &u.reason,
                })?;
            }
            writer.flush()?;
            Ok(vec![PushOutcome::Written; updates.len()])
        })
    }

    fn ensure_schema(&self) -> BoxFuture<'_, Result<SchemaReport, ConnectorError>> {
        Box::pin(async move {
            // Opening checks the header (an `id` column) and that the file is readable.
            AccountReader::open(&self.config.path, &self.schema)?;
            Ok(SchemaReport {
                existing: TIER_COLUMNS.iter().map(|c| c.to_string()).collect(),
                ..SchemaReport::default()
            })
        })
    }

    fn deals_for<'a>(
        &'a self,
        account_ids: &'a [String],
    ) -> BoxFuture<'a, Result<Vec<Deal>, ConnectorError>> {
        Box::pin(async move {
            // Without a deals file there are none. The file is small next to a CRM: read whole.
            let Some(path) = &self.config.deals else {
                return Ok(Vec::new());
            };
            let wanted: std::collections::HashSet<&str> = account_ids.iter().map(String::as_str).collect();
            let mut deals = crate::deals_file::read_deals(path)?;
            // A deal without an account belongs to no account asked about; it is returned with
            // every call so that it is stored and reported, never lost.
            deals.retain(|d| d.account_id.is_empty() || wanted.contains(d.account_id.as_str()));
            Ok(deals)
        })
    }

    fn contacts_for<'a>(
        &'a self,
        account_ids: &'a [String],
    ) -> BoxFuture<'a, Result<Contacts, ConnectorError>> {
        Box::pin(async move {
            let Some(path) = self.config.contacts.clone() else {
                return Err(ConnectorError::config(
                    "contacts",
                    "is not set: name a contacts file (.csv or .jsonl with account_id, email, phone, \
                     first_name, last_name, country, zip) to export audiences of people",
                ));
            };
            let ids: Vec<String> = account_ids.to_vec();
            let read = tokio::task::spawn_blocking(move || {
                let wanted = ids.iter().map(String::as_str).collect();
                crate::contacts_file::read_contacts(&path, &wanted)
            })
            .await
            .map_err(|e| FileError::Io {
                path: self.config.contacts.clone().unwrap_or_default(),
                source: std::io::Error::other(e.to_string()),
            })?;
            Ok(read?)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;
    use tierd_core::tier::Tier;

    #[tokio::test]
    async fn pages_a_file_keeping_bad_rows_in_their_page_and_writes_jsonl_tiers() {
        let dir = tempfile::tempdir().expect("tempdir");
        let input = dir.path().join("accounts.csv");
        std::fs::write(
            &input,
            "id,name,firmographic.employee_count,locked_tier\n\
             a,Acme,100,\nb,Beta,lots,\nc,Corp,5,tier_2\n",
        )
        .expect("write");
        let output = dir.path().join("tiers.jsonl");
        let connector = FileConfig {
            path: input,
            output: output.clone(),
            facts: BTreeMap::new(),
            page_size: 2,
            deals: None,
            contacts: None,
        }
        .build()
        .expect("builds");
        let pages: Vec<_> = connector.pull(None).collect().await;
        let pages: Vec<AccountPage> = pages.into_iter().collect::<Result<_, _>>().expect("pages");
        assert_eq!(pages.len(), 2);
        let ids: Vec<&str> = pages
            .iter()
            .flat_map(|p| &p.accounts)
            .map(|a| a.id.as_str())
            .collect();
        assert_eq!(ids, ["a", "c"]);
        assert_eq!(pages[0].quarantined[0].id, "b");
        assert!(pages[0].quarantined[0].reason.contains("employee_count"));
        // Locks, unchanged files and CSV output are the conformance suite's (tests/conformance.rs).

        let update = TierUpdate {
            id: "a".into(),
            tier: Tier::Tier2,
            score: 3.9,
            coverage: 0.8,
            reason: "fit".into(),
            model: "default@1".into(),
            scored_at: Watermark(0),
        };
        let outcomes = connector.push(std::slice::from_ref(&update)).await.expect("push");
        assert_eq!(outcomes, [PushOutcome::Written]);
        let written = std::fs::read_to_string(&output).expect("read");
        assert!(
            written.contains(r#""id":"a""#) && written.contains("tier_2"),
            "{written}"
        );
    }
}
