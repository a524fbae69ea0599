//! Reading a big `history.jsonl` quickly and in little memory: the file is
//! read in blocks that end at a line boundary, threads parse blocks into
//! ops, and the ops are appended in file order to one vector sized from
//! the first block. At most a few blocks are in flight, so the memory is
//! the ops themselves plus a few megabytes, never the file.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Read;
use std::path::Path;
use std::sync::Mutex;
use std::sync::mpsc;

use super::line::{LineError, LineParser};
use crate::history::{HistoryError, Op};

/// Bytes per block: big enough that a thread's share of the work dwarfs
/// handing it over, small enough that blocks in flight cost little.
const BLOCK: usize = 4 << 20;

/// Bytes a file must have before threads are worth starting.
const PARALLEL_FROM: u64 = 8 << 20;

/// A run of whole lines of the file.
struct Block {
    seq: usize,
    /// Offset of `bytes[0]` in the file.
    start: u64,
    bytes: Vec<u8>,
}

/// What a thread made of a block.
struct Parsed {
    seq: usize,
    /// Bytes in the block.
    bytes: usize,
    ops: Vec<Op>,
    /// Lines in the block (for the line numbers of later blocks).
    lines: usize,
    /// The first bad line: its line in the block (1-based), its offset in
    /// the file, and what is wrong.
    error: Option<(usize, u64, LineError)>,
    /// The block's buffer, handed back to be filled again.
    buffer: Vec<u8>,
}

/// Every op of the file, in order, unvalidated. Blank lines are skipped.
pub fn read_ops(path: &Path, threads: usize) -> Result<Vec<Op>, HistoryError> {
    let io_err = |source| HistoryError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut file = File::open(path).map_err(io_err)?;
    let size = file.metadata().map_err(io_err)?.len();
    let threads = if size < PARALLEL_FROM {
        1
    } else {
        threads.max(1)
    };
    let mut merger = Merger::new(path, size);
    if threads == 1 {
        let mut parser = LineParser::default();
        let mut blocks = Blocks::new(&mut file);
        while let Some(block) = blocks.next().map_err(io_err)? {
            let mut parsed = parse_block(&mut parser, &block);
            parsed.buffer = block.bytes;
            blocks.spare.push(merger.add(parsed)?);
        }
        return Ok(merger.finish());
    }
    let (work_tx, work_rx) = mpsc::sync_channel::<Block>(threads);
    let work_rx = Mutex::new(work_rx);
    let (done_tx, done_rx) = mpsc::channel::<(usize, Parsed)>();
    std::thread::scope(|s| {
        for _ in 0..threads {
            let done_tx = done_tx.clone();
            let work_rx = &work_rx;
            s.spawn(move || {
                let mut parser = LineParser::default();
                loop {
                    let block = match work_rx.lock() {
                        Ok(rx) => rx.recv(),
                        Err(_) => return,
                    };
                    let Ok(block) = block else { return };
                    let mut parsed = parse_block(&mut parser, &block);
                    parsed.buffer = block.bytes;
                    if done_tx.send((parsed.seq, parsed)).is_err() {
                        return;
                    }
                }
            });
        }
        drop(done_tx);
        let mut pending: BTreeMap<usize, Parsed> = BTreeMap::new();
        let mut next = 0usize;
        let mut result: Result<(), HistoryError> = Ok(());
        let mut drain = |pending: &mut BTreeMap<usize, Parsed>,
                         next: &mut usize,
                         result: &mut Result<(), HistoryError>,
                         spare: &mut Vec<Vec<u8>>| {
            while let Some(parsed) = pending.remove(next) {
                *next += 1;
                if result.is_ok() {
                    match merger.add(parsed) {
                        Ok(buffer) => spare.push(buffer),
                        Err(e) => *result = Err(e),
                    }
                }
            }
        };
        let mut blocks = Blocks::new(&mut file);
        loop {
            while let Ok((seq, parsed)) = done_rx.try_recv() {
                pending.insert(seq, parsed);
            }
            drain(&mut pending, &mut next, &mut result, &mut blocks.spare);
            if result.is_err() {
                break;
            }
            match blocks.next() {
                Ok(Some(block)) => {
                    if work_tx.send(block).is_err() {
                        break;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    result = Err(io_err(e));
                    break;
                }
            }
        }
        drop(work_tx);
        let mut spare = Vec::new();
        for (seq, parsed) in done_rx.iter() {
            pending.insert(seq, parsed);
            drain(&mut pending, &mut next, &mut result, &mut spare);
            spare.clear();
        }
        result?;
        Ok(merger.finish())
    })
}

/// Parses every line of a block, stopping at the first bad one.
fn parse_block(parser: &mut LineParser, block: &Block) -> Parsed {
    let bytes = &block.bytes;
    let mut ops = Vec::with_capacity(bytes.len() / 96);
    let mut lines = 0;
    let mut at = 0;
    while at < bytes.len() {
        let end = memchr::memchr(b'\n', &bytes[at..]).map_or(bytes.len(), |i| at + i);
        lines += 1;
        let line = &bytes[at..end];
        if !line.iter().all(u8::is_ascii_whitespace) {
            match parser.parse(line) {
                Ok(op) => ops.push(op),
                Err(e) => {
                    let offset = block.start + at as u64 + e.at.unwrap_or(0) as u64;
                    return Parsed {
                        seq: block.seq,
                        bytes: bytes.len(),
                        ops,
                        lines,
                        error: Some((lines, offset, e)),
                        buffer: Vec::new(),
                    };
                }
            }
        }
        at = end + 1;
    }
    Parsed {
        seq: block.seq,
        bytes: bytes.len(),
        ops,
        lines,
        error: None,
        buffer: Vec::new(),
    }
}

/// Appends parsed blocks in file order, numbering lines.
struct Merger<'p> {
    path: &'p Path,
    size: u64,
    ops: Vec<Op>,
    lines: usize,
}

impl<'p> Merger<'p> {
    fn new(path: &'p Path, size: u64) -> Merger<'p> {
        Merger {
            path,
            size,
            ops: Vec::new(),
            lines: 0,
        }
    }

    /// Appends a block's ops; returns its buffer for reuse.
    fn add(&mut self, parsed: Parsed) -> Result<Vec<u8>, HistoryError> {
        if let Some((line, offset, e)) = parsed.error {
            let message = match e.at {
                Some(_) => format!("{} (byte offset {offset})", e.message),
                None => e.message,
            };
            return Err(HistoryError::line(self.path, self.lines + line, message));
        }
        self.lines += parsed.lines;
        if self.ops.capacity() == 0 && !parsed.ops.is_empty() {
            // Size the vector once, from the first block's bytes per op,
            // with a little room: growing it later would copy every op.
            let per_op = (parsed.bytes as f64 / parsed.ops.len() as f64).max(1.0);
            let estimate = (self.size as f64 / per_op * 1.03) as usize + 1024;
            self.ops.reserve_exact(estimate);
        }
        let mut ops = parsed.ops;
        if self.ops.len() + ops.len() > self.ops.capacity() {
            let more = (self.ops.len() / 8).max(ops.len());
            self.ops.reserve_exact(more);
        }
        self.ops.append(&mut ops);
        Ok(parsed.buffer)
    }

    fn finish(mut self) -> Vec<Op> {
        self.ops.shrink_to_fit();
        self.ops
    }
}

/// Reads a file in blocks that end with a newline (or the end of the file).
struct Blocks<'f> {
    file: &'f mut File,
    seq: usize,
    offset: u64,
    /// The start of a line that did not fit in the last block.
    carry: Vec<u8>,
    done: bool,
    /// Buffers of blocks already parsed, to fill again.
    spare: Vec<Vec<u8>>,
}

impl<'f> Blocks<'f> {
    fn new(file: &'f mut File) -> Blocks<'f> {
        Blocks {
            file,
            seq: 0,
            offset: 0,
            carry: Vec::new(),
            done: false,
            spare: Vec::new(),
        }
    }

    fn next(&mut self) -> std::io::Result<Option<Block>> {
        if self.done {
            return Ok(None);
        }
        let mut bytes = self.spare.pop().unwrap_or_default();
        bytes.clear();
        bytes.append(&mut self.carry);
        let mut want = BLOCK.max(bytes.len() + BLOCK / 4);
        loop {
            let len = bytes.len();
            bytes.reserve(want - len);
            // Reads into the spare capacity: no zeroing of the buffer.
            let n = (&mut *self.file)
                .take((want - len) as u64)
                .read_to_end(&mut bytes)?;
            if len + n < want {
                self.done = true;
                break;
            }
            // Cut after the last newline; a line longer than the block
            // makes the block grow until it ends.
            if let Some(cut) = memchr::memrchr(b'\n', &bytes[len..]) {
                self.carry.extend_from_slice(&bytes[len + cut + 1..]);
                bytes.truncate(len + cut + 1);
                break;
            }
            want = bytes.len() * 2;
        }
        if bytes.is_empty() && self.done {
            return Ok(None);
        }
        let block = Block {
            seq: self.seq,
            start: self.offset,
            bytes,
        };
        self.seq += 1;
        self.offset += block.bytes.len() as u64;
        Ok(Some(block))
    }
}
