//! The operations the nodes (and etcd) need, through a real mount:
//! fallocate, statfs, locks; the fsync delay; what is refused; unmounting.
//! (mmap is in `mmap.rs`: it must be used from another process.)

mod common;

use std::ffi::CString;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use lazyfs::PowerLoss;

fn durable_file(f: &common::Fixture, rel: &str, data: &[u8]) -> File {
    let file = f.write(rel, data);
    file.sync_all().unwrap();
    f.fsync_dir("");
    file
}

#[test]
fn fallocate_extends_until_a_power_off_unless_synced() {
    let f = fixture!();
    let file = durable_file(&f, "seg", b"");
    // etcd preallocates its WAL segments.
    // SAFETY: a valid descriptor.
    let r = unsafe { libc::fallocate(file.as_raw_fd(), 0, 0, 1 << 20) };
    assert_eq!(r, 0, "{}", io::Error::last_os_error());
    assert_eq!(file.metadata().unwrap().len(), 1 << 20);
    file.write_all_at(b"record", 0).unwrap();
    drop(file);
    f.power_off();
    assert_eq!(fs::metadata(f.path("seg")).unwrap().len(), 0);

    let file = OpenOptions::new().write(true).open(f.path("seg")).unwrap();
    // SAFETY: a valid descriptor.
    assert_eq!(
        unsafe { libc::fallocate(file.as_raw_fd(), 0, 0, 1 << 20) },
        0
    );
    file.sync_all().unwrap();
    file.write_all_at(b"record", 0).unwrap();
    assert_eq!(f.m().stats().undo_memory, 0, "zeros are kept as a length");
    drop(file);
    f.power_off();
    let back = f.read("seg").unwrap();
    assert_eq!(back.len(), 1 << 20);
    assert!(back.iter().all(|&b| b == 0));
}

#[test]
fn statfs_flock_and_fcntl_locks_work() {
    let f = fixture!();
    let file = durable_file(&f, "lock", b"");
    let path = CString::new(f.mnt.as_os_str().as_bytes()).unwrap();
    // SAFETY: zeroed statvfs is a valid out-buffer; valid path.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    assert_eq!(unsafe { libc::statvfs(path.as_ptr(), &mut st) }, 0);
    assert!(st.f_blocks > 0 && st.f_bsize > 0);

    let other = File::open(f.path("lock")).unwrap();
    // SAFETY: valid descriptors.
    unsafe {
        assert_eq!(
            libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB),
            0
        );
        assert_eq!(
            libc::flock(other.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB),
            -1
        );
        assert_eq!(libc::flock(file.as_raw_fd(), libc::LOCK_UN), 0);
        assert_eq!(
            libc::flock(other.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB),
            0
        );
    }
    // An open-file-description lock (what etcd takes on its WAL).
    let mut lk: libc::flock = unsafe { std::mem::zeroed() };
    lk.l_type = libc::F_WRLCK as i16;
    lk.l_whence = libc::SEEK_SET as i16;
    let third = OpenOptions::new().write(true).open(f.path("lock")).unwrap();
    // SAFETY: valid descriptors and lock struct.
    unsafe {
        assert_eq!(libc::fcntl(third.as_raw_fd(), libc::F_OFD_SETLK, &lk), 0);
        let fourth = OpenOptions::new().write(true).open(f.path("lock")).unwrap();
        assert_eq!(libc::fcntl(fourth.as_raw_fd(), libc::F_OFD_SETLK, &lk), -1);
    }
}

#[test]
fn the_fsync_delay_slows_every_kind_of_sync_and_can_be_lifted() {
    let f = fixture!();
    let file = durable_file(&f, "w", b"x");
    let delay = Duration::from_millis(300);
    f.m().set_fsync_delay(delay);
    assert_eq!(f.m().fsync_delay(), delay);
    let timed = |what: &str, sync: &dyn Fn()| {
        let started = Instant::now();
        sync();
        let took = started.elapsed();
        assert!(took >= delay, "{what} took {took:?}, less than the delay");
    };
    timed("fsync", &|| file.sync_all().unwrap());
    timed("fdatasync", &|| file.sync_data().unwrap());
    timed("directory fsync", &|| f.fsync_dir(""));
    timed("an O_DSYNC write", &|| {
        use std::os::unix::fs::OpenOptionsExt;
        let w = OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_DSYNC)
            .open(f.path("w"))
            .unwrap();
        w.write_all_at(b"y", 0).unwrap();
    });
    // Other requests go on while an fsync waits (a long wait, so a slow
    // machine cannot blur the order).
    let long = Duration::from_secs(3);
    f.m().set_fsync_delay(long);
    std::thread::scope(|s| {
        let sync = s.spawn(|| file.sync_all().unwrap());
        common::wait_until("the fsync waits", || f.m().stats().fsyncs_waiting > 0);
        assert_eq!(f.read("w").unwrap(), b"y");
        assert!(!sync.is_finished(), "the read waited for the fsync");
        sync.join().unwrap();
    });
    f.m().set_fsync_delay(Duration::ZERO);
    let started = Instant::now();
    file.sync_all().unwrap();
    assert!(started.elapsed() < long, "the delay was lifted");
}

#[test]
fn an_fsync_waiting_when_the_power_goes_makes_nothing_durable() {
    let f = fixture!();
    let file = durable_file(&f, "w", b"old");
    f.m().set_fsync_delay(Duration::from_millis(500));
    file.write_all_at(b"new", 0).unwrap();
    std::thread::scope(|s| {
        let sync = s.spawn(|| file.sync_all());
        common::wait_until("the fsync waits", || f.m().stats().fsyncs_waiting > 0);
        f.m().power_off(PowerLoss::All).unwrap();
        let err = sync.join().unwrap().unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EIO));
    });
    f.m().set_fsync_delay(Duration::ZERO);
    assert_eq!(f.read("w").unwrap(), b"old");
}

#[test]
fn unsupported_operations_fail_clearly() {
    let f = fixture!();
    durable_file(&f, "a", b"x");
    let c = |p: &Path| CString::new(p.as_os_str().as_bytes()).unwrap();
    let (path, dev) = (c(&f.path("a")), c(&f.path("dev")));
    // SAFETY: valid strings and buffers.
    unsafe {
        let r = libc::setxattr(
            path.as_ptr(),
            c"user.k".as_ptr(),
            b"v".as_ptr().cast(),
            1,
            0,
        );
        assert_eq!(r, -1);
        assert_eq!(
            io::Error::last_os_error().raw_os_error(),
            Some(libc::EOPNOTSUPP)
        );
        let r = libc::mknod(dev.as_ptr(), libc::S_IFCHR | 0o600, libc::makedev(1, 3));
        assert_eq!(r, -1);
        assert_eq!(io::Error::last_os_error().raw_os_error(), Some(libc::EPERM));
    }
    let file = OpenOptions::new().write(true).open(f.path("a")).unwrap();
    // SAFETY: a valid descriptor.
    let r = unsafe { libc::fallocate(file.as_raw_fd(), libc::FALLOC_FL_COLLAPSE_RANGE, 0, 4096) };
    assert_eq!(r, -1);
    assert_eq!(
        io::Error::last_os_error().raw_os_error(),
        Some(libc::EOPNOTSUPP)
    );
}

#[test]
fn the_shadow_directory_is_invisible_and_untouchable() {
    let f = fixture!();
    durable_file(&f, "a", b"x");
    fs::remove_file(f.path("a")).unwrap();
    assert!(f.disk.join(".lazyfs").read_dir().unwrap().next().is_some());
    let names: Vec<_> = fs::read_dir(&f.mnt)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(names.is_empty(), "{names:?}");
    assert!(!f.exists(".lazyfs"));
    let err = fs::create_dir(f.path(".lazyfs")).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::PermissionDenied);
}

#[test]
fn a_panicking_test_still_unmounts() {
    let mnt = std::panic::catch_unwind(|| {
        let f = fixture!();
        let mnt = f.mnt.clone();
        std::panic::panic_any(mnt);
    });
    let Err(payload) = mnt else {
        return; // skipped
    };
    let mnt = payload.downcast::<std::path::PathBuf>().unwrap();
    let mounts = lazyfs::lazyfs_mounts(common::test_root()).unwrap();
    assert!(
        !mounts.iter().any(|m| m.mountpoint == *mnt),
        "{mnt:?} is still mounted"
    );
}

#[test]
fn unmount_ends_a_mount_that_a_process_still_uses() {
    let mut f = fixture!();
    durable_file(&f, "a", b"x");
    let mut child = Command::new("sleep")
        .arg("30")
        .current_dir(&f.mnt)
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let mnt = f.mnt.clone();
    f.unmount();
    let mounts = lazyfs::lazyfs_mounts(common::test_root()).unwrap();
    // The connection is ended, so the process gets errors, not a hang.
    let cwd = fs::read_dir(format!("/proc/{}/cwd", child.id()));
    let _ = child.kill();
    let _ = child.wait();
    assert!(!mounts.iter().any(|m| m.mountpoint == mnt));
    let err = cwd.unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::ENOTCONN), "{err}");
}

#[test]
fn a_killed_writer_leaves_only_what_it_synced() {
    let f = fixture!();
    durable_file(&f, "log", b"");
    // A process appending and syncing now and then, killed mid-way, as the
    // power nemesis does.
    let script = "i=0; while true; do i=$((i+1)); printf 'line %06d\\n' $i >> log; \
                  if [ $i = 100 ]; then sync log; echo synced; fi; done";
    let mut child = Command::new("sh")
        .args(["-c", script])
        .current_dir(&f.mnt)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = child.stdout.take().unwrap();
    let mut buf = [0u8; 7];
    io::Read::read_exact(&mut out, &mut buf).unwrap();
    let size = || fs::metadata(f.path("log")).unwrap().len();
    common::wait_until("it writes past the sync", || size() > 150 * 12);
    child.kill().unwrap();
    child.wait().unwrap();
    let written = fs::metadata(f.path("log")).unwrap().len();
    let r = f.power_off();
    let back = f.read("log").unwrap();
    assert_eq!(back.len(), 100 * 12, "{r}");
    assert!(written > back.len() as u64);
    assert_eq!(r.bytes_lost, written - back.len() as u64);
}
