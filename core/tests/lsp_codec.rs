//! The LSP base-protocol codec: named cases and the properties the module docs promise.

#![allow(clippy::unwrap_used)] // tests may unwrap

use axs_core::lsp::{encode, Decoded, Decoder, HeaderError, Notice, MAX_LSP_MESSAGE};
use proptest::prelude::*;

/// Small limits so that the properties reach them.
const MAX_MESSAGE: usize = 64;
const MAX_HEADER: usize = 48;

fn small() -> Decoder {
    Decoder::with_limits(MAX_MESSAGE, MAX_HEADER)
}

/// Pushes `chunks` one by one, polling until `None` after each and checking the memory
/// bound each time.
fn decode_chunks(mut decoder: Decoder, chunks: &[&[u8]], bound: usize) -> Vec<Decoded> {
    let mut out = Vec::new();
    for chunk in chunks {
        decoder.push(chunk);
        while let Some(item) = decoder.poll() {
            out.push(item);
        }
        assert!(
            decoder.buffered() < bound,
            "holds {} bytes",
            decoder.buffered()
        );
    }
    out
}

fn decode(decoder: Decoder, bytes: &[u8]) -> Vec<Decoded> {
    decode_chunks(decoder, &[bytes], usize::MAX)
}

fn message(text: &str) -> Decoded {
    Decoded::Message(text.into())
}

fn malformed(error: HeaderError) -> Decoded {
    Decoded::Notice(Notice::Malformed(error))
}

/// `bytes` cut at `points` (taken modulo the length, sorted).
fn split_at_points<'a>(bytes: &'a [u8], points: &[usize]) -> Vec<&'a [u8]> {
    let mut cuts: Vec<usize> = points.iter().map(|p| p % (bytes.len() + 1)).collect();
    cuts.sort_unstable();
    let mut chunks = Vec::new();
    let mut from = 0;
    for cut in cuts {
        chunks.push(&bytes[from..cut]);
        from = cut;
    }
    chunks.push(&bytes[from..]);
    chunks
}

#[test]
fn encode_writes_the_length_header() {
    assert_eq!(encode(b"{}"), b"Content-Length: 2\r\n\r\n{}");
    assert_eq!(
        encode("é".as_bytes()),
        "Content-Length: 2\r\n\r\né".as_bytes()
    );
    assert_eq!(encode(b""), b"Content-Length: 0\r\n\r\n");
}

#[test]
fn headers_in_any_case_and_order() {
    let stream = b"content-type: application/vscode-jsonrpc; charset=utf-8\r\n\
        CONTENT-LENGTH:\t3 \r\nX-Other: ignored\r\n\r\n[1]Content-Length: 2\r\n\r\n{}";
    assert_eq!(
        decode(Decoder::new(), stream),
        [message("[1]"), message("{}")]
    );
}

#[test]
fn a_malformed_block_is_reported_once_and_the_next_message_arrives() {
    let mut stream = b"garbage\r\n\r\n".to_vec();
    stream.extend(encode(b"a"));
    assert_eq!(
        decode(Decoder::new(), &stream),
        [malformed(HeaderError::BadLine), message("a")]
    );
    // Junk glued to the header: resync at the name, not only at a line start.
    let mut stream = b"xyz".to_vec();
    stream.extend(encode(b"b"));
    assert_eq!(
        decode(Decoder::new(), &stream),
        [malformed(HeaderError::NoContentLength), message("b")]
    );
}

#[test]
fn the_body_of_a_bad_header_does_not_eat_the_next_messages() {
    // axs 0.2 loses the message after a bad header: its body has no line end, so a
    // line-based resync would glue it to the next header.
    let mut stream = b"Content-Lenght: 5\r\n\r\nhello".to_vec();
    stream.extend(encode(b"{}"));
    stream.extend(encode(b"[]"));
    assert_eq!(
        decode(Decoder::new(), &stream),
        [
            malformed(HeaderError::NoContentLength),
            message("{}"),
            message("[]")
        ]
    );
}

#[test]
fn each_kind_of_malformed_header() {
    let cases: [(&[u8], HeaderError); 4] = [
        (b"Content-Length: -1\r\n\r\n", HeaderError::BadContentLength),
        (
            b"Content-Length: 99999999999999999999999\r\n\r\n",
            HeaderError::BadContentLength,
        ),
        (b"Content Length: 1\r\n\r\nx", HeaderError::BadLine),
        // A bare `\n` does not end a line.
        (b"Content-Length: 2\n\n{}", HeaderError::BadLine),
    ];
    for (bad, error) in cases {
        let mut stream = bad.to_vec();
        stream.extend(encode(b"ok"));
        assert_eq!(
            decode(Decoder::new(), &stream),
            [malformed(error), message("ok")],
            "{}",
            String::from_utf8_lossy(bad)
        );
    }
}

#[test]
fn a_duplicate_length_resyncs_at_the_second_one() {
    let mut stream = b"Content-Length: 1\r\nContent-Length: 2\r\n\r\nxy".to_vec();
    stream.extend(encode(b"ok"));
    assert_eq!(
        decode(Decoder::new(), &stream),
        [
            malformed(HeaderError::DuplicateContentLength),
            message("xy"),
            message("ok")
        ]
    );
}

#[test]
fn a_header_block_without_end_is_malformed_at_the_cap() {
    let stream = b"X-Long: ".repeat(20);
    assert_eq!(decode(small(), &stream), [malformed(HeaderError::TooLong)]);
    assert_eq!(decode(small(), &stream[..MAX_HEADER - 1]), []);
}

#[test]
fn a_body_that_is_not_utf8_is_dropped() {
    let mut stream = encode(b"a\xffb");
    stream.extend(encode(b"ok"));
    assert_eq!(
        decode(Decoder::new(), &stream),
        [
            Decoded::Notice(Notice::NotUtf8 { length: 3 }),
            message("ok")
        ]
    );
}

#[test]
fn a_body_over_the_limit_is_reported_and_skipped_without_buffering() {
    let mut decoder = small();
    decoder.push(b"Content-Length: 1000000\r\n\r\n");
    let notice = Notice::TooLarge { length: 1_000_000 };
    assert_eq!(decoder.poll(), Some(Decoded::Notice(notice.clone())));
    assert_eq!(notice.close().unwrap().0, 1009);
    let chunk = vec![b'x'; 4096];
    for _ in 0..244 {
        decoder.push(&chunk);
        assert_eq!(decoder.poll(), None);
        assert_eq!(decoder.buffered(), 0);
    }
    // The rest of the body, then a good message in the same read.
    let mut tail = vec![b'x'; 1_000_000 - 244 * 4096];
    tail.extend(encode(b"ok"));
    decoder.push(&tail);
    assert_eq!(decoder.poll(), Some(message("ok")));
    assert_eq!(decoder.poll(), None);
}

#[test]
fn a_push_right_after_the_too_large_notice_keeps_the_order() {
    let mut decoder = small();
    // The notice comes out while part of the body is still buffered.
    decoder.push(b"Content-Length: 70\r\n\r\n0123456789");
    assert!(matches!(
        decoder.poll(),
        Some(Decoded::Notice(Notice::TooLarge { length: 70 }))
    ));
    let mut rest = vec![b'x'; 60];
    rest.extend(encode(b"ok"));
    decoder.push(&rest);
    assert_eq!(decoder.poll(), Some(message("ok")));
}

#[test]
fn the_default_limit_is_64_mib() {
    let mut decoder = Decoder::new();
    decoder.push(format!("Content-Length: {}\r\n\r\n", MAX_LSP_MESSAGE + 1).as_bytes());
    let length = (MAX_LSP_MESSAGE + 1) as u64;
    assert_eq!(
        decoder.poll(),
        Some(Decoded::Notice(Notice::TooLarge { length }))
    );
    let mut decoder = Decoder::new();
    decoder.push(format!("Content-Length: {MAX_LSP_MESSAGE}\r\n\r\n").as_bytes());
    assert_eq!(decoder.poll(), None);
}

/// Pieces that reach every corner of the grammar when strung together.
fn piece() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        any::<String>().prop_map(|s| encode(s.as_bytes())),
        prop::collection::vec(any::<u8>(), 0..8).prop_map(|b| encode(&b)),
        prop::collection::vec(any::<u8>(), 0..12),
        prop::sample::select(vec![
            &b"Content-Length: "[..],
            b"content-length:",
            b"Content-Type: x",
            b"Content-Length: 3",
            b"Content-Length: 200\r\n\r\n",
            b"X: y",
            b":",
            b"\r\n",
            b"\r",
            b"\n",
            b"\r\n\r\n",
            b"12",
            b"\xc3",
        ])
        .prop_map(<[u8]>::to_vec),
    ]
}

/// Junk: pieces whose concatenation has no `\r\n\r\n` even after a `\r\n`.
fn junk() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(piece(), 0..12)
        .prop_map(|pieces| pieces.concat())
        .prop_filter("no blank line", |junk| {
            let mut with_crlf = junk.clone();
            with_crlf.extend_from_slice(b"\r\n");
            !with_crlf.windows(4).any(|w| w == b"\r\n\r\n")
        })
}

proptest! {
    #[test]
    fn any_split_gives_the_same_items(
        pieces in prop::collection::vec(piece(), 0..16),
        points in prop::collection::vec(any::<usize>(), 0..8),
    ) {
        let stream = pieces.concat();
        let bound = MAX_MESSAGE.max(MAX_HEADER);
        let whole = decode_chunks(small(), &[&stream], bound);
        let split = decode_chunks(small(), &split_at_points(&stream, &points), bound);
        prop_assert_eq!(split, whole);
    }

    #[test]
    fn decoding_an_encoding_is_the_identity(
        bodies in prop::collection::vec(any::<String>(), 0..8),
        points in prop::collection::vec(any::<usize>(), 0..16),
    ) {
        let stream: Vec<u8> = bodies.iter().flat_map(|b| encode(b.as_bytes())).collect();
        let chunks = split_at_points(&stream, &points);
        let decoded = decode_chunks(Decoder::new(), &chunks, usize::MAX);
        let expected: Vec<Decoded> = bodies.into_iter().map(Decoded::Message).collect();
        prop_assert_eq!(decoded, expected);
    }

    #[test]
    fn after_junk_and_a_line_end_the_next_message_arrives(
        junk in junk(),
        body in "[ -~é✓]{0,16}",
        points in prop::collection::vec(any::<usize>(), 0..4),
    ) {
        let mut stream = junk;
        stream.extend_from_slice(b"\r\n");
        stream.extend(encode(body.as_bytes()));
        let decoded = decode_chunks(small(), &split_at_points(&stream, &points), usize::MAX);
        let messages: Vec<&Decoded> =
            decoded.iter().filter(|d| matches!(d, Decoded::Message(_))).collect();
        prop_assert_eq!(messages, [&Decoded::Message(body)]);
        // At most one notice per resync, and only malformed headers here.
        prop_assert!(decoded.len() <= 2);
    }

    #[test]
    fn arbitrary_bytes_never_panic(
        bytes in prop::collection::vec(any::<u8>(), 0..2048),
        points in prop::collection::vec(any::<usize>(), 0..8),
    ) {
        let bound = MAX_MESSAGE.max(MAX_HEADER);
        decode_chunks(small(), &split_at_points(&bytes, &points), bound);
        decode_chunks(Decoder::new(), &split_at_points(&bytes, &points), MAX_LSP_MESSAGE);
    }
}
