//! What the page shows of a payload whose bytes are here: text, formatted
//! JSON, the first rows of a table with its schema, a media type for
//! images, audio and video, or only the SHA-256 of other bytes. Computed
//! once, when the bytes arrive (direct) or are fetched (link).

use natsbridge::envelope::bytes::Bytes;
use natsbridge::{PayloadRecord, PayloadType, PayloadValue};
use serde_json::{Value, json};

use crate::show;

/// How many rows of an Arrow table the page shows.
const TABLE_ROWS: usize = 20;
/// Longer text and JSON is cut to this many characters (the whole payload
/// is one click away as its bytes).
const TEXT_CHARS: usize = 100_000;

/// The preview of `record`'s bytes: `{"kind": "text" | "json" | "table" |
/// "media" | "bytes" | "error", ...}`.
pub(crate) fn preview(record: &PayloadRecord, bytes: &Bytes) -> Value {
    match record.payload_type {
        PayloadType::ArrowTable | PayloadType::Table => table(bytes),
        PayloadType::Image | PayloadType::Audio | PayloadType::Video => {
            json!({"kind": "media", "mime": media_type(&record.payload_type, bytes)})
        }
        _ => match record.value() {
            Ok(PayloadValue::Text(text)) => {
                let (text, truncated) = cut(&text);
                json!({"kind": "text", "text": text, "truncated": truncated})
            }
            Ok(PayloadValue::Json(value)) => {
                let pretty = serde_json::to_string_pretty(&value).unwrap_or_default();
                let (text, truncated) = cut(&pretty);
                json!({"kind": "json", "text": text, "truncated": truncated})
            }
            Ok(_) => json!({"kind": "bytes"}),
            Err(e) => json!({"kind": "error", "message": e.detail()}),
        },
    }
}

/// An Arrow IPC table: row count, schema, and the first rows' cells.
fn table(bytes: &Bytes) -> Value {
    let table = match natsbridge::table::read_ipc(bytes) {
        Ok(table) => table,
        Err(e) => return json!({"kind": "error", "message": format!("not Arrow IPC: {e}")}),
    };
    let schema: Vec<Value> = table
        .schema
        .fields()
        .iter()
        .map(|f| {
            json!({"name": f.name(), "type": f.data_type().to_string(), "nullable": f.is_nullable()})
        })
        .collect();
    let mut out = json!({"kind": "table", "rows": table.num_rows(), "schema": schema});
    if table.num_rows() > 0 && !schema.is_empty() {
        match show::first_rows(&show::first_batches(&table, TABLE_ROWS)) {
            Ok(cells) => out["cells"] = json!(cells),
            Err(e) => out["cells_error"] = json!(format!("rows not shown: {e}")),
        }
    }
    out
}

/// `text` cut to [`TEXT_CHARS`] characters, and whether it was cut.
fn cut(text: &str) -> (String, bool) {
    match text.char_indices().nth(TEXT_CHARS) {
        Some((at, _)) => (text[..at].to_string(), true),
        None => (text.to_string(), false),
    }
}

/// The media type the page (and the payload's download) uses for bytes of
/// `payload_type`: recognised by their first bytes where the format says
/// so, else a generic one of the type's family. Never a type a browser
/// would run as a document (HTML); SVG is served, but with a sandboxing
/// policy (see the server).
pub(crate) fn media_type(payload_type: &PayloadType, bytes: &[u8]) -> &'static str {
    let at = |offset: usize, magic: &[u8]| bytes.get(offset..offset + magic.len()) == Some(magic);
    let riff = |kind: &[u8]| at(0, b"RIFF") && at(8, kind);
    let (ftyp, webm, ogg) =
        (bytes.len() >= 12 && at(4, b"ftyp"), at(0, b"\x1a\x45\xdf\xa3"), at(0, b"OggS"));
    let mpeg_frame = bytes.len() >= 2 && bytes[0] == 0xff && bytes[1] & 0xe0 == 0xe0;
    // The first that matches, else a generic type.
    let sniffed: &[(bool, &'static str)] = match payload_type {
        PayloadType::Image => &[
            (at(0, b"\x89PNG\r\n\x1a\n"), "image/png"),
            (at(0, b"\xff\xd8\xff"), "image/jpeg"),
            (at(0, b"GIF87a") || at(0, b"GIF89a"), "image/gif"),
            (riff(b"WEBP"), "image/webp"),
            (at(0, b"BM"), "image/bmp"),
            (ftyp && at(8, b"avif"), "image/avif"),
            (looks_like_svg(bytes), "image/svg+xml"),
        ],
        PayloadType::Audio => &[
            (riff(b"WAVE"), "audio/wav"),
            (ogg, "audio/ogg"),
            (at(0, b"fLaC"), "audio/flac"),
            (at(0, b"ID3") || mpeg_frame, "audio/mpeg"),
            (ftyp, "audio/mp4"),
            (webm, "audio/webm"),
        ],
        PayloadType::Video => &[(ftyp, "video/mp4"), (webm, "video/webm"), (ogg, "video/ogg")],
        PayloadType::Text => return "text/plain; charset=utf-8",
        PayloadType::Dictionary | PayloadType::JsonTable => return "application/json",
        PayloadType::ArrowTable | PayloadType::Table => {
            return "application/vnd.apache.arrow.stream";
        }
        _ => &[],
    };
    sniffed.iter().find(|(found, _)| *found).map_or("application/octet-stream", |(_, mime)| mime)
}

fn looks_like_svg(bytes: &[u8]) -> bool {
    let head = &bytes[..bytes.len().min(512)];
    let head = String::from_utf8_lossy(head);
    let head = head.trim_start();
    (head.starts_with("<svg") || head.starts_with("<?xml")) && head.contains("<svg")
}

#[cfg(test)]
mod tests {
    use super::*;
    use natsbridge::Payload;

    fn record(payload: Payload) -> PayloadRecord {
        PayloadRecord::direct("id", payload)
    }

    fn preview_of(payload: Payload) -> Value {
        let r = record(payload);
        let bytes = r.bytes().unwrap().clone();
        preview(&r, &bytes)
    }

    #[test]
    fn each_type_has_its_preview() {
        assert_eq!(preview_of(Payload::text("t", "hi"))["text"], "hi");
        let v = preview_of(Payload::new("d", PayloadType::Dictionary, &b"{\"b\":1,\"a\":[2]}"[..]));
        assert_eq!(v["kind"], "json");
        assert!(v["text"].as_str().unwrap().contains("\n"));
        let v = preview_of(Payload::new("d", PayloadType::Dictionary, &b"{nope"[..]));
        assert_eq!(v["kind"], "error");
        let v = preview_of(Payload::image("i", &b"\x89PNG\r\n\x1a\n...."[..]));
        assert_eq!(v["mime"], "image/png");
        assert_eq!(preview_of(Payload::binary("b", &b"xyz"[..]))["kind"], "bytes");
        let v = preview_of(Payload::arrow_table("a", &b"not arrow"[..]));
        assert_eq!(v["kind"], "error");
    }

    #[test]
    fn arrow_tables_show_schema_and_first_rows() {
        use natsbridge::table::arrow_array::{ArrayRef, Int64Array, RecordBatch, StringArray};
        use std::sync::Arc;
        let batch = RecordBatch::try_from_iter([
            ("id", Arc::new(Int64Array::from((0..30).collect::<Vec<i64>>())) as ArrayRef),
            (
                "name",
                Arc::new(StringArray::from((0..30).map(|i| format!("n{i}")).collect::<Vec<_>>()))
                    as ArrayRef,
            ),
        ])
        .unwrap();
        let ipc = natsbridge::table::write_ipc(&[batch]).unwrap();
        let v = preview_of(Payload::arrow_table("a", ipc));
        assert_eq!(v["kind"], "table");
        assert_eq!(v["rows"], 30);
        assert_eq!(v["schema"][1]["name"], "name");
        assert_eq!(v["schema"][0]["type"], "Int64");
        assert_eq!(v["cells"].as_array().unwrap().len(), TABLE_ROWS);
        assert_eq!(v["cells"][3], json!(["3", "n3"]));
    }

    #[test]
    fn long_text_is_cut_on_a_character_boundary() {
        let long = "é".repeat(TEXT_CHARS + 5);
        let (text, truncated) = cut(&long);
        assert!(truncated);
        assert_eq!(text.chars().count(), TEXT_CHARS);
    }

    #[test]
    fn media_types_come_from_the_bytes_never_html() {
        use PayloadType::{Audio, Dictionary, Image, Video};
        let octets = "application/octet-stream";
        let cases: [(PayloadType, &[u8], &str); 13] = [
            (Image, b"<html><script>", octets),
            (Image, b"<svg xmlns=''/>", "image/svg+xml"),
            (Audio, b"RIFF\0\0\0\0WAVEfmt ", "audio/wav"),
            (Video, b"\0\0\0\x18ftypmp42", "video/mp4"),
            (Image, b"\0\0\0\x18ftypavif", "image/avif"),
            (Image, b"RIFF\0\0\0\0WEBPVP8 ", "image/webp"),
            (Image, b"RIFF\0\0\0\0WEB", octets),
            (Audio, b"\xff\xfb\x90", "audio/mpeg"),
            (Audio, b"\0\0\0\x18ftypM4A ", "audio/mp4"),
            (Video, b"OggS\0", "video/ogg"),
            (Audio, b"\x1a\x45\xdf\xa3", "audio/webm"),
            (Video, b"", octets),
            (Dictionary, b"{}", "application/json"),
        ];
        for (payload_type, bytes, expected) in cases {
            assert_eq!(media_type(&payload_type, bytes), expected, "{payload_type:?} {bytes:?}");
        }
    }
}
