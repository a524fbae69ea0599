//! The linearizability search for one key: Wing & Gong's algorithm with
//! Lowe's memoization (WGL), the algorithm behind Knossos and Porcupine.
//!
//! Operations become call and return events in one doubly linked list,
//! ordered by time. The search walks the list from the front: a call is a
//! candidate to linearize next (if the model accepts it, the op is *lifted*
//! out of the list and the walk starts again from the front); reaching a
//! return event means an op that has already returned is not linearized yet,
//! so the last choice is undone (*unlifted*) and the next candidate after it
//! is tried. A cache of every (set of linearized ops, model state) already
//! explored cuts off the paths that reach a known dead end by another order.
//!
//! Operations whose outcome is unknown (info, or no completion) are
//! *optional*: they may take effect at any time after their call, or never.
//! They have no return event; they sit in a second list and are tried only
//! after the required candidates, and the search succeeds as soon as every
//! required op is linearized. Three rules keep them from multiplying the
//! search, each dropping only orders that another order does at least as
//! well: an optional op is not linearized if it leaves the state unchanged,
//! nor into a state the model calls dead ([`Model::is_dead`]), and no blind
//! op follows an optional one directly ([`Model::is_blind`]). Since the last
//! rule depends on whether the last op linearized was optional, that bit is
//! part of the cache key.
//!
//! Equal times: a call sorts before a return at the same time, so an op that
//! returns at the instant another is called counts as concurrent with it
//! (the conservative reading: it can only make more orders legal).
//!
//! The cache stores sets compactly: ops are numbered by call time, so the
//! linearized required ops are almost always "all ops up to some point, plus
//! a few"; a set is stored as the count of leading all-ones words and the
//! words after them.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::model::{Model, StateId};

/// An operation to linearize.
#[derive(Clone, Debug)]
pub struct SearchOp<O> {
    /// Invocation time.
    pub call: u64,
    /// Completion time; `None` for an optional op (unknown outcome), which
    /// may take effect at any time after `call`, or never.
    pub ret: Option<u64>,
    /// The operation as the model sees it.
    pub op: O,
}

/// When to give up.
#[derive(Clone, Copy, Debug)]
pub struct Limits<'a> {
    /// The search gives up ([`GiveUp::Deadline`]) once this has passed
    /// (looked at every thousand or so steps, so a little after).
    pub deadline: Instant,
    /// Approximate cap on the memory of the search's cache and the model's
    /// states.
    pub memo_bytes: usize,
    /// An earlier deadline other searches may set (see [`Cutoff`]).
    pub cutoff: Option<&'a Cutoff>,
}

impl Limits<'_> {
    /// Limits without a cutoff.
    pub fn new(deadline: Instant, memo_bytes: usize) -> Limits<'static> {
        Limits {
            deadline,
            memo_bytes,
            cutoff: None,
        }
    }
}

/// A deadline that searches running side by side can bring forward: once
/// one key is found invalid the verdict is settled, and the others get a
/// little longer to add evidence, not the whole budget.
#[derive(Debug)]
pub struct Cutoff {
    start: Instant,
    /// Nanoseconds after `start`; `u64::MAX`: none.
    at: AtomicU64,
}

impl Default for Cutoff {
    fn default() -> Self {
        Cutoff {
            start: Instant::now(),
            at: AtomicU64::new(u64::MAX),
        }
    }
}

impl Cutoff {
    /// Sets the cutoff `after` from now, unless one is set already.
    pub fn set_after(&self, after: Duration) {
        let at = (self.start.elapsed() + after).as_nanos() as u64;
        let _ = self
            .at
            .compare_exchange(u64::MAX, at, Ordering::Relaxed, Ordering::Relaxed);
    }

    fn passed(&self, now: Instant) -> bool {
        let at = self.at.load(Ordering::Relaxed);
        at != u64::MAX && now.duration_since(self.start).as_nanos() as u64 >= at
    }
}

/// Why a search gave up without a verdict.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GiveUp {
    /// [`Limits::deadline`] passed.
    Deadline,
    /// Another key was found invalid and the cutoff passed.
    Cutoff,
    /// The cache and the model's states outgrew [`Limits::memo_bytes`]
    /// (or the model made more states than the cache key can number).
    Memory {
        /// What the cache (and, when over the limit, the model's states)
        /// held when the search gave up, approximately.
        bytes: usize,
    },
}

/// A state the key could be in when the search got stuck, and the op
/// (index into the input) that put it there; `None`: the initial state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SeenState {
    /// The model's state.
    pub state: StateId,
    /// The op that set it, as an index into the search's input; `None`:
    /// no op did, it is the initial state.
    pub set_by: Option<usize>,
}

/// Where the search got furthest before failing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stuck {
    /// The op (index into the input) whose return was reached while it could
    /// not be linearized, at the deepest point of the search.
    pub op: usize,
    /// The longest linearizable prefix found, in linearization order.
    pub prefix: Vec<usize>,
    /// States the key could be in when `op` had to take effect (a few).
    pub states: Vec<SeenState>,
}

/// What a search concluded; indexes are into its input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SearchResult {
    /// Linearizable; the order found (optional ops that were left out are
    /// not in it).
    Valid(Vec<usize>),
    /// Not linearizable: every order gets stuck; this is where the deepest
    /// one did.
    Invalid(Stuck),
    /// Not decided: a limit was reached first.
    Unknown(GiveUp),
}

/// How many states a failure report keeps.
const MAX_SEEN_STATES: usize = 8;
/// How often (in steps) the search looks at the clock.
const CLOCK_EVERY: u64 = 1024;

/// Checks whether `ops` are linearizable under `model`.
pub fn search<M: Model>(model: &mut M, ops: &[SearchOp<M::Op>], limits: &Limits) -> SearchResult {
    if Instant::now() >= limits.deadline {
        return SearchResult::Unknown(GiveUp::Deadline);
    }
    Search::new(model, ops).run(limits)
}

/// Head of both lists (they are circular, so it is also their end).
const HEAD: u32 = 0;

/// A doubly linked list over node ids, with "dancing links" removal: a
/// removed node keeps its pointers, so it can be put back in O(1) as long as
/// removals are undone in reverse order, which a depth-first search does.
struct Links {
    next: Vec<u32>,
    prev: Vec<u32>,
}

impl Links {
    /// A circular list through `order`, starting at `HEAD`.
    fn new(nodes: usize, order: &[u32]) -> Links {
        let mut next = vec![HEAD; nodes];
        let mut prev = vec![HEAD; nodes];
        let mut last = HEAD;
        for &n in order {
            next[last as usize] = n;
            prev[n as usize] = last;
            last = n;
        }
        next[last as usize] = HEAD;
        prev[HEAD as usize] = last;
        Links { next, prev }
    }

    fn next(&self, n: u32) -> u32 {
        self.next[n as usize]
    }

    fn unlink(&mut self, n: u32) {
        let (p, x) = (self.prev[n as usize], self.next[n as usize]);
        self.next[p as usize] = x;
        self.prev[x as usize] = p;
    }

    fn relink(&mut self, n: u32) {
        let (p, x) = (self.prev[n as usize], self.next[n as usize]);
        self.next[p as usize] = n;
        self.prev[x as usize] = n;
    }
}

/// The set of linearized ops, as two bitsets (required ops, optional ops)
/// with an incrementally maintained hash of the required part (XOR of a
/// random word per member).
struct LinSet {
    req: Vec<u64>,
    opt: Vec<u64>,
    /// `req[..full]` are all ones.
    full: usize,
    /// `req[req_top..]` and `opt[opt_top..]` are all zeros.
    req_top: usize,
    opt_top: usize,
    hash: u64,
    zobrist: Vec<u64>,
    required: u32,
}

impl LinSet {
    fn new(required: u32, optional: u32) -> LinSet {
        LinSet {
            req: vec![0; (required as usize).div_ceil(64)],
            opt: vec![0; (optional as usize).div_ceil(64)],
            full: 0,
            req_top: 0,
            opt_top: 0,
            hash: 0,
            zobrist: (0..required)
                .map(|i| mix(u64::from(i) ^ 0x5851_f42d_4c95_7f2d))
                .collect(),
            required,
        }
    }

    fn set(&mut self, slot: u32) {
        if slot < self.required {
            self.hash ^= self.zobrist[slot as usize];
            let w = slot as usize / 64;
            self.req[w] |= 1 << (slot % 64);
            self.req_top = self.req_top.max(w + 1);
            while self.full < self.req.len() && self.req[self.full] == u64::MAX {
                self.full += 1;
            }
        } else {
            let j = slot - self.required;
            let w = j as usize / 64;
            self.opt[w] |= 1 << (j % 64);
            self.opt_top = self.opt_top.max(w + 1);
        }
    }

    fn contains(&self, slot: u32) -> bool {
        let (words, i) = if slot < self.required {
            (&self.req, slot)
        } else {
            (&self.opt, slot - self.required)
        };
        words[i as usize / 64] & 1 << (i % 64) != 0
    }

    fn clear(&mut self, slot: u32) {
        if slot < self.required {
            self.hash ^= self.zobrist[slot as usize];
            let w = slot as usize / 64;
            self.req[w] &= !(1 << (slot % 64));
            self.full = self.full.min(w);
        } else {
            let j = slot - self.required;
            self.opt[j as usize / 64] &= !(1 << (j % 64));
        }
    }

    /// The canonical compact form: a header (leading full words, length of
    /// the required part), the required words after the full ones up to the
    /// last non-zero one, and the optional words up to the last non-zero one.
    /// Equal sets have equal forms.
    fn canonical(&mut self) -> (u64, &[u64], &[u64]) {
        while self.req_top > self.full && self.req[self.req_top - 1] == 0 {
            self.req_top -= 1;
        }
        self.req_top = self.req_top.max(self.full);
        while self.opt_top > 0 && self.opt[self.opt_top - 1] == 0 {
            self.opt_top -= 1;
        }
        let req = &self.req[self.full..self.req_top];
        let header = self.full as u64 | (req.len() as u64) << 32;
        (header, req, &self.opt[..self.opt_top])
    }
}

/// A 64-bit mixer (splitmix64's finalizer).
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// The keys of the cache are already well-mixed hashes.
#[derive(Default)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
        }
    }
    fn write_u64(&mut self, x: u64) {
        self.0 = x;
    }
}

const NONE: u32 = u32::MAX;

struct MemoEntry {
    next: u32,
    /// The model state, shifted left, and the after-optional flag in bit 0.
    state: u32,
    start: u32,
    req_len: u32,
    opt_len: u32,
}

/// The configurations already explored, each a dead end: (linearized set,
/// state, last op optional). Entries with the same required ops and state
/// are chained; sets are stored in one arena of words.
///
/// A configuration is also a dead end when an explored one has the same
/// required ops and state, a subset of its optional ops and a flag no
/// stricter: that one had every choice this one has, and more optional ops
/// left to use. Unknown outcomes make such near-copies common (the same
/// state reached with different optional ops spent), so the memo looks for
/// them, not only for equal configurations.
#[derive(Default)]
struct Memo {
    heads: HashMap<u64, u32, BuildHasherDefault<IdHasher>>,
    entries: Vec<MemoEntry>,
    words: Vec<u64>,
}

impl Memo {
    /// Records the configuration; false if it, or one that covers it, was
    /// already there.
    fn insert(&mut self, hash: u64, state: u32, set: &mut LinSet) -> bool {
        let (header, req, opt) = set.canonical();
        let head = self.heads.get(&hash).copied().unwrap_or(NONE);
        let mut e = head;
        while e != NONE {
            let entry = &self.entries[e as usize];
            if entry.state >> 1 == state >> 1
                && entry.state & 1 <= state & 1
                && entry.req_len as usize == req.len()
                && entry.opt_len as usize <= opt.len()
            {
                let w = &self.words[entry.start as usize..];
                let (stored_req, stored_opt) = w[1..].split_at(req.len());
                if w[0] == header
                    && stored_req == req
                    && stored_opt[..entry.opt_len as usize]
                        .iter()
                        .zip(opt)
                        .all(|(s, o)| s & !o == 0)
                {
                    return false;
                }
            }
            e = entry.next;
        }
        let start = u32::try_from(self.words.len()).expect("memo arena below 2^32 words");
        self.words.push(header);
        self.words.extend_from_slice(req);
        self.words.extend_from_slice(opt);
        let id = u32::try_from(self.entries.len()).expect("fewer than 2^32 memo entries");
        self.entries.push(MemoEntry {
            next: head,
            state,
            start,
            req_len: req.len() as u32,
            opt_len: opt.len() as u32,
        });
        self.heads.insert(hash, id);
        true
    }

    fn bytes(&self) -> usize {
        self.words.len() * 8 + self.entries.len() * size_of::<MemoEntry>() + self.heads.len() * 24
    }
}

/// The search's position, besides the lists and the linearized set: what a
/// frame saves and restores.
#[derive(Clone, Copy)]
struct Here {
    state: StateId,
    /// Whether the last op linearized was optional (no blind op may follow).
    after_optional: bool,
    /// The op that produced `state` (`NONE`: the initial state).
    set_by: u32,
    /// The first return event in the main list, once the walk reached it.
    boundary: u32,
}

/// One linearized op and the position to restore when it is undone.
struct Frame {
    slot: u32,
    saved: Here,
}

/// Where the walk over candidates is.
#[derive(Clone, Copy)]
enum Cursor {
    /// At a node of the list of required ops' events.
    Main(u32),
    /// At a node of the list of optional ops (the required ones are done).
    Opt(u32),
}

/// The deepest point the search reached before failing.
struct Deepest {
    depth: usize,
    prefix: Vec<u32>,
    /// `prefix[..common]` equals the bottom of the current stack.
    common: usize,
    stuck: u32,
    states: Vec<(StateId, u32)>,
}

/// The search over one key's ops. Ops are renumbered into *slots*: required
/// ops first, then optional ones, each group by call time.
struct Search<'a, M: Model> {
    model: &'a mut M,
    ops: &'a [SearchOp<M::Op>],
    /// Input index of each slot.
    input: Vec<usize>,
    required: u32,
    /// Events of required ops: node `1 + 2i` is the call of slot `i`, `2 + 2i` its return.
    main: Links,
    /// Optional ops: node `1 + j` is slot `required + j`.
    opt: Links,
    /// Rank in time order of each main node and each optional node.
    main_rank: Vec<u32>,
    opt_rank: Vec<u32>,
    /// For each optional slot, the optional slot called last before it with
    /// an equal op (`NONE`: none). Equal optional ops are interchangeable
    /// once both are called, so the search linearizes them in call order
    /// only: any order using the later one first has a twin that swaps them.
    twin_before: Vec<u32>,
}

impl<'a, M: Model> Search<'a, M> {
    fn new(model: &'a mut M, ops: &'a [SearchOp<M::Op>]) -> Search<'a, M> {
        // Events sorted by time; at equal times calls before returns (ops
        // touching at an instant overlap), then input order.
        let mut events: Vec<(u64, u8, usize)> = Vec::with_capacity(ops.len() * 2);
        for (i, op) in ops.iter().enumerate() {
            events.push((op.call, 0, i));
            if let Some(ret) = op.ret {
                events.push((ret.max(op.call), 1, i));
            }
        }
        events.sort_unstable();
        let mut call_order: Vec<usize> = events.iter().filter(|e| e.1 == 0).map(|e| e.2).collect();
        // Stable: required first, each group in call order.
        call_order.sort_by_key(|&i| ops[i].ret.is_none());
        let required = ops.iter().filter(|o| o.ret.is_some()).count() as u32;
        let mut slot_of = vec![0u32; ops.len()];
        for (slot, &i) in call_order.iter().enumerate() {
            slot_of[i] = slot as u32;
        }
        let optional = ops.len() as u32 - required;
        let mut main_order = Vec::with_capacity(2 * required as usize);
        let mut main_rank = vec![0u32; 1 + 2 * required as usize];
        let mut opt_order = Vec::with_capacity(optional as usize);
        let mut opt_rank = vec![0u32; 1 + optional as usize];
        for (rank, &(_, kind, i)) in events.iter().enumerate() {
            let slot = slot_of[i];
            if slot < required {
                let node = 1 + 2 * slot + u32::from(kind);
                main_order.push(node);
                main_rank[node as usize] = rank as u32;
            } else {
                let node = 1 + slot - required;
                opt_order.push(node);
                opt_rank[node as usize] = rank as u32;
            }
        }
        let mut last_with_op: HashMap<&M::Op, u32> = HashMap::new();
        let twin_before = (required..ops.len() as u32)
            .map(|slot| {
                last_with_op
                    .insert(&ops[call_order[slot as usize]].op, slot)
                    .unwrap_or(NONE)
            })
            .collect();
        Search {
            model,
            ops,
            input: call_order,
            required,
            main: Links::new(1 + 2 * required as usize, &main_order),
            opt: Links::new(1 + optional as usize, &opt_order),
            main_rank,
            opt_rank,
            twin_before,
        }
    }

    fn op(&self, slot: u32) -> &'a M::Op {
        &self.ops[self.input[slot as usize]].op
    }

    fn lift(&mut self, slot: u32) {
        if slot < self.required {
            self.main.unlink(1 + 2 * slot);
            self.main.unlink(2 + 2 * slot);
        } else {
            self.opt.unlink(1 + slot - self.required);
        }
    }

    fn unlift(&mut self, slot: u32) {
        if slot < self.required {
            self.main.relink(2 + 2 * slot);
            self.main.relink(1 + 2 * slot);
        } else {
            self.opt.relink(1 + slot - self.required);
        }
    }

    fn run(mut self, limits: &Limits) -> SearchResult {
        let mut set = LinSet::new(self.required, self.ops.len() as u32 - self.required);
        let mut memo = Memo::default();
        let mut stack: Vec<Frame> = Vec::new();
        let mut deepest: Option<Deepest> = None;
        let mut here = Here {
            state: self.model.init(),
            after_optional: false,
            set_by: NONE,
            boundary: HEAD,
        };
        let mut required_left = self.required;
        // Required ops that can fail in some state (reads): while one is
        // left, a dead state is a dead end.
        let mut constrained_left = (0..self.required)
            .filter(|&slot| !self.model.always_succeeds(self.op(slot)))
            .count();
        let mut cursor = Cursor::Main(self.main.next(HEAD));
        let mut until_clock = CLOCK_EVERY;
        loop {
            if required_left == 0 {
                let order = stack.iter().map(|f| self.input[f.slot as usize]).collect();
                return SearchResult::Valid(order);
            }
            until_clock -= 1;
            if until_clock == 0 {
                until_clock = CLOCK_EVERY;
                let now = Instant::now();
                if now >= limits.deadline {
                    return SearchResult::Unknown(GiveUp::Deadline);
                }
                if limits.cutoff.is_some_and(|c| c.passed(now)) {
                    return SearchResult::Unknown(GiveUp::Cutoff);
                }
            }
            let candidate = match cursor {
                Cursor::Main(n) if n != HEAD && n % 2 == 1 => Some((n - 1) / 2),
                Cursor::Main(n) => {
                    // The first return event: no op called after it may go
                    // before the op it belongs to.
                    here.boundary = n;
                    cursor = Cursor::Opt(self.opt.next(HEAD));
                    continue;
                }
                Cursor::Opt(n)
                    if n != HEAD
                        && (here.boundary == HEAD
                            || self.opt_rank[n as usize]
                                < self.main_rank[here.boundary as usize]) =>
                {
                    let twin = self.twin_before[(n - 1) as usize];
                    if twin != NONE && !set.contains(twin) {
                        cursor = Cursor::Opt(self.opt.next(n));
                        continue;
                    }
                    Some(self.required + n - 1)
                }
                Cursor::Opt(_) => None,
            };
            let Some(slot) = candidate else {
                // Every candidate failed: the op returning at the boundary
                // cannot be linearized after this prefix. Undo the last choice.
                self.note_stuck(&mut deepest, &stack, (here.boundary - 2) / 2, &here);
                let Some(frame) = stack.pop() else {
                    return self.invalid(deepest.expect("noted just above"));
                };
                if let Some(d) = deepest.as_mut() {
                    d.common = d.common.min(stack.len());
                }
                self.unlift(frame.slot);
                set.clear(frame.slot);
                here = frame.saved;
                cursor = if frame.slot < self.required {
                    required_left += 1;
                    constrained_left +=
                        usize::from(!self.model.always_succeeds(self.op(frame.slot)));
                    Cursor::Main(self.main.next(1 + 2 * frame.slot))
                } else {
                    Cursor::Opt(self.opt.next(1 + frame.slot - self.required))
                };
                continue;
            };
            if let Some(next) = self.next_state(&here, slot, constrained_left, &stack) {
                let optional = slot >= self.required;
                if next >= 1 << 31 {
                    // The cache key keeps one bit for the flag.
                    return SearchResult::Unknown(GiveUp::Memory {
                        bytes: memo.bytes(),
                    });
                }
                let key_state = next << 1 | u32::from(optional);
                set.set(slot);
                if memo.insert(set.hash ^ mix(u64::from(next)), key_state, &mut set) {
                    let bytes = memo.bytes() + self.model.bytes();
                    if bytes > limits.memo_bytes {
                        return SearchResult::Unknown(GiveUp::Memory { bytes });
                    }
                    stack.push(Frame { slot, saved: here });
                    self.lift(slot);
                    here = Here {
                        state: next,
                        after_optional: optional,
                        set_by: if next != here.state {
                            slot
                        } else {
                            here.set_by
                        },
                        boundary: here.boundary,
                    };
                    if !optional {
                        required_left -= 1;
                        constrained_left -= usize::from(!self.model.always_succeeds(self.op(slot)));
                    }
                    cursor = Cursor::Main(self.main.next(HEAD));
                    continue;
                }
                set.clear(slot);
            }
            cursor = match cursor {
                Cursor::Main(n) => Cursor::Main(self.main.next(n)),
                Cursor::Opt(n) => Cursor::Opt(self.opt.next(n)),
            };
        }
    }

    /// The state after linearizing `slot` here, or `None` if the model
    /// rejects it, it leads into a dead end, or one of the rules for
    /// optional ops leaves it out. `constrained_left`: required ops not yet
    /// linearized that can fail in some state.
    fn next_state(
        &mut self,
        here: &Here,
        slot: u32,
        constrained_left: usize,
        stack: &[Frame],
    ) -> Option<StateId> {
        let optional = slot >= self.required;
        let op = self.op(slot);
        if here.after_optional && self.model.is_blind(op) {
            return None;
        }
        let next = self.model.step(here.state, op)?;
        // An optional op that leads back to a state held since the last
        // required op (or leaves it as it was) gains nothing: the
        // configuration without the optional ops since then can do all that
        // this one can, and has more left to use.
        if optional {
            if next == here.state || self.model.is_dead(next) {
                return None;
            }
            let since_required = stack.iter().rev().take_while(|f| f.slot >= self.required);
            if since_required.map(|f| f.saved.state).any(|s| s == next) {
                return None;
            }
        }
        // No op that can fail succeeds after a dead state, so one still
        // waiting could never be linearized: without this, the search would
        // walk every order of the ops that always succeed before finding out.
        if !optional && self.model.is_dead(next) {
            let this = usize::from(!self.model.always_succeeds(op));
            if constrained_left > this {
                return None;
            }
        }
        Some(next)
    }

    /// The failure report, in input indexes.
    fn invalid(&self, d: Deepest) -> SearchResult {
        SearchResult::Invalid(Stuck {
            op: self.input[d.stuck as usize],
            prefix: d.prefix.iter().map(|&s| self.input[s as usize]).collect(),
            states: d
                .states
                .iter()
                .map(|&(state, by)| SeenState {
                    state,
                    set_by: (by != NONE).then(|| self.input[by as usize]),
                })
                .collect(),
        })
    }

    /// Remembers the deepest dead end, and the states seen at the op stuck there.
    fn note_stuck(&self, deepest: &mut Option<Deepest>, stack: &[Frame], stuck: u32, here: &Here) {
        let (state, set_by) = (here.state, here.set_by);
        match deepest {
            Some(d) if stack.len() <= d.depth => {
                if d.stuck == stuck
                    && d.states.len() < MAX_SEEN_STATES
                    && !d.states.iter().any(|s| s.0 == state)
                {
                    d.states.push((state, set_by));
                }
            }
            _ => {
                let d = deepest.get_or_insert_with(|| Deepest {
                    depth: 0,
                    prefix: Vec::new(),
                    common: 0,
                    stuck,
                    states: Vec::new(),
                });
                // Copy only what changed since the last copy: amortized O(1).
                d.prefix.truncate(d.common);
                d.prefix.extend(stack[d.common..].iter().map(|f| f.slot));
                d.common = stack.len();
                d.depth = stack.len();
                d.stuck = stuck;
                d.states.clear();
                d.states.push((state, set_by));
            }
        }
    }
}
