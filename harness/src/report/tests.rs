//! The report on fixed histories: a valid run with faults and node logs, a
//! stale read, hostile text, a Jepsen import, and a long dense run. Each
//! test parses the page as XML and looks for the elements a reader needs.

use std::path::{Path, PathBuf};

use serde_json::json;

use super::{Input, Source, render, timeline};
use crate::check::{CheckOptions, check_history};
use crate::history::events::{NodeLog, parse_node_log};
use crate::history::{Action, ClientOp, History, NodeName, Op, ProcessId};

const MS: u64 = 1_000_000;

fn numbered(ops: Vec<Op>) -> History {
    History::numbered(ops).expect("a valid history")
}

fn op(p: u64, key: &str, action: Action) -> ClientOp {
    ClientOp::new(ProcessId(p), key, action).with_node(NodeName::new("n1"))
}

fn input(history: History, logs: Vec<NodeLog>, run: serde_json::Value, check: bool) -> Input {
    let results = check.then(|| {
        check_history(
            &history,
            &logs,
            &CheckOptions {
                threads: Some(1),
                ..CheckOptions::default()
            },
        )
    });
    Input {
        path: PathBuf::from("histories/20260101T000000-partition-s1"),
        source: Source::RunDir,
        history,
        logs,
        results,
        run,
        notes: Vec::new(),
    }
}

/// Parses the page as XML (it is written XHTML-compatible) and returns it.
fn well_formed(html: &str) -> roxmltree::Document<'_> {
    let opts = roxmltree::ParsingOptions {
        allow_dtd: true,
        ..roxmltree::ParsingOptions::default()
    };
    match roxmltree::Document::parse_with_options(html, opts) {
        Ok(doc) => doc,
        Err(e) => panic!("not well-formed: {e}\n{html}"),
    }
}

/// Elements named `tag` whose class list contains every word of `class`.
fn with_class<'a>(
    doc: &'a roxmltree::Document<'a>,
    tag: &str,
    class: &str,
) -> Vec<roxmltree::Node<'a, 'a>> {
    doc.descendants()
        .filter(|n| n.tag_name().name() == tag)
        .filter(|n| {
            let have: Vec<&str> = n.attribute("class").unwrap_or("").split(' ').collect();
            class.split(' ').all(|c| have.contains(&c))
        })
        .collect()
}

/// The tooltip of an SVG element.
fn title<'a>(n: &roxmltree::Node<'a, 'a>) -> &'a str {
    n.children()
        .find(|c| c.tag_name().name() == "title")
        .and_then(|t| t.text())
        .unwrap_or("")
}

/// The text of an element, without its tooltip.
fn label<'a>(n: &roxmltree::Node<'a, 'a>) -> String {
    n.children()
        .filter(|c| c.is_text())
        .filter_map(|c| c.text())
        .collect()
}

/// Three nodes: n1 leads term 1 until it is killed, n2 leads term 2.
fn logs() -> Vec<NodeLog> {
    let role = |node: &str, at: &str, role: &str, term: u64| {
        format!(
            "{{\"time\":\"2026-01-01T00:00:{at}Z\",\"node\":\"{node}\",\"event\":\"role\",\"role\":\"{role}\",\"term\":{term}}}\n"
        )
    };
    let apply = |i: u64, t: u64| {
        format!(
            "{{\"time\":\"2026-01-01T00:00:01Z\",\"event\":\"apply\",\"index\":{i},\"term\":{t},\"digest\":\"d{i}\"}}\n"
        )
    };
    let n1 = [role("n1", "00.9", "leader", 1), apply(1, 1), apply(2, 1)].concat();
    let n2 = [
        role("n2", "00.9", "follower", 1),
        apply(1, 1),
        role("n2", "01.8", "candidate", 2),
        role("n2", "01.9", "leader", 2),
        apply(2, 1),
        apply(3, 2),
    ]
    .concat();
    let n3 = [role("n3", "00.9", "follower", 1), apply(1, 1)].concat();
    [("n1", n1), ("n2", n2), ("n3", n3)]
        .into_iter()
        .map(|(n, text)| parse_node_log(&text, Path::new("events.jsonl"), n).unwrap())
        .collect()
}

/// A valid history over 2 s with a partition and a kill of n1.
fn valid_with_faults() -> History {
    let w = |p, v| op(p, "k1", Action::Write(v));
    let r = |p| op(p, "k1", Action::Read(None));
    let r_ok = |p, v| op(p, "k1", Action::Read(Some(crate::history::Value::Int(v))));
    numbered(vec![
        Op::invoke(10 * MS, w(0, 1)),
        Op::ok(12 * MS, w(0, 1)),
        Op::invoke(100 * MS, r(1)),
        Op::ok(101 * MS, r_ok(1, 1)),
        Op::nemesis(
            500 * MS,
            "start-partition",
            json!({"shape": "isolate-leader", "groups": [["n1"], ["n2", "n3"]], "cut": []}),
        ),
        Op::nemesis(
            600 * MS,
            "start-kill",
            json!({"target": "leader", "nodes": ["n1"]}),
        ),
        Op::invoke(700 * MS, w(0, 2)),
        Op::invoke(800 * MS, r(1)),
        Op::fail(810 * MS, r(1), "not-leader"),
        Op::nemesis(1200 * MS, "stop-kill", json!({"restarted": ["n1"]})),
        Op::info(1700 * MS, w(0, 2), "timeout"),
        Op::invoke(1750 * MS, w(10, 3)),
        Op::ok(1760 * MS, w(10, 3)),
        Op::nemesis(1900 * MS, "recover", json!({"healed": true})),
        Op::invoke(1950 * MS, r(1)),
        Op::ok(1952 * MS, r_ok(1, 3)),
    ])
}

/// The stale read of `histories/examples/stale-read`.
fn stale_read() -> History {
    let w = |p, v| op(p, "x", Action::Write(v));
    let r = |p| op(p, "x", Action::Read(None));
    let r_ok = |p, v| op(p, "x", Action::Read(Some(crate::history::Value::Int(v))));
    numbered(vec![
        Op::invoke(MS, w(0, 1)),
        Op::ok(2 * MS, w(0, 1)),
        Op::invoke(3 * MS, w(1, 2)),
        Op::invoke(3 * MS + MS / 2, r(2)),
        Op::ok(4 * MS, w(1, 2)),
        Op::ok(5 * MS, r_ok(2, 2)),
        Op::nemesis(
            5 * MS + MS / 2,
            "start-partition",
            json!([["n3"], ["n1", "n2"]]),
        ),
        Op::invoke(6 * MS, r(0)),
        Op::ok(7 * MS, r_ok(0, 1)),
    ])
}

#[test]
fn report_of_a_valid_run_with_faults_shows_faults_roles_and_bars() {
    let run = json!({
        "history_start": "2026-01-01T00:00:01Z",
        "command": "harness run --nemesis partition,kill --seed 1",
        "seed": 1,
        "options": {"nodes": 3, "nemesis": ["partition", "kill"]},
        "nodes": [{"id": "n1", "starts": 2, "kills": 1, "pauses": 0}],
    });
    let html = render(&input(valid_with_faults(), logs(), run, true));
    let doc = well_formed(&html);
    for id in ["verdict", "timeline", "latency", "anomalies", "nodes"] {
        assert!(
            doc.descendants().any(|n| n.attribute("id") == Some(id)),
            "section {id}"
        );
    }
    assert_eq!(with_class(&doc, "div", "verdict v-valid").len(), 1);
    assert!(html.contains("harness run --nemesis partition,kill --seed 1"));
    // Faults: a bar per fault with kind and targets.
    let partition = with_class(&doc, "rect", "fault fk-partition");
    assert_eq!(partition.len(), 1);
    assert!(
        title(&partition[0]).starts_with("partition isolate-leader: n1 | n2 n3"),
        "{}",
        title(&partition[0])
    );
    assert!(title(&partition[0]).contains("ended by recover"));
    let kill = with_class(&doc, "rect", "fault fk-kill");
    assert!(title(&kill[0]).starts_with("kill n1 (leader)"));
    assert!(!with_class(&doc, "rect", "shade fk-kill").is_empty());
    // Node rows: n1 down while killed, leaders with their terms.
    let down = with_class(&doc, "rect", "down");
    assert_eq!(down.len(), 1);
    assert!(
        title(&down[0]).starts_with("n1 down · 600.00 ms → 1200.00 ms"),
        "{}",
        title(&down[0])
    );
    let leaders: Vec<&str> = doc
        .descendants()
        .filter(|n| n.attribute("class") == Some("leaderlabel"))
        .filter_map(|n| n.text())
        .collect();
    assert_eq!(leaders, vec!["leader t1", "leader t2"]);
    assert!(
        doc.descendants()
            .any(|n| title(&n) == "n1 leader in term 1 · 0.00 ms → 600.00 ms"),
        "n1 leads from the start until it is killed"
    );
    // A bar per operation, coloured by outcome.
    assert!(with_class(&doc, "rect", "ok").len() >= 4);
    let info = with_class(&doc, "rect", "info");
    assert!(
        info.iter()
            .any(|n| title(n).contains("write 2 on k1 via n1 · info (timeout)")),
        "the unknown write is drawn with its error"
    );
    assert!(
        with_class(&doc, "rect", "fail")
            .iter()
            .any(|n| title(n).contains("fail (not-leader)"))
    );
    // The worker that retired process 0 continues as 10 in the same lane.
    assert!(html.contains("<title>lane 1: processes 0, 10</title>"));
    // recover is an event marker; there is no anomaly.
    assert!(
        doc.descendants()
            .any(|n| n.attribute("class") == Some("markerlabel") && label(&n) == "recover")
    );
    assert!(with_class(&doc, "path", "anomaly").is_empty());
    assert!(html.contains("No anomaly found."));
    // Latency, throughput and the per-node table with log links.
    assert!(!with_class(&doc, "polyline", "pline p50").is_empty());
    assert!(!with_class(&doc, "svg", "throughput").is_empty());
    let table = with_class(&doc, "table", "nodes");
    assert_eq!(table.len(), 1);
    let text: String = table[0]
        .descendants()
        .filter(|n| n.is_text())
        .filter_map(|n| n.text())
        .collect::<Vec<_>>()
        .join("|");
    assert!(text.contains("n1|2|1|1|0|1|1|2|2|0|–"), "{text}");
    assert!(text.contains("n2|–|0|0|0|2|1, 2|3|3|0|–"), "{text}");
}

#[test]
fn report_of_a_stale_read_points_at_the_operation_and_says_why() {
    let html = render(&input(stale_read(), Vec::new(), json!({}), true));
    let doc = well_formed(&html);
    assert_eq!(with_class(&doc, "div", "verdict v-invalid").len(), 1);
    let why = "read of x returned 1 at 7.00 ms, but the only value it could see was 2 (written by op 2 at 4.00 ms); \
               it missed the acknowledged write op 2 (a lost write, or a stale read)";
    assert!(
        with_class(&doc, "p", "why")
            .iter()
            .any(|n| n.text() == Some(why)),
        "{html}"
    );
    // On the main timeline: a marker and an outline around op 7.
    let marker = with_class(&doc, "path", "anomaly");
    assert_eq!(marker.len(), 1);
    assert!(title(&marker[0]).starts_with("key x: read of x returned 1"));
    assert_eq!(with_class(&doc, "rect", "stuck").len(), 1);
    // The window: the order numbered, the stuck op marked.
    let window = with_class(&doc, "svg", "window");
    assert_eq!(window.len(), 1);
    let labels: Vec<String> = window[0]
        .descendants()
        .filter(|n| n.tag_name().name() == "text")
        .map(|n| label(&n))
        .collect();
    for want in [
        "#1 op 0 write 1",
        "#2 op 2 write 2",
        "#3 op 3 read → 2",
        "✗ op 7 read → 1",
    ] {
        assert!(labels.iter().any(|l| l == want), "{want} in {labels:?}");
    }
    assert_eq!(with_class(&doc, "rect", "wbar stuck-op").len(), 1);
    let order: Vec<String> = with_class(&doc, "ol", "order")[0]
        .children()
        .filter_map(|li| li.text().map(str::to_string))
        .collect();
    assert_eq!(
        order,
        vec![
            "op 0 (process 0) write 1 at 2.00 ms",
            "op 2 (process 1) write 2 at 4.00 ms",
            "op 3 (process 2) read → 2 at 5.00 ms"
        ]
    );
    assert!(html.contains("✗ cannot be placed next: op 7 (process 0) read → 1 (ok)"));
    // Bare history: no node logs, and the page says so.
    assert!(html.contains("No node event logs"));
}

#[test]
fn report_escapes_everything_read_from_files() {
    let evil = "<script>alert('x')</script>&\u{1}";
    let c = ClientOp::new(ProcessId(0), evil, Action::Write(1))
        .with_node(NodeName::new("n1\"><img src=x onerror=alert(1)>"));
    let h = numbered(vec![
        Op::invoke(MS, c.clone()),
        Op::fail(2 * MS, c, "<b>bad</b>"),
        Op::nemesis(3 * MS, "start-<i>evil</i>", json!({"nodes": ["<n1>"]})),
    ]);
    let run = json!({"command": "harness run </code><script>x()</script>",
                     "options": {"<k>": "<v>"}});
    let mut i = input(h, Vec::new(), run, true);
    i.path = PathBuf::from("dir/<x>&\"");
    let html = render(&i);
    assert!(!html.contains("<script"), "{html}");
    assert!(!html.contains("<img"), "{html}");
    assert!(!html.contains("<b>bad"), "{html}");
    assert!(!html.contains("<i>evil"), "{html}");
    let doc = well_formed(&html);
    assert!(
        doc.descendants()
            .filter_map(|n| n.text())
            .any(|t| t.contains("harness run </code><script>x()</script>")),
        "the text survives, as text"
    );
    assert!(html.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;\u{fffd}"));
}

#[test]
fn report_of_a_jepsen_import_says_there_are_no_node_logs() {
    let edn = "{:type :invoke, :f :write, :value [0 1], :process 0, :time 100000000, :index 0}\n\
               {:type :ok, :f :write, :value [0 1], :process 0, :time 200000000, :index 1}\n\
               {:type :info, :f :start, :value nil, :process :nemesis, :time 250000000, :index 2}\n\
               {:type :info, :f :start, :value \"Cut off {:n1 #{:n2}}\", :process :nemesis, :time 260000000, :index 3}\n\
               {:type :invoke, :f :read, :value [0 nil], :process 1, :time 300000000, :index 4}\n\
               {:type :ok, :f :read, :value [0 1], :process 1, :time 400000000, :index 5}\n\
               {:type :info, :f :stop, :value nil, :process :nemesis, :time 500000000, :index 6}\n";
    let h = crate::history::jepsen::parse_edn(edn, Path::new("history.edn")).unwrap();
    let mut i = input(h, Vec::new(), json!({}), true);
    i.source = Source::Edn;
    let html = render(&i);
    let doc = well_formed(&html);
    assert!(html.contains("No node event logs: this is a history imported from Jepsen EDN"));
    let fault = with_class(&doc, "rect", "fault fk-other");
    assert_eq!(fault.len(), 1);
    assert!(title(&fault[0]).starts_with("fault Cut off {:n1 #{:n2}} · 250.00 ms → 500.00 ms"));
    assert_eq!(with_class(&doc, "div", "verdict v-valid").len(), 1);
}

#[test]
fn a_packet_fault_has_a_row_and_colour_of_its_own_and_downs_no_node() {
    let w = |p, v| op(p, "k1", Action::Write(v));
    let h = numbered(vec![
        Op::invoke(10 * MS, w(0, 1)),
        Op::ok(12 * MS, w(0, 1)),
        Op::nemesis(
            300 * MS,
            "start-packet",
            json!({"target": "one", "nodes": ["n2"], "behaviours": ["delay", "loss"],
                   "faults": "delay 50ms 10ms 25% loss 20% 75%",
                   "links": [["n1", "n2"], ["n2", "n1"], ["n2", "n3"], ["n3", "n2"]]}),
        ),
        Op::nemesis(
            400 * MS,
            "start-kill",
            json!({"target": "one", "nodes": ["n3"]}),
        ),
        Op::nemesis(800 * MS, "stop-packet", json!({"restored": ["n2"]})),
        Op::nemesis(900 * MS, "stop-kill", json!({"restarted": ["n3"]})),
        Op::invoke(950 * MS, w(0, 2)),
        Op::ok(960 * MS, w(0, 2)),
    ]);
    let html = render(&input(h, logs(), json!({}), true));
    let doc = well_formed(&html);
    let packet = with_class(&doc, "rect", "fault fk-packet");
    assert_eq!(packet.len(), 1);
    assert!(
        title(&packet[0]).starts_with("packet n2 (one): delay, loss · 300.00 ms → 800.00 ms"),
        "{}",
        title(&packet[0])
    );
    assert!(!with_class(&doc, "rect", "shade fk-packet").is_empty());
    assert!(
        !with_class(&doc, "span", "key fk-packet").is_empty(),
        "in the legend"
    );
    assert!(html.contains(".fk-packet {"), "with a colour of its own");
    // The row labels, top to bottom: the packet row sits above kill's.
    let rows: Vec<String> = doc
        .descendants()
        .filter(|n| n.attribute("class") == Some("rowlabel"))
        .filter_map(|n| n.text().map(str::to_string))
        .collect();
    let at = |k: &str| rows.iter().position(|r| r == k);
    assert!(
        at("packet").is_some() && at("packet") < at("kill"),
        "{rows:?}"
    );
    // Only the kill took a node down.
    assert_eq!(with_class(&doc, "rect", "down").len(), 1);
}

#[test]
fn report_without_results_is_marked_not_checked() {
    let html = render(&input(stale_read(), Vec::new(), json!({}), false));
    let doc = well_formed(&html);
    assert_eq!(with_class(&doc, "div", "verdict v-skipped").len(), 1);
    assert!(html.contains("NOT CHECKED"));
    assert!(html.contains("Not checked: no results"));
}

/// 60 s at 200 ops/s over 10 workers, with faults: the bars are merged and
/// the page stays small.
#[test]
fn report_of_a_long_dense_run_merges_bars_and_stays_small() {
    let mut ops = Vec::new();
    let mut pending: Vec<(u64, Op)> = Vec::new();
    let mut process: Vec<u64> = (0..10).collect();
    for i in 0..12_000u64 {
        let w = (i % 10) as usize;
        let t = i * 5 * MS;
        let c = op(process[w], &format!("k{}", i % 8), Action::Write(i as i64));
        ops.push(Op::invoke(t, c.clone()));
        let done = t + MS + (i % 7) * MS / 3;
        pending.push((
            done,
            match i % 50 {
                0 => Op::info(done, c, "timeout"),
                1..=5 => Op::fail(done, c, "not-leader"),
                _ => Op::ok(done, c),
            },
        ));
        if i % 50 == 0 {
            process[w] += 10;
        }
        if i % 3000 == 1000 {
            ops.push(Op::nemesis(
                t + 1,
                "start-pause",
                json!({"target": "one", "nodes": ["n2"]}),
            ));
        }
        if i % 3000 == 2000 {
            ops.push(Op::nemesis(t + 1, "stop-pause", json!({"resumed": ["n2"]})));
        }
    }
    ops.extend(pending.into_iter().map(|(_, o)| o));
    ops.sort_by_key(|o| o.time);
    let h = numbered(ops);
    let i = input(h, logs(), json!({}), false);
    let view = super::View::new(&i);
    let drawn = timeline::timeline(&view);
    assert_eq!(drawn.lanes, 10);
    assert!(!drawn.folded);
    assert!(
        drawn.bars < 12_000 / 2,
        "{} bars for 12,000 operations",
        drawn.bars
    );
    let html = render(&i);
    well_formed(&html);
    assert!(html.len() < 5_000_000, "{} bytes", html.len());
    assert!(html.contains("12,000 client operations in 10 lanes"));
    assert!(
        html.contains("bars of one lane with the same outcome less than a pixel apart are merged")
    );
}
