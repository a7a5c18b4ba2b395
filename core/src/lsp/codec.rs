//! The LSP base protocol: `Content-Length: N\r\n\r\n` and N bytes of body.

use super::{too_large_close, MAX_HEADER_BLOCK, MAX_LSP_MESSAGE};
use std::fmt;

/// Header names a resync may start at (lower case, with their colon).
const RESYNC_NAMES: [&[u8]; 2] = [b"content-length:", b"content-type:"];

/// The longest of [`RESYNC_NAMES`]: a resync keeps one byte less of a chunk without one,
/// in case a name is split across pushes.
const RESYNC_NAME_MAX: usize = 15;

/// The body with its header: `Content-Length: N\r\n\r\n` + `body`.
pub fn encode(body: &[u8]) -> Vec<u8> {
    let header = format!("Content-Length: {}\r\n\r\n", body.len());
    let mut out = Vec::with_capacity(header.len() + body.len());
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(body);
    out
}

/// What the decoder found next in the stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decoded {
    /// One message body (valid UTF-8): one text frame for the client.
    Message(String),
    /// Something the bridge logs (and, for some, acts on); the stream goes on.
    Notice(Notice),
}

/// A problem in the stream, already dealt with by the decoder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Notice {
    /// A header block that is not valid was skipped (reported once per resync).
    Malformed(HeaderError),
    /// A body of this many bytes that is not UTF-8 was dropped.
    NotUtf8 {
        /// The body's length.
        length: usize,
    },
    /// A header announced a body over the limit; the body is skipped as it arrives.
    TooLarge {
        /// The announced length.
        length: u64,
    },
}

impl Notice {
    /// The close code and reason the socket gets for this, if it must close.
    pub fn close(&self) -> Option<(u16, String)> {
        match self {
            Notice::TooLarge { length } => Some(too_large_close(*length)),
            Notice::Malformed(_) | Notice::NotUtf8 { .. } => None,
        }
    }
}

impl fmt::Display for Notice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Notice::Malformed(e) => write!(f, "skipped a malformed LSP header: {e}"),
            Notice::NotUtf8 { length } => {
                write!(f, "dropped an LSP message of {length} bytes: not UTF-8")
            }
            Notice::TooLarge { length } => write!(
                f,
                "LSP message of {length} bytes is over the {} MiB limit",
                MAX_LSP_MESSAGE >> 20
            ),
        }
    }
}

/// Why a header block is malformed.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum HeaderError {
    /// A line that is not `Name: value` (no colon, a name that is not a token, an empty
    /// line before the end, a bare `\r` or `\n`).
    BadLine,
    /// No `Content-Length` header.
    NoContentLength,
    /// More than one `Content-Length` header.
    DuplicateContentLength,
    /// A `Content-Length` that is not a decimal number (ASCII whitespace around it allowed).
    BadContentLength,
    /// No blank line within the first [`MAX_HEADER_BLOCK`] bytes.
    TooLong,
}

impl fmt::Display for HeaderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            HeaderError::BadLine => "a line is not `Name: value`",
            HeaderError::NoContentLength => "no Content-Length",
            HeaderError::DuplicateContentLength => "more than one Content-Length",
            HeaderError::BadContentLength => "Content-Length is not a number",
            HeaderError::TooLong => "no end of header in 8 KiB",
        })
    }
}

/// Where the decoder is in the stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// A header block starts at `pos`.
    Header,
    /// A body of this length starts at `pos`.
    Body(usize),
    /// This many bytes of a body over the limit are still to be thrown away.
    Skip(u64),
    /// After a malformed block: looking for the next header name to start a block at.
    Resync,
}

/// Splits a byte stream into LSP messages: [`Decoder::push`] the bytes as they are read,
/// then [`Decoder::poll`] until `None`.
///
/// Grammar: a header block is lines `Name: value` each ending in `\r\n` (a bare `\n` is not
/// a line end, as the specification says), then `\r\n`. Names are case-insensitive tokens
/// in any order; exactly one `Content-Length` (decimal) is required, `Content-Type` and
/// unknown headers are ignored. The block, blank line included, must fit in
/// [`MAX_HEADER_BLOCK`] bytes.
///
/// Resync rule: when the block starting at byte `s` is malformed, one
/// [`Notice::Malformed`] is reported and the decoder goes on at the next case-insensitive
/// `Content-Length:` or `Content-Type:` after `s` (anywhere, not only at a line start),
/// again and again, silently, until a block parses. So junk that contains no `\r\n\r\n`,
/// followed by `\r\n` and then a valid message, yields that message: every candidate
/// block ends at the message's blank line, and the only one with a single
/// `Content-Length` is the message's own, wherever it starts.
#[derive(Clone, Debug)]
pub struct Decoder {
    buf: Vec<u8>,
    /// Bytes before `pos` are consumed (dropped from `buf` at the next push).
    pos: usize,
    phase: Phase,
    /// A malformed block was reported and none parsed since.
    resyncing: bool,
    max_message: usize,
    max_header: usize,
}

impl Default for Decoder {
    fn default() -> Self {
        Self::new()
    }
}

impl Decoder {
    /// A decoder at the start of a stream, with [`MAX_LSP_MESSAGE`] and [`MAX_HEADER_BLOCK`].
    pub fn new() -> Self {
        Self::with_limits(MAX_LSP_MESSAGE, MAX_HEADER_BLOCK)
    }

    /// A decoder with other limits (tests use small ones).
    pub fn with_limits(max_message: usize, max_header: usize) -> Self {
        Decoder {
            buf: Vec::new(),
            pos: 0,
            phase: Phase::Header,
            resyncing: false,
            max_message,
            max_header,
        }
    }

    /// Bytes read from the program; the skipped part of a body over the limit is thrown
    /// away here, never buffered.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.drain(..self.pos);
        self.pos = 0;
        let bytes = match self.phase {
            // Nothing buffered comes before these bytes: skip them without storing them.
            Phase::Skip(left) if self.buf.is_empty() => {
                let n = skip_len(left, bytes.len());
                self.phase = after_skip(left, n);
                &bytes[n..]
            }
            _ => bytes,
        };
        self.buf.extend_from_slice(bytes);
    }

    /// How many bytes the decoder holds (for memory accounting and tests).
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// The next message or notice, or `None` until more bytes are pushed.
    pub fn poll(&mut self) -> Option<Decoded> {
        loop {
            let step = match self.phase {
                Phase::Header => self.header(),
                Phase::Body(length) => self.body(length),
                Phase::Skip(left) => self.skip(left),
                Phase::Resync => self.resync(),
            };
            match step {
                Step::Yield(item) => return Some(item),
                Step::Continue => {}
                Step::NeedMore => return None,
            }
        }
    }

    fn rest(&self) -> &[u8] {
        &self.buf[self.pos..]
    }

    /// A header block at `pos`: parse it once it is complete or too long.
    fn header(&mut self) -> Step {
        let rest = self.rest();
        let window = &rest[..rest.len().min(self.max_header)];
        let parsed = match find(window, b"\r\n\r\n") {
            Some(end) => parse_block(&window[..end]).map(|length| (length, end + 4)),
            None if rest.len() >= self.max_header => Err(HeaderError::TooLong),
            None => return Step::NeedMore,
        };
        match parsed {
            Ok((length, block_len)) => {
                self.pos += block_len;
                self.resyncing = false;
                match usize::try_from(length) {
                    Ok(length) if length <= self.max_message => {
                        self.buf
                            .reserve_exact(length.saturating_sub(self.buffered()));
                        self.phase = Phase::Body(length);
                        Step::Continue
                    }
                    _ => {
                        self.phase = Phase::Skip(length);
                        Step::Yield(Decoded::Notice(Notice::TooLarge { length }))
                    }
                }
            }
            Err(error) => {
                self.pos += 1;
                self.phase = Phase::Resync;
                if std::mem::replace(&mut self.resyncing, true) {
                    Step::Continue
                } else {
                    Step::Yield(Decoded::Notice(Notice::Malformed(error)))
                }
            }
        }
    }

    /// A body of `length` bytes at `pos`: hand it out once complete.
    fn body(&mut self, length: usize) -> Step {
        if self.buffered() < length {
            return Step::NeedMore;
        }
        // The buffer itself becomes the body (no copy when it holds just the body).
        let tail = self.buf.split_off(self.pos + length);
        let mut body = std::mem::replace(&mut self.buf, tail);
        body.drain(..self.pos);
        self.pos = 0;
        self.phase = Phase::Header;
        match String::from_utf8(body) {
            Ok(text) => Step::Yield(Decoded::Message(text)),
            Err(_) => Step::Yield(Decoded::Notice(Notice::NotUtf8 { length })),
        }
    }

    /// Throws away what is buffered of a body over the limit (`left` bytes to go).
    fn skip(&mut self, left: u64) -> Step {
        let n = skip_len(left, self.buffered());
        self.pos += n;
        self.phase = after_skip(left, n);
        match self.phase {
            Phase::Skip(_) => Step::NeedMore,
            _ => Step::Continue,
        }
    }

    /// Moves `pos` to the next header name a block may start at.
    fn resync(&mut self) -> Step {
        let rest = self.rest();
        let found = RESYNC_NAMES
            .iter()
            .filter_map(|name| find_ignore_case(rest, name))
            .min();
        match found {
            Some(at) => {
                self.pos += at;
                self.phase = Phase::Header;
                Step::Continue
            }
            None => {
                // Keep what could be the start of a name split across pushes.
                self.pos += rest.len().saturating_sub(RESYNC_NAME_MAX - 1);
                Step::NeedMore
            }
        }
    }
}

/// How many of `available` bytes belong to a skipped body with `left` bytes to go.
fn skip_len(left: u64, available: usize) -> usize {
    usize::try_from(left).map_or(available, |left| left.min(available))
}

/// The phase after `n` of `left` skipped bytes went.
fn after_skip(left: u64, n: usize) -> Phase {
    match left.saturating_sub(n as u64) {
        0 => Phase::Header,
        left => Phase::Skip(left),
    }
}

/// What one step of [`Decoder::poll`] did.
enum Step {
    Yield(Decoded),
    Continue,
    NeedMore,
}

/// The body length a complete header block (without its blank line) announces.
fn parse_block(block: &[u8]) -> Result<u64, HeaderError> {
    let mut length = None;
    for line in split_lines(block) {
        let (name, value) = parse_line(line)?;
        if name.eq_ignore_ascii_case(b"content-length") {
            if length.is_some() {
                return Err(HeaderError::DuplicateContentLength);
            }
            length = Some(parse_length(value)?);
        }
    }
    length.ok_or(HeaderError::NoContentLength)
}

/// The lines of a block split at `\r\n`.
fn split_lines(block: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = Some(block);
    std::iter::from_fn(move || {
        let line = rest?;
        match find(line, b"\r\n") {
            Some(end) => {
                rest = Some(&line[end + 2..]);
                Some(&line[..end])
            }
            None => rest.take(),
        }
    })
}

/// `Name: value`, the name a token (RFC 9110), the value without `\r` or `\n`.
fn parse_line(line: &[u8]) -> Result<(&[u8], &[u8]), HeaderError> {
    let colon = line
        .iter()
        .position(|&b| b == b':')
        .ok_or(HeaderError::BadLine)?;
    let (name, value) = (&line[..colon], &line[colon + 1..]);
    let token = !name.is_empty() && name.iter().all(|&b| is_token_byte(b));
    if !token || value.iter().any(|&b| b == b'\r' || b == b'\n') {
        return Err(HeaderError::BadLine);
    }
    Ok((name, value))
}

fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// A decimal length with optional ASCII whitespace around it.
fn parse_length(value: &[u8]) -> Result<u64, HeaderError> {
    let digits = value.trim_ascii();
    if digits.is_empty() {
        return Err(HeaderError::BadContentLength);
    }
    digits.iter().try_fold(0u64, |n, &b| {
        let digit = b.is_ascii_digit().then(|| u64::from(b - b'0'));
        digit
            .and_then(|d| n.checked_mul(10)?.checked_add(d))
            .ok_or(HeaderError::BadContentLength)
    })
}

/// The first position of `needle` in `haystack`.
fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The first position of lower-case `needle` in `haystack`, ignoring ASCII case.
fn find_ignore_case(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|w| w.eq_ignore_ascii_case(needle))
}
