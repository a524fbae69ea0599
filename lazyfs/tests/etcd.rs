//! etcd (preallocated WAL segments, renames, directory fsyncs, bbolt's
//! read-only mmap and fdatasync, file locks) runs on a lazyfs mount and
//! keeps every acknowledged write across a kill -9 and a power-off.
//! Skipped where etcd and etcdctl are not installed.

mod common;

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use lazyfs::{Metadata, PowerLoss};

fn installed(bin: &str, version: &str) -> bool {
    Command::new(bin)
        .arg(version)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Etcd {
    child: Child,
    client: String,
}

impl Etcd {
    fn start(data: &Path, log: &Path, client: u16, peer: u16) -> Etcd {
        let (c, p) = (
            format!("http://127.0.0.1:{client}"),
            format!("http://127.0.0.1:{peer}"),
        );
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .unwrap();
        let child = Command::new("etcd")
            .args(["--name", "e1", "--data-dir"])
            .arg(data)
            .args(["--listen-client-urls", &c, "--advertise-client-urls", &c])
            .args([
                "--listen-peer-urls",
                &p,
                "--initial-advertise-peer-urls",
                &p,
            ])
            .args(["--initial-cluster", &format!("e1={p}")])
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let etcd = Etcd {
            child,
            client: format!("127.0.0.1:{client}"),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while !etcd.ctl(&["endpoint", "health"]).status.success() {
            assert!(Instant::now() < deadline, "etcd did not become healthy");
            std::thread::sleep(Duration::from_millis(200));
        }
        etcd
    }

    fn ctl(&self, args: &[&str]) -> Output {
        Command::new("etcdctl")
            .env("ETCDCTL_API", "3")
            .args(["--endpoints", &self.client, "--command-timeout", "5s"])
            .args(args)
            .output()
            .unwrap()
    }

    fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn etcd_keeps_every_acknowledged_write_across_a_power_off() {
    if !installed("etcd", "--version") || !installed("etcdctl", "version") {
        eprintln!("skipped: etcd and etcdctl are not installed");
        return;
    }
    // etcd never fsyncs its data directory after creating member/ in it,
    // so under the strict model a power-off loses everything: LazyFS's
    // durable model is the one etcd is written for.
    let f = fixture!(Metadata::Durable);
    let log = f.dir.path().join("etcd.log");
    let (client, peer) = (free_port(), free_port());
    let etcd = Etcd::start(&f.mnt, &log, client, peer);
    for i in 0..20 {
        let put = etcd.ctl(&["put", &format!("k{i}"), &format!("v{i}")]);
        assert!(put.status.success(), "{put:?}");
    }
    etcd.kill();
    let r = f.m().power_off(PowerLoss::All).unwrap();
    assert!(r.errors.is_empty(), "{r:?}");

    let etcd = Etcd::start(&f.mnt, &log, client, peer);
    for i in 0..20 {
        let get = etcd.ctl(&["get", &format!("k{i}"), "--print-value-only"]);
        assert_eq!(
            String::from_utf8_lossy(&get.stdout).trim(),
            format!("v{i}"),
            "k{i} after the power-off ({r}); etcd log in {}",
            log.display()
        );
    }
    let put = etcd.ctl(&["put", "after", "power-on"]);
    assert!(put.status.success(), "{put:?}");
}
