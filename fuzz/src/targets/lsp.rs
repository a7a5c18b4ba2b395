//! The LSP base-protocol codec ([`axs_core::lsp::Decoder`]), with small limits so short
//! inputs reach them.
//!
//! Asserts: memory — once polled dry, the decoder holds no more than the larger limit
//! (a header block or a body in progress), whatever was pushed, and a body over the
//! limit is skipped, never buffered; every message is valid UTF-8 within the limit;
//! encode∘decode round-trips (messages the input picks, encoded and pushed in pieces,
//! come out the same, in order, with no notice); and resync: junk with no blank line in
//! it, then `\r\n` and a message, yields that message.

use axs_core::lsp::{encode, Decoded, Decoder, Notice};

use crate::input::{pieces, Input};

/// Largest message body in the fuzz decoder.
const MAX_MESSAGE: usize = 256;
/// Largest header block in the fuzz decoder.
const MAX_HEADER: usize = 64;

/// Fuzz target `lsp_codec`: the input as a raw stream, then as messages to round-trip.
pub fn codec(data: &[u8]) {
    let mut input = Input::new(data);
    let sizes = input.bytes(2).to_vec();
    let stream = input.rest();
    raw_stream(stream, &sizes);
    let messages: Vec<String> = String::from_utf8_lossy(stream)
        .split('\0')
        .filter(|m| m.len() <= MAX_MESSAGE)
        .map(str::to_string)
        .collect();
    round_trip(&messages, &sizes);
    resync(stream, &sizes);
}

/// A decoder with the fuzz limits.
fn decoder() -> Decoder {
    Decoder::with_limits(MAX_MESSAGE, MAX_HEADER)
}

/// Pushes `pieces`, polling dry after each, checking memory; returns what came out.
fn decode(pieces: &[&[u8]]) -> Vec<Decoded> {
    let mut decoder = decoder();
    let mut out = Vec::new();
    for piece in pieces {
        decoder.push(piece);
        assert!(decoder.buffered() <= MAX_HEADER.max(MAX_MESSAGE) + piece.len());
        while let Some(item) = decoder.poll() {
            out.push(item);
        }
        let held = decoder.buffered();
        assert!(
            held <= MAX_HEADER.max(MAX_MESSAGE),
            "holds {held} bytes after polling"
        );
    }
    out
}

/// Arbitrary bytes: bounded memory, messages within the limit.
fn raw_stream(stream: &[u8], sizes: &[u8]) {
    for item in decode(&pieces(stream, sizes)) {
        match item {
            Decoded::Message(body) => assert!(body.len() <= MAX_MESSAGE),
            Decoded::Notice(Notice::TooLarge { length }) => {
                assert!(length > MAX_MESSAGE as u64)
            }
            Decoded::Notice(_) => {}
        }
    }
}

/// Encoded messages come out as they went in.
fn round_trip(messages: &[String], sizes: &[u8]) {
    let stream: Vec<u8> = messages.iter().flat_map(|m| encode(m.as_bytes())).collect();
    let expected: Vec<Decoded> = messages.iter().cloned().map(Decoded::Message).collect();
    assert_eq!(decode(&pieces(&stream, sizes)), expected);
}

/// Junk without a blank line, then `\r\n` and a message: the message comes out last.
fn resync(junk: &[u8], sizes: &[u8]) {
    let mut stream = junk.to_vec();
    stream.extend_from_slice(b"\r\n");
    if stream.windows(4).any(|w| w == b"\r\n\r\n") {
        return;
    }
    stream.extend_from_slice(&encode(b"{\"jsonrpc\":\"2.0\"}"));
    let out = decode(&pieces(&stream, sizes));
    let last = out.last().cloned();
    assert_eq!(
        last,
        Some(Decoded::Message("{\"jsonrpc\":\"2.0\"}".into())),
        "{out:?}"
    );
}
