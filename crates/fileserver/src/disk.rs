//! The file server's own file operations: private modes, and no symbolic
//! link followed below the storage directory.
//!
//! Directories are created `0o700` and files `0o600`, whatever the umask:
//! upload records hold upload tokens, and stored files are other people's
//! payloads. Below the storage directory nothing is reached through a
//! symbolic link: every path component under it is checked with
//! `symlink_metadata` before use, files are opened with `O_NOFOLLOW`, and a
//! link found where a directory is removed is removed itself, never what it
//! points to. (The storage directory itself may be a link: it is resolved
//! once, at start.)
//!
//! The checks stop links planted while the server was stopped or between
//! requests; someone who can write into the storage directory while a
//! request runs can still race a check, and is beyond what they guard.

use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Component, Path};

/// The mode of every directory the server creates.
const DIR_MODE: u32 = 0o700;
/// The mode of every file the server creates.
const FILE_MODE: u32 = 0o600;

/// The error for a path that goes through a symbolic link.
fn link_refused(path: &Path) -> io::Error {
    io::Error::new(
        io::ErrorKind::PermissionDenied,
        format!("{} is a symbolic link; the file server follows none", path.display()),
    )
}

/// Checks that no existing component of `path` below `root`, the last one
/// included, is a symbolic link (`path` must start with `root`; what does
/// not exist yet is fine). A link is refused as `PermissionDenied`.
pub(crate) fn check_below(root: &Path, path: &Path) -> io::Result<()> {
    let Ok(rest) = path.strip_prefix(root) else {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!("{} is outside the storage directory", path.display()),
        ));
    };
    let mut at = root.to_path_buf();
    for component in rest.components() {
        match component {
            Component::Normal(name) => at.push(name),
            // Keys and ids are checked before any path is built; this is
            // the second line.
            _ => return Err(link_refused(path)),
        }
        match std::fs::symlink_metadata(&at) {
            Ok(meta) if meta.file_type().is_symlink() => return Err(link_refused(&at)),
            Ok(_) => {}
            // Nothing there (or a file where a directory would be): no link
            // beyond, and the operation that follows fails on its own.
            Err(_) => return Ok(()),
        }
    }
    Ok(())
}

/// Creates `dir` and its missing parents, each `0o700`, after checking that
/// nothing below `root` on the way is a link.
pub(crate) async fn create_dir(root: &Path, dir: &Path) -> io::Result<()> {
    check_below(root, dir)?;
    let owned = dir.to_path_buf();
    tokio::task::spawn_blocking(move || create_dir_now(&owned))
        .await
        .map_err(io::Error::other)??;
    // Created by someone else between the check and here: check again.
    check_below(root, dir)
}

/// Creates `dir` and its missing parents, each `0o700`, blocking (at start,
/// and on the blocking pool for [`create_dir`]).
pub(crate) fn create_dir_now(dir: &Path) -> io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, DIR_MODE);
    builder.create(dir)
}

/// Options that never follow a link at the last component.
fn no_follow(options: &mut OpenOptions) -> &mut OpenOptions {
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::custom_flags(options, libc::O_NOFOLLOW);
    options
}

/// Opens a stored file below `root` for reading: no link on the way, none
/// at the end, and a regular file.
pub(crate) fn open_now(root: &Path, path: &Path) -> io::Result<File> {
    check_below(root, path)?;
    let file = no_follow(OpenOptions::new().read(true)).open(path)?;
    if !file.metadata()?.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} is not a regular file", path.display()),
        ));
    }
    Ok(file)
}

/// [`open_now`] on the blocking pool.
pub(crate) async fn open(root: &Path, path: &Path) -> io::Result<tokio::fs::File> {
    let (root, path) = (root.to_path_buf(), path.to_path_buf());
    let file = tokio::task::spawn_blocking(move || open_now(&root, &path))
        .await
        .map_err(io::Error::other)??;
    Ok(tokio::fs::File::from_std(file))
}

/// Creates a new file below `root`, `0o600`, failing if anything (a link
/// included) is already there.
pub(crate) fn create_new_now(root: &Path, path: &Path) -> io::Result<File> {
    check_below(root, path)?;
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, FILE_MODE);
    no_follow(&mut options).open(path)
}

/// [`create_new_now`] on the blocking pool.
pub(crate) async fn create_new(root: &Path, path: &Path) -> io::Result<File> {
    let (root, path) = (root.to_path_buf(), path.to_path_buf());
    tokio::task::spawn_blocking(move || create_new_now(&root, &path))
        .await
        .map_err(io::Error::other)?
}

/// Removes a file below `root`; a link there is removed itself. Nothing
/// is removed through a linked directory.
pub(crate) async fn remove_file(root: &Path, path: &Path) -> io::Result<()> {
    match path.parent() {
        Some(parent) => check_below(root, parent)?,
        None => return Err(link_refused(path)),
    }
    tokio::fs::remove_file(path).await
}

/// Removes a directory tree below `root`; a link where the directory was is
/// removed itself, never what it points to (and nothing inside the tree is
/// followed either: `remove_dir_all` removes links, not their targets).
pub(crate) fn remove_tree_now(root: &Path, dir: &Path) -> io::Result<()> {
    match dir.parent() {
        Some(parent) => check_below(root, parent)?,
        None => return Err(link_refused(dir)),
    }
    match std::fs::symlink_metadata(dir) {
        Ok(meta) if meta.is_dir() => std::fs::remove_dir_all(dir),
        Ok(_) => std::fs::remove_file(dir),
        Err(e) => Err(e),
    }
}

/// [`remove_tree_now`], logging what fails (a tree already gone is no
/// failure).
pub(crate) fn remove_tree_logged(root: &Path, dir: &Path) {
    if let Err(e) = remove_tree_now(root, dir)
        && e.kind() != io::ErrorKind::NotFound
    {
        tracing::warn!(dir = %dir.display(), error = %e, "file server: could not remove");
    }
}

/// [`remove_tree_logged`] on the blocking pool.
pub(crate) async fn remove_tree(root: &Path, dir: &Path) {
    let (root, dir) = (root.to_path_buf(), dir.to_path_buf());
    let _ = tokio::task::spawn_blocking(move || remove_tree_logged(&root, &dir)).await;
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::{PermissionsExt, symlink};

    #[test]
    fn links_below_the_root_are_refused_and_removed_themselves() {
        let root = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret"), b"s").unwrap();
        let root = root.path();
        create_dir_now(&root.join("a")).unwrap();
        symlink(outside.path(), root.join("a/link")).unwrap();
        symlink(outside.path().join("secret"), root.join("a/file")).unwrap();

        assert!(check_below(root, &root.join("a/link/secret")).is_err());
        assert!(open_now(root, &root.join("a/link/secret")).is_err());
        assert!(open_now(root, &root.join("a/file")).is_err());
        assert!(create_new_now(root, &root.join("a/link/new")).is_err());
        assert!(create_new_now(root, &root.join("a/file")).is_err());
        assert!(check_below(root, &root.join("a/missing/x")).is_ok());
        assert!(check_below(root, Path::new("/etc/passwd")).is_err());

        remove_tree_now(root, &root.join("a/link")).unwrap();
        assert!(outside.path().join("secret").exists());
        assert!(!root.join("a/link").exists());

        let f = create_new_now(root, &root.join("a/private")).unwrap();
        assert_eq!(f.metadata().unwrap().permissions().mode() & 0o777, 0o600);
        let meta = std::fs::metadata(root.join("a")).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o700);
    }
}
