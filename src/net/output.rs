//! Writing a connection's output when replies refer to pinned values: the output buffer and
//! the values, interleaved in order, with one vectored send per call.
//!
//! The buffer holds every reply's own bytes; each pinned value goes before the buffer byte at
//! its offset ([`PinnedValues`]). A write may stop anywhere, inside the buffer or inside a
//! value, so where it stands is two numbers: the buffer bytes written (the caller's), and the
//! bytes of the first value written (the values' own count) once the buffer is written up to
//! that value.

use std::io;
use std::os::fd::AsRawFd;

use crate::handler::pinned::PinnedValues;

/// The most pieces one write hands the kernel (`UIO_MAXIOV` is 1024; a reply is at most a few
/// pieces, so this covers dozens of values).
const MAX_PIECES: usize = 64;

/// Writes as much of the output as the socket takes in one vectored write, from buffer offset
/// `*written` on; returns the bytes written, drops the values written whole and advances
/// `*written`.
pub fn write(
    fd: &impl AsRawFd,
    buffer: &[u8],
    pinned: &mut PinnedValues,
    written: &mut usize,
) -> io::Result<usize> {
    let mut pieces: Vec<libc::iovec> = Vec::with_capacity(MAX_PIECES);
    let mut pos = *written;
    let mut skip = pinned.front_written();
    let mut full = false;
    'values: for (at, pin) in pinned.iter() {
        let before = (pos < at).then(|| &buffer[pos..at]);
        let parts = pin.parts().iter();
        for piece in before
            .map(buffer_piece)
            .into_iter()
            .chain(parts.filter_map(|part| {
                // The part of the value written already is skipped.
                let piece = (skip < part.len()).then(|| part.iovec(skip));
                skip = skip.saturating_sub(part.len());
                piece
            }))
        {
            if pieces.len() == MAX_PIECES {
                full = true;
                break 'values;
            }
            pieces.push(piece);
        }
        pos = at;
    }
    if !full && pos < buffer.len() && pieces.len() < MAX_PIECES {
        pieces.push(buffer_piece(&buffer[pos..]));
    }
    // The buffer pieces are slices of `buffer`, and the value pieces parts of the live pins in
    // `pinned`, both borrowed until we return; a live pin keeps its bytes allocated, unwritten.
    // SAFETY: so every piece names memory readable for the whole call.
    let n = unsafe { crate::net::sys::send_pieces(fd, &pieces) }?;
    advance(pinned, written, n);
    Ok(n)
}

fn buffer_piece(bytes: &[u8]) -> libc::iovec {
    libc::iovec {
        iov_base: bytes.as_ptr() as *mut libc::c_void,
        iov_len: bytes.len(),
    }
}

/// Moves the buffer offset `written` and the values on by `n` written bytes.
fn advance(pinned: &mut PinnedValues, written: &mut usize, mut n: usize) {
    while let Some((at, _)) = pinned.front() {
        let before = n.min(at - *written);
        *written += before;
        n -= before;
        if *written < at || n == 0 {
            return;
        }
        n = pinned.write_front(n);
    }
    *written += n;
}
