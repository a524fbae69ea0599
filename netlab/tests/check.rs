//! `netlab check` names what is missing in one line.

use std::process::Command;

#[test]
fn a_missing_tool_is_named_in_one_line() {
    let out = Command::new(env!("CARGO_BIN_EXE_netlab"))
        .arg("check")
        .env("PATH", "/nonexistent")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        text,
        "network namespaces unavailable: ip not found on PATH (install iproute2)\n"
    );
}

#[test]
fn a_missing_privilege_is_named_in_one_line() {
    // Drops CAP_NET_ADMIN with setpriv (util-linux), where we have it.
    let setpriv = Command::new("setpriv")
        .args(["--inh-caps=-net_admin", "--bounding-set=-net_admin"])
        .arg(env!("CARGO_BIN_EXE_netlab"))
        .arg("check")
        .output();
    let Ok(out) = setpriv else {
        eprintln!("skipped: no setpriv");
        return;
    };
    let text = String::from_utf8(out.stdout).unwrap();
    if !out.status.success() && text.is_empty() {
        eprintln!("skipped: setpriv cannot drop capabilities here");
        return;
    }
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.lines().count() == 1 && (text.contains("CAP_NET_ADMIN") || text.contains("not found")),
        "{text}"
    );
}
