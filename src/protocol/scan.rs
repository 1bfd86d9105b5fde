//! Finding a byte in a request line eight bytes at a time. Every request line is searched
//! for its end and for a NUL; a byte-at-a-time search cost more than parsing the line.

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// The index of the first `needle` in `haystack`, as `haystack.iter().position` gives it.
#[inline]
pub fn find_byte(needle: u8, haystack: &[u8]) -> Option<usize> {
    let pattern = ONES * u64::from(needle);
    let mut words = haystack.chunks_exact(8);
    let mut base = 0;
    for chunk in &mut words {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(chunk);
        // A byte equal to the needle is zero after the XOR. (x - ONES) & !x & HIGHS flags
        // every zero byte, and may flag a byte above a zero one, never one below it; so the
        // lowest flag (little-endian: the first byte) is the first match.
        let x = u64::from_le_bytes(bytes) ^ pattern;
        let zeros = x.wrapping_sub(ONES) & !x & HIGHS;
        if zeros != 0 {
            return Some(base + (zeros.trailing_zeros() / 8) as usize);
        }
        base += 8;
    }
    words
        .remainder()
        .iter()
        .position(|&b| b == needle)
        .map(|i| base + i)
}

#[cfg(test)]
mod tests {
    use super::find_byte;

    #[test]
    fn finds_the_first_match_as_a_plain_search_does() {
        // Every length up to three words, the needle at every place, with bytes around it
        // that differ from it by one bit or are its neighbours (the cases a word trick gets
        // wrong), and a second match after the first.
        for needle in [0u8, b'\n', b' ', 0x80, 0xff, 0x01] {
            let fillers = [
                needle ^ 1,
                needle ^ 0x80,
                needle.wrapping_add(1),
                needle.wrapping_sub(1),
                0,
                0xff,
            ];
            for len in 0..=24 {
                for filler in fillers {
                    if filler == needle {
                        continue;
                    }
                    let mut hay = vec![filler; len];
                    assert_eq!(find_byte(needle, &hay), None, "{needle} {filler} {len}");
                    for at in 0..len {
                        hay.fill(filler);
                        hay[at] = needle;
                        if at + 3 < len {
                            hay[at + 3] = needle;
                        }
                        let expected = hay.iter().position(|&b| b == needle);
                        assert_eq!(
                            find_byte(needle, &hay),
                            expected,
                            "{needle} {filler} {hay:?}"
                        );
                    }
                }
            }
        }
    }
}
