//! A minimal nfnetlink_queue client: bind one queue of the calling
//! thread's namespace, receive queued packets, issue verdicts (in any
//! order, optionally with a rewritten packet).
//!
//! Written here rather than taken from the `nfq` crate: its released
//! version (0.2.5) opens the netlink socket without `SOCK_CLOEXEC`, so
//! every node process the harness starts would inherit the queue's socket
//! and keep the queue bound after our consumer is gone (packets would then
//! wait for verdicts no one gives, instead of bypassing the queue), and it
//! sizes a rewritten payload's attribute with its padding (fixed upstream,
//! unreleased). The protocol is small: a few config messages and two
//! message types, below.
//!
//! The socket is non-blocking; the emulator polls it. The queue is set to
//! fail open: when it is full, or our socket's buffer is, the kernel lets
//! packets through instead of dropping them, so a stalled consumer slows
//! nothing but the faults it was meant to inject.

use std::collections::VecDeque;
use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::time::{Duration, Instant};

use crate::netlink::{self, Message, NFGENMSG_LEN, Socket};

// From <linux/netfilter/nfnetlink_queue.h>.
const NFNL_SUBSYS_QUEUE: u16 = 3;
const NFQNL_MSG_PACKET: u16 = 0;
const NFQNL_MSG_VERDICT: u16 = 1;
const NFQNL_MSG_CONFIG: u16 = 2;
const NFQA_PACKET_HDR: u16 = 1;
const NFQA_VERDICT_HDR: u16 = 2;
const NFQA_PAYLOAD: u16 = 10;
const NFQA_CFG_CMD: u16 = 1;
const NFQA_CFG_PARAMS: u16 = 2;
const NFQA_CFG_QUEUE_MAXLEN: u16 = 3;
const NFQA_CFG_MASK: u16 = 4;
const NFQA_CFG_FLAGS: u16 = 5;
const NFQNL_CFG_CMD_BIND: u8 = 1;
const NFQNL_COPY_PACKET: u8 = 2;
const NFQA_CFG_F_FAIL_OPEN: u32 = 1;
const NF_DROP: u32 = 0;
const NF_ACCEPT: u32 = 1;

/// How long a config message may wait for its acknowledgement.
const ACK_TIMEOUT: Duration = Duration::from_secs(2);

/// What our socket may buffer before the kernel fails open.
const RCVBUF: libc::c_int = 16 << 20;

/// A packet waiting for its verdict: the whole IP packet.
#[derive(Debug)]
pub(crate) struct Queued {
    pub id: u32,
    pub packet: Vec<u8>,
}

pub(crate) struct NfQueue {
    socket: Socket,
    queue: u16,
    seq: u32,
    buf: Vec<u8>,
    /// Packets received while waiting for an acknowledgement.
    pending: VecDeque<Queued>,
    /// Errors the kernel reported for verdicts (e.g. an unknown id).
    pub verdict_errors: u64,
}

impl NfQueue {
    /// Binds queue `queue` of the calling thread's namespace, copying whole
    /// packets, holding up to `max_len` of them, failing open.
    pub fn open(queue: u16, max_len: u32) -> io::Result<NfQueue> {
        let socket = Socket::open(None)?;
        // With fail-open the kernel passes what does not fit; no need to
        // hear about it as ENOBUFS.
        socket.set_opt(libc::SOL_NETLINK, libc::NETLINK_NO_ENOBUFS, &1)?;
        if socket
            .set_opt(libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, &RCVBUF)
            .is_err()
        {
            socket.set_opt(libc::SOL_SOCKET, libc::SO_RCVBUF, &RCVBUF)?;
        }
        let mut q = NfQueue {
            socket,
            queue,
            seq: 0,
            buf: vec![0; 256 * 1024],
            pending: VecDeque::new(),
            verdict_errors: 0,
        };
        // struct nfqnl_msg_config_cmd { u8 command; u8 pad; be16 pf; }
        q.configure(NFQA_CFG_CMD, &[NFQNL_CFG_CMD_BIND, 0, 0, 0])?;
        // struct nfqnl_msg_config_params { be32 copy_range; u8 copy_mode; } (packed)
        let mut params = 0xffffu32.to_be_bytes().to_vec();
        params.push(NFQNL_COPY_PACKET);
        q.configure(NFQA_CFG_PARAMS, &params)?;
        q.configure(NFQA_CFG_QUEUE_MAXLEN, &max_len.to_be_bytes())?;
        let mut msg = q.message(NFQNL_MSG_CONFIG, libc::NLM_F_REQUEST | libc::NLM_F_ACK);
        msg.attr(NFQA_CFG_FLAGS, &NFQA_CFG_F_FAIL_OPEN.to_be_bytes());
        msg.attr(NFQA_CFG_MASK, &NFQA_CFG_F_FAIL_OPEN.to_be_bytes());
        q.request(msg)?;
        Ok(q)
    }

    /// Moves every packet queued so far into `out`; returns when none is
    /// left to read.
    pub fn recv(&mut self, out: &mut Vec<Queued>) -> io::Result<()> {
        out.extend(self.pending.drain(..));
        while self.read_one(out, None)? {}
        Ok(())
    }

    /// Lets packet `id` go on (`accept`), replaced by `packet` if given, or
    /// drops it.
    pub fn verdict(&mut self, id: u32, accept: bool, packet: Option<&[u8]>) -> io::Result<()> {
        let mut msg = self.message(NFQNL_MSG_VERDICT, libc::NLM_F_REQUEST);
        // struct nfqnl_msg_verdict_hdr { be32 verdict; be32 id; }
        let verdict = if accept { NF_ACCEPT } else { NF_DROP };
        let mut hdr = verdict.to_be_bytes().to_vec();
        hdr.extend_from_slice(&id.to_be_bytes());
        msg.attr(NFQA_VERDICT_HDR, &hdr);
        if let Some(p) = packet {
            msg.attr(NFQA_PAYLOAD, p);
        }
        self.socket.send(&msg.finish())
    }

    fn configure(&mut self, attr: u16, data: &[u8]) -> io::Result<()> {
        let mut msg = self.message(NFQNL_MSG_CONFIG, libc::NLM_F_REQUEST | libc::NLM_F_ACK);
        msg.attr(attr, data);
        self.request(msg)
    }

    fn message(&mut self, kind: u16, flags: libc::c_int) -> Message {
        self.seq = self.seq.wrapping_add(1);
        Message::new(
            (NFNL_SUBSYS_QUEUE << 8) | kind,
            flags as u16,
            self.seq,
            libc::AF_UNSPEC as u8,
            self.queue,
        )
    }

    /// Sends a message asking for an acknowledgement and waits for it.
    fn request(&mut self, msg: Message) -> io::Result<()> {
        let seq = msg.seq;
        self.socket.send(&msg.finish())?;
        let deadline = Instant::now() + ACK_TIMEOUT;
        let mut packets = Vec::new();
        loop {
            let mut ack = None;
            let got = self.read_one(&mut packets, Some((seq, &mut ack)))?;
            self.pending.extend(packets.drain(..));
            match ack {
                Some(0) => return Ok(()),
                Some(errno) => return Err(io::Error::from_raw_os_error(errno)),
                None => {}
            }
            if !got {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "nfnetlink_queue did not acknowledge",
                    ));
                }
                netlink::poll_in(self.socket.as_fd(), left)?;
            }
        }
    }

    /// Reads one datagram (false: nothing to read), appending its packets
    /// to `out`; an error message answering `want.0` is stored in `want.1`
    /// (0 for an acknowledgement).
    fn read_one(
        &mut self,
        out: &mut Vec<Queued>,
        mut want: Option<(u32, &mut Option<i32>)>,
    ) -> io::Result<bool> {
        let n = match self.socket.recv(&mut self.buf) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return Ok(true),
            Err(e) => return Err(e),
        };
        for msg in netlink::messages(&self.buf[..n]) {
            if let Some((errno, answered)) = msg.error() {
                match want.as_mut() {
                    Some((seq, slot)) if *seq == answered => **slot = Some(errno),
                    _ if errno != 0 => self.verdict_errors += 1,
                    _ => {}
                }
            } else if msg.kind == (NFNL_SUBSYS_QUEUE << 8) | NFQNL_MSG_PACKET
                && let Some(q) = parse_packet(msg.body)
            {
                out.push(q);
            }
        }
        Ok(true)
    }
}

impl AsFd for NfQueue {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.socket.as_fd()
    }
}

/// The id and packet of an NFQNL_MSG_PACKET body (nfgenmsg, then attributes).
fn parse_packet(body: &[u8]) -> Option<Queued> {
    let (mut id, mut packet) = (None, None);
    for (kind, value) in netlink::attributes(body.get(NFGENMSG_LEN..)?) {
        match kind {
            // struct nfqnl_msg_packet_hdr { be32 packet_id; be16 hw_protocol; u8 hook; }
            NFQA_PACKET_HDR if value.len() >= 4 => {
                id = Some(u32::from_be_bytes(value[0..4].try_into().ok()?));
            }
            NFQA_PAYLOAD => packet = Some(value.to_vec()),
            _ => {}
        }
    }
    Some(Queued {
        id: id?,
        packet: packet.unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::netlink::NLMSG_HDRLEN;

    #[test]
    fn a_verdict_message_is_laid_out_as_the_kernel_reads_it() {
        let mut msg = Message::new(
            (NFNL_SUBSYS_QUEUE << 8) | NFQNL_MSG_VERDICT,
            1,
            7,
            0,
            0x0102,
        );
        msg.attr(NFQA_VERDICT_HDR, &[0, 0, 0, 1, 0, 0, 0, 42]);
        msg.attr(NFQA_PAYLOAD, &[0xaa; 5]);
        let b = msg.finish();
        assert_eq!(b.len(), 16 + 4 + 12 + 12);
        // The payload attribute says 9 bytes (4 + 5), padded to 12.
        assert_eq!(u16::from_ne_bytes([b[32], b[33]]), 9);
        assert_eq!(&b[41..44], &[0, 0, 0]);
    }

    #[test]
    fn a_packet_message_yields_its_id_and_payload() {
        let mut msg = Message::new((NFNL_SUBSYS_QUEUE << 8) | NFQNL_MSG_PACKET, 0, 0, 0, 0);
        msg.attr(NFQA_PACKET_HDR | 0x8000, &[0, 0, 1, 2, 8, 0, 3]);
        msg.attr(NFQA_PAYLOAD, &[0x45, 1, 2]);
        let b = msg.finish();
        let q = parse_packet(&b[NLMSG_HDRLEN..]).unwrap();
        assert_eq!(q.id, 0x0102);
        assert_eq!(q.packet, vec![0x45, 1, 2]);
        // Truncated garbage is ignored, not a panic.
        assert!(parse_packet(&b[NLMSG_HDRLEN..NLMSG_HDRLEN + 6]).is_none());
    }
}
