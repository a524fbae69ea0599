//! Directories that survive a power loss: a new name (a file, a directory,
//! a rename) is durable only once the directory holding it is fsynced, so
//! creating a data directory and fsyncing the files in it is not enough.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

/// Creates `dir` and any missing parents, fsyncing the parent of each one
/// created, so that a power loss cannot take away the directory (and with
/// it every file in it, fsynced or not). The parent of `dir` is fsynced
/// even when `dir` already existed: an earlier process may have created it
/// and crashed before its creation was durable.
pub fn create_dir_durably(dir: &Path) -> io::Result<()> {
    let mut missing: Vec<PathBuf> = Vec::new();
    let mut at = Some(dir);
    while let Some(d) = at {
        if d.as_os_str().is_empty() || d.is_dir() {
            break;
        }
        missing.push(d.to_path_buf());
        at = d.parent();
    }
    for d in missing.iter().rev() {
        match std::fs::create_dir(d) {
            Ok(()) => {}
            // Made meanwhile by someone else: still ours to make durable.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && d.is_dir() => {}
            Err(e) => return Err(e),
        }
        fsync_dir(parent_of(d))?;
    }
    if missing.is_empty() {
        fsync_dir(parent_of(dir))?;
    }
    Ok(())
}

/// Makes the names in `dir` durable (creates, renames, unlinks).
pub fn fsync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// The directory a relative single-component path lives in is `.`.
fn parent_of(p: &Path) -> &Path {
    match p.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_every_missing_level_and_accepts_an_existing_one() {
        let tmp = tempfile::tempdir().unwrap();
        let deep = tmp.path().join("a/b/c");
        create_dir_durably(&deep).unwrap();
        assert!(deep.is_dir());
        create_dir_durably(&deep).unwrap();
        let file = tmp.path().join("f");
        std::fs::write(&file, "x").unwrap();
        assert!(create_dir_durably(&file.join("d")).is_err());
    }
}
