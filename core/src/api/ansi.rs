//! Plain text from terminal output, for `execute-command` answers.
//!
//! The grammar is [`crate::term`]'s (one scanner for replay hygiene and for this): text is
//! what that parser reads in ground state; every escape sequence and string is left out.

use crate::term::TermState;

/// Removes escape sequences (CSI, OSC, DCS/SOS/PM/APC, two- and three-byte `ESC` ones)
/// and control characters from terminal output and decodes it lossily as UTF-8.
///
/// `\n` and `\t` stay; `\r` is dropped before `\n` (a pty turns `\n` into `\r\n`), kept
/// elsewhere; an unterminated sequence at the end is dropped. Sequences end where
/// [`TermState`] ends them (as xterm.js does): `CAN`/`SUB` abort one, and a control inside
/// one is part of it.
pub fn strip_ansi(bytes: &[u8]) -> String {
    let mut text = Vec::with_capacity(bytes.len());
    TermState::new().advance_text(bytes, &mut text);
    let mut out = String::with_capacity(text.len());
    for c in String::from_utf8_lossy(&text).chars() {
        push_plain(&mut out, c);
    }
    out
}

/// A character of ground-state text: keep printable ones, `\n`, `\t` and `\r`; drop other
/// controls (C0, DEL and C1).
fn push_plain(out: &mut String, c: char) {
    match c {
        '\n' => {
            while out.ends_with('\r') {
                out.pop();
            }
            out.push('\n');
        }
        '\t' | '\r' => out.push(c),
        _ if c.is_control() => {}
        _ => out.push(c),
    }
}
#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn plain_text_passes() {
        assert_eq!(strip_ansi(b"hello\tworld\n"), "hello\tworld\n");
        assert_eq!(strip_ansi("héllo ✓\n".as_bytes()), "héllo ✓\n");
    }

    #[test]
    fn crlf_becomes_lf_and_lone_cr_stays() {
        assert_eq!(strip_ansi(b"a\r\nb\r\r\nc\rd"), "a\nb\nc\rd");
        assert_eq!(strip_ansi(b"a\r\x1b[K\n"), "a\n");
    }

    #[test]
    fn csi_sequences_go() {
        assert_eq!(
            strip_ansi(b"\x1b[1;31mred\x1b[0m \x1b[?2004h\x1b[2J"),
            "red "
        );
        assert_eq!(strip_ansi(b"\x1b[38:2:255:0:0mx"), "x");
    }

    #[test]
    fn osc_sequences_go() {
        assert_eq!(
            strip_ansi(b"\x1b]0;title\x07a\x1b]7777;open;f;/p\x1b\\b"),
            "ab"
        );
        assert_eq!(strip_ansi(b"\x1b]52;c;aGk=\x07ok"), "ok");
    }

    #[test]
    fn strings_and_short_escapes_go() {
        assert_eq!(strip_ansi(b"\x1bP+q544e\x1b\\a\x1b_apc\x1b\\b"), "ab");
        assert_eq!(strip_ansi(b"\x1b(Bx\x1b=y\x1b7z\x1b8"), "xyz");
    }

    #[test]
    fn other_controls_go() {
        assert_eq!(strip_ansi(b"a\x07b\x08c\x00d\x7fe"), "abcde");
    }

    #[test]
    fn unterminated_and_aborted_sequences() {
        assert_eq!(strip_ansi(b"ok\x1b[12"), "ok");
        assert_eq!(strip_ansi(b"ok\x1b]0;never ends"), "ok");
        assert_eq!(strip_ansi(b"a\x1b[1\x18b"), "ab");
        assert_eq!(strip_ansi(b"a\x1b]0;t\x1b[31mb"), "ab");
        // The newline runs inside the escape; `b` is the escape's final byte (term/'s grammar).
        assert_eq!(strip_ansi(b"a\x1b\nb"), "a\n");
    }

    #[test]
    fn term_grammar_decides_where_sequences_end() {
        // C1 controls written as UTF-8 start sequences; others are dropped like C0 ones.
        assert_eq!(strip_ansi("a\u{9b}31mb\u{85}c".as_bytes()), "abc");
        // Controls inside a CSI run in place; CAN aborts it.
        assert_eq!(strip_ansi(b"a\x1b[1\r\n2mb\x1b[3\x1ac"), "a\nbc");
        // Non-ASCII text ends an escape (and is consumed by it) or an APC string.
        assert_eq!(strip_ansi("\x1b\u{e9}x".as_bytes()), "x");
        assert_eq!(strip_ansi("\x1b_a\u{e9}cd".as_bytes()), "cd");
        // A multi-byte character split by an escape is replaced, not glued back.
        assert_eq!(strip_ansi(b"\xc3\x1b[0m\xa9x"), "\u{fffd}x");
    }

    #[test]
    fn invalid_utf8_is_replaced() {
        assert_eq!(strip_ansi(b"a\xffb"), "a\u{fffd}b");
    }

    proptest! {
        #[test]
        fn never_panics_and_leaves_no_escape(bytes in proptest::collection::vec(any::<u8>(), 0..1024)) {
            let text = strip_ansi(&bytes);
            prop_assert!(!text.contains('\x1b'));
            prop_assert!(!text.contains("\r\n"));
        }
    }
}
