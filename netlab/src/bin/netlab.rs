//! `netlab`: check whether namespaces can run here, measure what the packet
//! faults do, or hold a network up (for the leak tests).
//!
//! ```text
//! netlab check                 # "ok", or one line naming what is missing; exit 0 / 1
//! netlab measure [--pings 300] # the numbers of every packet fault, on a 2-node network
//! netlab hold [--nodes 3]      # builds a network with every kind of rule, queue and
//!                              # qdisc, prints one JSON line, holds until stdin closes
//! ```
//!
//! `measure` and `hold` move into a private namespace first, as the
//! harness does: nothing they build outlives them.

use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use netlab::packet::{Behavior, PacketFaults};
use netlab::probe::{self, Delivery};
use netlab::{Lab, Link};

#[derive(Parser)]
#[command(about = "A private network for a local cluster: check, measure, hold")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Whether network namespaces can run here.
    Check,
    /// Measures every packet fault at its defaults on a 2-node network.
    Measure {
        /// Pings per round-trip measurement.
        #[arg(long, default_value_t = 300)]
        pings: usize,
        /// Datagrams per loss, duplicate, reorder and corrupt measurement.
        #[arg(long, default_value_t = 10_000)]
        datagrams: u64,
        /// Seconds per throughput measurement.
        #[arg(long, default_value_t = 5)]
        seconds: u64,
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// Builds a network with a cut, packet faults and a rate, starts a
    /// process in every node namespace, prints
    /// `{"pid":P,"control":INODE,"namespaces":[INODE,...],"children":[PID,...]}`,
    /// and holds until stdin closes.
    Hold {
        #[arg(long, default_value_t = 3)]
        nodes: usize,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Cmd::Check = cli.command {
        return match netlab::check() {
            Ok(()) => {
                println!("ok");
                ExitCode::SUCCESS
            }
            Err(e) => {
                println!("{e}");
                ExitCode::from(1)
            }
        };
    }
    // Before any thread starts.
    if let Err(e) = netlab::enter_private_netns() {
        eprintln!("netlab: {e}");
        return ExitCode::from(255);
    }
    let result = match cli.command {
        Cmd::Check => unreachable!("handled above"),
        Cmd::Measure {
            pings,
            datagrams,
            seconds,
            seed,
        } => measure(pings, datagrams, Duration::from_secs(seconds), seed),
        Cmd::Hold { nodes } => hold(nodes),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("netlab: {e:#}");
            ExitCode::from(255)
        }
    }
}

fn ids(n: usize) -> Vec<String> {
    (1..=n).map(|i| format!("n{i}")).collect()
}

fn link(a: &str, b: &str) -> Link {
    (a.to_string(), b.to_string())
}

fn hold(nodes: usize) -> Result<()> {
    if nodes < 2 {
        bail!("--nodes must be at least 2");
    }
    netlab::check()?;
    let ids = ids(nodes);
    let lab = Lab::build(&ids, 1)?;
    lab.cut(&[link("n1", "n2"), link("n2", "n1")])?;
    let faults = PacketFaults::of(&Behavior::ALL);
    let impaired: BTreeMap<Link, PacketFaults> = netlab::links_touching(&ids, &ids[nodes - 1..])
        .into_iter()
        .map(|l| (l, faults))
        .collect();
    lab.impair(&impaired)?;
    let mut children = Vec::new();
    for id in &ids {
        let mut cmd = Command::new("sleep");
        cmd.arg("3600").stdin(Stdio::null());
        netlab::testing::die_with_parent(&mut cmd);
        lab.command(id, &mut cmd)?;
        children.push(cmd.spawn().context("starting sleep in a node namespace")?);
    }
    let namespaces: Vec<u64> = ids
        .iter()
        .map(|id| lab.namespace(id).map(|ns| ns.inode()))
        .collect::<Result<_, _>>()?;
    let line = serde_json::json!({
        "pid": std::process::id(),
        "control": lab.control_namespace().inode(),
        "namespaces": namespaces,
        "children": children.iter().map(|c| c.id()).collect::<Vec<_>>(),
    });
    println!("{line}");
    std::io::stdout().flush()?;
    // Hold until stdin closes; then leave the way a harness does.
    let mut sink = String::new();
    while std::io::stdin().lock().read_line(&mut sink)? > 0 {}
    for mut c in children {
        let _ = c.kill();
        let _ = c.wait();
    }
    drop(lab);
    Ok(())
}

fn measure(pings: usize, datagrams: u64, seconds: Duration, seed: u64) -> Result<()> {
    netlab::check()?;
    let ids = ids(2);
    let lab = Lab::build(&ids, seed)?;
    let both = |f: PacketFaults| -> BTreeMap<Link, PacketFaults> {
        [(link("n1", "n2"), f), (link("n2", "n1"), f)]
            .into_iter()
            .collect()
    };
    let one_way = |f: PacketFaults| -> BTreeMap<Link, PacketFaults> {
        [(link("n1", "n2"), f)].into_iter().collect()
    };
    let mut port = 7000u16;
    let mut next_port = || {
        port += 1;
        port
    };
    println!("netlab measure: 2 nodes, seed {seed}, faults at Jepsen's defaults");
    println!();
    println!("round trips, n1 -> n2 -> n1 ({pings} UDP pings, one at a time), ms:");
    println!(
        "  {:<34} {:>6} {:>6} {:>6} {:>6} {:>6} {:>6} {:>6} {:>5}",
        "faults", "min", "p10", "p50", "p90", "p99", "max", "mean", "lost"
    );
    let rtt_rows: Vec<(&str, BTreeMap<Link, PacketFaults>)> = vec![
        ("none", BTreeMap::new()),
        (
            "delay, both ways",
            both(PacketFaults::of(&[Behavior::Delay])),
        ),
        (
            "delay, n1 -> n2 only",
            one_way(PacketFaults::of(&[Behavior::Delay])),
        ),
        (
            "fixed 100 ms, both ways (figure 8)",
            both(PacketFaults::delay(Duration::from_millis(100))),
        ),
    ];
    for (name, faults) in rtt_rows {
        lab.impair(&faults)?;
        let rtts =
            probe::udp_round_trips(&lab, "n1", "n2", next_port(), pings, Duration::from_secs(1))?;
        let lost = rtts.iter().filter(|r| r.is_none()).count();
        let mut got: Vec<Duration> = rtts.into_iter().flatten().collect();
        got.sort();
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        let mean = got.iter().map(|d| ms(*d)).sum::<f64>() / got.len().max(1) as f64;
        let p = |x| ms(probe::percentile(&got, x));
        println!(
            "  {name:<34} {:>6.2} {:>6.2} {:>6.2} {:>6.2} {:>6.2} {:>6.2} {:>6.2} {lost:>5}",
            p(0.0),
            p(10.0),
            p(50.0),
            p(90.0),
            p(99.0),
            p(100.0),
            mean
        );
    }
    println!();
    let gap = Duration::from_micros(200);
    println!("datagrams n1 -> n2 ({datagrams}, one every {gap:?}), fault on n1 -> n2:");
    println!(
        "  {:<10} {:>9} {:>9} {:>9} {:>11}   emulator (lost dup corrupt reordered)",
        "fault", "received", "loss", "dups", "reordered"
    );
    for b in [
        Behavior::Loss,
        Behavior::Duplicate,
        Behavior::Reorder,
        Behavior::Corrupt,
    ] {
        lab.impair(&one_way(PacketFaults::of(&[b])))?;
        let before = lab.stats()?[&link("n1", "n2")].emulator;
        let csum_before = probe::snmp_counter(&lab, "n2", "Udp", "InCsumErrors")?;
        let d: Delivery = probe::udp_delivery(
            &lab,
            "n1",
            "n2",
            next_port(),
            datagrams,
            gap,
            Duration::from_millis(500),
        )?;
        let after = lab.stats()?[&link("n1", "n2")].emulator;
        let csum = probe::snmp_counter(&lab, "n2", "Udp", "InCsumErrors")? - csum_before;
        let pct = |x: u64| 100.0 * x as f64 / d.sent as f64;
        println!(
            "  {:<10} {:>9} {:>8.2}% {:>8.2}% {:>10.2}%   {} {} {} {}{}",
            b.name(),
            d.received,
            100.0 * d.loss(),
            pct(d.duplicates),
            pct(d.out_of_order),
            after.lost - before.lost,
            after.duplicated - before.duplicated,
            after.corrupted - before.corrupted,
            after.reordered - before.reordered,
            if b == Behavior::Corrupt {
                format!("   (n2's Udp InCsumErrors +{csum})")
            } else {
                String::new()
            },
        );
    }
    println!();
    println!("TCP bulk n1 -> n2 for {seconds:?}:");
    let rows: Vec<(&str, BTreeMap<Link, PacketFaults>)> = vec![
        ("none", BTreeMap::new()),
        (
            "rate (1 Mbit/s), n1 -> n2",
            one_way(PacketFaults::of(&[Behavior::Rate])),
        ),
        (
            "corrupt, n1 -> n2",
            one_way(PacketFaults::of(&[Behavior::Corrupt])),
        ),
        ("loss, both ways", both(PacketFaults::of(&[Behavior::Loss]))),
    ];
    for (name, faults) in rows {
        lab.impair(&faults)?;
        let csum_before = probe::snmp_counter(&lab, "n2", "Tcp", "InCsumErrors")?;
        let (bps, intact) = probe::tcp_throughput(&lab, "n1", "n2", next_port(), seconds)?;
        let csum = probe::snmp_counter(&lab, "n2", "Tcp", "InCsumErrors")? - csum_before;
        println!(
            "  {name:<28} {:>10.3} Mbit/s   stream intact: {intact}   n2's Tcp InCsumErrors +{csum}",
            bps / 1e6
        );
    }
    lab.impair(&one_way(PacketFaults::of(&[Behavior::Rate])))?;
    let (bps, _) = probe::tcp_throughput(&lab, "n1", probe::CONTROL, next_port(), seconds)?;
    println!(
        "  {:<28} {:>10.3} Mbit/s   (the control side is never rate-limited)",
        "n1 -> control, rate on n1",
        bps / 1e6
    );
    lab.unimpair()?;
    println!();
    let mut cut_ms = Vec::new();
    let mut heal_ms = Vec::new();
    for _ in 0..20 {
        let t = Instant::now();
        lab.cut(&[link("n1", "n2"), link("n2", "n1")])?;
        cut_ms.push(t.elapsed().as_secs_f64() * 1e3);
        let t = Instant::now();
        lab.heal()?;
        heal_ms.push(t.elapsed().as_secs_f64() * 1e3);
    }
    cut_ms.sort_by(f64::total_cmp);
    heal_ms.sort_by(f64::total_cmp);
    println!(
        "a two-way cut takes {:.1} ms (median of 20; max {:.1}), a heal {:.1} ms (max {:.1})",
        cut_ms[10], cut_ms[19], heal_ms[10], heal_ms[19]
    );
    Ok(())
}
