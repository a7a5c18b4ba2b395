use super::*;
use proptest::prelude::*;

fn state_after(bytes: &[u8]) -> TermState {
    let mut st = TermState::new();
    st.advance(bytes);
    st
}

fn restored(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    state_after(bytes).restore_sequence(&mut out);
    out
}

fn plan(bytes: &[u8]) -> ReplayPlan {
    plan_replay(&TermState::new(), &[bytes], 0)
}

/// The plan's drops, as byte strings.
fn dropped(bytes: &[u8]) -> Vec<Vec<u8>> {
    plan(bytes)
        .drops
        .iter()
        .map(|d| bytes[d.clone()].to_vec())
        .collect()
}

#[test]
fn fresh_state_is_safe_and_restores_nothing() {
    let st = TermState::new();
    assert!(st.at_safe_cut());
    let mut out = Vec::new();
    st.restore_sequence(&mut out);
    assert!(out.is_empty());
    assert!(restored(b"plain text\r\n\xc3\xa9\x1b[m\x1b[0m\x1b[?25h\x1b[?7h").is_empty());
}

#[test]
fn safe_cuts() {
    assert!(!state_after(b"\x1b").at_safe_cut());
    assert!(!state_after(b"\x1b[1;3").at_safe_cut());
    assert!(state_after(b"\x1b[1;3m").at_safe_cut());
    assert!(!state_after(b"\xe2\x82").at_safe_cut());
    assert!(state_after(b"\xe2\x82\xac").at_safe_cut());
    assert!(!state_after(b"\x1b]0;title").at_safe_cut());
    assert!(state_after(b"\x1b]0;title\x07").at_safe_cut());
    assert!(!state_after(b"\x1bP$qm").at_safe_cut());
    assert!(state_after(b"\x1bP$qm\x1b\\").at_safe_cut());
    assert!(!state_after(b"\x1b_apc").at_safe_cut());
    // CAN and SUB abort; ESC inside a sequence starts a new one.
    assert!(state_after(b"\x1b[1;3\x18").at_safe_cut());
    assert!(state_after(b"\x1b]0;t\x1a").at_safe_cut());
    assert!(!state_after(b"\x1b[1\x1b[").at_safe_cut());
    // A raw 0x9B is not a control (stray UTF-8 continuation)...
    assert!(state_after(b"a\x9b").at_safe_cut());
    // ...but the code point U+009B is CSI, as in xterm.js.
    assert!(!state_after(b"\xc2\x9b").at_safe_cut());
    assert_eq!(restored(b"\xc2\x9b?2004h"), b"\x1b[?2004h");
    // U+009C ends a string.
    assert!(state_after(b"\x1b]0;t\xc2\x9c").at_safe_cut());
}

#[test]
fn dec_modes_restore() {
    let cases: &[(&[u8], &[u8])] = &[
        (b"\x1b[?1h", b"\x1b[?1h"),
        (b"\x1b[?6h", b"\x1b[?6h"),
        (b"\x1b[?7l", b"\x1b[?7l"),
        (b"\x1b[?25l", b"\x1b[?25l"),
        (b"\x1b[?45h", b"\x1b[?45h"),
        (b"\x1b[?1004h", b"\x1b[?1004h"),
        (b"\x1b[?2004h", b"\x1b[?2004h"),
        (b"\x1b[?9h", b"\x1b[?9h"),
        (b"\x1b[?1000h", b"\x1b[?1000h"),
        (b"\x1b[?1002h", b"\x1b[?1002h"),
        (b"\x1b[?1003h", b"\x1b[?1003h"),
        (b"\x1b[?1000;1006h", b"\x1b[?1000;1006h"),
        (b"\x1b[?1005h", b"\x1b[?1005h"),
        (b"\x1b[?1015h", b"\x1b[?1015h"),
        (b"\x1b[?1016h", b"\x1b[?1016h"),
        (b"\x1b[?1049h", b"\x1b[?1049h"),
        (b"\x1b[?1047h", b"\x1b[?1049h"),
        (b"\x1b[?47h", b"\x1b[?1049h"),
        (b"\x1b[?66h", b"\x1b="),
        (b"\x1b=", b"\x1b="),
        (b"\x1b[4h", b"\x1b[4h"),
        (b"\x1b[20h", b"\x1b[20h"),
        (b"\x1b[3;20r", b"\x1b[3;20r"),
        (b"\x1b[5r", b"\x1b[5r"),
        (b"\x1b[2 q", b"\x1b[2 q"),
        (b"\x1b(0", b"\x1b(0"),
        (b"\x1b)0\x0e", b"\x1b)0\x0e"),
        (b"\x1b*A\x1bn", b"\x1b*A\x1bn"),
        (b"\x1b+0\x1bo", b"\x1b+0\x1bo"),
    ];
    for (input, want) in cases {
        assert_eq!(
            restored(input),
            *want,
            "{:?}",
            String::from_utf8_lossy(input)
        );
    }
}

#[test]
fn modes_reset() {
    assert!(restored(b"\x1b[?1h\x1b[?1l").is_empty());
    assert!(
        restored(b"\x1b[?1003h\x1b[?1000l").is_empty(),
        "any mouse reset"
    );
    assert!(restored(b"\x1b[?1049h\x1b[?1049l").is_empty());
    assert!(restored(b"\x1b=\x1b>").is_empty());
    assert!(restored(b"\x1b(0\x1b(B").is_empty());
    assert_eq!(
        restored(b"\x1b)0\x0e\x0f"),
        b"\x1b)0",
        "G1 stays designated"
    );
    assert!(restored(b"\x1b[3;20r\x1b[r").is_empty());
    assert!(restored(b"\x1b[5;5r").is_empty(), "one-line region ignored");
    assert!(restored(b"\x1b[?1006h\x1b[?1006l").is_empty());
    let all =
        b"\x1b[?1;6;45;1004;2004;1002;1006;1049h\x1b[?7;25l\x1b=\x1b(0\x1b[1;31m\x1b[4h\x1b[2;9r";
    assert!(restored(&[&all[..], b"\x1bc"].concat()).is_empty(), "RIS");
    // DECSTR leaves mouse, encoding and screen alone.
    assert_eq!(
        restored(&[&all[..], b"\x1b[!p"].concat()),
        b"\x1b[?1049h\x1b[?1002;1006h"
    );
}

#[test]
fn pen_restore() {
    let cases: &[(&[u8], &[u8])] = &[
        (b"\x1b[1m", b"\x1b[0;1m"),
        (b"\x1b[1;2;3;5;7;8;9;53m", b"\x1b[0;1;2;3;5;7;8;9;53m"),
        (b"\x1b[1;2;22m", b""),
        (b"\x1b[4m", b"\x1b[0;4m"),
        (b"\x1b[4:3m", b"\x1b[0;4:3m"),
        (b"\x1b[21m", b"\x1b[0;4:2m"),
        (b"\x1b[4:3;24m", b""),
        (b"\x1b[31m", b"\x1b[0m\x1b[31m"),
        (b"\x1b[97;104m", b"\x1b[0m\x1b[97m\x1b[104m"),
        (b"\x1b[38;5;200m", b"\x1b[0m\x1b[38;5;200m"),
        (b"\x1b[38:5:200m", b"\x1b[0m\x1b[38;5;200m"),
        (b"\x1b[48;2;1;2;3m", b"\x1b[0m\x1b[48;2;1;2;3m"),
        (b"\x1b[48:2::1:2:3m", b"\x1b[0m\x1b[48;2;1;2;3m"),
        (b"\x1b[38:2:1:2:3m", b"\x1b[0m\x1b[38;2;1;2;3m"),
        (b"\x1b[58:2::9:8:7m", b"\x1b[0m\x1b[58:2::9:8:7m"),
        (b"\x1b[58;5;3m", b"\x1b[0m\x1b[58:5:3m"),
        (b"\x1b[58;5;3;59m", b""),
        (b"\x1b[31;39;41;49m", b""),
        (b"\x1b[1;31m\x1b[m", b""),
        (b"\x1b[38;5;1;1m", b"\x1b[0;1m\x1b[38;5;1m"),
    ];
    for (input, want) in cases {
        assert_eq!(
            String::from_utf8_lossy(&restored(input)),
            String::from_utf8_lossy(want),
            "{:?}",
            String::from_utf8_lossy(input)
        );
    }
}

#[test]
fn saved_pen_follows_the_screen() {
    // 1049 saves the pen on the normal screen and restores it on leaving.
    let st = state_after(b"\x1b[31m\x1b[?1049h\x1b[0;1m");
    let mut out = Vec::new();
    st.restore_sequence(&mut out);
    assert_eq!(out, b"\x1b[0m\x1b[31m\x1b7\x1b[?1049h\x1b[0;1m");
    let mut replayed = TermState::new();
    replayed.advance(&out);
    replayed.advance(b"\x1b[?1049l");
    let mut full = st.clone();
    full.advance(b"\x1b[?1049l");
    assert_eq!(replayed.modes(), full.modes());
    assert_eq!(
        restored(b"\x1b[31m\x1b[?1049h\x1b[0;1m\x1b[?1049l"),
        b"\x1b[0m\x1b[31m\x1b7"
    );
}

#[test]
fn queries_are_dropped() {
    let queries: &[&[u8]] = &[
        b"\x1b[c",
        b"\x1b[0c",
        b"\x1b[>c",
        b"\x1b[>0c",
        b"\x1b[=c",
        b"\x1b[5n",
        b"\x1b[6n",
        b"\x1b[?6n",
        b"\x1b[?996n",
        b"\x1b[?2004$p",
        b"\x1b[4$p",
        b"\x1b[>q",
        b"\x1b[>0q",
        b"\x1b[14t",
        b"\x1b[18t",
        b"\x1b[21t",
        b"\x1b[?u",
        b"\x1b[?1;1;0S",
        b"\x1bP$qm\x1b\\",
        b"\x1bP$q\"p\x1b\\",
        b"\x1bP+q544e\x1b\\",
        b"\x1b]10;?\x07",
        b"\x1b]11;?\x1b\\",
        b"\x1b]4;1;?\x1b\\",
        b"\x1b]4;1;#ffffff;2;?\x07",
        b"\x1b]12;?\xc2\x9c",
        b"\x1b]52;c;aGVsbG8=\x07",
        b"\x1b]52;c;?\x07",
        b"\x1b]7777;open;file;/tmp/x.txt\x07",
        b"\x1b]7777;open;file;/tmp/x.txt\x1b\\",
        b"\xc2\x9b6n",
        b"\xc2\x9d52;c;eA==\xc2\x9c",
    ];
    for q in queries {
        let stream = [&b"before\r\n"[..], q, b"after"].concat();
        assert_eq!(
            dropped(&stream),
            vec![q.to_vec()],
            "{:?}",
            String::from_utf8_lossy(q)
        );
        let replay = apply_plan(&[&stream], &plan(&stream));
        assert_eq!(replay, b"before\r\nafter");
    }
}

#[test]
fn non_queries_are_kept() {
    let kept: &[&[u8]] = &[
        b"\x1b[1;31m",
        b"\x1b[>4;1m",
        b"\x1b[22t",
        b"\x1b[8;24;80t",
        b"\x1b[>1u",
        b"\x1b[?1049h",
        b"\x1b[ q",
        b"\x1b]0;title\x07",
        b"\x1b]10;#ffffff\x07",
        b"\x1b]4;1;#ff0000\x1b\\",
        b"\x1b]8;;http://x\x1b\\",
        b"\x1bPq#0;2;0;0;0-\x1b\\",
        b"\x1b_Gdata\x1b\\",
        b"\x1b[?6\x0en", // a shift inside the query must survive
    ];
    for k in kept {
        let stream = [&b"x\n"[..], k, b"y"].concat();
        assert!(
            dropped(&stream).is_empty(),
            "{:?}",
            String::from_utf8_lossy(k)
        );
    }
    // Incomplete or aborted sequences are not dropped.
    for s in [
        &b"x\n\x1b[6"[..],
        b"x\n\x1b]52;c;abc",
        b"x\n\x1b[6\x18n",
        b"x\n\x1b]52;c\x18",
    ] {
        assert!(dropped(s).is_empty(), "{:?}", String::from_utf8_lossy(s));
    }
}

/// Found by the fuzz target `term_replay`: a shift executed between ESC and the string's
/// introducer belongs to the string's sequence, so a dropped OSC 52 or DCS query took it
/// along and the replay ended in the wrong character set.
#[test]
fn a_shift_before_a_string_query_keeps_the_query() {
    for s in [
        &b"x\n\x1b\x0e]52;c;aGk=\x07y"[..],
        b"x\n\x1b\x0e]11;?\x1b\\y",
        b"x\n\x1b\x0eP$qm\x1b\\y",
    ] {
        assert!(dropped(s).is_empty(), "{:?}", String::from_utf8_lossy(s));
        let replay = apply_plan(&[s], &plan(s));
        assert_eq!(state_after(&replay).modes(), state_after(s).modes());
    }
    // Without the shift they are still left out.
    assert_eq!(dropped(b"x\n\x1b]52;c;aGk=\x07y").len(), 1);
}

/// Found by the fuzz target `term_replay` (second run): an ST that ends a dropped string
/// goes with it, and took along a shift executed inside it (`ESC SO \`).
#[test]
fn a_shift_inside_the_st_of_a_dropped_string_stays() {
    let s = b"x\n\x1bP$q\x1b\x0e\\y";
    assert_eq!(dropped(s), vec![b"\x1bP$q".to_vec()]);
    let replay = apply_plan(&[s], &plan(s));
    assert_eq!(state_after(&replay).modes(), state_after(s).modes());
}

#[test]
fn string_ended_by_another_escape_is_dropped_without_it() {
    let s = b"x\n\x1b]52;c;abc\x1b[1m";
    assert_eq!(dropped(s), vec![b"\x1b]52;c;abc".to_vec()]);
    assert_eq!(apply_plan(&[s], &plan(s)), b"x\n\x1b[1m");
    // A query that starts while another sequence is open stays (removing it would change
    // how the bytes after it parse).
    let s = b"x\n\x1b]0;t\x1b]52;c;abc\x07";
    assert!(dropped(s).is_empty());
    // ST after a dropped string goes with it; a bare ST after a dropped query stays.
    assert_eq!(
        dropped(b"x\n\x1b]52;c;abc\x1b\\y"),
        vec![b"\x1b]52;c;abc\x1b\\".to_vec()]
    );
    assert_eq!(dropped(b"x\n\x1b[c\x1b\\y"), vec![b"\x1b[c".to_vec()]);
}

#[test]
fn cut_rules() {
    // The stream's start is a line start: nothing is cut.
    let fresh = TermState::new();
    assert_eq!(plan_replay(&fresh, &[b"abc\ndef"], 10).cut, 0);
    // So is the position right after a newline.
    let mut after_newline = TermState::new();
    after_newline.advance(b"zz\n");
    assert_eq!(plan_replay(&after_newline, &[b"abc\ndef"], 10).cut, 0);
    // Mid-line: the next line start within the window.
    let mut mid_line = TermState::new();
    mid_line.advance(b"zz");
    let p = plan_replay(&mid_line, &[b"abc\ndef"], 10);
    assert_eq!(p.cut, 4);
    let p = plan_replay(&mid_line, &[b"abc\ndef"], 3);
    assert_eq!(p.cut, 0, "line start beyond the window");
    let p = plan_replay(&mid_line, &[b"abc\ndef"], 4);
    assert_eq!(p.cut, 4);
    // Starting inside a sequence: the first safe position, then a line start near it.
    let mid = state_after(b"\x1b[");
    let p = plan_replay(&mid, &[b"1;31mabc\ndef"], 0);
    assert_eq!(p.cut, 5);
    assert_eq!(p.prefix, b"\x1b[0;1m\x1b[31m");
    let p = plan_replay(&mid, &[b"1;31mabc\ndef"], 4);
    assert_eq!(p.cut, 9);
    // The first safe position is right after a newline: it is the line start.
    let p = plan_replay(&mid, &[b"0m\nabc\ndef"], 100);
    assert_eq!(p.cut, 3);
    // Inside a UTF-8 character.
    let p = plan_replay(&state_after(b"\xe2"), &[b"\x82\xacx"], 0);
    assert_eq!(p.cut, 2);
    // A newline inside a sequence is no line start.
    let p = plan_replay(&mid_line, &[b"a\x1b[\n1mb\nc"], 100);
    assert_eq!(p.cut, 8);
    // Never safe: empty replay.
    let p = plan_replay(&state_after(b"\x1b]0;"), &[b"endless title"], 100);
    assert_eq!(p.cut, 13);
    assert!(p.drops.is_empty());
    let p = plan_replay(&fresh, &[], 100);
    assert_eq!(
        p,
        ReplayPlan {
            cut: 0,
            prefix: vec![],
            drops: vec![]
        }
    );
}

/// A stream exercising every kind of sequence the scanner knows.
const RICH: &[u8] = b"\x1b[?1049h\x1b[1;38:2::1:2:3mhi \xe2\x82\xac\r\n\x1b[6n\x1b]52;c;eA==\x1b\\\
\x1b(0\x0eq\x0f\x1b[2;20r\x1b]10;?\x07\x1bP$qm\x1b\\\xc2\x9b?2004h\n\x1b]7777;open;file;/a\x07\
\x1b[c\x1b[?1000;1006h\xf0\x9f\x8e\x89\x1b=\x1b[0m\x1b]0;t\x1b[5 q\x1b7\x1b[31m\n\x1b[?u";

#[test]
fn plan_is_the_same_for_every_split() {
    for window in [0, 5, 100] {
        let whole = plan_replay(&TermState::new(), &[RICH], window);
        assert!(!whole.drops.is_empty());
        for i in 0..=RICH.len() {
            let (a, b) = RICH.split_at(i);
            assert_eq!(
                plan_replay(&TermState::new(), &[a, b], window),
                whole,
                "split at {i}"
            );
            for j in i..=RICH.len() {
                let (b1, b2) = b.split_at(j - i);
                assert_eq!(plan_replay(&TermState::new(), &[a, b1, b2], window), whole);
            }
        }
        // And from every starting state inside the stream.
        for k in 0..=RICH.len() {
            let start = state_after(&RICH[..k]);
            let rest = &RICH[k..];
            let whole = plan_replay(&start, &[rest], window);
            for i in 0..=rest.len() {
                let (a, b) = rest.split_at(i);
                assert_eq!(plan_replay(&start, &[a, b], window), whole);
            }
        }
    }
}

#[test]
fn advance_is_the_same_for_every_split() {
    let whole = state_after(RICH);
    for i in 0..=RICH.len() {
        let mut st = state_after(&RICH[..i]);
        st.advance(&RICH[i..]);
        assert_eq!(st, whole, "split at {i}");
    }
    let mut bytewise = TermState::new();
    for b in RICH {
        bytewise.advance(std::slice::from_ref(b));
    }
    assert_eq!(bytewise, whole);
}

/// One piece of a generated stream.
fn piece() -> impl Strategy<Value = Vec<u8>> {
    let lit = |s: &'static [u8]| Just(s.to_vec());
    let text = prop_oneof![
        "[ -~]{0,12}".prop_map(String::into_bytes),
        lit(b"\n"),
        lit(b"\r\n"),
        lit("é日本🎉".as_bytes()),
        lit(b"\t\x08\x07"),
    ];
    let dec_mode = prop::sample::select(vec![
        1u16, 6, 7, 25, 45, 66, 1004, 2004, 9, 1000, 1002, 1003, 1005, 1006, 1015, 1016, 47, 1047,
        1048, 1049, 12, 3,
    ]);
    let modes = (prop::collection::vec(dec_mode, 1..4), any::<bool>()).prop_map(|(ms, on)| {
        let list: Vec<String> = ms.iter().map(u16::to_string).collect();
        format!("\x1b[?{}{}", list.join(";"), if on { 'h' } else { 'l' }).into_bytes()
    });
    let ansi_mode = (prop::sample::select(vec![4u16, 20, 2]), any::<bool>())
        .prop_map(|(m, on)| format!("\x1b[{m}{}", if on { 'h' } else { 'l' }).into_bytes());
    let sgr_part = prop_oneof![
        (0u16..110).prop_map(|n| n.to_string()),
        (0u16..6).prop_map(|n| format!("4:{n}")),
        (prop::sample::select(vec![38u16, 48, 58]), any::<u8>())
            .prop_map(|(k, n)| format!("{k};5;{n}")),
        (prop::sample::select(vec![38u16, 48, 58]), any::<u8>())
            .prop_map(|(k, n)| format!("{k}:5:{n}")),
        (prop::sample::select(vec![38u16, 48, 58]), any::<[u8; 3]>())
            .prop_map(|(k, [r, g, b])| format!("{k};2;{r};{g};{b}")),
        (prop::sample::select(vec![38u16, 48, 58]), any::<[u8; 3]>())
            .prop_map(|(k, [r, g, b])| format!("{k}:2::{r}:{g}:{b}")),
        Just(String::new()),
    ];
    let sgr = prop::collection::vec(sgr_part, 0..5)
        .prop_map(|ps| format!("\x1b[{}m", ps.join(";")).into_bytes());
    let region = (0u16..30, 0u16..30, any::<bool>()).prop_map(|(t, b, two)| {
        if two {
            format!("\x1b[{t};{b}r").into_bytes()
        } else {
            format!("\x1b[{t}r").into_bytes()
        }
    });
    let charset = prop_oneof![
        (
            prop::sample::select(b"()*+-./".to_vec()),
            prop::sample::select(b"0AB<4".to_vec())
        )
            .prop_map(|(i, f)| vec![0x1b, i, f]),
        lit(b"\x0e"),
        lit(b"\x0f"),
        lit(b"\x1bn"),
        lit(b"\x1bo"),
    ];
    let misc = prop_oneof![
        lit(b"\x1b7"),
        lit(b"\x1b8"),
        lit(b"\x1b[s"),
        lit(b"\x1b[u"),
        lit(b"\x1b="),
        lit(b"\x1b>"),
        lit(b"\x1b[!p"),
        lit(b"\x1bc"),
        (0u16..8).prop_map(|n| format!("\x1b[{n} q").into_bytes()),
    ];
    let query = prop::sample::select(vec![
        &b"\x1b[c"[..],
        b"\x1b[>c",
        b"\x1b[6n",
        b"\x1b[?6n",
        b"\x1b[?2004$p",
        b"\x1b[>q",
        b"\x1b[14t",
        b"\x1b[?u",
        b"\x1bP$qm\x1b\\",
        b"\x1bP+q544e\x1b\\",
        b"\x1b]10;?\x07",
        b"\x1b]4;1;?\x1b\\",
        b"\x1b]52;c;aGk=\x07",
        b"\x1b]7777;open;file;/x\x07",
        b"\x1b]0;title\x07",
        b"\xc2\x9b5n",
        b"\x1b[?6\x0en",
        b"\x1b[\x0fc",
    ])
    .prop_map(<[u8]>::to_vec);
    let garbage = prop_oneof![
        prop::collection::vec(any::<u8>(), 0..6),
        prop::collection::vec(
            prop::sample::select(
                b"\x1b[]P;:?$+0159hlmq\x07\x18\x1a\\\xc2\x9b\x9c\xe2\x82\x0e".to_vec()
            ),
            0..6
        ),
    ];
    // Sequences left open, so that the next piece lands inside them.
    let open = prop::sample::select(vec![
        &b"\x1b[1;"[..],
        b"\x1b]0;t",
        b"\x1bP1$",
        b"\x1b[?6\x0e",
        b"\x1b[\x0f",
        b"\x1b_x",
        b"\xc2",
        b"\xe2\x82",
    ])
    .prop_map(<[u8]>::to_vec);
    prop_oneof![
        4 => text,
        1 => open,
        2 => modes,
        1 => ansi_mode,
        3 => sgr,
        1 => region,
        2 => charset,
        1 => misc,
        2 => query,
        1 => garbage,
    ]
}

fn stream() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(piece(), 0..40).prop_map(|ps| ps.concat())
}

/// Splits `bytes` at the given (unsorted, possibly out-of-range) points.
fn split_at_points<'a>(bytes: &'a [u8], points: &[usize]) -> Vec<&'a [u8]> {
    let mut cuts: Vec<usize> = points.iter().map(|p| p % (bytes.len() + 1)).collect();
    cuts.sort_unstable();
    let mut out = Vec::new();
    let mut last = 0;
    for c in cuts {
        out.push(&bytes[last..c]);
        last = c;
    }
    out.push(&bytes[last..]);
    out
}

/// `apply_plan` the obvious way, byte by byte.
fn naive_apply(bytes: &[u8], p: &ReplayPlan) -> Vec<u8> {
    let kept = (p.cut..bytes.len()).filter(|i| !p.drops.iter().any(|d| d.contains(i)));
    p.prefix
        .iter()
        .copied()
        .chain(kept.map(|i| bytes[i]))
        .collect()
}

fn check_plan_shape(start: &TermState, chunks: &[&[u8]], p: &ReplayPlan) {
    let total: usize = chunks.iter().map(|c| c.len()).sum();
    let bytes = chunks.concat();
    assert!(p.cut <= total);
    let mut at_cut = start.clone();
    at_cut.advance(&bytes[..p.cut]);
    assert!(
        p.cut == total || at_cut.at_safe_cut(),
        "cut {} is not safe",
        p.cut
    );
    let mut prefix = Vec::new();
    at_cut.restore_sequence(&mut prefix);
    assert_eq!(prefix, p.prefix);
    let mut last = p.cut;
    for d in &p.drops {
        assert!(
            d.start >= last && d.start < d.end && d.end <= total,
            "{:?}",
            p.drops
        );
        last = d.end;
    }
    assert_eq!(apply_plan(chunks, p), naive_apply(&bytes, p));
}

proptest! {
    #[test]
    fn replay_restores_the_tracked_state(
        s in stream(),
        split in any::<usize>(),
        points in prop::collection::vec(any::<usize>(), 0..4),
        window in 0usize..64,
    ) {
        // The ring holds s[k..]; the state before it comes from s[..k].
        let k = split % (s.len() + 1);
        let start = state_after(&s[..k]);
        let chunks = split_at_points(&s[k..], &points);
        let p = plan_replay(&start, &chunks, window);
        check_plan_shape(&start, &chunks, &p);
        let full = state_after(&s);
        if p.cut < s.len() - k {
            let replay = apply_plan(&chunks, &p);
            let replayed = state_after(&replay);
            prop_assert_eq!(replayed.modes(), full.modes());
            // Leaving sequences out must not change how the rest parses.
            prop_assert_eq!((replayed.state, replayed.utf8_need), (full.state, full.utf8_need));
            let undropped = [&p.prefix[..], &s[k + p.cut..]].concat();
            prop_assert_eq!(state_after(&undropped).modes().clone(), full.modes().clone());
        }
        // Chunk boundaries change nothing.
        prop_assert_eq!(&plan_replay(&start, &[&s[k..]], window), &p);
        let mut split_state = TermState::new();
        for c in split_at_points(&s, &points) {
            split_state.advance(c);
        }
        prop_assert_eq!(split_state, full);
    }

    #[test]
    fn arbitrary_bytes_never_panic(
        pre in prop::collection::vec(any::<u8>(), 0..64),
        s in prop::collection::vec(any::<u8>(), 0..512),
        points in prop::collection::vec(any::<usize>(), 0..4),
        window in 0usize..64,
    ) {
        let start = state_after(&pre);
        let chunks = split_at_points(&s, &points);
        let p = plan_replay(&start, &chunks, window);
        check_plan_shape(&start, &chunks, &p);
        prop_assert_eq!(&plan_replay(&start, &[&s], window), &p);
        if p.cut < s.len() {
            let mut full = start.clone();
            full.advance(&s);
            let replay = apply_plan(&chunks, &p);
            prop_assert_eq!(state_after(&replay).modes().clone(), full.modes().clone());
        }
    }
}

proptest! {
    #[test]
    fn advance_text_parses_like_advance(s in stream(), text in "[ -~\u{a0}-\u{10ffff}\n]{0,40}") {
        let mut with_text = TermState::new();
        let mut out = Vec::new();
        with_text.advance_text(&s, &mut out);
        prop_assert_eq!(&with_text, &state_after(&s));
        // No byte of an escape sequence is text.
        prop_assert!(!out.contains(&0x1b));
        // Text alone is all text.
        let mut plain = Vec::new();
        TermState::new().advance_text(text.as_bytes(), &mut plain);
        prop_assert_eq!(plain, text.as_bytes());
    }
}

#[test]
fn bounded_plans_keep_at_most_max_drops_and_the_same_screen() {
    let mut stream = Vec::new();
    for i in 0..50 {
        stream.extend_from_slice(format!("line {i}\r\n\x1b[c\x1b[6n").as_bytes());
    }
    stream.extend_from_slice(b"\x1b[?1049htail\r\n");
    let fresh = TermState::new();
    let full = plan_replay(&fresh, &[&stream], 64);
    assert_eq!(full.drops.len(), 100);
    for split in [0, 7, stream.len() / 2, stream.len()] {
        let chunks: [&[u8]; 2] = [&stream[..split], &stream[split..]];
        let bounded = plan_replay_bounded(&fresh, &chunks, 64, 10);
        assert!(bounded.drops.len() <= 10, "{} drops", bounded.drops.len());
        assert!(bounded.cut > full.cut && bounded.cut <= stream.len());
        // The shortened replay still brings a fresh terminal to the stream's state.
        let replayed = apply_plan(&chunks, &bounded);
        assert_eq!(state_after(&replayed).modes(), state_after(&stream).modes());
        assert!(!replayed.windows(3).any(|w| w == b"\x1b[c"));
    }
    assert_eq!(plan_replay_bounded(&fresh, &[&stream], 64, 1000), full);
}

/// Every event the scanner reports, in order.
#[derive(Debug, Default, PartialEq, Eq)]
struct Recorder(Vec<Event>);

#[derive(Debug, PartialEq, Eq)]
enum Event {
    Begin(usize, bool),
    Finish(usize, Verdict),
    Inside(u8),
}

impl Events for Recorder {
    fn begin(&mut self, pos: usize, clean: bool) {
        self.0.push(Event::Begin(pos, clean));
    }
    fn finish(&mut self, end: usize, verdict: Verdict) {
        self.0.push(Event::Finish(end, verdict));
    }
    fn execute_inside(&mut self, c: u8) {
        self.0.push(Event::Inside(c));
    }
}

/// The scanner without its fast paths: every byte through the state machine.
fn scan_bytewise(start: &TermState, bytes: &[u8]) -> (TermState, Recorder) {
    let mut st = start.clone();
    let mut ev = Recorder::default();
    for (i, &b) in bytes.iter().enumerate() {
        st.byte(b, i, &mut ev);
    }
    (st, ev)
}

/// The scanner as `advance` and `plan_replay` run it, fed in pieces.
fn scan_fast(start: &TermState, chunks: &[&[u8]]) -> (TermState, Recorder) {
    let mut st = start.clone();
    let mut ev = Recorder::default();
    let mut base = 0;
    for chunk in chunks {
        st.feed(chunk, base, &mut ev);
        base += chunk.len();
    }
    (st, ev)
}

#[test]
fn fast_paths_agree_with_the_state_machine_on_colourful_text() {
    let text: &[u8] = b"\x1b[1;31mcargo\x1b[0m build \x1b[32mok\x1b[0m \xc3\xa9t\xc3\xa9 \
\x1b[38;5;208mx\x1b[48:2::1:2:3m\x1b[?25l\x1b[>c\x1b[ q\x1b[1;2\x07m\x1b[?1;?2h";
    for i in 0..=text.len() {
        let (a, b) = text.split_at(i);
        assert_eq!(
            scan_fast(&TermState::new(), &[a, b]),
            scan_bytewise(&TermState::new(), text),
            "split at {i}"
        );
    }
}

/// CSI-like sequences that go wrong in every way the fast path must notice: prefixes in
/// the wrong place, intermediates before parameters, controls, DEL, C1, UTF-8, aborts.
fn csi_garbage() -> impl Strategy<Value = Vec<u8>> {
    let alphabet =
        b"0123456789;:<=>?!\"$ '+hlmcnpqrstuS~@\x07\x0e\x0f\x18\x1b\x7f\xc2\x9b\xe2".to_vec();
    prop::collection::vec(prop::sample::select(alphabet), 0..8)
        .prop_map(|body| [&b"\x1b["[..], &body].concat())
}

/// CSIs with long parameter lists (around the 32 kept) and long numbers (around the
/// 65534 a parameter saturates at), which the parameter fast path must store as `put` does.
fn csi_long() -> impl Strategy<Value = Vec<u8>> {
    let param = prop_oneof!["[0-9]{0,3}", "[0-9]{4,7}", Just("65535".to_string())];
    let list = prop::collection::vec((param, prop::sample::select(vec![";", ":"])), 25..40);
    (list, prop::sample::select(b"mHhr".to_vec())).prop_map(|(ps, fin)| {
        let mut out = b"\x1b[".to_vec();
        for (p, sep) in ps {
            out.extend_from_slice(p.as_bytes());
            out.extend_from_slice(sep.as_bytes());
        }
        out.push(fin);
        out
    })
}

/// Streams for the fast paths: generated pieces, CSI garbage and ASCII text between.
fn fast_path_stream() -> impl Strategy<Value = Vec<u8>> {
    let part = prop_oneof![
        2 => piece(),
        2 => csi_garbage(),
        1 => csi_long(),
        1 => "[ -~]{0,20}".prop_map(String::into_bytes),
    ];
    prop::collection::vec(part, 0..30).prop_map(|ps| ps.concat())
}

proptest! {
    #[test]
    fn fast_paths_agree_with_the_state_machine(
        pre in fast_path_stream(),
        s in prop_oneof![fast_path_stream(), prop::collection::vec(any::<u8>(), 0..256)],
        points in prop::collection::vec(any::<usize>(), 0..4),
    ) {
        // Any starting state (inside sequences and characters too), any split.
        let start = state_after(&pre);
        let chunks = split_at_points(&s, &points);
        prop_assert_eq!(scan_fast(&start, &chunks), scan_bytewise(&start, &s));
    }
}

/// The definition [`inert_utf8_prefix`] computes in steps: the valid UTF-8 prefix of the
/// bytes before the first control, DEL or 0xC2.
fn inert_utf8_prefix_reference(rest: &[u8]) -> usize {
    let stop = rest
        .iter()
        .position(|&b| b < 0x20 || b == 0x7f || b == 0xc2)
        .unwrap_or(rest.len());
    match std::str::from_utf8(&rest[..stop]) {
        Ok(_) => stop,
        Err(e) => e.valid_up_to(),
    }
}

/// Bytes rich in what ends or splits an inert run: multi-byte characters (cut anywhere
/// by the 64-byte steps), stray continuation and lead bytes, controls, 0xC2.
fn utf8_mix() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        20 => Just("é".as_bytes().to_vec()),
        20 => Just("日本".as_bytes().to_vec()),
        20 => Just("🦀".as_bytes().to_vec()),
        20 => Just(b"abc".to_vec()),
        1 => Just(vec![0x80]),
        1 => Just(vec![0xe6, 0x97]),
        1 => Just(vec![0xf0]),
        1 => Just(vec![b'\n']),
        1 => Just(vec![0x7f]),
        1 => Just(vec![0xc2, 0xa0]),
        1 => any::<u8>().prop_map(|b| vec![b]),
    ];
    prop::collection::vec(piece, 0..200).prop_map(|pieces| pieces.concat())
}

proptest! {
    #[test]
    fn inert_utf8_prefix_is_the_valid_run_before_the_first_stop(bytes in utf8_mix(), skip in 0usize..70) {
        let rest = &bytes[skip.min(bytes.len())..];
        prop_assert_eq!(inert_utf8_prefix(rest), inert_utf8_prefix_reference(rest));
    }
}

#[test]
fn inert_utf8_prefix_continues_a_character_cut_by_a_step() {
    // 63 ASCII bytes, then a 3-byte character across the first 64-byte step's end.
    let mut bytes = vec![b'a'; 63];
    bytes.extend_from_slice("日日".as_bytes());
    bytes.push(b'\n');
    assert_eq!(inert_utf8_prefix(&bytes), 69);
    assert_eq!(inert_utf8_prefix(&bytes[..65]), 63);
    bytes[64] = b'A'; // the first character made invalid: the run ends before it
    assert_eq!(inert_utf8_prefix(&bytes), 63);
}

proptest! {
    #[test]
    fn sgr_without_subs_applies_like_the_general_sgr(
        start in stream(),
        vals in prop::collection::vec(
            prop_oneof![
                0u16..110,
                prop::sample::select(vec![38u16, 48, 58, 2, 5]),
                Just(EMPTY),
                any::<u16>(),
            ],
            0..40,
        ),
    ) {
        let mut params = Params::default();
        params.clear();
        for (k, v) in vals.iter().enumerate() {
            if k > 0 {
                params.push(false);
            }
            if !params.full {
                params.vals[params.len() - 1] = *v;
            }
        }
        let mut fast = state_after(&start).modes().clone();
        let mut general = fast.clone();
        fast.sgr_without_subs(&params);
        general.sgr_with_subs(&params);
        prop_assert_eq!(fast, general);
    }
}
