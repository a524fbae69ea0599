//! [`Reader`]: a cursor over the node's binary formats (WAL records, the
//! snapshot file, the state machine image): little-endian integers and
//! length-prefixed strings, every read checked against what is left, so
//! that bad bytes give an error naming where, never a panic or a huge
//! allocation.

/// Bytes that do not hold what the format says: where, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason} at byte {offset}")]
pub struct ReadError {
    /// Where in the bytes read.
    pub offset: usize,
    /// What is wrong there.
    pub reason: String,
}

/// Reads a byte slice from the front.
pub struct Reader<'a> {
    buf: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    /// A cursor at the start of `buf`.
    pub fn new(buf: &'a [u8]) -> Reader<'a> {
        Reader { buf, at: 0 }
    }

    /// How far it has read.
    pub fn offset(&self) -> usize {
        self.at
    }

    /// Bytes left.
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.at
    }

    /// An error at the current position.
    pub fn error(&self, reason: impl Into<String>) -> ReadError {
        ReadError {
            offset: self.at,
            reason: reason.into(),
        }
    }

    /// The next `n` bytes.
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], ReadError> {
        if self.remaining() < n {
            return Err(self.error(format!(
                "cut short: {n} bytes wanted, {} left",
                self.remaining()
            )));
        }
        let s = &self.buf[self.at..self.at + n];
        self.at += n;
        Ok(s)
    }

    /// Everything left.
    pub fn rest(&mut self) -> &'a [u8] {
        let s = &self.buf[self.at..];
        self.at = self.buf.len();
        s
    }

    /// A byte.
    pub fn u8(&mut self) -> Result<u8, ReadError> {
        Ok(self.take(1)?[0])
    }

    /// A little-endian u16.
    pub fn u16(&mut self) -> Result<u16, ReadError> {
        Ok(u16::from_le_bytes(self.array()?))
    }

    /// A little-endian u32.
    pub fn u32(&mut self) -> Result<u32, ReadError> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    /// A little-endian u64.
    pub fn u64(&mut self) -> Result<u64, ReadError> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], ReadError> {
        Ok(self.take(N)?.try_into().expect("take returns N bytes"))
    }

    /// Bytes after their u32 length.
    pub fn bytes_u32(&mut self) -> Result<&'a [u8], ReadError> {
        let len = self.u32()? as usize;
        self.take(len)
    }

    /// UTF-8 after its u16 length (node ids).
    pub fn str_u16(&mut self) -> Result<&'a str, ReadError> {
        let len = self.u16()? as usize;
        let at = self.at;
        std::str::from_utf8(self.take(len)?).map_err(|_| ReadError {
            offset: at,
            reason: "a string is not UTF-8".into(),
        })
    }

    /// A u32 count, then that many u16-length strings (a list of node ids).
    pub fn str_u16_list(&mut self) -> Result<Vec<&'a str>, ReadError> {
        let count = self.u32()?;
        // Each takes at least its 2-byte length.
        let count = self.items(u64::from(count), 2)?;
        let mut list = Vec::with_capacity(count);
        for _ in 0..count {
            list.push(self.str_u16()?);
        }
        Ok(list)
    }

    /// A count of items just read, checked against the bytes left when
    /// each item takes at least `min_size`: a count the rest cannot hold is
    /// refused before anything is allocated for it.
    pub fn items(&self, count: u64, min_size: usize) -> Result<usize, ReadError> {
        let room = self.remaining() / min_size.max(1);
        if count > room as u64 {
            return Err(self.error(format!("claims {count} items, room for {room}")));
        }
        Ok(count as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_was_written_and_says_where_it_stops() {
        let mut buf = vec![7u8];
        buf.extend_from_slice(&0x0102u16.to_le_bytes());
        buf.extend_from_slice(&3u32.to_le_bytes());
        buf.extend_from_slice(b"abc");
        buf.extend_from_slice(&2u16.to_le_bytes());
        buf.extend_from_slice(b"n1");
        buf.extend_from_slice(&9u64.to_le_bytes());
        let mut r = Reader::new(&buf);
        assert_eq!(r.u8(), Ok(7));
        assert_eq!(r.u16(), Ok(0x0102));
        assert_eq!(r.bytes_u32(), Ok(&b"abc"[..]));
        assert_eq!(r.str_u16(), Ok("n1"));
        assert_eq!(r.u64(), Ok(9));
        assert_eq!(r.remaining(), 0);
        let err = r.u32().unwrap_err();
        assert_eq!(err.offset, buf.len());
        assert_eq!(
            err.to_string(),
            format!("cut short: 4 bytes wanted, 0 left at byte {}", buf.len())
        );
    }

    #[test]
    fn counts_and_strings_are_checked() {
        let r = Reader::new(&[0; 10]);
        assert_eq!(r.items(5, 2), Ok(5));
        assert!(r.items(6, 2).unwrap_err().reason.contains("room for 5"));
        let mut r = Reader::new(&[2, 0, 0xff, 0xfe]);
        assert_eq!(r.str_u16().unwrap_err().reason, "a string is not UTF-8");
        let mut r = Reader::new(&[2, 0, 0, 0, 1, 0, b'a', 0, 0]);
        assert_eq!(r.str_u16_list(), Ok(vec!["a", ""]));
        let mut r = Reader::new(&[9, 0, 0, 0, 0, 0]);
        assert!(
            r.str_u16_list()
                .unwrap_err()
                .reason
                .contains("claims 9 items")
        );
    }
}
