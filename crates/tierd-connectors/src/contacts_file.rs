//! The file connector's contacts file: the people of the accounts, for the audience exports
//! that match people. CSV (header row, RFC 4180) or JSONL (one object per line), with the
//! columns `account_id` (required), `email`, `phone`, `first_name`, `last_name`, `country`
//! and `zip`; other columns are ignored (a CRM export carries many).
//!
//! A line that cannot be used (no `account_id`, a CSV row whose field count differs from the
//! header, a JSONL line that is not an object of strings) is reported by file and line, with
//! the column at fault but never a value: the file holds personal data, and reports go to
//! logs. Knows nothing of how contacts are normalised or hashed (the export does that).

use std::collections::HashSet;
use std::fs::File;
use std::io::{self, BufRead, BufReader};
use std::path::Path;

use crate::connector::{Contacts, CrmContact, Quarantined};
use crate::files::{FileError, FileFormat};

/// The columns read, in [`CrmContact`] order after `account_id`.
const COLUMNS: [&str; 7] = [
    "account_id",
    "email",
    "phone",
    "first_name",
    "last_name",
    "country",
    "zip",
];

/// One row's values by [`COLUMNS`] position.
type Row = [Option<String>; 7];

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> FileError + '_ {
    move |source| FileError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Reads the contacts of `accounts` from `path`; rows of other accounts are skipped.
pub(crate) fn read_contacts(path: &Path, accounts: &HashSet<&str>) -> Result<Contacts, FileError> {
    let format = FileFormat::from_path(path)?;
    let file = File::open(path).map_err(io_err(path))?;
    let name = path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    let mut out = Contacts::default();
    let mut keep = |line: u64, row: Result<Row, (Option<&'static str>, String)>| match row {
        Ok(row) => {
            let [account_id, email, phone, first_name, last_name, country, zip] = row;
            match account_id {
                None => out.unreadable.push(Quarantined {
                    id: format!("{name} line {line}"),
                    field: Some("account_id".into()),
                    reason: "is empty: every contact names its account".into(),
                }),
                Some(a) if accounts.contains(a.as_str()) => out.contacts.push(CrmContact {
                    id: format!("{name} line {line}"),
                    account_id: a,
                    email,
                    phone,
                    first_name,
                    last_name,
                    country,
                    zip,
                }),
                Some(_) => {}
            }
        }
        Err((field, reason)) => out.unreadable.push(Quarantined {
            id: format!("{name} line {line}"),
            field: field.map(str::to_string),
            reason,
        }),
    };
    match format {
        FileFormat::Csv => read_csv(path, file, &mut keep)?,
        FileFormat::Jsonl => read_jsonl(path, file, &mut keep)?,
    }
    out.sort();
    Ok(out)
}

type Keep<'a> = dyn FnMut(u64, Result<Row, (Option<&'static str>, String)>) + 'a;

fn cell(text: &str) -> Option<String> {
    let t = text.trim();
    (!t.is_empty()).then(|| t.to_string())
}

fn read_csv(path: &Path, file: File, keep: &mut Keep<'_>) -> Result<(), FileError> {
    let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(file);
    let header = reader.headers().map_err(|e| FileError::Io {
        path: path.to_path_buf(),
        source: io::Error::other(e.to_string()),
    })?;
    let names: Vec<String> = header
        .iter()
        .map(|h| h.trim().trim_start_matches('\u{feff}').to_string())
        .collect();
    let positions: Vec<Option<usize>> = COLUMNS
        .iter()
        .map(|c| names.iter().position(|n| n == c))
        .collect();
    if positions[0].is_none() {
        return Err(FileError::Header {
            path: path.to_path_buf(),
            message: format!(
                "line 1: no `account_id` column in the header (found: {})",
                names.join(", ")
            ),
        });
    }
    let mut record = csv::StringRecord::new();
    loop {
        match reader.read_record(&mut record) {
            Ok(false) => return Ok(()),
            Ok(true) => {
                let line = record.position().map_or(0, |p| p.line());
                if record.len() != names.len() {
                    let reason = format!("{} fields where the header has {}", record.len(), names.len());
                    keep(line, Err((None, reason)));
                    continue;
                }
                let row: Row =
                    std::array::from_fn(|i| positions[i].and_then(|p| record.get(p)).and_then(cell));
                keep(line, Ok(row));
            }
            // Not UTF-8: the csv crate names the line; the bytes stay out of the message.
            Err(e) => match e.kind() {
                csv::ErrorKind::Utf8 { pos, .. } => {
                    let line = pos.as_ref().map_or(0, |p| p.line());
                    keep(line, Err((None, "is not valid UTF-8".into())));
                }
                _ => {
                    return Err(FileError::Io {
                        path: path.to_path_buf(),
                        source: io::Error::other(e.to_string()),
                    })
                }
            },
        }
    }
}

fn read_jsonl(path: &Path, file: File, keep: &mut Keep<'_>) -> Result<(), FileError> {
    for (i, line) in BufReader::new(file).lines().enumerate() {
        let line_no = i as u64 + 1;
        let text = match line {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::InvalidData => {
                keep(line_no, Err((None, "is not valid UTF-8".into())));
                continue;
            }
            Err(e) => return Err(io_err(path)(e)),
        };
        if text.trim().is_empty() {
            continue;
        }
        let object = match serde_json::from_str::<serde_json::Value>(&text) {
            Ok(serde_json::Value::Object(o)) => o,
            // serde's message quotes the input; say where, not what.
            Ok(_) | Err(_) => {
                keep(line_no, Err((None, "is not a JSON object".into())));
                continue;
            }
        };
        let mut row: Row = Default::default();
        let mut bad = None;
        for (i, column) in COLUMNS.iter().enumerate() {
            match object.get(*column) {
                None | Some(serde_json::Value::Null) => {}
                Some(serde_json::Value::String(s)) => row[i] = cell(s),
                Some(serde_json::Value::Number(n)) if *column == "zip" || *column == "phone" => {
                    row[i] = cell(&n.to_string())
                }
                Some(_) => {
                    bad = Some(*column);
                    break;
                }
            }
        }
        match bad {
            Some(column) => keep(line_no, Err((Some(column), "is not a string".into()))),
            None => keep(line_no, Ok(row)),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(name: &str, text: &str, accounts: &[&str]) -> Contacts {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(name);
        std::fs::write(&path, text).expect("write");
        read_contacts(&path, &accounts.iter().copied().collect()).expect("reads")
    }

    #[test]
    fn csv_rows_of_the_asked_accounts_are_read_and_bad_lines_named_without_values() {
        let got = read(
            "people.csv",
            "account_id,first_name,email,phone,notes\n\
             a,Ada, ada@a.example ,+44 20 7946 0018,x\n\
             b,Bo,bo@b.example,,y\n\
             ,Cy,cy@a.example,,z\n\
             a,Di,\"di@a.example\",\n",
            &["a"],
        );
        assert_eq!(got.contacts.len(), 1);
        let c = &got.contacts[0];
        assert_eq!(c.id, "people.csv line 2");
        assert_eq!(c.account_id, "a");
        assert_eq!(c.email.as_deref(), Some("ada@a.example"));
        assert_eq!(c.phone.as_deref(), Some("+44 20 7946 0018"));
        assert_eq!(c.last_name, None);
        let bad: Vec<String> = got.unreadable.iter().map(ToString::to_string).collect();
        assert_eq!(
            bad,
            [
                "people.csv line 4: field 'account_id': is empty: every contact names its account",
                "people.csv line 5: 4 fields where the header has 5",
            ]
        );
        assert!(!bad.iter().any(|b| b.contains("example")), "no values: {bad:?}");
    }

    #[test]
    fn jsonl_lines_are_read_and_bad_lines_named_without_values() {
        let got = read(
            "people.jsonl",
            "{\"account_id\":\"a\",\"email\":\"ada@a.example\",\"zip\":94103}\n\
             \n\
             not json ada@a.example\n\
             {\"account_id\":\"a\",\"email\":[\"x@a.example\"]}\n",
            &["a"],
        );
        assert_eq!(got.contacts.len(), 1);
        assert_eq!(got.contacts[0].zip.as_deref(), Some("94103"));
        let bad: Vec<String> = got.unreadable.iter().map(ToString::to_string).collect();
        assert_eq!(
            bad,
            [
                "people.jsonl line 3: is not a JSON object",
                "people.jsonl line 4: field 'email': is not a string",
            ]
        );
    }

    #[test]
    fn a_header_without_account_id_is_refused_by_line() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("people.csv");
        std::fs::write(&path, "email\nada@a.example\n").expect("write");
        let err = read_contacts(&path, &HashSet::new()).expect_err("no account_id");
        assert!(
            err.to_string().contains("line 1: no `account_id` column"),
            "{err}"
        );
    }
}
