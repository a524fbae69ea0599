//! A simulated linearizable store that produces histories, for the
//! checkers' property tests and `harness bench-check`.
//!
//! Workers (one operation at a time each) issue operations on random keys.
//! Every operation that takes effect does so atomically at one instant
//! strictly after its invocation (its linearization point), against a
//! single in-memory map, so every history it produces is linearizable by
//! construction. Outcomes vary as in a real run: definite failures
//! (`not-leader`: no effect), cas mismatches (with or without the value
//! seen), and unknown outcomes (`info`, or no completion at all) that took
//! effect or not, possibly long after the client gave up. A worker whose
//! operation ended unknown continues as a new process, as in Jepsen.
//!
//! Its randomness is a seeded [`Rng`], so a history is a pure function of
//! its [`SimConfig`].

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

use crate::history::{Action, Cas, ClientOp, History, Key, Op, OpType, ProcessId, StrOp, Value};
use crate::workload::Workload;
use raft::Rng;

/// The shape of a simulated run.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// The seed of every random choice: the same config gives the same history.
    pub seed: u64,
    /// Client operations to invoke.
    pub ops: usize,
    /// Keys the operations pick from.
    pub keys: usize,
    /// Workers issuing operations at the same time.
    pub concurrency: usize,
    /// Which operations are issued.
    pub workload: Workload,
    /// Fraction of operations whose outcome is unknown.
    pub info_rate: f64,
    /// Fraction of operations that fail definitely (`not-leader`).
    pub fail_rate: f64,
    /// Register values are drawn from `0..values`; 0: every write and cas
    /// writes a fresh value (no value is ever written twice).
    pub values: i64,
    /// Upper bound of the invocation-to-effect and effect-to-completion
    /// delays, in ns.
    pub latency_ns: u64,
    /// Record each operation's linearization point and the state before it
    /// ([`Simulation::effects`]).
    pub record_effects: bool,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            seed: 0,
            ops: 1000,
            keys: 10,
            concurrency: 10,
            workload: Workload::Register,
            info_rate: 0.01,
            fail_rate: 0.02,
            values: 5,
            latency_ns: 1_000_000,
            record_effects: false,
        }
    }
}

/// When an operation took effect, and the key's state just before.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Effect {
    /// The linearization point (history time, ns).
    pub time: u64,
    /// The key's value just before it.
    pub before: Value,
}

/// A generated history.
pub struct Simulation {
    /// The history's operations, in order.
    pub ops: Vec<Op>,
    /// Invocation index -> effect, for operations that took effect (only
    /// with [`SimConfig::record_effects`]).
    pub effects: HashMap<u64, Effect>,
}

impl Simulation {
    /// The history (the simulator's are always well formed).
    pub fn history(&self) -> History {
        History::new(self.ops.clone()).expect("the simulator writes well-formed histories")
    }

    /// The history, without a copy.
    pub fn into_history(self) -> History {
        History::new(self.ops).expect("the simulator writes well-formed histories")
    }
}

/// How an operation will end.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Fate {
    Ok,
    NotLeader,
    /// Unknown outcome: applied or not; completed with info or never.
    Unknown {
        applied: bool,
        completes: bool,
    },
}

struct InFlight {
    worker: usize,
    invoke_index: u64,
    op: ClientOp,
    fate: Fate,
    /// What the operation saw or did at its linearization point.
    result: Option<Action>,
    error: Option<String>,
}

enum Event {
    Start(usize),
    Apply(usize),
    Complete(usize),
}

/// Runs the simulation.
pub fn simulate(cfg: &SimConfig) -> Simulation {
    let mut rng = Rng::new(cfg.seed);
    let keys: Vec<Key> = (0..cfg.keys.max(1))
        .map(|k| Key::from(format!("k{k}")))
        .collect();
    let mut store: HashMap<usize, Value> = HashMap::new();
    let mut fresh: i64 = 1_000;
    let mut next_process = cfg.concurrency as u64;
    let mut process: Vec<ProcessId> = (0..cfg.concurrency as u64).map(ProcessId).collect();
    let mut flights: Vec<InFlight> = Vec::new();
    let mut key_of: Vec<usize> = Vec::new();
    let mut queue: BinaryHeap<Reverse<(u64, u64, usize, u8)>> = BinaryHeap::new();
    let mut seq = 0u64;
    let mut push = |queue: &mut BinaryHeap<_>, time: u64, e: Event| {
        let (id, kind) = match e {
            Event::Start(w) => (w, 0),
            Event::Apply(f) => (f, 1),
            Event::Complete(f) => (f, 2),
        };
        seq += 1;
        queue.push(Reverse((time, seq, id, kind)));
    };
    for w in 0..cfg.concurrency {
        let t = rng.below(cfg.latency_ns.max(1));
        push(&mut queue, t, Event::Start(w));
    }
    let mut ops: Vec<Op> = Vec::with_capacity(cfg.ops * 2);
    let mut effects = HashMap::new();
    let mut started = 0usize;
    let lat = cfg.latency_ns.max(2);
    while let Some(Reverse((time, _, id, kind))) = queue.pop() {
        match kind {
            0 => {
                if started >= cfg.ops {
                    continue;
                }
                started += 1;
                let worker = id;
                let k = rng.below(keys.len() as u64) as usize;
                let action = pick_action(cfg, &mut rng, store.get(&k), &mut fresh);
                let fate = if rng.chance(cfg.info_rate) {
                    Fate::Unknown {
                        applied: rng.chance(0.5),
                        completes: rng.chance(0.8),
                    }
                } else if rng.chance(cfg.fail_rate) {
                    Fate::NotLeader
                } else {
                    Fate::Ok
                };
                let op = ClientOp::new(process[worker], keys[k].clone(), action);
                let index = ops.len() as u64;
                let mut inv = Op::invoke(time, op.clone());
                inv.index = index as u32;
                ops.push(inv);
                let f = flights.len();
                flights.push(InFlight {
                    worker,
                    invoke_index: index,
                    op,
                    fate,
                    result: None,
                    error: None,
                });
                key_of.push(k);
                let apply_at = time + 1 + rng.below(lat);
                match fate {
                    Fate::Ok => {
                        push(&mut queue, apply_at, Event::Apply(f));
                        push(&mut queue, apply_at + rng.below(lat), Event::Complete(f));
                    }
                    Fate::NotLeader => {
                        push(&mut queue, time + 1 + rng.below(lat), Event::Complete(f));
                    }
                    Fate::Unknown { applied, completes } => {
                        if applied {
                            // Possibly long after the client gave up.
                            let late = time + 1 + rng.below(lat * 20);
                            push(&mut queue, late, Event::Apply(f));
                        }
                        if completes {
                            push(&mut queue, time + lat * 2, Event::Complete(f));
                        } else {
                            // The worker moves on without a completion.
                            let w = flights[f].worker;
                            process[w] = ProcessId(next_process);
                            next_process += 1;
                            push(&mut queue, time + lat * 2, Event::Start(w));
                        }
                    }
                }
            }
            1 => {
                let k = key_of[id];
                let current = store.get(&k).cloned().unwrap_or(match cfg.workload {
                    Workload::Register => Value::Nil,
                    Workload::Append => Value::List(Vec::new()),
                });
                let flight = &mut flights[id];
                if cfg.record_effects {
                    effects.insert(
                        flight.invoke_index,
                        Effect {
                            time,
                            before: current.clone(),
                        },
                    );
                }
                match &flight.op.action {
                    Action::Read(_) => flight.result = Some(Action::Read(Some(current))),
                    Action::Write(v) => {
                        store.insert(k, Value::Int(*v));
                    }
                    Action::Append(v) => {
                        let mut list = match current {
                            Value::List(l) => l,
                            _ => Vec::new(),
                        };
                        list.push(*v);
                        store.insert(k, Value::List(list));
                    }
                    Action::Str(op) => {
                        let text = |v: &Value| match v {
                            Value::Str(t) => Some(t.clone()),
                            _ => None,
                        };
                        match op {
                            StrOp::Put(t) => {
                                store.insert(k, Value::Str(t.clone()));
                            }
                            StrOp::Append(t) => {
                                let mut s = text(&current).map_or(String::new(), |c| c.to_string());
                                s.push_str(t);
                                store.insert(k, Value::Str(s.into()));
                            }
                            StrOp::Cas { expected, new, .. } => {
                                if text(&current) == *expected {
                                    store.insert(k, Value::Str(new.clone()));
                                } else {
                                    flight.result = Some(Action::Str(StrOp::Cas {
                                        expected: expected.clone(),
                                        new: new.clone(),
                                        actual: Some(text(&current)),
                                    }));
                                    flight.error = Some(crate::history::MISMATCH.to_string());
                                }
                            }
                        }
                    }
                    Action::Cas(c) => {
                        let now = match current {
                            Value::Int(v) => Some(v),
                            _ => None,
                        };
                        if now == c.expected {
                            store.insert(k, Value::Int(c.new));
                        } else {
                            // Half the time the node reports what it saw.
                            let actual = rng.chance(0.5).then_some(now);
                            flight.result = Some(Action::Cas(Cas { actual, ..*c }));
                            flight.error = Some(crate::history::MISMATCH.to_string());
                        }
                    }
                }
            }
            _ => {
                let flight = &flights[id];
                let mut body = flight.op.clone();
                let kind = match flight.fate {
                    Fate::Ok if flight.error.is_some() => OpType::Fail,
                    Fate::Ok => OpType::Ok,
                    Fate::NotLeader => OpType::Fail,
                    Fate::Unknown { .. } => OpType::Info,
                };
                if let (OpType::Ok | OpType::Fail, Some(result)) = (kind, &flight.result) {
                    body.action = result.clone();
                }
                body.error = match flight.fate {
                    Fate::NotLeader => Some("not-leader".into()),
                    Fate::Unknown { .. } => Some("timeout".into()),
                    Fate::Ok => flight.error.clone().map(Into::into),
                };
                let mut done = Op::client(time, kind, body);
                done.index = ops.len() as u32;
                ops.push(done);
                let w = flight.worker;
                if kind == OpType::Info {
                    process[w] = ProcessId(next_process);
                    next_process += 1;
                }
                let think = rng.below(lat / 2);
                push(&mut queue, time + think, Event::Start(w));
            }
        }
    }
    Simulation { ops, effects }
}

fn pick_action(cfg: &SimConfig, rng: &mut Rng, current: Option<&Value>, fresh: &mut i64) -> Action {
    let value = |rng: &mut Rng, fresh: &mut i64| {
        if cfg.values > 0 {
            rng.below(cfg.values as u64) as i64
        } else {
            *fresh += 1;
            *fresh
        }
    };
    match cfg.workload {
        Workload::Append => {
            if rng.chance(0.5) {
                Action::Read(None)
            } else {
                *fresh += 1;
                Action::Append(*fresh)
            }
        }
        Workload::Register => match rng.below(10) {
            0..=3 => Action::Read(None),
            4..=6 => Action::Write(value(rng, fresh)),
            _ => {
                // Like a read-modify-write client: usually expects the value
                // it believes is current, sometimes a guess.
                let expected = match current {
                    Some(Value::Int(v)) if rng.chance(0.6) => Some(*v),
                    None if rng.chance(0.6) => None,
                    _ if cfg.values > 0 => Some(rng.below(cfg.values as u64) as i64),
                    _ => Some(*fresh - rng.below(3) as i64),
                };
                Action::cas(expected, value(rng, fresh))
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::Outcome;

    #[test]
    fn histories_are_well_formed_and_deterministic() {
        for workload in [Workload::Register, Workload::Append] {
            let cfg = SimConfig {
                workload,
                info_rate: 0.1,
                ..SimConfig::default()
            };
            let a = simulate(&cfg);
            let h = a.history();
            assert_eq!(h.operation_count(), 1000);
            let outcomes: Vec<Outcome> = h.operations().map(|o| o.outcome()).collect();
            for o in [Outcome::Ok, Outcome::Fail, Outcome::Info, Outcome::Pending] {
                assert!(outcomes.contains(&o), "{workload:?} has no {o:?}");
            }
            assert_eq!(simulate(&cfg).ops, a.ops);
        }
    }
}
