//! The in-memory index of a host's answers: number → (answer id, checked-at second), an
//! open-addressing table of 16-byte slots.
//!
//! Contract: [`NumberTable::get`] and [`NumberTable::insert`] behave as a map keyed by number (a
//! later insert replaces an earlier one; number 0, which no valid number is, is never stored).
//! It exists because a run looks up every phone cell in it: with millions of numbers a general
//! hash map of 24-byte entries spread over 4 KiB pages costs a TLB miss and a cache miss per
//! lookup. Here a lookup reads one slot, usually one cache line, and on Linux the slots live
//! on transparent huge pages when the kernel allows it.

use std::alloc::Layout;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[repr(C, align(16))]
struct Slot {
    /// 0 marks an empty slot.
    number: u64,
    id: u32,
    at_s: u32,
}

/// Numbers and their `(answer id, checked-at second)`, as an open-addressing table (see the
/// module's contract).
pub struct NumberTable {
    slots: Box<[Slot]>,
    len: usize,
}

impl std::fmt::Debug for NumberTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NumberTable")
            .field("len", &self.len)
            .field("slots", &self.slots.len())
            .finish()
    }
}

impl Default for NumberTable {
    fn default() -> Self {
        NumberTable::with_capacity(0)
    }
}

/// An insert that probes this far means the numbers are not spread over the table, but crowd
/// a range of it: a table's slots are in hash order, so a snapshot written from one is too, and
/// the answers left of a snapshot that lost a chunk or its end are a range of the hash. The
/// table then grows. With numbers spread evenly and 3 of 4 slots used, a probe this long
/// happens about once in 10^16 inserts.
const LONGEST_PROBE: usize = 1024;

/// At most 3 of 4 slots used: linear probing stays short. Any count will do (no power of two:
/// at 56 million numbers that would nearly double the memory).
fn slots_for(entries: usize) -> usize {
    entries.max(6) * 4 / 3 + 1
}

fn zeroed_slots(count: usize) -> Box<[Slot]> {
    // Zeroed memory from the allocator is not touched before the advice below, so the kernel
    // can back it with huge pages when it is first written.
    let layout = Layout::array::<Slot>(count).expect("a table fits in memory");
    // SAFETY: the layout has a non-zero size (count ≥ 8); a zeroed Slot is a valid (empty)
    // Slot, integers only; the Box frees with the same layout.
    let slots = unsafe {
        let ptr = std::alloc::alloc_zeroed(layout) as *mut Slot;
        if ptr.is_null() {
            std::alloc::handle_alloc_error(layout);
        }
        Box::from_raw(std::ptr::slice_from_raw_parts_mut(ptr, count))
    };
    advise_huge_pages(&slots);
    slots
}

#[cfg(target_os = "linux")]
fn advise_huge_pages(slots: &[Slot]) {
    const HUGE: usize = 2 << 20;
    let bytes = std::mem::size_of_val(slots);
    if bytes < 2 * HUGE {
        return;
    }
    let start = slots.as_ptr() as usize;
    let aligned = start.next_multiple_of(HUGE);
    let end = (start + bytes) / HUGE * HUGE;
    if end > aligned {
        // SAFETY: advice only, on whole pages inside our own allocation; failure is harmless.
        unsafe {
            libc::madvise(
                aligned as *mut libc::c_void,
                end - aligned,
                libc::MADV_HUGEPAGE,
            );
        }
    }
}

#[cfg(not(target_os = "linux"))]
fn advise_huge_pages(_: &[Slot]) {}

impl NumberTable {
    /// A table holding `entries` numbers without growing.
    pub fn with_capacity(entries: usize) -> NumberTable {
        NumberTable {
            slots: zeroed_slots(slots_for(entries)),
            len: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    #[inline]
    fn home(&self, number: u64) -> usize {
        // Mixed by a multiplication by 2^64 / φ, then mapped onto the slots by the high half of
        // a 128-bit product (no division, any slot count).
        let mixed = number.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        ((u128::from(mixed) * self.slots.len() as u128) >> 64) as usize
    }

    #[inline]
    fn next(&self, i: usize) -> usize {
        if i + 1 == self.slots.len() {
            0
        } else {
            i + 1
        }
    }

    /// `(answer id, checked-at second)` of `number`.
    #[inline]
    pub fn get(&self, number: u64) -> Option<(u32, u32)> {
        self.find(number).map(|(_, id, at_s)| (id, at_s))
    }

    /// `(slot, answer id, checked-at second)` of `number`; a slot is below [`Self::slots`] and
    /// names the number until the table next grows.
    #[inline]
    pub fn find(&self, number: u64) -> Option<(usize, u32, u32)> {
        let mut i = self.home(number);
        loop {
            let slot = self.slots[i];
            if slot.number == number && number != 0 {
                return Some((i, slot.id, slot.at_s));
            }
            if slot.number == 0 {
                return None;
            }
            i = self.next(i);
        }
    }

    /// Asks the CPU to bring `number`'s first slot into cache: a lookup issued a few cells later
    /// then finds it there instead of waiting on memory.
    #[inline]
    pub fn prefetch(&self, number: u64) {
        #[cfg(target_arch = "x86_64")]
        {
            let slot = &self.slots[self.home(number)] as *const Slot as *const i8;
            // SAFETY: a hint only, on an address inside the table; SSE is part of x86_64.
            unsafe { std::arch::x86_64::_mm_prefetch(slot, std::arch::x86_64::_MM_HINT_T0) };
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = number;
    }

    /// How many slots the table has.
    pub fn slots(&self) -> usize {
        self.slots.len()
    }

    /// Holds `number`'s answer id and checked-at second, replacing any.
    pub fn insert(&mut self, number: u64, id: u32, at_s: u32) {
        if number == 0 {
            return;
        }
        if (self.len + 1) * 4 > self.slots.len() * 3 {
            self.reserve(self.len + 1);
        }
        let mut i = self.home(number);
        for _ in 0..LONGEST_PROBE {
            let slot = &mut self.slots[i];
            if slot.number == number {
                (slot.id, slot.at_s) = (id, at_s);
                return;
            }
            if slot.number == 0 {
                *slot = Slot { number, id, at_s };
                self.len += 1;
                return;
            }
            i = self.next(i);
        }
        // The numbers crowd this part of the table: spread them over twice the slots.
        self.resize(self.slots.len() * 3 / 2);
        self.insert(number, id, at_s)
    }

    /// Makes room for `additional` more numbers without growing again (at least doubling
    /// when it has to grow).
    pub fn reserve(&mut self, additional: usize) {
        let wanted = self.len + additional;
        if wanted * 4 > self.slots.len() * 3 {
            self.resize(wanted.max(self.len * 2));
        }
    }

    /// Moves the numbers into a table sized for `entries`.
    fn resize(&mut self, entries: usize) {
        let old = std::mem::replace(self, NumberTable::with_capacity(entries));
        for slot in old.slots.iter().filter(|s| s.number != 0) {
            self.insert(slot.number, slot.id, slot.at_s);
        }
    }

    /// Every `(number, answer id, checked-at second)`, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (u64, u32, u32)> + '_ {
        self.slots
            .iter()
            .filter(|s| s.number != 0)
            .map(|s| (s.number, s.id, s.at_s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn behaves_as_a_map_through_growth_and_overwrites() {
        let mut table = NumberTable::with_capacity(4);
        let mut reference = HashMap::new();
        let mut x: u64 = 12345;
        for i in 0..50_000u32 {
            // Numbers close together (as real ones are) and some repeats.
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let number = 79_000_000_000 + (x >> 40) % 200_000;
            table.insert(number, i, i * 2);
            reference.insert(number, (i, i * 2));
        }
        table.insert(0, 1, 1);
        assert_eq!(table.len(), reference.len());
        for (&n, &v) in &reference {
            assert_eq!(table.get(n), Some(v));
        }
        for n in [0, 1, 78_999_999_999, 79_000_200_000] {
            assert_eq!(table.get(n), None, "{n}");
        }
        assert_eq!(table.iter().count(), reference.len());
    }

    /// The longest run of slots a lookup of an absent number can walk.
    fn longest_cluster(table: &NumberTable) -> usize {
        let (mut longest, mut run) = (0, 0);
        for slot in table.slots.iter().chain(table.slots.iter()) {
            run = if slot.number == 0 { 0 } else { run + 1 };
            longest = longest.max(run);
        }
        longest
    }

    #[test]
    fn numbers_crowding_a_range_of_the_hash_still_probe_briefly() {
        let mut whole = NumberTable::with_capacity(200_000);
        for i in 0..200_000u64 {
            whole.insert(79_000_000_000 + i, 0, 0);
        }
        // The first fifth of the table, in its order: what a snapshot keeps of its first chunk.
        let kept: Vec<(u64, u32, u32)> = whole.iter().take(40_000).collect();
        // (case, the table the kept numbers go into)
        let cases = [
            ("sized for them", NumberTable::with_capacity(kept.len())),
            ("growing from empty", NumberTable::with_capacity(0)),
        ];
        for (name, mut table) in cases {
            for &(number, id, at_s) in &kept {
                table.insert(number, id, at_s);
            }
            assert_eq!(table.len(), kept.len(), "{name}");
            let longest = longest_cluster(&table);
            assert!(longest <= LONGEST_PROBE, "{name}: a run of {longest} slots");
            assert!(
                kept.iter().all(|&(n, _, _)| table.get(n).is_some()),
                "{name}"
            );
        }
    }
}
