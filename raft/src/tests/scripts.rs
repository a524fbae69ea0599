//! One test per script in `testdata/` (see `script` for the language).

use super::script;

macro_rules! scripts {
    ($($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                script::run(stringify!($name));
            }
        )*

        /// Every script in `testdata/`, so none is left out by mistake.
        const ALL: &[&str] = &[$(stringify!($name)),*];
    };
}

scripts!(
    append_rules,
    leader_rules,
    log_repair,
    pre_vote,
    read_index,
    read_rounds,
    single_node,
    snapshot_follower,
    snapshot_leader,
    vote_rules,
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
