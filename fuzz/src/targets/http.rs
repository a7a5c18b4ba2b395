//! HTTP request heads ([`axs_core::http::parse_head`]) and query / percent-decoding.
//!
//! `head` asserts: a complete head's length is within the buffer and [`MAX_HEAD`]; a
//! buffer of [`MAX_HEAD`] bytes or more is never "partial"; errors are 400 or 431; the
//! head parses the same from exactly its own bytes; and parse∘print round-trips: the
//! parsed head, printed back as a request (path and query percent-encoded), parses to the
//! same head.
//!
//! `query` asserts: decoding never grows the input; decoding an encoding gives the bytes
//! back; text without `%` or `+` decodes to itself; and print∘parse is stable for query
//! strings (the pairs of any query, printed and parsed again, are the same pairs).

use axs_core::http::{parse_head, parse_query, percent_decode, HeadParse, RequestHead, MAX_HEAD};

use super::percent_encode;
use crate::input::Input;

/// Fuzz target `http_head`: arbitrary bytes as a request head.
pub fn head(data: &[u8]) {
    let parsed = parse_head(data);
    let (head, len) = match parsed {
        Ok(HeadParse::Partial) => {
            assert!(data.len() < MAX_HEAD, "a full-size buffer is never partial");
            return;
        }
        Err(e) => {
            assert!(matches!(e.status(), 400 | 431), "{e:?} is {}", e.status());
            return;
        }
        Ok(HeadParse::Complete { head, len }) => (head, len),
    };
    assert!(len <= data.len() && len <= MAX_HEAD, "head length {len}");
    let again = parse_head(&data[..len]);
    assert_eq!(
        again,
        Ok(HeadParse::Complete {
            head: head.clone(),
            len
        })
    );
    check_derived(&head);
    let printed = print_head(&head);
    if printed.len() <= MAX_HEAD {
        let reparsed = parse_head(&printed);
        let expected = Ok(HeadParse::Complete {
            head,
            len: printed.len(),
        });
        assert_eq!(
            reparsed,
            expected,
            "{:?}",
            String::from_utf8_lossy(&printed)
        );
    }
}

/// What the runtimes derive from a head must not panic and must agree with the headers.
fn check_derived(head: &RequestHead) {
    if let Ok(Some(len)) = head.content_length() {
        assert!(
            head.header("content-length").is_some(),
            "length {len} from nowhere"
        );
    }
    if head.is_websocket_upgrade() {
        assert!(head.header("upgrade").is_some());
    }
    if head.expects_continue() {
        assert!(head.header("expect").is_some());
    }
    let _ = head.websocket_key();
}

/// The request line and headers of `head`, as a client would send them.
pub fn print_head(head: &RequestHead) -> Vec<u8> {
    // A target of only a query (`GET ?a=1`) has an empty path; `?` keeps it one.
    let path = percent_encode(head.path.as_bytes(), b"/");
    let mut out = format!("{} {path}", head.method.as_str());
    if !head.query.is_empty() || head.path.is_empty() {
        out.push('?');
        out.push_str(&print_query(&head.query));
    }
    out.push_str(" HTTP/1.1\r\n");
    for (name, value) in &head.headers {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    out.push_str("\r\n");
    out.into_bytes()
}

/// `k=v&k=v`, each part percent-encoded.
pub fn print_query(pairs: &[(String, String)]) -> String {
    let printed: Vec<String> = pairs
        .iter()
        .map(|(k, v)| {
            format!(
                "{}={}",
                percent_encode(k.as_bytes(), b""),
                percent_encode(v.as_bytes(), b"")
            )
        })
        .collect();
    printed.join("&")
}

/// Fuzz target `query`: arbitrary bytes as a query string and as data to encode.
pub fn query(data: &[u8]) {
    let mut input = Input::new(data);
    let plus_is_space = input.byte() & 1 == 1;
    let rest = input.rest();
    let text = String::from_utf8_lossy(rest);
    let decoded = percent_decode(&text, plus_is_space);
    assert!(decoded.len() <= text.len(), "decoding grew {text:?}");
    if !text.contains(['%', '+']) {
        assert_eq!(decoded, text.as_bytes());
    }
    let encoded = percent_encode(rest, b"");
    assert_eq!(percent_decode(&encoded, plus_is_space), rest, "{encoded}");
    let pairs = parse_query(&text);
    assert!(pairs.iter().all(|(k, v)| k.len() + v.len() <= text.len()));
    assert_eq!(parse_query(&print_query(&pairs)), pairs, "{text:?}");
}
