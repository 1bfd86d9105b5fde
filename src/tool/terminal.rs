//! The terminal `top` draws on: the alternate screen, keys read one at a time without echo,
//! and everything put back as it was when the view ends.

use std::io::{self, Write};
use std::time::Duration;

/// The terminal in the state `top` needs; restored when dropped.
pub struct Terminal {
    /// The input settings to restore, when stdin is a terminal whose settings were changed.
    saved: Option<libc::termios>,
}

impl Terminal {
    /// Switches to the alternate screen with the cursor hidden, and (when stdin is a terminal)
    /// reads keys as they are typed, without echo. Ctrl-C still interrupts.
    pub fn enter() -> io::Result<Terminal> {
        let saved = raw_input();
        let mut out = io::stdout().lock();
        out.write_all(b"\x1b[?1049h\x1b[?25l\x1b[2J")?;
        out.flush()?;
        Ok(Terminal { saved })
    }

    /// Columns and rows of the terminal (80×24 when it does not say).
    pub fn size(&self) -> (usize, usize) {
        // SAFETY: winsize is plain data, for which all zeroes is a valid value.
        let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
        // SAFETY: TIOCGWINSZ writes a winsize into the valid pointer it is given; fd 1 is
        // this process's stdout (an error leaves `ws` zeroed).
        let ok = unsafe { libc::ioctl(1, libc::TIOCGWINSZ, &mut ws) } == 0;
        if ok && ws.ws_col > 0 && ws.ws_row > 0 {
            (usize::from(ws.ws_col), usize::from(ws.ws_row))
        } else {
            (80, 24)
        }
    }

    /// Draws a frame: each line from the top-left corner, the rest of the screen cleared.
    pub fn draw(&self, lines: &[String]) -> io::Result<()> {
        let mut frame = Vec::with_capacity(lines.len() * 100);
        frame.extend_from_slice(b"\x1b[H");
        for (i, line) in lines.iter().enumerate() {
            if i > 0 {
                frame.extend_from_slice(b"\r\n");
            }
            frame.extend_from_slice(line.as_bytes());
            frame.extend_from_slice(b"\x1b[K");
        }
        frame.extend_from_slice(b"\x1b[J");
        let mut out = io::stdout().lock();
        out.write_all(&frame)?;
        out.flush()
    }

    /// A key typed within `wait`, if any.
    pub fn key(&self, wait: Duration) -> Option<u8> {
        let mut fd = libc::pollfd {
            fd: 0,
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = i32::try_from(wait.as_millis()).unwrap_or(i32::MAX);
        // SAFETY: `fd` is one valid pollfd, and the count passed is 1.
        let ready = unsafe { libc::poll(&mut fd, 1, ms) };
        if ready <= 0 || fd.revents & libc::POLLIN == 0 {
            return None;
        }
        let mut byte = 0u8;
        // SAFETY: reads at most one byte into `byte`, which is valid for one byte.
        let n = unsafe { libc::read(0, (&mut byte as *mut u8).cast(), 1) };
        if n == 1 {
            Some(byte)
        } else {
            // End of input (stdin closed): wait out the period as if nothing was typed.
            std::thread::sleep(wait);
            None
        }
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        let mut out = io::stdout().lock();
        let _ = out.write_all(b"\x1b[?25h\x1b[?1049l");
        let _ = out.flush();
        if let Some(saved) = &self.saved {
            // SAFETY: restores settings read from fd 0 by `raw_input`; a failure leaves the
            // terminal as it is.
            unsafe { libc::tcsetattr(0, libc::TCSANOW, saved) };
        }
    }
}

/// Turns off line buffering and echo on stdin when it is a terminal; returns the settings it
/// had.
fn raw_input() -> Option<libc::termios> {
    // SAFETY: isatty only inspects the descriptor.
    if unsafe { libc::isatty(0) } != 1 {
        return None;
    }
    // SAFETY: termios is plain data, for which all zeroes is a valid value.
    let mut saved: libc::termios = unsafe { std::mem::zeroed() };
    // SAFETY: tcgetattr writes the settings of fd 0 (a terminal) into the valid pointer.
    if unsafe { libc::tcgetattr(0, &mut saved) } != 0 {
        return None;
    }
    let mut raw = saved;
    raw.c_lflag &= !(libc::ICANON | libc::ECHO);
    raw.c_cc[libc::VMIN] = 1;
    raw.c_cc[libc::VTIME] = 0;
    // SAFETY: applies a copy of fd 0's own settings, changed in two flags and two slots.
    if unsafe { libc::tcsetattr(0, libc::TCSANOW, &raw) } != 0 {
        return None;
    }
    Some(saved)
}
