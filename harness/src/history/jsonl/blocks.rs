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
            merger.add(parse_block(&mut parser, &block))?;
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
                    let parsed = parse_block(&mut parser, &block);
                    drop(block);
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
                         result: &mut Result<(), HistoryError>| {
            while let Some(parsed) = pending.remove(next) {
                *next += 1;
                if result.is_ok() {
                    *result = merger.add(parsed);
                }
            }
        };
        let mut blocks = Blocks::new(&mut file);
        loop {
            while let Ok((seq, parsed)) = done_rx.try_recv() {
                pending.insert(seq, parsed);
            }
            drain(&mut pending, &mut next, &mut result);
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
        for (seq, parsed) in done_rx.iter() {
            pending.insert(seq, parsed);
            drain(&mut pending, &mut next, &mut result);
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

    fn add(&mut self, parsed: Parsed) -> Result<(), HistoryError> {
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
        Ok(())
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
}

impl<'f> Blocks<'f> {
    fn new(file: &'f mut File) -> Blocks<'f> {
        Blocks {
            file,
            seq: 0,
            offset: 0,
            carry: Vec::new(),
            done: false,
        }
    }

    fn next(&mut self) -> std::io::Result<Option<Block>> {
        if self.done {
            return Ok(None);
        }
        let mut bytes = std::mem::take(&mut self.carry);
        let mut want = BLOCK.max(bytes.len() + BLOCK / 4);
        loop {
            let len = bytes.len();
            bytes.resize(want, 0);
            let n = read_full(self.file, &mut bytes[len..])?;
            bytes.truncate(len + n);
            if len + n < want {
                self.done = true;
                break;
            }
            // Cut after the last newline; a line longer than the block
            // makes the block grow until it ends.
            if let Some(cut) = memchr::memrchr(b'\n', &bytes[len..]) {
                self.carry = bytes[len + cut + 1..].to_vec();
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

/// Reads until `buf` is full or the file ends; returns the bytes read.
fn read_full(file: &mut File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match file.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}
