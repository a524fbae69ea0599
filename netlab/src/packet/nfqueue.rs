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
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

// From <linux/netfilter/nfnetlink_queue.h> and <linux/netlink.h>.
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
const NLMSG_HDRLEN: usize = 16;
const NFGENMSG_LEN: usize = 4;
/// Attribute types carry two flag bits on top.
const NLA_TYPE_MASK: u16 = 0x3fff;

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
    fd: OwnedFd,
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
        // SAFETY: plain socket calls; the fd is owned at once.
        let fd = unsafe {
            let fd = libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
                libc::NETLINK_NETFILTER,
            );
            if fd < 0 {
                return Err(io::Error::last_os_error());
            }
            OwnedFd::from_raw_fd(fd)
        };
        // SAFETY: a zeroed sockaddr_nl (pid 0: the kernel picks one).
        unsafe {
            let mut addr: libc::sockaddr_nl = std::mem::zeroed();
            addr.nl_family = libc::AF_NETLINK as libc::sa_family_t;
            if libc::bind(
                fd.as_raw_fd(),
                (&raw const addr).cast(),
                std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
            ) != 0
            {
                return Err(io::Error::last_os_error());
            }
        }
        // With fail-open the kernel passes what does not fit; no need to
        // hear about it as ENOBUFS.
        set_int_opt(&fd, libc::SOL_NETLINK, libc::NETLINK_NO_ENOBUFS, 1)?;
        if set_int_opt(&fd, libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, RCVBUF).is_err() {
            set_int_opt(&fd, libc::SOL_SOCKET, libc::SO_RCVBUF, RCVBUF)?;
        }
        let mut q = NfQueue {
            fd,
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
        self.send(&msg.finish())
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
            self.queue,
        )
    }

    /// Sends a message asking for an acknowledgement and waits for it.
    fn request(&mut self, msg: Message) -> io::Result<()> {
        let seq = msg.seq;
        self.send(&msg.finish())?;
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
                poll_in(self.fd.as_fd(), left)?;
            }
        }
    }

    fn send(&self, bytes: &[u8]) -> io::Result<()> {
        // SAFETY: a zeroed sockaddr_nl addresses the kernel; the buffer
        // outlives the call.
        let n = unsafe {
            let mut kernel: libc::sockaddr_nl = std::mem::zeroed();
            kernel.nl_family = libc::AF_NETLINK as libc::sa_family_t;
            libc::sendto(
                self.fd.as_raw_fd(),
                bytes.as_ptr().cast(),
                bytes.len(),
                0,
                (&raw const kernel).cast(),
                std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Reads one datagram (false: nothing to read), appending its packets
    /// to `out`; an error message answering `want.0` is stored in `want.1`
    /// (0 for an acknowledgement).
    fn read_one(
        &mut self,
        out: &mut Vec<Queued>,
        mut want: Option<(u32, &mut Option<i32>)>,
    ) -> io::Result<bool> {
        // SAFETY: recv into our own buffer.
        let n = unsafe {
            libc::recv(
                self.fd.as_raw_fd(),
                self.buf.as_mut_ptr().cast(),
                self.buf.len(),
                libc::MSG_DONTWAIT,
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            return match e.kind() {
                io::ErrorKind::WouldBlock => Ok(false),
                io::ErrorKind::Interrupted => Ok(true),
                _ => Err(e),
            };
        }
        let mut data = &self.buf[..n as usize];
        while data.len() >= NLMSG_HDRLEN {
            let len = u32::from_ne_bytes(data[0..4].try_into().unwrap()) as usize;
            if len < NLMSG_HDRLEN || len > data.len() {
                break;
            }
            let kind = u16::from_ne_bytes(data[4..6].try_into().unwrap());
            let body = &data[NLMSG_HDRLEN..len];
            if kind == libc::NLMSG_ERROR as u16 && body.len() >= 4 + NLMSG_HDRLEN {
                let errno = -i32::from_ne_bytes(body[0..4].try_into().unwrap());
                let answered = u32::from_ne_bytes(body[12..16].try_into().unwrap());
                match want.as_mut() {
                    Some((seq, slot)) if *seq == answered => **slot = Some(errno),
                    _ if errno != 0 => self.verdict_errors += 1,
                    _ => {}
                }
            } else if kind == (NFNL_SUBSYS_QUEUE << 8) | NFQNL_MSG_PACKET
                && let Some(q) = parse_packet(body)
            {
                out.push(q);
            }
            data = &data[len.next_multiple_of(4).min(data.len())..];
        }
        Ok(true)
    }
}

impl AsFd for NfQueue {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// The id and packet of an NFQNL_MSG_PACKET body (nfgenmsg, then attributes).
fn parse_packet(body: &[u8]) -> Option<Queued> {
    let mut attrs = body.get(NFGENMSG_LEN..)?;
    let (mut id, mut packet) = (None, None);
    while attrs.len() >= 4 {
        let len = u16::from_ne_bytes([attrs[0], attrs[1]]) as usize;
        let kind = u16::from_ne_bytes([attrs[2], attrs[3]]) & NLA_TYPE_MASK;
        if len < 4 || len > attrs.len() {
            break;
        }
        let value = &attrs[4..len];
        match kind {
            // struct nfqnl_msg_packet_hdr { be32 packet_id; be16 hw_protocol; u8 hook; }
            NFQA_PACKET_HDR if value.len() >= 4 => {
                id = Some(u32::from_be_bytes(value[0..4].try_into().unwrap()));
            }
            NFQA_PAYLOAD => packet = Some(value.to_vec()),
            _ => {}
        }
        attrs = &attrs[len.next_multiple_of(4).min(attrs.len())..];
    }
    Some(Queued {
        id: id?,
        packet: packet.unwrap_or_default(),
    })
}

/// One netlink message under construction: nlmsghdr, nfgenmsg, attributes.
struct Message {
    bytes: Vec<u8>,
    seq: u32,
}

impl Message {
    fn new(kind: u16, flags: u16, seq: u32, queue: u16) -> Message {
        let mut bytes = Vec::with_capacity(128);
        bytes.extend_from_slice(&0u32.to_ne_bytes()); // length, set by finish
        bytes.extend_from_slice(&kind.to_ne_bytes());
        bytes.extend_from_slice(&flags.to_ne_bytes());
        bytes.extend_from_slice(&seq.to_ne_bytes());
        bytes.extend_from_slice(&0u32.to_ne_bytes()); // port id: the kernel's
        // struct nfgenmsg { u8 family; u8 version; be16 res_id; }
        bytes.extend_from_slice(&[libc::AF_UNSPEC as u8, 0]);
        bytes.extend_from_slice(&queue.to_be_bytes());
        Message { bytes, seq }
    }

    /// Appends an attribute; its length counts the data, not the padding.
    fn attr(&mut self, kind: u16, data: &[u8]) {
        let len = u16::try_from(4 + data.len()).expect("attribute under 64 KiB");
        self.bytes.extend_from_slice(&len.to_ne_bytes());
        self.bytes.extend_from_slice(&kind.to_ne_bytes());
        self.bytes.extend_from_slice(data);
        let padded = self.bytes.len().next_multiple_of(4);
        self.bytes.resize(padded, 0);
    }

    fn finish(mut self) -> Vec<u8> {
        let len = self.bytes.len() as u32;
        self.bytes[0..4].copy_from_slice(&len.to_ne_bytes());
        self.bytes
    }
}

fn set_int_opt(
    fd: &OwnedFd,
    level: libc::c_int,
    opt: libc::c_int,
    value: libc::c_int,
) -> io::Result<()> {
    // SAFETY: an int option, passed by pointer with its size.
    let r = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            opt,
            (&raw const value).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Waits until `fd` is readable or `timeout` passes.
pub(crate) fn poll_in(fd: BorrowedFd<'_>, timeout: Duration) -> io::Result<()> {
    let mut pfd = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    let ms = timeout.as_millis().clamp(1, i32::MAX as u128) as libc::c_int;
    // SAFETY: one pollfd on the stack.
    if unsafe { libc::poll(&mut pfd, 1, ms) } < 0 {
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_verdict_message_is_laid_out_as_the_kernel_reads_it() {
        let mut msg = Message::new((NFNL_SUBSYS_QUEUE << 8) | NFQNL_MSG_VERDICT, 1, 7, 0x0102);
        msg.attr(NFQA_VERDICT_HDR, &[0, 0, 0, 1, 0, 0, 0, 42]);
        msg.attr(NFQA_PAYLOAD, &[0xaa; 5]);
        let b = msg.finish();
        assert_eq!(b.len(), 16 + 4 + 12 + 12);
        assert_eq!(
            u32::from_ne_bytes(b[0..4].try_into().unwrap()) as usize,
            b.len()
        );
        assert_eq!(&b[18..20], &[1, 2], "queue number, big-endian");
        // The payload attribute says 9 bytes (4 + 5), padded to 12.
        assert_eq!(u16::from_ne_bytes([b[32], b[33]]), 9);
        assert_eq!(&b[41..44], &[0, 0, 0]);
    }

    #[test]
    fn a_packet_message_yields_its_id_and_payload() {
        let mut msg = Message::new((NFNL_SUBSYS_QUEUE << 8) | NFQNL_MSG_PACKET, 0, 0, 0);
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
