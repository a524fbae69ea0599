//! The Raft core must stay a value you drive: no I/O, no clocks, no global
//! randomness. Anything of the kind belongs in the driver around it.

#[test]
fn the_raft_core_does_no_io_and_reads_no_clock() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/raft");
    let forbidden = [
        "tokio",
        "tonic",
        "std::fs",
        "std::net",
        "Instant::now",
        "SystemTime",
        "thread_rng",
        "std::thread",
    ];
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "rs") {
            let text = std::fs::read_to_string(&path).unwrap();
            for word in forbidden {
                assert!(!text.contains(word), "{} mentions `{word}`", path.display());
            }
            checked += 1;
        }
    }
    assert!(
        checked >= 8,
        "found only {checked} core files in {}",
        dir.display()
    );
}
