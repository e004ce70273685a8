//! Input a connection has read but the engine has not taken yet.
//!
//! The engine may take only part of what it is offered (it stops reading a connection while that
//! connection's command queue is full: docs/protocol.md §1, back-pressure rather than loss). The rest stays
//! here, in order, and is offered again; while the buffer is full the connection reads nothing more,
//! so the peer's own flow control (TCP window, USB NAK) holds the sender back.

/// A fixed buffer of not-yet-consumed input bytes, oldest first.
#[derive(Debug)]
pub struct Pending<'a> {
    buf: &'a mut [u8],
    len: usize,
}

impl<'a> Pending<'a> {
    /// An empty buffer over `buf` (its size bounds what one connection holds back).
    pub fn new(buf: &'a mut [u8]) -> Self {
        Self { buf, len: 0 }
    }

    /// The bytes waiting for the engine, oldest first.
    pub fn bytes(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or(&[])
    }

    /// True when nothing is waiting.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// True when no more bytes fit: the connection must not read until the engine takes some.
    pub fn is_full(&self) -> bool {
        self.len >= self.buf.len()
    }

    /// The free space a read fills (then [`commit`](Self::commit) the count it returned).
    pub fn spare(&mut self) -> &mut [u8] {
        self.buf.get_mut(self.len..).unwrap_or(&mut [])
    }

    /// Appends the `n` bytes a read just wrote into [`spare`](Self::spare) (clamped to the space).
    pub fn commit(&mut self, n: usize) {
        self.len = self.len.saturating_add(n).min(self.buf.len());
    }

    /// Drops the first `n` waiting bytes (the ones the engine took); the rest moves to the front.
    pub fn consume(&mut self, n: usize) {
        let n = n.min(self.len);
        self.buf.copy_within(n..self.len, 0);
        self.len -= n;
    }

    /// Forgets everything waiting (the connection they belonged to is gone).
    pub fn clear(&mut self) {
        self.len = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_consumption_keeps_the_rest_in_order() {
        let mut storage = [0u8; 8];
        let mut p = Pending::new(&mut storage);
        assert!(p.is_empty());
        p.spare()[..5].copy_from_slice(b"hello");
        p.commit(5);
        assert_eq!(p.bytes(), b"hello");
        p.consume(2);
        assert_eq!(p.bytes(), b"llo");
        p.spare()[..5].copy_from_slice(b" worl");
        p.commit(5);
        assert!(p.is_full());
        assert_eq!(p.spare().len(), 0);
        assert_eq!(p.bytes(), b"llo worl");
        // Taking more than is waiting takes everything; committing past the end is clamped.
        p.consume(100);
        assert!(p.is_empty());
        p.commit(100);
        assert!(p.is_full());
        p.clear();
        assert!(p.is_empty() && !p.is_full());
    }
}
