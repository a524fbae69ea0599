//! kill -9 of a process that mounted lazyfs inside its private mount
//! namespace leaves no mount anywhere and the backing directory intact;
//! where FUSE cannot run, one line says what is missing.
//!
//! A test of its own (no libtest harness): the children are this binary
//! again, and they must unshare their mount namespace before any thread
//! starts.

mod common;

use std::fs;
use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const CHILD_ENV: &str = "LAZYFS_KILL9_CHILD";
const UNAVAILABLE_ENV: &str = "LAZYFS_UNAVAILABLE_CHILD";

fn main() {
    if let Ok(dirs) = std::env::var(CHILD_ENV) {
        child(dirs);
    }
    if let Ok(how) = std::env::var(UNAVAILABLE_ENV) {
        unavailable_child(&how);
        return;
    }
    let listing = std::env::args().any(|a| a == "--list");
    if !listing && !common::available() {
        return;
    }
    common::run_tests(
        "kill9",
        &[
            (
                "entering_a_namespace_late_is_refused",
                entering_a_namespace_late_is_refused,
            ),
            (
                "kill_9_leaves_no_mount_and_the_backing_intact",
                kill_9_leaves_no_mount_and_the_backing_intact,
            ),
            (
                "where_fuse_cannot_run_one_line_says_what_is_missing",
                where_fuse_cannot_run_one_line_says_what_is_missing,
            ),
        ],
    );
}

/// Takes FUSE away (no /dev/fuse, or not root) in a namespace of its own,
/// then prints what `check_available` says.
fn unavailable_child(how: &str) {
    lazyfs::enter_private_mount_namespace().unwrap();
    match how {
        "no-device" => {
            // SAFETY: valid strings; an empty /dev in this namespace only.
            let r = unsafe {
                libc::mount(
                    c"tmpfs".as_ptr(),
                    c"/dev".as_ptr(),
                    c"tmpfs".as_ptr(),
                    0,
                    std::ptr::null(),
                )
            };
            assert_eq!(r, 0, "{}", std::io::Error::last_os_error());
        }
        "not-root" => {
            // SAFETY: plain system calls; nobody's ids.
            unsafe {
                assert_eq!(libc::setgid(65534), 0);
                assert_eq!(libc::setuid(65534), 0);
            }
        }
        other => panic!("unknown child role {other}"),
    }
    match lazyfs::check_available() {
        Ok(()) => println!("available"),
        Err(e) => println!("{:?}: {e}", e.reason),
    }
}

fn where_fuse_cannot_run_one_line_says_what_is_missing() {
    let said = |how: &str| {
        let out = Command::new(std::env::current_exe().unwrap())
            .env(UNAVAILABLE_ENV, how)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    let line = said("no-device");
    assert_eq!(line.lines().count(), 1, "{line}");
    assert!(line.starts_with("NoDevice: no /dev/fuse"), "{line}");
    assert!(line.contains("modprobe fuse"), "{line}");
    let line = said("not-root");
    assert_eq!(line.lines().count(), 1, "{line}");
    assert!(line.starts_with("NotPermitted: "), "{line}");
    assert!(line.contains("run as root"), "{line}");
}

/// The child: private namespace, mount, a grandchild using the mount (as a
/// node would), a write, then wait to be killed.
fn child(dirs: String) -> ! {
    lazyfs::enter_private_mount_namespace().expect("unshare in the child");
    let (mnt, disk) = dirs.split_once('\t').unwrap();
    let m = lazyfs::mount(Path::new(mnt), Path::new(disk), Default::default()).unwrap();
    fs::write(m.mountpoint().join("written-by-child"), b"unsynced").unwrap();
    let mut grandchild = Command::new("sleep");
    grandchild.arg("1000").current_dir(mnt);
    // SAFETY: prctl only, between fork and exec.
    unsafe {
        grandchild.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    // Never waited for: it dies with this process (PDEATHSIG), which is
    // the point.
    #[allow(clippy::zombie_processes)]
    let grandchild = grandchild.spawn().unwrap();
    println!("ready {}", grandchild.id());
    loop {
        std::thread::sleep(Duration::from_secs(1));
    }
}

fn entering_a_namespace_late_is_refused() {
    let _thread = std::thread::spawn(|| std::thread::sleep(Duration::from_secs(1)));
    match lazyfs::enter_private_mount_namespace() {
        Err(lazyfs::Error::Invalid(why)) => assert!(why.contains("before any thread"), "{why}"),
        other => panic!("unshare with two threads: {other:?}"),
    }
}

struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn mount_namespace(pid: u32) -> Option<PathBuf> {
    fs::read_link(format!("/proc/{pid}/ns/mnt")).ok()
}

/// Processes still in the mount namespace `ns`.
fn members(ns: &Path) -> Vec<String> {
    fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().parse::<u32>().is_ok())
        .filter(|e| fs::read_link(e.path().join("ns/mnt")).ok().as_deref() == Some(ns))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect()
}

fn kill_9_leaves_no_mount_and_the_backing_intact() {
    let dir = tempfile::tempdir_in(common::test_root()).unwrap();
    let (mnt, disk) = (dir.path().join("mnt"), dir.path().join("disk"));
    fs::create_dir(&mnt).unwrap();
    fs::create_dir(&disk).unwrap();
    fs::write(disk.join("before"), b"durable").unwrap();

    let child = Command::new(std::env::current_exe().unwrap())
        .env(CHILD_ENV, format!("{}\t{}", mnt.display(), disk.display()))
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut child = KillOnDrop(child);
    let mut line = String::new();
    BufReader::new(child.0.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let grandchild: u32 = line
        .strip_prefix("ready ")
        .unwrap_or_else(|| panic!("child said {line:?}"))
        .trim()
        .parse()
        .unwrap();
    let pid = child.0.id();

    let theirs = fs::read_to_string(format!("/proc/{pid}/mountinfo")).unwrap();
    assert!(theirs.contains(lazyfs::FS_TYPE), "the child sees its mount");
    let ours = lazyfs::lazyfs_mounts(&mnt).unwrap();
    assert!(
        ours.is_empty(),
        "the mount leaked out of the namespace: {ours:?}"
    );
    let ns = mount_namespace(pid).unwrap();
    assert_ne!(Some(&ns), mount_namespace(std::process::id()).as_ref());

    // SAFETY: kill(2) of our own child.
    assert_eq!(unsafe { libc::kill(pid as i32, libc::SIGKILL) }, 0);
    child.0.wait().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !members(&ns).is_empty() {
        assert!(
            Instant::now() < deadline,
            "processes {:?} keep the namespace (and its mount) alive",
            members(&ns)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        mount_namespace(grandchild).is_none(),
        "the grandchild died too"
    );
    assert!(
        lazyfs::lazyfs_mounts(Path::new("/"))
            .unwrap()
            .iter()
            .all(|m| !m.mountpoint.starts_with(dir.path()))
    );

    // The backing directory holds what the child wrote (the harness died,
    // not the simulated machine), and a new mount takes it over.
    assert_eq!(fs::read(disk.join("before")).unwrap(), b"durable");
    assert_eq!(
        fs::read(disk.join("written-by-child")).unwrap(),
        b"unsynced"
    );
    assert!(disk.join(".lazyfs").exists(), "left by the killed mount");
    let m = lazyfs::mount(&mnt, &disk, Default::default()).unwrap();
    assert_eq!(fs::read(mnt.join("written-by-child")).unwrap(), b"unsynced");
    let r = m.power_off(lazyfs::PowerLoss::All).unwrap();
    assert!(r.is_empty(), "what was there at mount is durable: {r}");
    m.unmount().unwrap();
    assert!(!disk.join(".lazyfs").exists());
}
