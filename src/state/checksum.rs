//! The checksum every file of the store carries: FNV-1a over 64-bit little-endian words.
//!
//! Contract: [`Checksum::add`] folds in its bytes a word at a time, the last word of each call
//! padded with zeros, so a writer and a reader agree as long as they add the same pieces. It
//! finds accidental damage (a flipped bit, a torn write, bytes from another file); it is not
//! made to resist a forger.

/// A running checksum; [`Checksum::value`] is what files record.
#[derive(Clone, Copy, Debug)]
pub(super) struct Checksum(u64);

impl Checksum {
    pub(super) fn new() -> Self {
        Checksum(0xcbf2_9ce4_8422_2325)
    }

    pub(super) fn add(&mut self, bytes: &[u8]) {
        let mut words = bytes.chunks_exact(8);
        for word in &mut words {
            self.mix(u64::from_le_bytes(word.try_into().expect("8 bytes")));
        }
        let rest = words.remainder();
        if !rest.is_empty() {
            let mut last = [0u8; 8];
            last[..rest.len()].copy_from_slice(rest);
            self.mix(u64::from_le_bytes(last));
        }
    }

    fn mix(&mut self, word: u64) {
        self.0 = (self.0 ^ word).wrapping_mul(0x0000_0100_0000_01b3);
    }

    pub(super) fn value(self) -> u64 {
        self.0
    }

    /// The checksum of `bytes` alone.
    pub(super) fn of(bytes: &[u8]) -> u64 {
        let mut c = Checksum::new();
        c.add(bytes);
        c.value()
    }
}
