//! A small deterministic generator for this crate's unit tests (xorshift64): fixed seeds, the
//! same inputs on every run, no dependency. Test code only; it knows nothing of tierd.

/// Xorshift64 from a non-zero seed.
pub(crate) struct Xorshift(pub(crate) u64);

impl Xorshift {
    /// The next number.
    pub(crate) fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// The next number below `n` (not zero).
    pub(crate) fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// One of `from`.
    pub(crate) fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
        from[self.below(from.len())]
    }
}
