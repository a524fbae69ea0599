# Short names for the common commands. `just --list` shows them.

# A 30-second fault-injection run against a local 3-node cluster.
run *ARGS:
    cargo run --release -p harness -- run --nemesis all --time-limit 30 {{ARGS}}

# Every test, as CI runs them.
test:
    cargo test --workspace

# What CI runs.
ci:
    bash .ci/run

# Formatting and lints, as required before every commit.
lint:
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets -- -D warnings

# Check a saved run directory, history.jsonl or Jepsen history.edn.
check PATH:
    cargo run --release -p harness -- check {{PATH}}

# The checker benchmark (100k and 1M operations).
bench-check:
    cargo run --release -p harness -- bench-check

# How long one fsync takes on this machine.
fsync:
    WAL_BENCH_DIRS=. cargo test --release -p node --lib storage::bench -- --ignored --nocapture

# Election time after killing the leader (median of 20).
failover:
    cargo test --release -p node --test failover_timing -- --ignored --nocapture

# What the nightly workflow runs: tests, then the fault matrix and the
# seeded-bug self-test in one suite, with JUnit.
nightly:
    cargo test --workspace
    cargo run --release -p harness --features bugs -- test-all --network netns --nodes 3,5 --time-limit 60 --test-count 2 --nemeses 'none;partition;packet;kill;pause;power;all;figure8;member,wipe,kill,partition' --initial-members 3 --selftest --store nightly --junit nightly/junit.xml

# Every seeded bug against the harness, 10 seeds each (catch-rate table).
selftest SEEDS="10":
    cargo run --release -p harness --features bugs -- selftest --seeds {{SEEDS}}

# Throughput and latency of a local cluster (see BENCHMARKS.md).
bench *ARGS:
    cargo run --release -p harness -- bench {{ARGS}}
