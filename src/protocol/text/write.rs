//! Replies' numbers and `VALUE` lines, written straight into the output buffer.

/// Writes a hit's `VALUE` line; its data block and `\r\n` follow (room for them is the
/// caller's to reserve: a pinned value takes none).
pub fn write_value_header(out: &mut Vec<u8>, key: &[u8], flags: u32, len: usize, cas: Option<u64>) {
    out.reserve(key.len() + 48);
    out.extend_from_slice(b"VALUE ");
    out.extend_from_slice(key);
    out.push(b' ');
    write_u64(out, u64::from(flags));
    out.push(b' ');
    write_u64(out, len as u64);
    if let Some(cas) = cas {
        out.push(b' ');
        write_u64(out, cas);
    }
    out.extend_from_slice(b"\r\n");
}

/// "00" to "99": numbers are written two digits per division (half the divisions of one
/// digit at a time; every `VALUE` line carries two or three numbers).
const DIGIT_PAIRS: [u8; 200] = {
    let mut table = [0u8; 200];
    let mut i = 0;
    while i < 100 {
        table[2 * i] = b'0' + (i / 10) as u8;
        table[2 * i + 1] = b'0' + (i % 10) as u8;
        i += 1;
    }
    table
};

/// Writes a decimal number without allocating.
pub fn write_u64(out: &mut Vec<u8>, mut n: u64) {
    // The digits are laid out from the left of a fixed 20-byte buffer, which is appended whole
    // and cut back: a copy of constant length compiles to two moves, where a copy of the
    // digits alone was a call to memcpy costing more than the digits themselves.
    let width = decimal_width(n);
    let mut buf = [0u8; 20];
    let mut i = width;
    while n >= 100 {
        let pair = (n % 100) as usize * 2;
        n /= 100;
        i -= 2;
        buf[i..i + 2].copy_from_slice(&DIGIT_PAIRS[pair..pair + 2]);
    }
    if n >= 10 {
        let pair = n as usize * 2;
        buf[0..2].copy_from_slice(&DIGIT_PAIRS[pair..pair + 2]);
    } else {
        buf[0] = b'0' + n as u8;
    }
    let len = out.len();
    out.extend_from_slice(&buf);
    out.truncate(len + width);
}

/// How many decimal digits `n` has (1 for 0): the bit length times log10(2) (1233/4096) is
/// the width or one more, and one comparison with a power of ten settles which.
fn decimal_width(n: u64) -> usize {
    const POWERS: [u64; 20] = {
        let mut table = [0u64; 20];
        let mut i = 1;
        table[0] = 1;
        while i < 20 {
            table[i] = table[i - 1] * 10;
            i += 1;
        }
        table
    };
    let bits = 64 - (n | 1).leading_zeros() as usize;
    let guess = (bits * 1233) >> 12;
    guess + usize::from((n | 1) >= POWERS[guess])
}
