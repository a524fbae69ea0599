//! Nothing outlives a network: no namespace, interface, rule, queue or
//! qdisc after a normal end, Ctrl-C, or `kill -9` of the process that
//! built it.

mod common;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{between, ids, output, uniform};
use netlab::packet::{Behavior, PacketFaults};
use netlab::testing::{die_with_parent, netns_in_use};
use netlab::{Lab, NetNs};

/// Polls `done` until it holds or `within` passes.
fn eventually(within: Duration, mut done: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + within;
    loop {
        if done() {
            return true;
        }
        if Instant::now() > end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn alive(pid: u64) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| !s.contains(") Z "))
        .unwrap_or(false)
}

/// What the machine's own namespace shows (read only: nothing here
/// changes it).
fn root_view(ns: &NetNs) -> String {
    let links: BTreeSet<String> = output(ns, "ip", &["-o", "link", "show"])
        .lines()
        .filter_map(|l| l.split(": ").nth(1).map(str::to_string))
        .collect();
    format!(
        "{links:?}\n{}\n{}",
        output(ns, "ip", &["netns", "list"]),
        output(ns, "nft", &["list", "tables"])
    )
}

#[derive(Clone, Copy, Debug)]
enum End {
    /// stdin closes; the process drops its network and exits.
    Exit,
    Interrupt,
    Kill,
}

#[test]
fn nothing_is_left_after_exit_ctrl_c_or_kill_9() {
    if let Err(why) = netlab::check() {
        eprintln!("skipped nothing_is_left_after_exit_ctrl_c_or_kill_9: {why}");
        return;
    }
    let here = NetNs::current().unwrap();
    let before = root_view(&here);
    for end in [End::Exit, End::Interrupt, End::Kill] {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_netlab"));
        cmd.args(["hold", "--nodes", "3"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        die_with_parent(&mut cmd);
        // Ctrl-C's default action is what this test holds the tool to; a
        // test started in the background of a shell inherits SIGINT
        // ignored, so the child gets the default back.
        // SAFETY: signal() is async-signal-safe.
        unsafe {
            cmd.pre_exec(|| {
                libc::signal(libc::SIGINT, libc::SIG_DFL);
                Ok(())
            });
        }
        let mut child = cmd.spawn().unwrap();
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx.recv_timeout(Duration::from_secs(60)).unwrap_or_default();
        let held: serde_json::Value = match serde_json::from_str(&line) {
            Ok(v) => v,
            Err(_) => {
                let _ = child.kill();
                panic!("{end:?}: netlab hold printed {line:?}");
            }
        };
        let mut namespaces: Vec<u64> = held["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap())
            .collect();
        namespaces.push(held["control"].as_u64().unwrap());
        let children: Vec<u64> = held["children"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap())
            .collect();
        let in_use = netns_in_use();
        assert!(
            namespaces.iter().all(|n| in_use.contains(n)),
            "{end:?}: namespaces not seen while held"
        );
        assert!(children.iter().all(|&p| alive(p)));

        let pid = child.id() as i32;
        match end {
            End::Exit => drop(stdin),
            // SAFETY: signalling our own child by pid.
            End::Interrupt => unsafe {
                libc::kill(pid, libc::SIGINT);
            },
            End::Kill => unsafe {
                libc::kill(pid, libc::SIGKILL);
            },
        }
        assert!(
            eventually(Duration::from_secs(30), || child
                .try_wait()
                .unwrap()
                .is_some()),
            "{end:?}: netlab hold did not end"
        );
        assert!(
            eventually(Duration::from_secs(10), || {
                let in_use = netns_in_use();
                namespaces.iter().all(|n| !in_use.contains(n))
                    && children.iter().all(|&p| !alive(p))
            }),
            "{end:?}: namespaces or node processes outlived the network"
        );
        assert_eq!(
            root_view(&here),
            before,
            "{end:?}: the machine's namespace changed"
        );
    }
}

#[test]
fn dropping_a_network_removes_everything_it_made() {
    netlab::testing::isolated("dropping_a_network_removes_everything_it_made", || {
        let home = NetNs::current().unwrap();
        let pristine = (
            output(&home, "ip", &["-o", "link", "show"]),
            output(&home, "nft", &["list", "ruleset"]),
            output(&home, "tc", &["qdisc", "show"]),
        );
        let nodes = ids(3);
        let lab = Lab::build(&nodes, 1).unwrap();
        lab.cut(&between(&["n1"], &["n2"])).unwrap();
        let all = PacketFaults::of(&Behavior::ALL);
        lab.impair(&uniform(
            netlab::links_touching(&nodes, &["n3".into()]),
            all,
        ))
        .unwrap();
        let namespaces: Vec<u64> = nodes
            .iter()
            .map(|n| lab.namespace(n).unwrap().inode())
            .collect();
        assert!(output(&home, "ip", &["-o", "link", "show"]).contains("nlbr0"));
        drop(lab);
        let after = (
            output(&home, "ip", &["-o", "link", "show"]),
            output(&home, "nft", &["list", "ruleset"]),
            output(&home, "tc", &["qdisc", "show"]),
        );
        assert_eq!(after, pristine);
        assert!(eventually(Duration::from_secs(10), || {
            let in_use = netns_in_use();
            namespaces.iter().all(|n| !in_use.contains(n))
        }));
        // A run after a run (test-all) builds again in the same place.
        let again = Lab::build(&nodes, 2).unwrap();
        again.cut(&between(&["n1"], &["n3"])).unwrap();
    });
}
