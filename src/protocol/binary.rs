//! memcached's binary protocol: the 24-byte request header, the opcodes memcached 1.6 answers,
//! the frame-shape rules it enforces before doing anything, and response encoding.
//!
//! A request is a header, then `extlen` bytes of extras, `keylen` bytes of key and the value
//! (the rest of `bodylen`). All numbers are big-endian. Nothing here allocates on a client's
//! say-so: the header is fixed-size and the caller decides how much of the body to wait for.

/// The request magic byte; a connection whose first byte is this speaks binary.
pub const REQUEST_MAGIC: u8 = 0x80;
/// The response magic byte.
pub const RESPONSE_MAGIC: u8 = 0x81;
/// Header length of requests and responses.
pub const HEADER_LEN: usize = 24;

/// Opcodes memcached 1.6 knows.
pub mod opcode {
    #![allow(missing_docs)]
    pub const GET: u8 = 0x00;
    pub const SET: u8 = 0x01;
    pub const ADD: u8 = 0x02;
    pub const REPLACE: u8 = 0x03;
    pub const DELETE: u8 = 0x04;
    pub const INCREMENT: u8 = 0x05;
    pub const DECREMENT: u8 = 0x06;
    pub const QUIT: u8 = 0x07;
    pub const FLUSH: u8 = 0x08;
    pub const GETQ: u8 = 0x09;
    pub const NOOP: u8 = 0x0a;
    pub const VERSION: u8 = 0x0b;
    pub const GETK: u8 = 0x0c;
    pub const GETKQ: u8 = 0x0d;
    pub const APPEND: u8 = 0x0e;
    pub const PREPEND: u8 = 0x0f;
    pub const STAT: u8 = 0x10;
    pub const SETQ: u8 = 0x11;
    pub const ADDQ: u8 = 0x12;
    pub const REPLACEQ: u8 = 0x13;
    pub const DELETEQ: u8 = 0x14;
    pub const INCREMENTQ: u8 = 0x15;
    pub const DECREMENTQ: u8 = 0x16;
    pub const QUITQ: u8 = 0x17;
    pub const FLUSHQ: u8 = 0x18;
    pub const APPENDQ: u8 = 0x19;
    pub const PREPENDQ: u8 = 0x1a;
    pub const VERBOSITY: u8 = 0x1b;
    pub const TOUCH: u8 = 0x1c;
    pub const GAT: u8 = 0x1d;
    pub const GATQ: u8 = 0x1e;
    pub const GATK: u8 = 0x23;
    pub const GATKQ: u8 = 0x24;
    pub const SASL_LIST_MECHS: u8 = 0x20;
    pub const SASL_AUTH: u8 = 0x21;
    pub const SASL_STEP: u8 = 0x22;
}

/// Response status codes, with the text memcached sends as the body of an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u16)]
pub enum Status {
    /// Success.
    Ok = 0x00,
    /// No such key.
    KeyNotFound = 0x01,
    /// The key exists (add) or its CAS differs.
    KeyExists = 0x02,
    /// Value too large.
    TooLarge = 0x03,
    /// Malformed request.
    InvalidArguments = 0x04,
    /// append/prepend to a missing item, or a failed store.
    NotStored = 0x05,
    /// incr/decr on a value that is not a number.
    NonNumeric = 0x06,
    /// Authentication failed or required.
    AuthError = 0x20,
    /// SASL wants another step.
    AuthContinue = 0x21,
    /// Unknown opcode.
    UnknownCommand = 0x81,
    /// Out of memory.
    OutOfMemory = 0x82,
}

impl Status {
    /// memcached's error text for this status.
    pub fn message(self) -> &'static str {
        match self {
            Status::Ok | Status::AuthContinue => "",
            Status::KeyNotFound => "Not found",
            Status::KeyExists => "Data exists for key.",
            Status::TooLarge => "Too large.",
            Status::InvalidArguments => "Invalid arguments",
            Status::NotStored => "Not stored.",
            Status::NonNumeric => "Non-numeric server-side value for incr or decr",
            Status::AuthError => "Auth failure.",
            Status::UnknownCommand => "Unknown command",
            Status::OutOfMemory => "Out of memory",
        }
    }
}

/// A request header, in host order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// [`REQUEST_MAGIC`] for a valid request.
    pub magic: u8,
    /// What to do.
    pub opcode: u8,
    /// Key length.
    pub keylen: u16,
    /// Extras length.
    pub extlen: u8,
    /// Data type (memcached ignores it).
    pub datatype: u8,
    /// vbucket id (memcached ignores it).
    pub vbucket: u16,
    /// Extras + key + value length.
    pub bodylen: u32,
    /// Echoed in the response.
    pub opaque: u32,
    /// Compare-and-swap id (0: none).
    pub cas: u64,
}

impl Header {
    /// Decodes the first [`HEADER_LEN`] bytes of `b` (the caller checks there are enough).
    pub fn parse(b: &[u8; HEADER_LEN]) -> Header {
        Header {
            magic: b[0],
            opcode: b[1],
            keylen: u16::from_be_bytes([b[2], b[3]]),
            extlen: b[4],
            datatype: b[5],
            vbucket: u16::from_be_bytes([b[6], b[7]]),
            bodylen: u32::from_be_bytes([b[8], b[9], b[10], b[11]]),
            opaque: u32::from_be_bytes([b[12], b[13], b[14], b[15]]),
            cas: u64::from_be_bytes([b[16], b[17], b[18], b[19], b[20], b[21], b[22], b[23]]),
        }
    }

    /// A request header: [`REQUEST_MAGIC`], data type and vbucket 0, the lengths as given.
    /// They are not checked against anything, so tests and fuzzers can declare lengths that
    /// contradict the body they send; [`write_request`] derives them from the body instead.
    pub fn request(
        opcode: u8,
        keylen: u16,
        extlen: u8,
        bodylen: u32,
        opaque: u32,
        cas: u64,
    ) -> Header {
        Header {
            magic: REQUEST_MAGIC,
            opcode,
            keylen,
            extlen,
            datatype: 0,
            vbucket: 0,
            bodylen,
            opaque,
            cas,
        }
    }

    /// Appends the [`HEADER_LEN`] bytes [`Header::parse`] would read back as `self`.
    pub fn write(&self, out: &mut Vec<u8>) {
        out.push(self.magic);
        out.push(self.opcode);
        out.extend_from_slice(&self.keylen.to_be_bytes());
        out.push(self.extlen);
        out.push(self.datatype);
        out.extend_from_slice(&self.vbucket.to_be_bytes());
        out.extend_from_slice(&self.bodylen.to_be_bytes());
        out.extend_from_slice(&self.opaque.to_be_bytes());
        out.extend_from_slice(&self.cas.to_be_bytes());
    }

    /// Bytes of extras and key: what must be buffered before the request can be looked at.
    pub fn prefix_len(&self) -> usize {
        usize::from(self.extlen) + usize::from(self.keylen)
    }

    /// Bytes of the body after extras and key (0 when the lengths contradict).
    pub fn value_len(&self) -> usize {
        (self.bodylen as usize).saturating_sub(self.prefix_len())
    }

    /// Whether the key and extras fit in the body (memcached closes the connection otherwise).
    pub fn lengths_consistent(&self) -> bool {
        self.prefix_len() <= self.bodylen as usize
    }

    /// The command without its quiet flag, and whether it was quiet. memcached answers a quiet
    /// command only with errors (and get hits).
    pub fn unquiet(&self) -> (u8, bool) {
        use opcode::*;
        let loud = match self.opcode {
            SETQ => SET,
            ADDQ => ADD,
            REPLACEQ => REPLACE,
            DELETEQ => DELETE,
            INCREMENTQ => INCREMENT,
            DECREMENTQ => DECREMENT,
            QUITQ => QUIT,
            FLUSHQ => FLUSH,
            APPENDQ => APPEND,
            PREPENDQ => PREPEND,
            GETQ => GET,
            GETKQ => GETK,
            GATQ => GAT,
            GATKQ => GATK,
            other => return (other, false),
        };
        (loud, true)
    }

    /// memcached's shape check for a (de-quieted) command: `false` is a protocol error, answered
    /// with "Invalid arguments" and a close. Unknown opcodes pass (they get their own error).
    pub fn shape_ok(&self, command: u8) -> bool {
        use opcode::*;
        let (ext, key, body) = (self.extlen, self.keylen, self.bodylen);
        let key_body = u32::from(key);
        match command {
            VERSION | NOOP | QUIT | SASL_LIST_MECHS => ext == 0 && key == 0 && body == 0,
            FLUSH => key == 0 && body == u32::from(ext) && (ext == 0 || ext == 4),
            SET | ADD | REPLACE => ext == 8 && key != 0 && body >= key_body + 8,
            GET | GETK => ext == 0 && body == key_body && key > 0,
            DELETE => key > 0 && ext == 0 && body == key_body,
            INCREMENT | DECREMENT => key > 0 && ext == 20 && body == key_body + 20,
            APPEND | PREPEND => key > 0 && ext == 0,
            STAT => ext == 0,
            SASL_AUTH | SASL_STEP => ext == 0 && key != 0,
            TOUCH | GAT | GATK => ext == 4 && key != 0,
            _ => true,
        }
    }
}

/// [`write_request`] was given extras, a key or a body longer than the header can declare
/// (255, 65,535 and 2^32 - 1 bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameTooLong;

impl std::fmt::Display for FrameTooLong {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("extras, key or body too long for a binary request header")
    }
}

impl std::error::Error for FrameTooLong {}

/// Appends one well-formed request frame: a header whose lengths are those of `extras`, `key`
/// and `value`, then the three in that order. The daemon never sends requests; this is the
/// one encoder its tests, fuzzers and load generators share, so they all build the frames
/// memcached's binary clients would. Frames with contradicting lengths are made with
/// [`Header::request`] and [`Header::write`].
///
/// # Errors
///
/// [`FrameTooLong`] when a length does not fit its header field; `out` is left as it was,
/// rather than holding a frame whose header would lie about its body.
pub fn write_request(
    out: &mut Vec<u8>,
    opcode: u8,
    key: &[u8],
    extras: &[u8],
    value: &[u8],
    opaque: u32,
    cas: u64,
) -> Result<(), FrameTooLong> {
    let keylen = u16::try_from(key.len()).map_err(|_| FrameTooLong)?;
    let extlen = u8::try_from(extras.len()).map_err(|_| FrameTooLong)?;
    let bodylen = extras
        .len()
        .checked_add(key.len())
        .and_then(|n| n.checked_add(value.len()))
        .and_then(|n| u32::try_from(n).ok())
        .ok_or(FrameTooLong)?;
    out.reserve(HEADER_LEN + bodylen as usize);
    Header::request(opcode, keylen, extlen, bodylen, opaque, cas).write(out);
    out.extend_from_slice(extras);
    out.extend_from_slice(key);
    out.extend_from_slice(value);
    Ok(())
}

/// The header bytes at the start of `b`, if it holds that many.
pub fn header_bytes(b: &[u8]) -> Option<&[u8; HEADER_LEN]> {
    b.get(..HEADER_LEN).and_then(|h| h.try_into().ok())
}

/// Appends a response header for `req`: its opcode and opaque echoed, `status`, the lengths of
/// what the caller appends after it, and a CAS id.
pub fn write_header(
    out: &mut Vec<u8>,
    req: &Header,
    status: Status,
    lens: (u8, u16, usize),
    cas: u64,
) {
    let (extlen, keylen, value_len) = lens;
    let bodylen = usize::from(extlen) + usize::from(keylen) + value_len;
    out.push(RESPONSE_MAGIC);
    out.push(req.opcode);
    out.extend_from_slice(&keylen.to_be_bytes());
    out.push(extlen);
    out.push(0);
    out.extend_from_slice(&(status as u16).to_be_bytes());
    // Values are at most -I (1 GB), so the body length fits.
    out.extend_from_slice(&(bodylen as u32).to_be_bytes());
    out.extend_from_slice(&req.opaque.to_be_bytes());
    out.extend_from_slice(&cas.to_be_bytes());
}

/// Appends an error response: `status` with memcached's text for it as the body.
pub fn write_error(out: &mut Vec<u8>, req: &Header, status: Status) {
    let text = status.message();
    write_header(out, req, status, (0, 0, text.len()), 0);
    out.extend_from_slice(text.as_bytes());
}

/// Appends a response whose body is `value` alone (no extras, no key).
pub fn write_value(out: &mut Vec<u8>, req: &Header, value: &[u8], cas: u64) {
    write_header(out, req, Status::Ok, (0, 0, value.len()), cas);
    out.extend_from_slice(value);
}

/// Appends one `stat` response packet: a key and a value.
pub fn write_stat(out: &mut Vec<u8>, req: &Header, key: &[u8], value: &[u8]) {
    let keylen = u16::try_from(key.len()).unwrap_or(u16::MAX);
    write_header(out, req, Status::Ok, (0, keylen, value.len()), 0);
    out.extend_from_slice(&key[..usize::from(keylen)]);
    out.extend_from_slice(value);
}

/// A big-endian `u32` at `at` in `b` (0 if `b` is too short, which the shape checks exclude).
pub fn u32_at(b: &[u8], at: usize) -> u32 {
    b.get(at..at + 4)
        .and_then(|s| <[u8; 4]>::try_from(s).ok())
        .map_or(0, u32::from_be_bytes)
}

/// A big-endian `u64` at `at` in `b` (0 if `b` is too short).
pub fn u64_at(b: &[u8], at: usize) -> u64 {
    b.get(at..at + 8)
        .and_then(|s| <[u8; 8]>::try_from(s).ok())
        .map_or(0, u64::from_be_bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(opcode: u8, extlen: u8, keylen: u16, bodylen: u32) -> Header {
        let mut b = [0u8; HEADER_LEN];
        b[0] = REQUEST_MAGIC;
        b[1] = opcode;
        b[2..4].copy_from_slice(&keylen.to_be_bytes());
        b[4] = extlen;
        b[8..12].copy_from_slice(&bodylen.to_be_bytes());
        b[12..16].copy_from_slice(&0xdead_beef_u32.to_be_bytes());
        b[16..24].copy_from_slice(&7u64.to_be_bytes());
        Header::parse(&b)
    }

    #[test]
    fn parses_big_endian_fields() {
        let h = header(opcode::SET, 8, 3, 20);
        assert_eq!(h.magic, REQUEST_MAGIC);
        assert_eq!((h.opcode, h.extlen, h.keylen, h.bodylen), (1, 8, 3, 20));
        assert_eq!((h.opaque, h.cas), (0xdead_beef, 7));
        assert_eq!((h.prefix_len(), h.value_len()), (11, 9));
        assert!(h.lengths_consistent());
        assert!(!header(opcode::GET, 8, 30, 20).lengths_consistent());
    }

    #[test]
    fn quiet_commands_map_to_their_loud_twins() {
        assert_eq!(
            header(opcode::GETKQ, 0, 1, 1).unquiet(),
            (opcode::GETK, true)
        );
        assert_eq!(header(opcode::GATQ, 4, 1, 5).unquiet(), (opcode::GAT, true));
        assert_eq!(header(opcode::GET, 0, 1, 1).unquiet(), (opcode::GET, false));
        assert_eq!(header(0x42, 0, 0, 0).unquiet(), (0x42, false));
    }

    #[test]
    fn shapes_follow_memcached() {
        assert!(header(opcode::SET, 8, 1, 9).shape_ok(opcode::SET));
        assert!(!header(opcode::SET, 8, 0, 8).shape_ok(opcode::SET));
        assert!(!header(opcode::SET, 4, 1, 5).shape_ok(opcode::SET));
        assert!(!header(opcode::GET, 0, 1, 2).shape_ok(opcode::GET));
        assert!(header(opcode::FLUSH, 4, 0, 4).shape_ok(opcode::FLUSH));
        assert!(!header(opcode::FLUSH, 2, 0, 2).shape_ok(opcode::FLUSH));
        assert!(header(opcode::INCREMENT, 20, 1, 21).shape_ok(opcode::INCREMENT));
        assert!(!header(opcode::NOOP, 0, 0, 1).shape_ok(opcode::NOOP));
        assert!(header(0x42, 3, 3, 9).shape_ok(0x42));
    }

    #[test]
    fn requests_encode_like_the_spec_example() {
        // The "add" example of memcached's binary protocol spec: key "Hello", value "World",
        // flags 0xdeadbeef, expiry 3600.
        // A byte already there shows the frame is appended, not written over.
        let mut out = vec![0xaa];
        let extras = [0xde, 0xad, 0xbe, 0xef, 0x00, 0x00, 0x0e, 0x10];
        assert_eq!(
            write_request(&mut out, opcode::ADD, b"Hello", &extras, b"World", 0, 0),
            Ok(())
        );
        let mut want = vec![0xaa, 0x80, 0x02, 0x00, 0x05, 0x08, 0x00, 0x00, 0x00];
        want.extend_from_slice(&[0x00, 0x00, 0x00, 0x12]);
        want.extend_from_slice(&[0; 12]);
        want.extend_from_slice(&extras);
        want.extend_from_slice(b"HelloWorld");
        assert_eq!(out, want);

        let mut out = Vec::new();
        assert_eq!(
            write_request(&mut out, opcode::GETK, b"k", &[], &[], 0xdead_beef, 7),
            Ok(())
        );
        let head = header_bytes(&out).map(Header::parse);
        assert_eq!(head, Some(header(opcode::GETK, 0, 1, 1)));
        assert_eq!(&out[HEADER_LEN..], b"k");
    }

    #[test]
    fn request_lengths_that_do_not_fit_write_nothing() {
        let mut out = vec![1, 2];
        let long_key = vec![b'k'; usize::from(u16::MAX) + 1];
        assert_eq!(
            write_request(&mut out, opcode::GET, &long_key, &[], &[], 0, 0),
            Err(FrameTooLong)
        );
        assert_eq!(
            write_request(&mut out, opcode::SET, b"k", &[0; 256], &[], 0, 0),
            Err(FrameTooLong)
        );
        assert_eq!(out, [1, 2]);
    }

    #[test]
    fn headers_write_what_they_say_even_when_it_contradicts_the_body() {
        let h = Header {
            datatype: 1,
            vbucket: 0xffff,
            ..Header::request(opcode::GET, 30, 8, 20, 9, 0)
        };
        let mut out = Vec::new();
        h.write(&mut out);
        assert_eq!(out.len(), HEADER_LEN);
        assert_eq!(header_bytes(&out).map(Header::parse), Some(h));
        assert!(!h.lengths_consistent());
    }

    #[test]
    fn responses_echo_opcode_and_opaque() {
        let req = header(opcode::GETQ, 0, 1, 1);
        let mut out = Vec::new();
        write_error(&mut out, &req, Status::KeyNotFound);
        assert_eq!(out.len(), HEADER_LEN + 9);
        assert_eq!(&out[..2], &[RESPONSE_MAGIC, opcode::GETQ]);
        assert_eq!(&out[6..8], &[0, 1]);
        assert_eq!(u32_at(&out, 8), 9);
        assert_eq!(u32_at(&out, 12), 0xdead_beef);
        assert_eq!(&out[HEADER_LEN..], b"Not found");
        assert_eq!(u64_at(&out, 16), 0);
    }
}
