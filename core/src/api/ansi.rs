//! Plain text from terminal output, for `execute-command` answers.

/// Where the scanner is in the escape-sequence grammar (a subset of the DEC/ECMA-48 one).
#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    /// Plain text.
    Ground,
    /// After `ESC`.
    Escape,
    /// After `ESC` and intermediate bytes (`ESC ( B`).
    EscapeIntermediate,
    /// Inside `ESC [ ...` until its final byte.
    Csi,
    /// Inside `ESC ] ...` until `BEL` or `ESC \`.
    Osc,
    /// Inside `ESC P`/`X`/`^`/`_` (DCS, SOS, PM, APC) until `ESC \`.
    Str,
    /// After an `ESC` inside an OSC or string: `\` ends it, anything else starts a new escape.
    StrEscape,
}

/// `CAN` and `SUB` abort any sequence.
fn aborts(byte: u8) -> bool {
    byte == 0x18 || byte == 0x1a
}

/// Removes escape sequences (CSI, OSC, DCS/SOS/PM/APC, two- and three-byte `ESC` ones)
/// and control characters from terminal output and decodes it lossily as UTF-8.
///
/// `\n` and `\t` stay; `\r` is dropped before `\n` (a pty turns `\n` into `\r\n`), kept
/// elsewhere; an unterminated sequence at the end is dropped.
pub fn strip_ansi(bytes: &[u8]) -> String {
    let mut out = Vec::with_capacity(bytes.len());
    let mut state = State::Ground;
    let mut i = 0;
    while let Some(&byte) = bytes.get(i) {
        let (next, consumed) = step(state, byte, &mut out);
        state = next;
        if consumed {
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// One byte in `state`: the next state and whether the byte was consumed (else it is
/// looked at again in the next state).
fn step(state: State, byte: u8, out: &mut Vec<u8>) -> (State, bool) {
    const ESC: u8 = 0x1b;
    match state {
        State::Ground => (ground(byte, out), true),
        State::Escape => match byte {
            b'[' => (State::Csi, true),
            b']' => (State::Osc, true),
            b'P' | b'X' | b'^' | b'_' => (State::Str, true),
            ESC => (State::Escape, true),
            0x20..=0x2f => (State::EscapeIntermediate, true),
            0x30..=0x7e => (State::Ground, true),
            _ if aborts(byte) => (State::Ground, true),
            _ => (State::Ground, false),
        },
        State::EscapeIntermediate => match byte {
            0x20..=0x2f => (State::EscapeIntermediate, true),
            0x30..=0x7e => (State::Ground, true),
            _ => (State::Ground, false),
        },
        State::Csi => match byte {
            0x40..=0x7e => (State::Ground, true),
            ESC => (State::Escape, true),
            _ if aborts(byte) => (State::Ground, true),
            _ => (State::Csi, true),
        },
        State::Osc => match byte {
            0x07 => (State::Ground, true),
            ESC => (State::StrEscape, true),
            _ if aborts(byte) => (State::Ground, true),
            _ => (State::Osc, true),
        },
        State::Str => match byte {
            ESC => (State::StrEscape, true),
            _ if aborts(byte) => (State::Ground, true),
            _ => (State::Str, true),
        },
        State::StrEscape => match byte {
            b'\\' => (State::Ground, true),
            _ => (State::Escape, false),
        },
    }
}

/// A byte of plain text: keep printable text, `\n`, `\t` and `\r`; drop other controls.
fn ground(byte: u8, out: &mut Vec<u8>) -> State {
    match byte {
        0x1b => return State::Escape,
        b'\n' => {
            while out.last() == Some(&b'\r') {
                out.pop();
            }
            out.push(b'\n');
        }
        b'\t' | b'\r' => out.push(byte),
        0x00..=0x1f | 0x7f => {}
        _ => out.push(byte),
    }
    State::Ground
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
        assert_eq!(strip_ansi(b"a\x1b\nb"), "a\nb");
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
