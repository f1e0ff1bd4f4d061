//! Upload records on disk, so a restarted server (same directory) still
//! serves, expires and one-shot-deletes what a previous run stored.
//!
//! Each upload worth keeping has `plik/{uploadId}/upload.json` beside its
//! files: its token, one-shot flag, TTL, expiry (wall clock, Unix
//! milliseconds) and files (id, name, size, MD5, status). It is written
//! whole to a temporary file and renamed into place, so a crash leaves
//! either the old record or the new one, never half of one. PUT files need
//! no record: their expiry is their modification time plus the default TTL.
//!
//! At start the records are loaded. A directory whose record is missing or
//! unreadable is logged and **removed** (nothing could ever serve or expire
//! its files otherwise), as are expired uploads, part files of uploads cut
//! by the stop, and files a record does not list as stored; a stored file
//! whose bytes are gone or the wrong size is marked `removed`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::disk;
use crate::store::{FileMeta, Status, Upload, valid_id, valid_put_key};

/// The record's file name in an upload's directory (file ids are 16
/// letters and digits, so it never names a file).
pub(crate) const RECORD: &str = "upload.json";
const VERSION: u64 = 1;

/// An upload's record as stored (Plik's names; the expiry in Unix
/// milliseconds, `null`: never).
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Record {
    version: u64,
    id: String,
    upload_token: String,
    one_shot: bool,
    ttl: i64,
    /// Required, though it may be `null`.
    #[serde(deserialize_with = "Option::deserialize")]
    expires_at: Option<u64>,
    files: Vec<RecordFile>,
}

/// A file of a [`Record`]; its status is `missing`, `uploaded` or `removed`.
#[derive(Serialize, Deserialize)]
struct RecordFile {
    id: String,
    #[serde(flatten)]
    meta: FileMeta,
}

/// The record of an upload.
pub(crate) fn to_json(upload_id: &str, u: &Upload) -> Vec<u8> {
    let files = u.files.iter().filter_map(|(id, f)| {
        let status = match f.status {
            Status::Missing | Status::Uploading if f.declared => Status::Missing,
            // Added by a POST still running: not stored yet.
            Status::Missing | Status::Uploading => return None,
            Status::Uploaded | Status::Downloading => Status::Uploaded,
            Status::Removed => Status::Removed,
        };
        Some(RecordFile { id: id.clone(), meta: FileMeta { status, ..f.clone() } })
    });
    let ms = |t: SystemTime| t.duration_since(UNIX_EPOCH).unwrap_or_default().as_millis();
    let record = Record {
        version: VERSION,
        id: upload_id.to_owned(),
        upload_token: u.token.clone(),
        one_shot: u.one_shot,
        ttl: u.ttl,
        expires_at: u.expires.map(|t| u64::try_from(ms(t)).unwrap_or(u64::MAX)),
        files: files.collect(),
    };
    serde_json::to_vec(&record).expect("a record is plain data")
}

/// Writes a record atomically: a temporary file (`0o600`: it holds the
/// upload token) renamed over the old one, in a directory below `root`
/// reached through no link.
pub(crate) async fn write(root: &Path, dir: &Path, json: &[u8]) -> std::io::Result<()> {
    disk::create_dir(root, dir).await?;
    let (root, dir, json) = (root.to_path_buf(), dir.to_path_buf(), json.to_vec());
    tokio::task::spawn_blocking(move || write_now(&root, &dir, &json))
        .await
        .map_err(std::io::Error::other)?
}

/// [`write`], blocking, in a directory that exists.
fn write_now(root: &Path, dir: &Path, json: &[u8]) -> std::io::Result<()> {
    let temp = dir.join(format!("{RECORD}.tmp-{}", uuid::Uuid::new_v4().simple()));
    let written = disk::create_new_now(root, &temp)
        .and_then(|mut f| std::io::Write::write_all(&mut f, json))
        // The rename replaces a link planted at the record's name, never
        // what it points to.
        .and_then(|()| std::fs::rename(&temp, dir.join(RECORD)));
    if written.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    written
}

/// Removes a record, and its directory if nothing else is left in it.
pub(crate) async fn remove(root: &Path, dir: &Path) {
    match disk::remove_file(root, &dir.join(RECORD)).await {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            tracing::warn!(dir = %dir.display(), error = %e, "file server: could not remove an upload record");
        }
    }
    // Fails, as it should, while a file is still there (or if `dir` is a
    // link: `rmdir` does not follow one).
    let _ = tokio::fs::remove_dir(dir).await;
}

/// Loads the uploads under `{root}/plik` (blocking: run once, at start).
/// A link where an upload directory should be is removed itself: what it
/// points to is never read, tidied or removed.
pub(crate) fn load_uploads(root: &Path, now: SystemTime) -> HashMap<String, Upload> {
    let mut out = HashMap::new();
    for entry in std::fs::read_dir(root.join("plik")).into_iter().flatten().flatten() {
        let path = entry.path();
        let name = entry.file_name();
        // `file_type` does not follow a link.
        let kind = entry.file_type().ok();
        let ours = kind.is_some_and(|k| k.is_dir() || k.is_symlink());
        let Some(id) = name.to_str().filter(|id| valid_id(id) && ours) else {
            tracing::warn!(path = %path.display(), "file server: ignoring an entry that is no upload of ours");
            continue;
        };
        if kind.is_some_and(|k| k.is_symlink()) {
            tracing::warn!(path = %path.display(), "file server: an upload directory is a symbolic link; removing the link");
            disk::remove_tree_logged(root, &path);
            continue;
        }
        let mut upload = match read(root, &path.join(RECORD), id) {
            Ok(u) => u,
            Err(why) => {
                tracing::warn!(upload = %id, why = %why, "file server: upload has no usable record; removing its files");
                disk::remove_tree_logged(root, &path);
                continue;
            }
        };
        if upload.expired(now) {
            tracing::info!(upload = %id, "file server: upload expired");
            disk::remove_tree_logged(root, &path);
            continue;
        }
        let changed = tidy(root, &path, id, &mut upload);
        if !upload.worth_keeping() {
            disk::remove_tree_logged(root, &path);
            continue;
        }
        if changed && let Err(e) = write_now(root, &path, &to_json(id, &upload)) {
            tracing::warn!(upload = %id, error = %e, "file server: could not rewrite an upload record");
        }
        out.insert(id.to_owned(), upload);
    }
    out
}

/// An upload from its record, or why it cannot be read.
fn read(root: &Path, path: &Path, id: &str) -> Result<Upload, String> {
    let mut bytes = Vec::new();
    disk::open_now(root, path)
        .and_then(|mut f| std::io::Read::read_to_end(&mut f, &mut bytes))
        .map_err(|e| format!("reading {RECORD}: {e}"))?;
    let r: Record = serde_json::from_slice(&bytes).map_err(|e| format!("{RECORD}: {e}"))?;
    let bad = |what: &str| format!("{RECORD}: bad or missing {what}");
    let checks = [
        (r.version == VERSION, "version"),
        (r.id == id, "id"),
        (!r.upload_token.is_empty(), "uploadToken"),
        (r.files.iter().all(|f| valid_id(&f.id)), "file id"),
        (r.files.iter().all(|f| !f.meta.name.is_empty() && f.meta.name.len() <= 1024), "fileName"),
    ];
    if let Some((_, what)) = checks.iter().find(|(ok, _)| !ok) {
        return Err(bad(what));
    }
    let expires = r.expires_at.map(|ms| UNIX_EPOCH.checked_add(Duration::from_millis(ms)));
    let expires = expires.map(|t| t.ok_or_else(|| bad("expiresAt"))).transpose()?;
    let files = r.files.into_iter().map(|f| (f.id, f.meta));
    let (token, one_shot, ttl) = (r.upload_token, r.one_shot, r.ttl);
    Ok(Upload { token, one_shot, ttl, expires, files: files.collect() })
}

/// Checks an upload's stored files against its record: a stored file whose
/// bytes are gone or the wrong size becomes `removed`; files the record does
/// not list as stored (parts cut by the stop, consumed leftovers) are
/// deleted. Whether the record changed.
fn tidy(root: &Path, dir: &Path, id: &str, upload: &mut Upload) -> bool {
    let mut changed = false;
    for (fid, f) in &mut upload.files {
        if f.status != Status::Uploaded {
            continue;
        }
        // A link is no stored file (`symlink_metadata` does not follow it).
        let on_disk =
            std::fs::symlink_metadata(dir.join(fid)).ok().filter(|m| m.is_file()).map(|m| m.len());
        if on_disk != Some(f.size) {
            tracing::warn!(upload = %id, file = %fid, "file server: a stored file is gone or damaged; marking it removed");
            f.status = Status::Removed;
            changed = true;
        }
    }
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let listed = upload.files.get(name.as_ref()).is_some_and(|f| f.status == Status::Uploaded);
        if name == RECORD || listed {
            continue;
        }
        let path = entry.path();
        tracing::debug!(path = %path.display(), "file server: removing a file no record lists");
        if entry.file_type().is_ok_and(|k| k.is_dir()) {
            disk::remove_tree_logged(root, &path);
        } else {
            let _ = std::fs::remove_file(&path);
        }
    }
    changed
}

/// Loads the PUT keys under `{root}/put` (blocking: run once, at start). A
/// PUT file expires `ttl` after it was written (its modification time); an
/// expired one and temporary files of cut PUTs are removed, anything that
/// is no valid key is left alone, and so is a symbolic link (never
/// followed, never served).
pub(crate) fn load_puts(
    root: &Path,
    ttl: Duration,
    now: SystemTime,
) -> HashMap<String, Option<SystemTime>> {
    let mut out = HashMap::new();
    let mut stack: Vec<(PathBuf, String)> = vec![(root.join("put"), String::new())];
    while let Some((dir, prefix)) = stack.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            let key = if prefix.is_empty() { name.to_owned() } else { format!("{prefix}/{name}") };
            // A directory entry's metadata does not follow a link.
            let Ok(meta) = entry.metadata() else { continue };
            if meta.file_type().is_symlink() {
                tracing::warn!(path = %path.display(), "file server: ignoring a symbolic link");
                continue;
            }
            if meta.is_dir() {
                stack.push((path, key));
                continue;
            }
            if prefix.is_empty() && name.starts_with(".tmp-") {
                let _ = std::fs::remove_file(&path);
                continue;
            }
            if !valid_put_key(&key) {
                tracing::warn!(path = %path.display(), "file server: ignoring a file that is no PUT key");
                continue;
            }
            let written = meta.modified().unwrap_or(now);
            match written.checked_add(ttl) {
                Some(expires) if expires <= now => {
                    tracing::info!(key = %key, "file server: PUT file expired");
                    let _ = std::fs::remove_file(&path);
                }
                expires => {
                    out.insert(key, expires);
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A record reads back as written; one with a field missing or out of
    /// range is refused.
    #[test]
    fn records_round_trip_and_bad_ones_are_refused() {
        let root = tempfile::tempdir().unwrap();
        let (root, id, fid) = (root.path(), "AAAAAAAAAAAAAAAA", "BBBBBBBBBBBBBBBB");
        let meta = |status| FileMeta {
            name: "a.bin".into(),
            status,
            size: 3,
            md5: "m".into(),
            declared: true,
        };
        let upload = Upload {
            token: "t".into(),
            one_shot: true,
            ttl: -1,
            expires: None,
            files: HashMap::from([(fid.into(), meta(Status::Downloading))]),
        };
        let path = root.join(RECORD);
        let json = String::from_utf8(to_json(id, &upload)).unwrap();
        std::fs::write(&path, &json).unwrap();
        let back = read(root, &path, id).unwrap();
        assert_eq!((back.token.as_str(), back.one_shot, back.ttl), ("t", true, -1));
        assert_eq!(back.expires, None);
        assert_eq!(back.files[fid].status, Status::Uploaded);
        assert!(read(root, &path, "CCCCCCCCCCCCCCCC").is_err(), "another id");
        for (from, to) in [
            (r#""expiresAt":null,"#, ""),
            (r#""status":"uploaded""#, r#""status":"uploading""#),
            (r#""version":1"#, r#""version":2"#),
            (r#""fileName":"a.bin""#, r#""fileName":"""#),
            (fid, "../../etc/passwd"),
            (r#""uploadToken":"t""#, r#""uploadToken":"""#),
        ] {
            assert!(json.contains(from), "{from} in {json}");
            std::fs::write(&path, json.replacen(from, to, 1)).unwrap();
            assert!(read(root, &path, id).is_err(), "{from} -> {to}");
        }
    }
}
