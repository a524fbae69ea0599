//! What survives a power-off, through a real mount: file data, sizes,
//! names, under both metadata models.

mod common;

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{FileExt, OpenOptionsExt, PermissionsExt};

use lazyfs::{Metadata, PowerLoss};

fn mode(f: &common::Fixture, rel: &str) -> u32 {
    fs::metadata(f.path(rel)).unwrap().permissions().mode() & 0o7777
}

#[test]
fn an_unsynced_write_is_lost_and_a_synced_one_kept() {
    let f = fixture!();
    let file = f.write("a", b"durable");
    file.sync_all().unwrap();
    f.fsync_dir("");
    file.write_all_at(b"DURABLE and more", 0).unwrap();
    // Reads see everything written, until the power goes.
    assert_eq!(f.read("a").unwrap(), b"DURABLE and more");
    drop(file);
    let r = f.power_off();
    assert_eq!(f.read("a").unwrap(), b"durable");
    assert_eq!(r.bytes_lost, 16);
    assert_eq!(r.files_changed, 1);
    assert_eq!(f.m().stats().pending_data_changes, 0);
}

#[test]
fn fdatasync_keeps_data_and_size_but_not_the_mode_fsync_keeps_both() {
    let f = fixture!();
    let file = f.write("a", b"one");
    fs::set_permissions(f.path("a"), fs::Permissions::from_mode(0o644)).unwrap();
    file.sync_all().unwrap();
    f.fsync_dir("");

    fs::set_permissions(f.path("a"), fs::Permissions::from_mode(0o600)).unwrap();
    file.write_all_at(b"two, longer", 0).unwrap();
    file.sync_data().unwrap();
    f.power_off();
    assert_eq!(
        f.read("a").unwrap(),
        b"two, longer",
        "fdatasync keeps data and size"
    );
    assert_eq!(mode(&f, "a"), 0o644, "fdatasync does not keep a chmod");

    fs::set_permissions(f.path("a"), fs::Permissions::from_mode(0o600)).unwrap();
    let file = OpenOptions::new().write(true).open(f.path("a")).unwrap();
    file.sync_all().unwrap();
    f.power_off();
    assert_eq!(mode(&f, "a"), 0o600, "fsync keeps a chmod");
}

#[test]
fn a_file_fsynced_without_its_directory_is_gone_under_the_strict_model() {
    let f = fixture!(Metadata::Strict);
    f.write("new", b"data").sync_all().unwrap();
    let r = f.power_off();
    assert!(!f.exists("new"));
    assert_eq!(r.files_lost, 1);

    f.write("new", b"data").sync_all().unwrap();
    f.fsync_dir("");
    f.power_off();
    assert_eq!(f.read("new").unwrap(), b"data");
}

#[test]
fn a_file_fsynced_without_its_directory_is_kept_under_the_durable_model() {
    let f = fixture!(Metadata::Durable);
    f.write("new", b"data").sync_all().unwrap();
    f.write("unsynced", b"data");
    let r = f.power_off();
    assert_eq!(f.read("new").unwrap(), b"data");
    assert_eq!(
        f.read("unsynced").unwrap(),
        b"",
        "its name is durable, its data not"
    );
    assert_eq!(r.files_lost, 0);
}

#[test]
fn a_file_created_but_never_synced_keeps_no_data_once_its_name_is_durable() {
    let f = fixture!();
    f.write("a", b"data");
    f.fsync_dir("");
    f.power_off();
    assert_eq!(f.read("a").unwrap(), b"");
}

/// The snapshot pattern: write a temporary file, fsync it, rename it over
/// the current one, fsync the directory.
#[test]
fn a_rename_over_an_existing_file_is_undone_without_the_directory_fsync() {
    let f = fixture!();
    f.write("snap", b"old").sync_all().unwrap();
    f.fsync_dir("");

    f.write("snap.tmp", b"new").sync_all().unwrap();
    fs::rename(f.path("snap.tmp"), f.path("snap")).unwrap();
    assert_eq!(f.read("snap").unwrap(), b"new");
    let r = f.power_off();
    assert_eq!(f.read("snap").unwrap(), b"old");
    assert!(!f.exists("snap.tmp"), "its creation was not durable either");
    assert_eq!(r.names_restored, 1);

    f.write("snap.tmp", b"new").sync_all().unwrap();
    fs::rename(f.path("snap.tmp"), f.path("snap")).unwrap();
    f.fsync_dir("");
    f.power_off();
    assert_eq!(f.read("snap").unwrap(), b"new");
    assert!(!f.exists("snap.tmp"));
    assert!(
        fs::read_dir(f.disk.join(".lazyfs"))
            .unwrap()
            .next()
            .is_none(),
        "the replaced file is deleted once the rename is durable"
    );
}

#[test]
fn a_rename_is_durable_at_once_under_the_durable_model() {
    let f = fixture!(Metadata::Durable);
    f.write("snap", b"old").sync_all().unwrap();
    f.write("snap.tmp", b"new").sync_all().unwrap();
    fs::rename(f.path("snap.tmp"), f.path("snap")).unwrap();
    f.power_off();
    assert_eq!(f.read("snap").unwrap(), b"new");
}

#[test]
fn an_unlink_is_undone_without_the_directory_fsync() {
    let f = fixture!();
    f.write("x", b"keep me").sync_all().unwrap();
    f.fsync_dir("");
    fs::remove_file(f.path("x")).unwrap();
    assert!(!f.exists("x"));
    f.power_off();
    assert_eq!(f.read("x").unwrap(), b"keep me");

    fs::remove_file(f.path("x")).unwrap();
    f.fsync_dir("");
    f.power_off();
    assert!(!f.exists("x"));
}

#[test]
fn a_rename_between_directories_survives_whole_once_either_is_fsynced() {
    for fsync in ["a", "b", ""] {
        let f = fixture!();
        fs::create_dir(f.path("a")).unwrap();
        fs::create_dir(f.path("b")).unwrap();
        f.write("a/f", b"data").sync_all().unwrap();
        f.fsync_dir("a");
        f.fsync_dir("b");
        f.fsync_dir("");
        fs::rename(f.path("a/f"), f.path("b/f")).unwrap();
        if !fsync.is_empty() {
            f.fsync_dir(fsync);
        }
        f.power_off();
        let (at_a, at_b) = (f.exists("a/f"), f.exists("b/f"));
        if fsync.is_empty() {
            assert!(at_a && !at_b, "no fsync: the rename is undone");
        } else {
            assert!(!at_a && at_b, "fsync of {fsync}: the rename survives whole");
        }
    }
}

#[test]
fn everything_in_a_directory_whose_creation_was_not_durable_is_lost() {
    let f = fixture!();
    fs::create_dir(f.path("d")).unwrap();
    f.write("d/f", b"data").sync_all().unwrap();
    f.fsync_dir("d");
    let r = f.power_off();
    assert!(!f.exists("d"));
    assert_eq!(r.files_lost, 2, "{r:?}");
}

#[test]
fn a_truncate_is_lost_unless_synced_under_the_strict_model() {
    let f = fixture!();
    let file = f.write("t", b"0123456789");
    file.sync_all().unwrap();
    f.fsync_dir("");
    file.set_len(3).unwrap();
    assert_eq!(f.read("t").unwrap(), b"012");
    f.power_off();
    assert_eq!(f.read("t").unwrap(), b"0123456789");

    let file = OpenOptions::new().write(true).open(f.path("t")).unwrap();
    file.set_len(3).unwrap();
    file.set_len(6).unwrap();
    file.sync_data().unwrap();
    f.power_off();
    assert_eq!(f.read("t").unwrap(), b"012\0\0\0");
}

#[test]
fn a_truncate_is_durable_at_once_under_the_durable_model_and_writes_are_not() {
    let f = fixture!(Metadata::Durable);
    let file = f.write("t", b"0123456789");
    file.sync_all().unwrap();
    file.write_all_at(b"abc", 0).unwrap();
    file.set_len(5).unwrap();
    file.write_all_at(b"xyz", 5).unwrap();
    f.power_off();
    assert_eq!(f.read("t").unwrap(), b"01234");
}

#[test]
fn appends_after_a_power_off_go_to_the_surviving_end() {
    let f = fixture!();
    let open = || {
        OpenOptions::new()
            .append(true)
            .create(true)
            .open(f.path("log"))
            .unwrap()
    };
    let mut log = open();
    log.write_all(b"first ").unwrap();
    log.sync_data().unwrap();
    f.fsync_dir("");
    log.write_all(b"lost ").unwrap();
    drop(log);
    // Seen by the kernel, so its cached size must be dropped too.
    assert_eq!(fs::metadata(f.path("log")).unwrap().len(), 11);
    f.power_off();
    let mut log = open();
    log.write_all(b"second").unwrap();
    assert_eq!(f.read("log").unwrap(), b"first second");
}

#[test]
fn o_dsync_writes_are_durable_at_once() {
    let f = fixture!();
    f.write("w", b"");
    f.fsync_dir("");
    let mut w = OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_DSYNC)
        .open(f.path("w"))
        .unwrap();
    w.write_all(b"synced").unwrap();
    assert!(
        f.m().stats().fdatasyncs >= 1,
        "the kernel sent an fdatasync"
    );
    drop(w);
    f.power_off();
    assert_eq!(f.read("w").unwrap(), b"synced");
}

#[test]
fn many_files_keep_exactly_what_was_made_durable() {
    let f = fixture!();
    fs::create_dir(f.path("d")).unwrap();
    f.fsync_dir("");
    for i in 0..300 {
        f.write(&format!("d/{i}"), format!("file {i}").as_bytes())
            .sync_all()
            .unwrap();
    }
    f.fsync_dir("d");
    for i in 300..600 {
        f.write(&format!("d/{i}"), b"not named durably")
            .sync_all()
            .unwrap();
    }
    for i in 0..100 {
        f.write(&format!("d/{i}"), b"rewritten, not synced");
    }
    let r = f.power_off();
    assert_eq!(r.files_lost, 300);
    assert_eq!(r.files_changed, 100);
    let names = fs::read_dir(f.path("d")).unwrap().count();
    assert_eq!(names, 300);
    for i in 0..300 {
        assert_eq!(
            f.read(&format!("d/{i}")).unwrap(),
            format!("file {i}").as_bytes()
        );
    }
    assert_eq!(f.m().stats().pending_names, 0);
}

#[test]
fn a_large_file_written_and_synced_survives_and_leaves_nothing_in_memory() {
    let f = fixture!();
    const MB: usize = 1 << 20;
    let chunk: Vec<u8> = (0..MB).map(|i| (i % 251) as u8).collect();
    let mut file = f.write("big", b"");
    for i in 0..100u8 {
        let mut c = chunk.clone();
        c[0] = i;
        file.write_all(&c).unwrap();
    }
    file.sync_all().unwrap();
    f.fsync_dir("");
    let stats = f.m().stats();
    assert_eq!(stats.pending_data_changes, 0);
    assert_eq!(stats.undo_memory, 0);
    // Overwriting it keeps what was overwritten (until the next sync), not
    // the whole file; cutting it keeps the lost tail in a file, not memory.
    file.write_all_at(&[7u8; 4096], 10 * MB as u64).unwrap();
    assert_eq!(f.m().stats().undo_memory, 4096);
    file.set_len(MB as u64).unwrap();
    assert_eq!(f.m().stats().undo_memory, 4096);
    drop(file);
    let r = f.power_off();
    assert_eq!(r.bytes_lost, 4096);
    assert_eq!(r.data_changes_lost, 2);
    let back = f.read("big").unwrap();
    assert_eq!(back.len(), 100 * MB);
    for (i, c) in back.chunks(MB).enumerate() {
        assert_eq!(c[0], i as u8);
        assert_eq!(c[1..], chunk[1..], "chunk {i}");
    }
}

#[test]
fn a_torn_power_off_keeps_a_sector_aligned_prefix_of_the_writes() {
    let mut lengths = std::collections::BTreeSet::new();
    let mut by_seed = Vec::new();
    for seed in 0..6u64 {
        let f = fixture!();
        let file = f.write("wal", b"");
        f.fsync_dir("");
        let mut want = Vec::new();
        for i in 0..8u8 {
            let chunk = vec![i + 1; 3000];
            file.write_all_at(&chunk, want.len() as u64).unwrap();
            want.extend(chunk);
        }
        drop(file);
        let r = f.m().power_off(PowerLoss::Torn { seed }).unwrap();
        let got = f.read("wal").unwrap();
        assert!(want.starts_with(&got), "seed {seed}: not a prefix");
        assert!(
            got.len() % 512 == 0 || got.len() % 3000 == 0,
            "seed {seed}: cut at {} (neither a sector nor a write boundary)",
            got.len()
        );
        assert_eq!(r.bytes_lost, (want.len() - got.len()) as u64);
        lengths.insert(got.len());
        by_seed.push(got.len());
    }
    assert!(lengths.len() > 1, "six seeds cut at {lengths:?}");
    // The same seed cuts the same place.
    let f = fixture!();
    let file = f.write("wal", b"");
    f.fsync_dir("");
    for i in 0..8u8 {
        file.write_all_at(&[i + 1; 3000], u64::from(i) * 3000)
            .unwrap();
    }
    drop(file);
    f.m().power_off(PowerLoss::Torn { seed: 3 }).unwrap();
    assert_eq!(f.read("wal").unwrap().len(), by_seed[3]);
}

#[test]
fn hard_links_and_symlinks_follow_the_directory_rule() {
    let f = fixture!();
    f.write("target", b"data").sync_all().unwrap();
    f.fsync_dir("");
    fs::hard_link(f.path("target"), f.path("hard")).unwrap();
    std::os::unix::fs::symlink("target", f.path("soft")).unwrap();
    assert_eq!(f.read("soft").unwrap(), b"data");
    assert_eq!(fs::metadata(f.path("target")).unwrap().nlink(), 2);
    f.power_off();
    assert!(!f.exists("hard") && !f.exists("soft"));
    assert_eq!(f.read("target").unwrap(), b"data");

    fs::hard_link(f.path("target"), f.path("hard")).unwrap();
    std::os::unix::fs::symlink("target", f.path("soft")).unwrap();
    f.fsync_dir("");
    f.power_off();
    assert_eq!(f.read("hard").unwrap(), b"data");
    assert_eq!(
        fs::read_link(f.path("soft")).unwrap().to_str(),
        Some("target")
    );
}

use std::os::unix::fs::MetadataExt;

#[test]
fn unmount_keeps_what_was_written_as_a_clean_shutdown_does() {
    let mut f = fixture!();
    f.write("unsynced", b"still here");
    f.write("gone", b"x").sync_all().unwrap();
    f.fsync_dir("");
    fs::remove_file(f.path("gone")).unwrap();
    f.unmount();
    assert_eq!(fs::read(f.disk.join("unsynced")).unwrap(), b"still here");
    assert!(!f.disk.join("gone").exists());
    assert!(
        !f.disk.join(".lazyfs").exists(),
        "the shadow directory is removed"
    );
}

#[test]
fn a_directory_can_be_mounted_over_itself_and_shows_what_survived_after() {
    if !common::available() {
        return;
    }
    let dir = tempfile::tempdir_in(common::test_root()).unwrap();
    let data = dir.path().join("data");
    fs::create_dir(&data).unwrap();
    fs::write(data.join("before"), b"durable").unwrap();
    let m = lazyfs::mount(&data, &data, Default::default()).unwrap();
    assert_eq!(fs::read(data.join("before")).unwrap(), b"durable");
    fs::write(data.join("before"), b"overwritten").unwrap();
    fs::write(data.join("new"), b"new").unwrap();
    let r = m.power_off(PowerLoss::All).unwrap();
    assert_eq!(r.files_lost, 1, "{r:?}");
    assert_eq!(fs::read(data.join("before")).unwrap(), b"durable");
    m.unmount().unwrap();
    let names: Vec<_> = fs::read_dir(&data)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["before"]);
    assert_eq!(fs::read(data.join("before")).unwrap(), b"durable");
}

#[test]
fn files_made_after_a_power_off_never_alias_the_lost_ones() {
    // The backing file system reuses the inode numbers of deleted files;
    // the lost ones are still held here (open files) while new ones are
    // made.
    let f = fixture!();
    fs::create_dir(f.path("d")).unwrap();
    let held: Vec<File> = (0..20)
        .map(|i| {
            let file = f.write(&format!("d/{i}"), b"lost");
            file.sync_all().unwrap();
            file
        })
        .collect();
    f.fsync_dir("d");
    let lost: Vec<u64> = held.iter().map(|h| h.metadata().unwrap().ino()).collect();
    let backing: Vec<u64> = (0..20)
        .map(|i| fs::metadata(f.disk.join(format!("d/{i}"))).unwrap().ino())
        .collect();
    f.power_off();
    assert!(!f.exists("d"));
    for i in 0..20 {
        f.write(&format!("n{i}"), format!("new {i}").as_bytes());
    }
    let reused = (0..20)
        .filter(|i| backing.contains(&fs::metadata(f.disk.join(format!("n{i}"))).unwrap().ino()))
        .count();
    for i in 0..20 {
        assert_eq!(
            f.read(&format!("n{i}")).unwrap(),
            format!("new {i}").as_bytes(),
            "{reused} backing inode numbers were reused"
        );
        let ino = fs::metadata(f.path(&format!("n{i}"))).unwrap().ino();
        assert!(!lost.contains(&ino), "n{i} took a lost inode");
    }
    drop(held);
}
