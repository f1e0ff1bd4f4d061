//! What `listen`, `request` and `unpack` print for a person: a header line
//! per envelope and each payload decoded by its type (text printed,
//! `dictionary` and `jsontable` as pretty JSON, Arrow tables as schema, row
//! count and first rows, everything else as name, type, size and SHA-256).
//! `--json` prints [`report::line`] instead. Either way each payload whose
//! bytes are not what its type says is an error line on stderr naming it.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use natsbridge::table::RecordBatch;
use natsbridge::{Envelope, PayloadRecord, PayloadType, PayloadValue, sha256_hex};
use serde_json::{Map, Value};

use crate::receive::{Shown, Streamed};
use crate::report;

/// How many rows of an Arrow table are shown.
const TABLE_ROWS: usize = 10;
/// Wider cells are cut to this many characters.
const CELL_WIDTH: usize = 40;

/// [`print`] for an envelope whose links are all fetched (a library
/// receive), saving its payloads in a fresh directory under `out`.
pub(crate) fn print_received(
    envelope: &Envelope,
    subject: &str,
    out: Option<&Path>,
    json: bool,
) -> anyhow::Result<bool> {
    let dir = out.map(|out| report::message_dir(out, &envelope.msg_id)).transpose()?;
    print(&Shown { envelope: envelope.clone(), streamed: Vec::new(), dir }, subject, json)
}

/// Prints what arrived (`shown`, on `subject`) on stdout, as one JSON
/// line with `json` or else as text, saving the payloads held in memory in
/// its directory (links streamed there are saved already); each payload
/// that does not decode as its type says is a line on stderr. Returns
/// whether every payload decoded.
pub(crate) fn print(shown: &Shown, subject: &str, json: bool) -> anyhow::Result<bool> {
    let envelope = &shown.envelope;
    let paths = report::save_all(envelope, shown.dir.as_deref())?;
    let (text, errors) = if json {
        let errors = envelope.payloads.iter().filter_map(|r| decode(r).err()).collect();
        (report::line_with_paths(envelope, &paths, &shown.streamed), errors)
    } else {
        render(envelope, subject, &paths, &shown.streamed)
    };
    crate::print_line(text)?;
    for error in &errors {
        say!("natsbridge: {error}");
    }
    Ok(errors.is_empty())
}

/// The text for a message that could not be decoded at all, and on a
/// second line, indented, its hint if it has one.
pub(crate) fn rejected(subject: &str, error: &natsbridge::Error) -> String {
    let mut text = format!(
        "{}  error ({}): {}",
        clean(subject),
        report::kind_name(error.kind()),
        clean(&report::chain(error))
    );
    if let Some(hint) = crate::hint::for_received(error) {
        let _ = write!(text, "\n    hint: {hint}");
    }
    text
}

/// A payload decoded for showing.
enum Decoded {
    Text(String),
    Json(Value),
    Table(natsbridge::table::Table),
    Bytes,
    /// A link whose bytes are not here.
    NotFetched,
}

/// Decodes a payload as its type says; the error names the payload.
fn decode(record: &PayloadRecord) -> Result<Decoded, String> {
    let name = format!("payload {:?} ({})", clean(&record.dataname), record.payload_type);
    let Some(bytes) = record.bytes() else {
        return Ok(Decoded::NotFetched);
    };
    match record.payload_type {
        PayloadType::ArrowTable | PayloadType::Table => natsbridge::table::read_ipc(bytes)
            .map(Decoded::Table)
            .map_err(|e| format!("{name}: {}", clean(&e.to_string()))),
        _ => match record.value() {
            Ok(PayloadValue::Text(text)) => Ok(Decoded::Text(text)),
            Ok(PayloadValue::Json(value)) => Ok(Decoded::Json(value)),
            Ok(_) => Ok(Decoded::Bytes),
            // The error's detail is the reason (its message names the
            // payload too).
            Err(e) => Err(format!("{name}: {}", clean(e.detail()))),
        },
    }
}

/// The text form of an envelope and the errors of the payloads that do not
/// decode.
fn render(
    envelope: &Envelope,
    subject: &str,
    paths: &[Option<PathBuf>],
    streamed: &[Option<Streamed>],
) -> (String, Vec<String>) {
    let mut out = String::new();
    let mut errors = Vec::new();
    out.push_str(&header(envelope, subject));
    for (index, record) in envelope.payloads.iter().enumerate() {
        let streamed = streamed.get(index).and_then(Option::as_ref);
        let size = record
            .size()
            .or(streamed.map(|s| s.size))
            .map_or_else(|| "size unknown".into(), |s| format!("{s} bytes"));
        let _ = write!(
            out,
            "\n[{index}] {} ({}, {size}, {})",
            clean(&record.dataname),
            clean(record.payload_type.as_str()),
            record.transport().as_str(),
        );
        match decode(record) {
            Ok(Decoded::Text(text)) => indent(&mut out, &clean_text(&text)),
            Ok(Decoded::Json(value)) => {
                let pretty = serde_json::to_string_pretty(&value).unwrap_or_default();
                indent(&mut out, &clean_text(&pretty));
            }
            Ok(Decoded::Table(table)) => indent(&mut out, &table_text(&table)),
            Ok(Decoded::Bytes) => {
                let sha = record.bytes().map(|b| sha256_hex(b)).unwrap_or_default();
                indent(&mut out, &format!("sha256 {sha}"));
            }
            Ok(Decoded::NotFetched) => match streamed {
                Some(streamed) => {
                    indent(&mut out, &format!("sha256 {}", streamed.sha256));
                    if let Some(path) = &streamed.path {
                        indent(&mut out, &format!("saved to {}", path.display()));
                    }
                }
                None => {
                    let url = record.url().map(crate::redact_url).unwrap_or_default();
                    indent(&mut out, &format!("link {} (not fetched)", clean(&url)));
                }
            },
            Err(error) => {
                indent(&mut out, &format!("error: {error}"));
                errors.push(error);
            }
        }
        if let Some(Some(path)) = paths.get(index) {
            indent(&mut out, &format!("saved to {}", path.display()));
        }
    }
    (out, errors)
}

/// `SUBJECT  from SENDER  msg_purpose P  msg_id ID  reply_to R`.
fn header(envelope: &Envelope, subject: &str) -> String {
    let mut line = clean(subject);
    let sender = match (envelope.sender_name.as_str(), envelope.sender_id.as_str()) {
        (name, "") => name.to_string(),
        ("", id) => id.to_string(),
        (name, id) => format!("{name} ({id})"),
    };
    for (label, value) in [
        ("from", sender.as_str()),
        ("msg_purpose", envelope.msg_purpose.as_str()),
        ("msg_id", envelope.msg_id.as_str()),
        ("reply_to", envelope.reply_to.as_str()),
    ] {
        if !value.is_empty() {
            let _ = write!(line, "  {label} {}", clean(value));
        }
    }
    line
}

/// Appends `text` on new lines, each indented.
fn indent(out: &mut String, text: &str) {
    for line in text.split('\n') {
        out.push_str("\n    ");
        out.push_str(line);
    }
}

/// An Arrow table: its schema, its row count and its first rows.
fn table_text(table: &natsbridge::table::Table) -> String {
    let fields = table.schema.fields();
    let rows = table.num_rows();
    let mut out =
        format!("{rows} row{}, {} column{}", plural(rows), fields.len(), plural(fields.len()));
    for field in fields {
        let null = if field.is_nullable() { "" } else { " not null" };
        let _ = write!(out, "\n  {}: {}{null}", clean(field.name()), field.data_type());
    }
    if rows == 0 || fields.is_empty() {
        return out;
    }
    match first_rows(&first_batches(table, TABLE_ROWS)) {
        Ok(cells) => {
            let names: Vec<String> = fields.iter().map(|f| clean(f.name())).collect();
            out.push('\n');
            out.push_str(&grid(&names, &cells));
            if rows > TABLE_ROWS {
                let _ =
                    write!(out, "\n({} more row{})", rows - TABLE_ROWS, plural(rows - TABLE_ROWS));
            }
        }
        Err(e) => {
            let _ = write!(out, "\n(rows not shown: {})", clean(&e.to_string()));
        }
    }
    out
}

/// The first `rows` rows of `table`, as slices of its batches.
pub(crate) fn first_batches(table: &natsbridge::table::Table, rows: usize) -> Vec<RecordBatch> {
    let mut first = Vec::new();
    let mut left = rows;
    for batch in &table.batches {
        if left == 0 {
            break;
        }
        let take = left.min(batch.num_rows());
        first.push(batch.slice(0, take));
        left -= take;
    }
    first
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// The cells of `batches`' rows, column by column in schema order (each
/// cut and escaped as [`cell`] does).
pub(crate) fn first_rows(batches: &[RecordBatch]) -> natsbridge::table::Result<Vec<Vec<String>>> {
    let Some(schema) = batches.first().map(RecordBatch::schema) else {
        return Ok(Vec::new());
    };
    let rows: Vec<Map<String, Value>> = natsbridge::table::batches_to_rows(batches)?;
    Ok(rows
        .iter()
        .map(|row| {
            schema
                .fields()
                .iter()
                .map(|f| match row.get(f.name()) {
                    None | Some(Value::Null) => String::new(),
                    Some(Value::String(s)) => cell(s),
                    Some(other) => cell(&other.to_string()),
                })
                .collect()
        })
        .collect())
}

/// A cell: on one line, control characters escaped, cut to [`CELL_WIDTH`].
fn cell(value: &str) -> String {
    let value = clean(value);
    if value.chars().count() > CELL_WIDTH {
        let mut cut: String = value.chars().take(CELL_WIDTH - 1).collect();
        cut.push('…');
        cut
    } else {
        value
    }
}

/// Columns padded to their widest cell, `|` between them, a rule under the
/// names.
fn grid(names: &[String], rows: &[Vec<String>]) -> String {
    let width = |s: &str| s.chars().count();
    let widths: Vec<usize> = names
        .iter()
        .enumerate()
        .map(|(i, name)| rows.iter().map(|r| width(&r[i])).chain([width(name)]).max().unwrap_or(0))
        .collect();
    let line = |cells: &[String]| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c}{}", " ".repeat(w - width(c))))
            .collect();
        padded.join(" | ").trim_end().to_string()
    };
    let mut out = line(names);
    out.push('\n');
    out.push_str(&widths.iter().map(|w| "-".repeat(*w)).collect::<Vec<_>>().join("-+-"));
    for row in rows {
        out.push('\n');
        out.push_str(&line(row));
    }
    out
}

/// `value` on one line, with control characters escaped (so that what a
/// peer sent cannot move the cursor or recolour the terminal).
pub(crate) fn clean(value: &str) -> String {
    value.chars().flat_map(escape_control).collect()
}

/// Text kept on its lines and tabs, other control characters escaped.
fn clean_text(value: &str) -> String {
    value
        .replace("\r\n", "\n")
        .chars()
        .flat_map(|c| if c == '\n' || c == '\t' { vec![c] } else { escape_control(c) })
        .collect()
}

fn escape_control(c: char) -> Vec<char> {
    if c.is_control() { c.escape_default().collect() } else { vec![c] }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(clean("a\u{1b}[31mb\nc"), "a\\u{1b}[31mb\\nc");
        assert_eq!(clean_text("a\r\nb\tc\u{7}"), "a\nb\tc\\u{7}");
    }

    #[test]
    fn grid_pads_columns() {
        let names = ["id".to_string(), "name".to_string()];
        let rows = [vec!["1".to_string(), "Alice".to_string()], vec!["22".into(), "".into()]];
        assert_eq!(grid(&names, &rows), "id | name\n---+------\n1  | Alice\n22 |");
    }

    #[test]
    fn long_cells_are_cut() {
        let long = "x".repeat(100);
        assert_eq!(cell(&long).chars().count(), CELL_WIDTH);
        assert!(cell(&long).ends_with('…'));
    }
}
