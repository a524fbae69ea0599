//! Adding and deleting elements of our nftables sets over netlink, in one
//! atomic batch per namespace: what every cut, heal and packet-fault change
//! does, in well under a millisecond (an `nft` process takes tens of
//! milliseconds to start and read the ruleset, too slow for cutting a
//! leader off the moment it wins).
//!
//! Messages, from `<linux/netfilter/nf_tables.h>`: a batch is
//! `NFNL_MSG_BATCH_BEGIN`, then `NFT_MSG_DELSETELEM` / `NFT_MSG_NEWSETELEM`
//! (table, set, and a list of elements, each a key holding the address),
//! then `NFNL_MSG_BATCH_END`. The kernel applies all or none, and
//! acknowledges each element message.

use std::collections::BTreeSet;
use std::io;
use std::net::Ipv4Addr;
use std::time::Duration;

use crate::netlink::{self, Message, Socket};
use crate::rules::{Set, TABLE};

const NFNL_SUBSYS_NFTABLES: u16 = 10;
const NFNL_MSG_BATCH_BEGIN: u16 = 0x10;
const NFNL_MSG_BATCH_END: u16 = 0x11;
const NFT_MSG_NEWSETELEM: u16 = 12;
const NFT_MSG_DELSETELEM: u16 = 14;
const NFTA_SET_ELEM_LIST_TABLE: u16 = 1;
const NFTA_SET_ELEM_LIST_SET: u16 = 2;
const NFTA_SET_ELEM_LIST_ELEMENTS: u16 = 3;
const NFTA_LIST_ELEM: u16 = 1;
const NFTA_SET_ELEM_KEY: u16 = 1;
const NFTA_DATA_VALUE: u16 = 1;
const NFPROTO_INET: u8 = 1;

/// How long the kernel may take to answer a batch.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(5);

/// One change to one set: addresses to add and to delete.
pub(crate) type Change = (Set, Vec<Ipv4Addr>, Vec<Ipv4Addr>);

/// Edits the sets of one namespace: the one whose thread opened it.
pub(crate) struct SetEditor {
    socket: Socket,
    seq: u32,
    buf: Vec<u8>,
}

impl SetEditor {
    /// Opens a socket in the calling thread's namespace.
    pub fn open() -> io::Result<SetEditor> {
        Ok(SetEditor {
            socket: Socket::open(Some(ANSWER_TIMEOUT))?,
            seq: 0,
            buf: vec![0; 64 * 1024],
        })
    }

    /// Applies every change at once, deletions first; all or nothing.
    pub fn apply(&mut self, changes: &[Change]) -> io::Result<()> {
        let mut batch = Vec::new();
        let mut waiting = BTreeSet::new();
        let begin = self.delimiter(NFNL_MSG_BATCH_BEGIN);
        batch.extend(begin.finish());
        for (set, add, remove) in changes {
            for (kind, addrs, flags) in [
                (NFT_MSG_DELSETELEM, remove, 0),
                (NFT_MSG_NEWSETELEM, add, libc::NLM_F_CREATE),
            ] {
                if addrs.is_empty() {
                    continue;
                }
                self.seq = self.seq.wrapping_add(1);
                let flags = libc::NLM_F_REQUEST | libc::NLM_F_ACK | flags;
                let kind = (NFNL_SUBSYS_NFTABLES << 8) | kind;
                let mut msg = Message::new(kind, flags as u16, self.seq, NFPROTO_INET, 0);
                msg.attr_str(NFTA_SET_ELEM_LIST_TABLE, TABLE)
                    .attr_str(NFTA_SET_ELEM_LIST_SET, set.name())
                    .begin(NFTA_SET_ELEM_LIST_ELEMENTS);
                for a in addrs {
                    msg.begin(NFTA_LIST_ELEM)
                        .begin(NFTA_SET_ELEM_KEY)
                        .attr(NFTA_DATA_VALUE, &a.octets())
                        .end()
                        .end();
                }
                msg.end();
                waiting.insert(msg.seq);
                batch.extend(msg.finish());
            }
        }
        if waiting.is_empty() {
            return Ok(());
        }
        let end = self.delimiter(NFNL_MSG_BATCH_END);
        batch.extend(end.finish());
        self.socket.send(&batch)?;
        while !waiting.is_empty() {
            let n = self.socket.recv(&mut self.buf)?;
            for msg in netlink::messages(&self.buf[..n]) {
                match msg.error() {
                    Some((0, seq)) => {
                        waiting.remove(&seq);
                    }
                    Some((errno, _)) => return Err(io::Error::from_raw_os_error(errno)),
                    None => {}
                }
            }
        }
        Ok(())
    }

    /// A batch delimiter: it names the subsystem in its resource id.
    fn delimiter(&mut self, kind: u16) -> Message {
        self.seq = self.seq.wrapping_add(1);
        let flags = libc::NLM_F_REQUEST as u16;
        Message::new(
            kind,
            flags,
            self.seq,
            libc::AF_UNSPEC as u8,
            NFNL_SUBSYS_NFTABLES,
        )
    }
}
