//! What the file server knows: uploads, their files, PUT keys, and where on
//! disk each lives.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use crate::{Clock, Error, disk, record};

#[derive(Clone, Debug)]
pub(crate) struct Config {
    pub(crate) max_file_size: u64,
    pub(crate) default_ttl: Duration,
    pub(crate) max_ttl: Option<Duration>,
    pub(crate) md5: bool,
    /// When uploads and PUT files expire is read from it.
    pub(crate) clock: Arc<dyn Clock>,
}

/// A file's life, with Plik's names for its states. An upload record
/// (`record.rs`) stores `missing`, `uploaded` or `removed`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Status {
    Missing,
    #[serde(skip)]
    Uploading,
    Uploaded,
    /// A one-shot GET is sending it. Shown as `removed`, which is what Plik
    /// shows from the moment a one-shot download starts; it goes back to
    /// `Uploaded` if that download does not complete.
    #[serde(skip)]
    Downloading,
    Removed,
}

impl Status {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Status::Missing => "missing",
            Status::Uploading => "uploading",
            Status::Uploaded => "uploaded",
            Status::Downloading | Status::Removed => "removed",
        }
    }
}

/// Stored in upload records under Plik's names.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct FileMeta {
    #[serde(rename = "fileName")]
    pub(crate) name: String,
    pub(crate) status: Status,
    #[serde(rename = "fileSize")]
    pub(crate) size: u64,
    #[serde(rename = "fileMd5")]
    pub(crate) md5: String,
    /// Declared when the upload was created (it goes back to `Missing` if
    /// its upload fails), rather than added by a POST (it disappears).
    #[serde(default)]
    pub(crate) declared: bool,
}

#[derive(Debug)]
pub(crate) struct Upload {
    pub(crate) token: String,
    pub(crate) one_shot: bool,
    /// The TTL the upload was given, in seconds (-1: infinite).
    pub(crate) ttl: i64,
    /// When it expires, by the server's [`Clock`] (`None`: never).
    pub(crate) expires: Option<SystemTime>,
    pub(crate) files: HashMap<String, FileMeta>,
}

impl Upload {
    pub(crate) fn expired(&self, now: SystemTime) -> bool {
        self.expires.is_some_and(|e| e <= now)
    }

    /// Whether the upload holds anything a restart must keep: a file that
    /// is stored or still awaited. An upload with neither (nothing posted
    /// yet, or every file consumed) has no record on disk.
    pub(crate) fn worth_keeping(&self) -> bool {
        self.files.values().any(|f| match f.status {
            Status::Uploaded | Status::Downloading => true,
            Status::Missing | Status::Uploading => f.declared,
            Status::Removed => false,
        })
    }
}

/// Locks a mutex of the state whether or not a panic poisoned it.
///
/// No code holding these locks awaits or can leave the maps half-updated
/// (each critical section is a lookup, an insert, a remove or a field
/// write), so the data behind a poisoned lock is as consistent as behind a
/// healthy one: recovering it keeps one panicking request from failing
/// every later one.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[derive(Debug)]
pub(crate) struct State {
    pub(crate) config: Config,
    root: PathBuf,
    uploads: Mutex<HashMap<String, Upload>>,
    /// PUT keys and when they expire.
    puts: Mutex<HashMap<String, Option<SystemTime>>>,
    /// Serializes writes and removals of upload records, so the last write
    /// of a record is always the newest state.
    records: tokio::sync::Mutex<()>,
}

impl State {
    /// Opens the storage directory and loads what a previous run stored.
    pub(crate) async fn open(root: PathBuf, config: Config) -> Result<State, Error> {
        let (now, ttl) = (config.clock.now(), config.default_ttl);
        let (root, uploads, puts) = tokio::task::spawn_blocking(move || {
            let root = prepare_root(&root)?;
            let uploads = record::load_uploads(&root, now);
            let puts = record::load_puts(&root, ttl, now);
            Ok::<_, Error>((root, uploads, puts))
        })
        .await
        .map_err(|e| Error::io("loading the stored uploads", std::io::Error::other(e)))??;
        Ok(State {
            config,
            root,
            uploads: Mutex::new(uploads),
            puts: Mutex::new(puts),
            records: tokio::sync::Mutex::new(()),
        })
    }

    /// The uploads, locked (see [`lock`]).
    pub(crate) fn uploads(&self) -> MutexGuard<'_, HashMap<String, Upload>> {
        lock(&self.uploads)
    }

    /// The PUT keys, locked (see [`lock`]).
    pub(crate) fn puts(&self) -> MutexGuard<'_, HashMap<String, Option<SystemTime>>> {
        lock(&self.puts)
    }

    /// The storage directory, resolved: every stored path is below it, and
    /// nothing below it is reached through a link (see [`crate::disk`]).
    pub(crate) fn root(&self) -> &Path {
        &self.root
    }

    /// Only ever called with ids that passed [`valid_id`].
    pub(crate) fn upload_dir(&self, upload_id: &str) -> PathBuf {
        self.root.join("plik").join(upload_id)
    }

    /// Only ever called with ids that passed [`valid_id`].
    pub(crate) fn file_path(&self, upload_id: &str, file_id: &str) -> PathBuf {
        self.upload_dir(upload_id).join(file_id)
    }

    /// Only ever called with keys that passed [`valid_put_key`].
    pub(crate) fn put_path(&self, key: &str) -> PathBuf {
        let mut p = self.root.join("put");
        for segment in key.split('/') {
            p.push(segment);
        }
        p
    }

    pub(crate) fn put_temp_path(&self) -> PathBuf {
        self.root.join("put").join(format!(".tmp-{}", uuid::Uuid::new_v4().simple()))
    }

    /// The time now, by the server's clock.
    pub(crate) fn now(&self) -> SystemTime {
        self.config.clock.now()
    }

    /// When something kept for `ttl` from now expires (`None`: never, for a
    /// TTL past what the clock can count).
    pub(crate) fn expiry(&self, ttl: Duration) -> Option<SystemTime> {
        self.now().checked_add(ttl)
    }

    /// Writes the record of `upload_id` as it is now (or removes it, when
    /// the upload holds nothing worth keeping). An upload no longer known
    /// (expired) is left to whoever removed it.
    pub(crate) async fn persist(&self, upload_id: &str) -> std::io::Result<()> {
        let _serial = self.records.lock().await;
        let snapshot = match self.uploads().get(upload_id) {
            None => return Ok(()),
            Some(u) => u.worth_keeping().then(|| record::to_json(upload_id, u)),
        };
        let dir = self.upload_dir(upload_id);
        match snapshot {
            Some(json) => record::write(&self.root, &dir, &json).await,
            None => {
                record::remove(&self.root, &dir).await;
                Ok(())
            }
        }
    }

    /// Removes an upload's directory (files and record), after it has left
    /// the map; in step with record writes, so none recreates it.
    pub(crate) async fn remove_upload_dir(&self, upload_id: &str) {
        let _serial = self.records.lock().await;
        disk::remove_tree(&self.root, &self.upload_dir(upload_id)).await;
    }

    /// Forgets an expired upload and removes it from disk.
    pub(crate) fn expire_later(self: &std::sync::Arc<Self>, upload_id: &str) {
        if self.uploads().remove(upload_id).is_some() {
            tracing::info!(upload = %upload_id, "file server: upload expired");
        }
        let (state, upload_id) = (self.clone(), upload_id.to_owned());
        tokio::spawn(async move { state.remove_upload_dir(&upload_id).await });
    }

    /// Removes expired uploads and PUT files from memory and disk.
    pub(crate) async fn sweep(&self) {
        let now = self.now();
        let uploads: Vec<_> = self.uploads().extract_if(|_, u| u.expired(now)).collect();
        for (id, _) in uploads {
            tracing::info!(upload = %id, "file server: upload expired");
            self.remove_upload_dir(&id).await;
        }
        let puts: Vec<_> = self.puts().extract_if(|_, e| e.is_some_and(|e| e <= now)).collect();
        for (key, _) in puts {
            tracing::info!(key = %key, "file server: PUT file expired");
            let _ = disk::remove_file(&self.root, &self.put_path(&key)).await;
        }
    }
}

/// Creates the storage directory and its `plik` and `put` areas (`0o700`
/// when created here) and resolves it. An area that is a symbolic link is
/// refused: everything stored would be reached through it.
fn prepare_root(root: &Path) -> Result<PathBuf, Error> {
    disk::create_dir_now(root).map_err(|e| Error::io(format!("creating {}", root.display()), e))?;
    let root = std::fs::canonicalize(root)
        .map_err(|e| Error::io(format!("resolving {}", root.display()), e))?;
    for sub in ["plik", "put"] {
        let dir = root.join(sub);
        disk::check_below(&root, &dir)
            .map_err(|e| Error::io("opening the storage directory", e))?;
        disk::create_dir_now(&dir)
            .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
    }
    Ok(root)
}

/// Plik's ids: 16 ASCII letters and digits. Anything else is not an id of
/// ours, and never reaches a path.
pub(crate) fn valid_id(id: &str) -> bool {
    id.len() == 16 && id.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// A fresh id of `len` letters and digits.
pub(crate) fn random_id(len: usize) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let mut out = String::with_capacity(len);
    while out.len() < len {
        for b in uuid::Uuid::new_v4().into_bytes() {
            // 248 = 4 * 62: dropping bytes above it keeps the choice uniform.
            if b < 248 && out.len() < len {
                out.push(ALPHABET[usize::from(b % 62)] as char);
            }
        }
    }
    out
}

/// A PUT key: 1 to 16 segments of printable ASCII, none empty, `.` or `..`,
/// no backslash; the raw (still percent-encoded) path is used, so `%2e%2e`
/// stays a harmless literal name.
pub(crate) fn valid_put_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= 1024
        && key.split('/').count() <= 16
        && key.split('/').all(|s| {
            !s.is_empty()
                && s.len() <= 255
                && s != "."
                && s != ".."
                && !s.starts_with(".tmp-")
                && s.bytes().all(|b| b.is_ascii_graphic() && b != b'\\')
        })
}

/// Compares secrets without stopping at the first difference.
pub(crate) fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_poisoned_lock_is_recovered() {
        let m = std::sync::Arc::new(Mutex::new(1));
        let poisoner = m.clone();
        let panicked = std::thread::spawn(move || {
            let mut g = poisoner.lock().unwrap();
            *g = 2;
            panic!("poisoning the lock");
        })
        .join();
        assert!(panicked.is_err());
        assert!(m.is_poisoned());
        assert_eq!(*lock(&m), 2);
    }

    #[test]
    fn ids_and_keys_are_checked() {
        let id = random_id(16);
        assert!(valid_id(&id), "{id}");
        assert!(!valid_id("../../etc/passwd"));
        assert!(!valid_id("abcdefghijklmno."));
        assert!(valid_put_key("a/b.bin"));
        assert!(valid_put_key("%2e%2e/x"));
        for bad in ["", "a//b", "../x", "a/./b", "a\\b", "a/..", "/a", ".tmp-1", "a b"] {
            assert!(!valid_put_key(bad), "{bad}");
        }
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abc", "abd"));
        assert!(!same_secret("abc", "ab"));
    }
}
