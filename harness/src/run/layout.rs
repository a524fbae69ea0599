//! Where a run's files go: `STORE/<time>-<nemeses>-s<seed>/`, the `latest`
//! link, `run.json`, and the node event logs copied next to the history.

use std::path::{Path, PathBuf};

use super::RunError;

/// Creates a fresh run directory named for its start time, faults and seed.
pub fn create_run_dir(store: &Path, nemeses: &str, seed: u64) -> Result<PathBuf, RunError> {
    std::fs::create_dir_all(store)
        .map_err(|e| RunError::Store(format!("cannot create {}: {e}", store.display())))?;
    let stamp = chrono::Local::now().format("%Y%m%dT%H%M%S");
    let base = format!("{stamp}-{nemeses}-s{seed}");
    for n in 1.. {
        let name = if n == 1 {
            base.clone()
        } else {
            format!("{base}-{n}")
        };
        let dir = store.join(name);
        match std::fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => {
                return Err(RunError::Store(format!(
                    "cannot create {}: {e}",
                    dir.display()
                )));
            }
        }
    }
    unreachable!("some suffix is free")
}

/// Points `STORE/latest` at `dir`, replacing any older link atomically.
pub fn link_latest(store: &Path, dir: &Path) -> std::io::Result<()> {
    let name = dir.file_name().expect("run dirs have names");
    let tmp = store.join(format!(".latest-{}", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(name, &tmp)?;
    std::fs::rename(&tmp, store.join("latest"))
}

/// Copies each node's `data/events.jsonl` to `nodes/<id>/events.jsonl`,
/// where the checkers and reports look for it. Returns the nodes copied.
pub fn copy_events(dir: &Path) -> std::io::Result<usize> {
    let nodes = dir.join("nodes");
    let mut copied = 0;
    if !nodes.is_dir() {
        return Ok(0);
    }
    for entry in std::fs::read_dir(&nodes)? {
        let node = entry?.path();
        let src = node.join("data").join("events.jsonl");
        if src.is_file() {
            std::fs::copy(&src, node.join("events.jsonl"))?;
            copied += 1;
        }
    }
    Ok(copied)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_dirs_are_unique_and_latest_follows() {
        let store = tempfile::tempdir().unwrap();
        let a = create_run_dir(store.path(), "kill", 7).unwrap();
        let b = create_run_dir(store.path(), "kill", 7).unwrap();
        assert_ne!(a, b);
        assert!(
            a.file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .ends_with("-kill-s7")
        );
        link_latest(store.path(), &a).unwrap();
        link_latest(store.path(), &b).unwrap();
        assert_eq!(
            std::fs::canonicalize(store.path().join("latest")).unwrap(),
            std::fs::canonicalize(&b).unwrap()
        );
    }

    #[test]
    fn an_unwritable_store_is_a_clear_error() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("file");
        std::fs::write(&file, "x").unwrap();
        let e = create_run_dir(&file.join("sub"), "none", 1).unwrap_err();
        assert!(e.to_string().contains("cannot create"), "{e}");
    }

    #[test]
    fn events_are_copied_next_to_the_history() {
        let tmp = tempfile::tempdir().unwrap();
        let data = tmp.path().join("nodes/n1/data");
        std::fs::create_dir_all(&data).unwrap();
        std::fs::write(data.join("events.jsonl"), "{}\n").unwrap();
        std::fs::create_dir_all(tmp.path().join("nodes/n2")).unwrap();
        assert_eq!(copy_events(tmp.path()).unwrap(), 1);
        assert!(tmp.path().join("nodes/n1/events.jsonl").is_file());
    }
}
