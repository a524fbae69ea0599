//! What survives a power-off, through a real mount.

mod common;

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{FileExt, OpenOptionsExt, PermissionsExt};

use lazyfs::Metadata;

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
}
