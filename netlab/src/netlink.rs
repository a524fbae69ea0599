//! The little of netfilter's netlink we speak ourselves (packet queues,
//! nftables set elements): a socket of the calling thread's namespace,
//! message building with nested attributes, and walking received messages.
//!
//! Layout, from `<linux/netlink.h>` and `<linux/netfilter/nfnetlink.h>`:
//! every message is a `nlmsghdr` (16 bytes, host order), a `nfgenmsg`
//! (family, version 0, a big-endian resource id), then attributes
//! (`nla_len`, `nla_type`, data padded to 4 bytes; `nla_len` counts the
//! header and the data, not the padding).

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::time::Duration;

pub(crate) const NLMSG_HDRLEN: usize = 16;
pub(crate) const NFGENMSG_LEN: usize = 4;
pub(crate) const NLMSG_ERROR: u16 = 2;
/// Attribute types carry two flag bits on top.
pub(crate) const NLA_TYPE_MASK: u16 = 0x3fff;
pub(crate) const NLA_F_NESTED: u16 = 0x8000;

/// A netfilter netlink socket, bound, close-on-exec.
pub(crate) struct Socket {
    fd: OwnedFd,
}

impl Socket {
    /// Opens a socket in the calling thread's namespace; non-blocking, or
    /// blocking with reads bounded by `read_timeout`.
    pub fn open(read_timeout: Option<Duration>) -> io::Result<Socket> {
        let flags = if read_timeout.is_some() {
            0
        } else {
            libc::SOCK_NONBLOCK
        };
        // SAFETY: plain socket calls; the fd is owned at once.
        let fd = unsafe {
            let fd = libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC | flags,
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
        let socket = Socket { fd };
        if let Some(t) = read_timeout {
            let tv = libc::timeval {
                tv_sec: t.as_secs() as libc::time_t,
                tv_usec: t.subsec_micros() as libc::suseconds_t,
            };
            socket.set_opt(libc::SOL_SOCKET, libc::SO_RCVTIMEO, &tv)?;
        }
        Ok(socket)
    }

    pub fn set_opt<T>(&self, level: libc::c_int, opt: libc::c_int, value: &T) -> io::Result<()> {
        // SAFETY: `value` is passed by pointer with its size.
        let r = unsafe {
            libc::setsockopt(
                self.fd.as_raw_fd(),
                level,
                opt,
                (value as *const T).cast(),
                std::mem::size_of::<T>() as libc::socklen_t,
            )
        };
        if r != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Sends to the kernel.
    pub fn send(&self, bytes: &[u8]) -> io::Result<()> {
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

    /// Receives one datagram into `buf`; its length.
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        // SAFETY: recv into the caller's buffer.
        let n = unsafe { libc::recv(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(n as usize)
    }
}

impl AsFd for Socket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// One message under construction.
pub(crate) struct Message {
    bytes: Vec<u8>,
    pub seq: u32,
    /// Where each open nested attribute starts.
    open: Vec<usize>,
}

impl Message {
    /// A message of `kind` (subsystem << 8 | type) with `flags`, for
    /// protocol `family` and resource `res_id`.
    pub fn new(kind: u16, flags: u16, seq: u32, family: u8, res_id: u16) -> Message {
        let mut bytes = Vec::with_capacity(128);
        bytes.extend_from_slice(&0u32.to_ne_bytes()); // length, set by finish
        bytes.extend_from_slice(&kind.to_ne_bytes());
        bytes.extend_from_slice(&flags.to_ne_bytes());
        bytes.extend_from_slice(&seq.to_ne_bytes());
        bytes.extend_from_slice(&0u32.to_ne_bytes()); // port id: the kernel's
        bytes.extend_from_slice(&[family, 0]);
        bytes.extend_from_slice(&res_id.to_be_bytes());
        Message {
            bytes,
            seq,
            open: Vec::new(),
        }
    }

    /// Appends an attribute.
    pub fn attr(&mut self, kind: u16, data: &[u8]) -> &mut Message {
        let len = u16::try_from(4 + data.len()).expect("attribute under 64 KiB");
        self.bytes.extend_from_slice(&len.to_ne_bytes());
        self.bytes.extend_from_slice(&kind.to_ne_bytes());
        self.bytes.extend_from_slice(data);
        self.pad();
        self
    }

    /// Appends a NUL-terminated string attribute.
    pub fn attr_str(&mut self, kind: u16, s: &str) -> &mut Message {
        let mut data = s.as_bytes().to_vec();
        data.push(0);
        self.attr(kind, &data)
    }

    /// Opens a nested attribute; attributes until [`Message::end`] go in it.
    pub fn begin(&mut self, kind: u16) -> &mut Message {
        self.open.push(self.bytes.len());
        self.bytes.extend_from_slice(&0u16.to_ne_bytes());
        self.bytes
            .extend_from_slice(&(kind | NLA_F_NESTED).to_ne_bytes());
        self
    }

    pub fn end(&mut self) -> &mut Message {
        let start = self.open.pop().expect("end matches a begin");
        let len = u16::try_from(self.bytes.len() - start).expect("nest under 64 KiB");
        self.bytes[start..start + 2].copy_from_slice(&len.to_ne_bytes());
        self
    }

    fn pad(&mut self) {
        let padded = self.bytes.len().next_multiple_of(4);
        self.bytes.resize(padded, 0);
    }

    pub fn finish(mut self) -> Vec<u8> {
        assert!(self.open.is_empty(), "unclosed nested attribute");
        let len = self.bytes.len() as u32;
        self.bytes[0..4].copy_from_slice(&len.to_ne_bytes());
        self.bytes
    }
}

/// One received message: its type and body (what follows the `nlmsghdr`).
pub(crate) struct Received<'a> {
    pub kind: u16,
    pub body: &'a [u8],
}

impl Received<'_> {
    /// For an `NLMSG_ERROR`: the error (0 for an acknowledgement) and the
    /// sequence number of the message it answers.
    pub fn error(&self) -> Option<(i32, u32)> {
        if self.kind != NLMSG_ERROR || self.body.len() < 4 + NLMSG_HDRLEN {
            return None;
        }
        let errno = -i32::from_ne_bytes(self.body[0..4].try_into().ok()?);
        let answered = u32::from_ne_bytes(self.body[12..16].try_into().ok()?);
        Some((errno, answered))
    }
}

/// The messages in one received datagram; stops at the first malformed one.
pub(crate) fn messages(mut data: &[u8]) -> impl Iterator<Item = Received<'_>> {
    std::iter::from_fn(move || {
        if data.len() < NLMSG_HDRLEN {
            return None;
        }
        let len = u32::from_ne_bytes(data[0..4].try_into().ok()?) as usize;
        if len < NLMSG_HDRLEN || len > data.len() {
            return None;
        }
        let msg = Received {
            kind: u16::from_ne_bytes(data[4..6].try_into().ok()?),
            body: &data[NLMSG_HDRLEN..len],
        };
        data = &data[len.next_multiple_of(4).min(data.len())..];
        Some(msg)
    })
}

/// The attributes of `data`, as (type without flags, value).
pub(crate) fn attributes(mut data: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    std::iter::from_fn(move || {
        if data.len() < 4 {
            return None;
        }
        let len = u16::from_ne_bytes([data[0], data[1]]) as usize;
        let kind = u16::from_ne_bytes([data[2], data[3]]) & NLA_TYPE_MASK;
        if len < 4 || len > data.len() {
            return None;
        }
        let value = &data[4..len];
        data = &data[len.next_multiple_of(4).min(data.len())..];
        Some((kind, value))
    })
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
    fn lengths_count_data_not_padding_and_nests_enclose_their_children() {
        let mut m = Message::new(0x0a0c, 1, 7, 1, 0x0102);
        m.attr(1, &[0xaa; 5]);
        m.begin(3).begin(1).attr(1, &[1, 2, 3, 4]).end().end();
        let b = m.finish();
        assert_eq!(
            u32::from_ne_bytes(b[0..4].try_into().unwrap()) as usize,
            b.len()
        );
        assert_eq!(&b[18..20], &[1, 2], "resource id, big-endian");
        let (kind, value) = attributes(&b[20..]).next().unwrap();
        assert_eq!((kind, value.len()), (1, 5));
        let attrs: Vec<_> = attributes(&b[20..]).collect();
        assert_eq!(attrs.len(), 2);
        let (outer, inner) = attrs[1];
        assert_eq!(outer, 3, "the nested flag is masked off");
        assert_eq!(
            inner.len(),
            4 + 4 + 4,
            "one nest holding one 4-byte attribute"
        );
        let back: Vec<_> = messages(&b).collect();
        assert_eq!((back.len(), back[0].kind), (1, 0x0a0c));
        assert!(messages(&b[..10]).next().is_none());
    }
}
