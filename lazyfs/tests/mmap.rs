//! Shared mmaps through a real mount: read-only mappings (bbolt's way)
//! see every write and, after a power-off, only what survived; stores
//! through a writable mapping survive once msynced.
//!
//! The mappings are made by a child process (this binary again, driven
//! line by line over stdin): a process must never map files of a FUSE
//! mount it serves itself. Unmapping a dirty shared mapping waits for the
//! kernel to write the pages back while holding the process's memory-map
//! lock, and the serving threads of the same process need that lock to
//! answer: a deadlock no signal can break.

mod common;

use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Write};
use std::os::fd::{AsRawFd, FromRawFd};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use lazyfs::Metadata;

const CHILD_ENV: &str = "LAZYFS_MMAP_CHILD";

fn main() {
    if std::env::var_os(CHILD_ENV).is_some() {
        child();
        return;
    }
    let tests: [(&str, fn()); 2] = [
        (
            "a_read_only_shared_mmap_sees_writes_and_after_a_power_off_only_what_survived",
            read_only_mapping,
        ),
        (
            "stores_through_a_shared_mmap_survive_after_msync_and_are_lost_without",
            writable_mapping,
        ),
    ];
    common::run_tests("mmap", &tests);
}

/// The child: `map PATH LEN ro|rw`, `close-fd`, `peek OFFSET`,
/// `store OFFSET TEXT`, `msync`, `unmap`; answers one line each.
fn child() {
    let mut map: Option<(*mut u8, usize)> = None;
    let mut fd = -1;
    for line in io::stdin().lock().lines() {
        let line = line.unwrap();
        let w: Vec<&str> = line.split(' ').collect();
        match w.as_slice() {
            ["map", path, len, mode] => {
                let len: usize = len.parse().unwrap();
                let rw = *mode == "rw";
                let file = OpenOptions::new().read(true).write(rw).open(path).unwrap();
                let prot = libc::PROT_READ | if rw { libc::PROT_WRITE } else { 0 };
                // SAFETY: a fresh shared mapping of an open file.
                let p = unsafe {
                    libc::mmap(
                        std::ptr::null_mut(),
                        len,
                        prot,
                        libc::MAP_SHARED,
                        file.as_raw_fd(),
                        0,
                    )
                };
                assert_ne!(p, libc::MAP_FAILED, "{}", io::Error::last_os_error());
                fd = std::os::fd::IntoRawFd::into_raw_fd(file);
                map = Some((p.cast(), len));
            }
            // SAFETY: closes the descriptor kept by `map`.
            ["close-fd"] => drop(unsafe { File::from_raw_fd(fd) }),
            // SAFETY (peek, store): offsets are inside the mapping.
            ["peek", off] => {
                let (p, _) = map.unwrap();
                println!("{}", unsafe { *p.add(off.parse().unwrap()) });
            }
            ["store", off, text] => {
                let (p, _) = map.unwrap();
                let off: usize = off.parse().unwrap();
                unsafe { std::ptr::copy_nonoverlapping(text.as_ptr(), p.add(off), text.len()) };
            }
            ["msync"] => {
                let (p, len) = map.unwrap();
                // SAFETY: the whole mapping.
                assert_eq!(unsafe { libc::msync(p.cast(), len, libc::MS_SYNC) }, 0);
            }
            ["unmap"] => {
                let (p, len) = map.take().unwrap();
                // SAFETY: unmaps what `map` mapped.
                unsafe { libc::munmap(p.cast(), len) };
            }
            other => panic!("child: unknown command {other:?}"),
        }
        println!("done");
    }
}

struct Mapper {
    child: Child,
    input: ChildStdin,
    output: BufReader<ChildStdout>,
}

impl Mapper {
    fn start() -> Mapper {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .env(CHILD_ENV, "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let input = child.stdin.take().unwrap();
        let output = BufReader::new(child.stdout.take().unwrap());
        Mapper {
            child,
            input,
            output,
        }
    }

    fn say(&mut self, command: &str) -> String {
        writeln!(self.input, "{command}").unwrap();
        let mut answer = String::new();
        self.output.read_line(&mut answer).unwrap();
        if answer.trim() != "done" {
            let mut done = String::new();
            self.output.read_line(&mut done).unwrap();
        }
        answer.trim().to_string()
    }

    fn peek(&mut self, off: usize) -> u8 {
        self.say(&format!("peek {off}")).parse().unwrap()
    }

    fn map(&mut self, path: &Path, len: usize, mode: &str) {
        self.say(&format!("map {} {len} {mode}", path.display()));
    }

    /// SIGKILL, as the power nemesis does, and wait for the exit.
    fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Mapper {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn durable_file(f: &common::Fixture, rel: &str, data: &[u8]) -> File {
    let file = f.write(rel, data);
    file.sync_all().unwrap();
    f.fsync_dir("");
    file
}

fn read_only_mapping() {
    let f = fixture!(Metadata::Strict);
    let file = durable_file(&f, "db", &[1u8; 8192]);
    let mut m = Mapper::start();
    m.map(&f.path("db"), 8192, "ro");
    assert_eq!(m.peek(100), 1);
    // bbolt's way: pwrite a page, then read it through the mapping.
    file.write_all_at(&[2u8; 4096], 4096).unwrap();
    assert_eq!(m.peek(5000), 2);
    file.sync_data().unwrap();
    file.write_all_at(&[3u8; 4096], 0).unwrap();
    assert_eq!(m.peek(0), 3);
    m.kill();
    drop(file);
    f.power_off();
    let mut m = Mapper::start();
    m.map(&f.path("db"), 8192, "ro");
    assert_eq!(m.peek(0), 1, "the unsynced page is gone from the cache");
    assert_eq!(m.peek(5000), 2);
}

fn writable_mapping() {
    let f = fixture!(Metadata::Strict);
    drop(durable_file(&f, "m", &[0u8; 8192]));
    let mut m = Mapper::start();
    m.map(&f.path("m"), 8192, "rw");
    // Closing the file would write dirty pages back; the mapping outlives it.
    m.say("close-fd");
    m.say("store 10 synced");
    m.say("msync");
    m.say("store 5000 unsynced");
    // Killed with the page dirty: the kernel writes it back as the mapping
    // goes, and the power-off throws it away.
    m.kill();
    let r = f.power_off();
    let back = f.read("m").unwrap();
    assert_eq!(&back[10..16], b"synced");
    assert_eq!(&back[5000..5008], &[0u8; 8], "{r:?}");
    assert!(f.m().stats().mmap_writes >= 2);
}
