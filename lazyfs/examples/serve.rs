//! Mounts a lazyfs and takes commands on stdin, for trying it by hand:
//!
//! ```sh
//! cargo run -p lazyfs --example serve -- MOUNTPOINT BACKING [strict|durable]
//! ```
//!
//! Commands: `power-off`, `torn SEED`, `stats`, `delay MS`, `quit` (or end
//! of input). The mount is in this process's namespace: use it from
//! another shell, stop every process using it before a power-off.

use std::io::BufRead;
use std::path::Path;
use std::time::Duration;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 3 {
        eprintln!("usage: serve MOUNTPOINT BACKING [strict|durable]");
        std::process::exit(254);
    }
    let metadata = match args.get(3).map(String::as_str) {
        None => lazyfs::Metadata::Strict,
        Some(m) => lazyfs::Metadata::parse(m).unwrap_or_else(|| {
            eprintln!("serve: unknown metadata model {m:?} (strict or durable)");
            std::process::exit(254);
        }),
    };
    let options = lazyfs::Options {
        metadata,
        ..Default::default()
    };
    let m = match lazyfs::mount(Path::new(&args[1]), Path::new(&args[2]), options) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("serve: {e}");
            std::process::exit(255);
        }
    };
    println!("mounted");
    for line in std::io::stdin().lock().lines() {
        let line = line.unwrap_or_default();
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["power-off"] => report(m.power_off(lazyfs::PowerLoss::All)),
            ["torn", seed] => match seed.parse() {
                Ok(seed) => report(m.power_off(lazyfs::PowerLoss::Torn { seed })),
                Err(_) => println!("torn: not a number: {seed}"),
            },
            ["stats"] => println!("{:?}", m.stats()),
            ["delay", ms] => match ms.parse() {
                Ok(ms) => m.set_fsync_delay(Duration::from_millis(ms)),
                Err(_) => println!("delay: not a number: {ms}"),
            },
            ["quit"] => break,
            [] => {}
            _ => println!("commands: power-off, torn SEED, stats, delay MS, quit"),
        }
    }
    if let Err(e) = m.unmount() {
        eprintln!("serve: {e}");
        std::process::exit(255);
    }
}

fn report(r: Result<lazyfs::LossReport, lazyfs::Error>) {
    match r {
        Ok(r) => {
            println!("{r}");
            for d in r.details.iter().chain(&r.errors) {
                println!("  {d}");
            }
        }
        Err(e) => println!("power-off failed: {e}"),
    }
}
