//! One test per script in `testdata/` (see `script` for the language).

use super::script;

macro_rules! scripts {
    ($($name:ident),* $(,)? ; bugs: $($bug:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                script::run(stringify!($name));
            }
        )*

        // Scripts of seeded bugs: they need the `bugs` feature.
        $(
            #[cfg(feature = "bugs")]
            #[test]
            fn $bug() {
                script::run(stringify!($bug));
            }
        )*

        /// Every script in `testdata/`, so none is left out by mistake.
        const ALL: &[&str] = &[$(stringify!($name),)* $(stringify!($bug)),*];
    };
}

scripts!(
    append_rules,
    config_change_2015,
    leader_rules,
    log_repair,
    lost_tail,
    membership,
    pre_vote,
    read_index,
    read_rounds,
    rejoin,
    single_node,
    snapshot_follower,
    snapshot_leader,
    transfer,
    vote_rules,
    ; bugs:
    config_change_2015_bug,
    lost_tail_bug,
);

#[test]
fn every_script_in_testdata_is_run() {
    let dir = script::path_of("x");
    let dir = dir.parent().expect("testdata/");
    let mut found: Vec<String> = std::fs::read_dir(dir)
        .expect("testdata/ exists")
        .filter_map(|e| {
            let name = e.ok()?.file_name().into_string().ok()?;
            name.strip_suffix(".txt").map(String::from)
        })
        .collect();
    found.sort();
    let mut listed: Vec<String> = ALL.iter().map(|s| s.to_string()).collect();
    listed.sort();
    assert_eq!(found, listed, "list each testdata/*.txt in `scripts!`");
}
