//! A deals file (`.csv` or `.jsonl`) for the file connector: one deal per row, with the columns
//! `id, account_id, amount, currency, pipeline, stage, created, close_date, closed, won`
//! (only `id` is required). `created` is a date (`2026-03-01`) or an RFC 3339 time; `close_date`
//! a date; `closed` and `won` `true` or `false`. A value that does not parse is an error naming
//! the file, line, deal and column; a deal that parses but cannot be fully counted (no account,
//! no amount, no stage outcome, another currency) is kept and reported by the funnel.

use std::path::Path;

use serde::Deserialize;

use crate::connector::{Deal, Watermark};
use crate::files::{FileError, FileFormat};

#[derive(Deserialize)]
struct Row {
    id: String,
    #[serde(default)]
    account_id: Option<String>,
    #[serde(default)]
    amount: Option<String>,
    #[serde(default)]
    currency: Option<String>,
    #[serde(default)]
    pipeline: Option<String>,
    #[serde(default)]
    stage: Option<String>,
    #[serde(default)]
    created: Option<String>,
    #[serde(default)]
    close_date: Option<String>,
    #[serde(default)]
    closed: Option<serde_json::Value>,
    #[serde(default)]
    won: Option<serde_json::Value>,
}

fn bad(path: &Path, line: u64, id: &str, column: &str, value: &str, expected: &str) -> FileError {
    FileError::Header {
        path: path.to_path_buf(),
        message: format!("line {line}, deal '{id}': {column} '{value}' is not {expected}"),
    }
}

fn text(v: Option<String>) -> Option<String> {
    v.map(|s| s.trim().to_string()).filter(|s| !s.is_empty())
}

fn deal_of(path: &Path, line: u64, row: Row) -> Result<Deal, FileError> {
    let id = row.id.trim().to_string();
    let amount = match text(row.amount) {
        None => None,
        Some(a) => Some(
            a.parse::<f64>()
                .ok()
                .filter(|a| a.is_finite())
                .ok_or_else(|| bad(path, line, &id, "amount", &a, "a number"))?,
        ),
    };
    let created = match text(row.created) {
        None => None,
        Some(c) => {
            Some(Watermark::parse(&c).ok_or_else(|| bad(path, line, &id, "created", &c, "a date or time"))?)
        }
    };
    let close_date = match text(row.close_date) {
        None => None,
        Some(c) => Some(
            c.parse()
                .map_err(|_| bad(path, line, &id, "close_date", &c, "a date (YYYY-MM-DD)"))?,
        ),
    };
    let flag = |column: &str, v: Option<serde_json::Value>| -> Result<Option<bool>, FileError> {
        match v {
            None | Some(serde_json::Value::Null) => Ok(None),
            Some(serde_json::Value::Bool(b)) => Ok(Some(b)),
            Some(serde_json::Value::String(s)) => match s.trim().to_ascii_lowercase().as_str() {
                "" => Ok(None),
                "true" => Ok(Some(true)),
                "false" => Ok(Some(false)),
                _ => Err(bad(path, line, &id, column, &s, "true or false")),
            },
            Some(other) => Err(bad(path, line, &id, column, &other.to_string(), "true or false")),
        }
    };
    let closed = flag("closed", row.closed)?;
    let won = flag("won", row.won)?;
    Ok(Deal {
        account_id: text(row.account_id).unwrap_or_default(),
        amount,
        stage: text(row.stage),
        won,
        closed,
        close_date,
        created,
        pipeline: text(row.pipeline),
        currency: text(row.currency),
        stage_entries: Vec::new(),
        id,
    })
}

/// Every deal of the file, in file order.
pub fn read_deals(path: &Path) -> Result<Vec<Deal>, FileError> {
    let io = |source| FileError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut deals = Vec::new();
    match FileFormat::from_path(path)? {
        FileFormat::Csv => {
            let mut reader =
                csv::Reader::from_path(path).map_err(|e| io(std::io::Error::other(e.to_string())))?;
            for (i, row) in reader.deserialize::<Row>().enumerate() {
                // Line 1 is the header.
                let line = i as u64 + 2;
                let row = row.map_err(|e| FileError::Header {
                    path: path.to_path_buf(),
                    message: format!("line {line}: {e}"),
                })?;
                deals.push(deal_of(path, line, row)?);
            }
        }
        FileFormat::Jsonl => {
            let text = std::fs::read_to_string(path).map_err(io)?;
            for (i, l) in text.lines().enumerate() {
                let line = i as u64 + 1;
                if l.trim().is_empty() {
                    continue;
                }
                let row: Row = serde_json::from_str(l).map_err(|e| FileError::Header {
                    path: path.to_path_buf(),
                    message: format!("line {line}: {e}"),
                })?;
                deals.push(deal_of(path, line, row)?);
            }
        }
    }
    Ok(deals)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_and_jsonl_deals_read_alike_and_bad_values_name_their_line() {
        let dir = tempfile::tempdir().expect("dir");
        let csv = dir.path().join("deals.csv");
        std::fs::write(
            &csv,
            "id,account_id,amount,currency,stage,created,close_date,closed,won\n\
             d1,a1,1000,USD,won,2026-01-05,2026-02-01,true,true\n\
             d2,,,,,2026-01-06T10:00:00Z,,,\n",
        )
        .expect("write");
        let jsonl = dir.path().join("deals.jsonl");
        std::fs::write(
            &jsonl,
            "{\"id\":\"d1\",\"account_id\":\"a1\",\"amount\":\"1000\",\"currency\":\"USD\",\"stage\":\"won\",\"created\":\"2026-01-05\",\"close_date\":\"2026-02-01\",\"closed\":true,\"won\":true}\n\
             {\"id\":\"d2\",\"created\":\"2026-01-06T10:00:00Z\"}\n",
        )
        .expect("write");
        let a = read_deals(&csv).expect("csv");
        assert_eq!(a, read_deals(&jsonl).expect("jsonl"));
        assert_eq!(
            (a[0].amount, a[0].won, a[0].account_id.as_str()),
            (Some(1000.0), Some(true), "a1")
        );
        assert_eq!(a[0].created, Watermark::parse("2026-01-05"));
        assert_eq!(
            (a[1].account_id.as_str(), a[1].amount, a[1].closed),
            ("", None, None)
        );

        std::fs::write(&csv, "id,amount\nd1,12\nd2,lots\n").expect("write");
        let e = read_deals(&csv).expect_err("bad amount").to_string();
        assert!(
            e.contains("line 3, deal 'd2': amount 'lots' is not a number"),
            "{e}"
        );
    }
}
