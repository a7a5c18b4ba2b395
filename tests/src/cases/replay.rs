//! Replay after reconnect, resume with `?since=`, and replay hygiene.

use std::path::Path;

use super::{sh_script, when_reading, OrFail, EVENT};
use crate::control;
use crate::server::{Server, TempDir};
use crate::text::{check_numbered, find, first_difference, mode_on, show_tail, strip_escapes};
use crate::ws::Ws;

/// A program that prints `line N` on demand: input `nK` prints the next K lines then `mark I`.
const LINES_ON_DEMAND: &str = r#"stty -echo
i=0
echo START
while read cmd; do
  case "$cmd" in
    n*) end=$((i + ${cmd#n}))
        while [ $i -lt $end ]; do echo "line $i"; i=$((i + 1)); done
        echo "mark $i";;
  esac
done
"#;

fn start_lines(bin: &Path, dir: &TempDir) -> (Server, u32) {
    let cmd = sh_script(dir, "lines.sh", LINES_ON_DEMAND);
    let server = Server::start(bin, &["-c", &cmd], &[]);
    let pid = server.create_terminal(80, 24);
    (server, pid)
}

/// Asks the program for `n` more lines through `ws` and waits for `mark {until}`.
fn more_lines(ws: &mut Ws, n: u64, until: u64) {
    ws.send_text(&format!("n{n}\r")).or_fail();
    ws.wait_for(&format!("mark {until}\r\n"), EVENT).or_fail();
}

/// The exact text the lines program prints for these batches (marks included).
fn expected_text(batches: &[u64]) -> String {
    let mut out = String::from("START\r\n");
    let mut i = 0;
    for b in batches {
        for n in i..i + b {
            out.push_str(&format!("line {n}\r\n"));
        }
        i += b;
        out.push_str(&format!("mark {i}\r\n"));
    }
    out
}

/// Asserts that `got`, escape sequences aside, is exactly `want` (a replay may add a state
/// prefix of escape sequences, nothing else).
fn assert_text(what: &str, got: &[u8], want: &str) {
    let clean = strip_escapes(got);
    if clean != want.as_bytes() {
        let at = first_difference(&clean, want.as_bytes());
        let from = at.saturating_sub(40);
        panic!(
            "{what}: the stream differs from the program's output at byte {at} (of {} received, {} expected):\n\
             received around there: {:?}\nexpected around there: {:?}",
            clean.len(),
            want.len(),
            String::from_utf8_lossy(&clean[from..clean.len().min(at + 60)]),
            &want[from.min(want.len())..want.len().min(at + 60)]
        );
    }
}

fn assert_lines(what: &str, bytes: &[u8], first: u64, end: u64) {
    let nums = check_numbered(bytes, "line ")
        .map_err(|e| format!("{what}: {e}\nreceived tail: {}", show_tail(bytes, 300)))
        .or_fail();
    let want: Vec<u64> = (first..end).collect();
    if nums != want {
        panic!(
            "{what}: expected lines {first}..{end} each once in order; got {} lines, first {:?}, last {:?}",
            nums.len(),
            nums.first(),
            nums.last()
        );
    }
}

/// A reconnecting client gets every line once, in order, replay then live; also when it
/// attaches while the program is printing.
pub fn replay_exact(bin: &Path) {
    let dir = TempDir::new("replay");
    let (server, pid) = start_lines(bin, &dir);
    let path = format!("/terminals/{pid}");
    let ctx = server.proc.context();

    let mut c1 = Ws::attach(server.port, &path, &ctx);
    c1.label = "client 1".into();
    crate::procfs::wait_reading_stdin(pid, EVENT).or_fail();
    more_lines(&mut c1, 100, 100);
    c1.close();
    drop(c1);

    let mut helper = Ws::attach(server.port, &path, &ctx);
    helper.label = "helper".into();
    more_lines(&mut helper, 300, 400);
    helper.close();
    drop(helper);

    let mut c2 = Ws::attach(server.port, &path, &ctx);
    c2.label = "client 2 (reconnect)".into();
    c2.wait_for("mark 400\r\n", EVENT).or_fail();
    more_lines(&mut c2, 100, 500);
    assert_lines("client 2 (replay then live)", &c2.got.binary, 0, 500);
    assert_text(
        "client 2 (replay then live)",
        &c2.got.binary,
        &expected_text(&[100, 300, 100]),
    );
    c2.assert_plain().or_fail();
    assert!(
        c2.got.texts.is_empty(),
        "no text frame expected: {:?}",
        c2.got.texts
    );

    // Attach while output is being produced: replay and live must join without a seam.
    let mut c3 = Ws::attach(server.port, &path, &ctx);
    c3.send_text("n5000\r").or_fail();
    let mut c4 = Ws::attach(server.port, &path, &ctx);
    c4.label = "client 4 (attached during output)".into();
    c4.wait_for("mark 5500\r\n", EVENT).or_fail();
    c3.wait_for("mark 5500\r\n", EVENT).or_fail();
    assert_lines("client 4 (attached during output)", &c4.got.binary, 0, 5500);
    assert_lines("client 3 (attached before)", &c3.got.binary, 0, 5500);
    let all = expected_text(&[100, 300, 100, 5000]);
    assert_text("client 4 (attached during output)", &c4.got.binary, &all);
    assert_text("client 3 (attached before)", &c3.got.binary, &all);
    c4.assert_plain().or_fail();
}

/// `?since=N` resumes exactly after the N bytes the client already has.
///
/// Expectation: an opted-in client's binary frames are exactly the output stream from its
/// offset; it may also get control messages (text frames, see [`control`]) but never extra
/// binary bytes. A resume from an offset the ring still holds is not a replay: no state prefix.
pub fn resume_since(bin: &Path) {
    let dir = TempDir::new("since");
    let (server, pid) = start_lines(bin, &dir);
    let ctx = server.proc.context();
    let path = format!("/terminals/{pid}");

    let mut c1 = Ws::attach(
        server.port,
        &format!("{path}?{}", control::since_query(0)),
        &ctx,
    );
    c1.label = "client 1 (since=0)".into();
    crate::procfs::wait_reading_stdin(pid, EVENT).or_fail();
    more_lines(&mut c1, 100, 100);
    let have = c1.got.binary.len();
    c1.close();
    drop(c1);

    let mut helper = Ws::attach(server.port, &path, &ctx);
    more_lines(&mut helper, 200, 300);
    helper.close();
    drop(helper);

    let query = control::since_query(have);
    let mut c2 = Ws::attach(server.port, &format!("{path}?{query}"), &ctx);
    c2.label = format!("client 2 ({query})");
    c2.wait_for("mark 300\r\n", EVENT).or_fail();
    more_lines(&mut c2, 10, 310);
    assert!(
        c2.got.binary.starts_with(b"line 100\r\n"),
        "{}: the first byte after offset {have} is `line 100`; got {}",
        c2.label,
        show_tail(&c2.got.binary[..c2.got.binary.len().min(200)], 200)
    );
    assert_lines(&c2.label, &c2.got.binary, 100, 310);
    let all = expected_text(&[100, 200, 10]);
    let missed = &all[have.min(all.len())..];
    if c2.got.binary != missed.as_bytes() {
        assert_text(
            &format!("{} (a resume: exact bytes, no prefix)", c2.label),
            &c2.got.binary,
            missed,
        );
        panic!(
            "{}: a resume must send exactly the missed bytes, without escape sequences added; got {}",
            c2.label,
            show_tail(&c2.got.binary[..c2.got.binary.len().min(200)], 200)
        );
    }
    let notice = control::attached(c2.got.texts.iter().map(|(_, t)| t.as_str()));
    if let Some((offset, resumed)) = notice {
        assert_eq!(
            (offset, resumed),
            (Some(have as u64), Some(true)),
            "{}: the attached notice must report the resume at offset {have}: {:?}",
            c2.label,
            c2.got.texts
        );
    }
    for (_, t) in &c2.got.texts {
        assert!(
            control::is_control_message(t),
            "{}: text frame {t:?} is neither a control message nor allowed here",
            c2.label
        );
    }
}

/// The byte sequences that must never be replayed, with names for messages.
const NEVER_REPLAYED: [(&str, &[u8]); 3] = [
    ("OSC 7777 (opens files in the editor)", b"\x1b]7777"),
    ("OSC 52 (clipboard)", b"\x1b]52"),
    ("device attributes query ESC[c", b"\x1b[c"),
];

fn hygiene_script(filler_lines: u32) -> String {
    format!(
        r#"stty -echo
read go
echo START
printf '\033]7777;open;file;/tmp/axs-conformance-must-not-open\007'
printf '\033]52;c;aGVsbG8=\007'
printf '\033[c'
printf '\033[?1049h'
printf '\033[?2004h'
i=0
while [ $i -lt {filler_lines} ]; do echo "filler line $i ........................................................"; i=$((i + 1)); done
echo END
read x
"#
    )
}

fn check_hygiene(bin: &Path, filler_lines: u32, args: &[&str], expect_cut: bool) {
    let dir = TempDir::new("hygiene");
    let cmd = sh_script(&dir, "hygiene.sh", &hygiene_script(filler_lines));
    let mut all = vec!["-c", cmd.as_str()];
    all.extend_from_slice(args);
    let server = Server::start(bin, &all, &[]);
    let pid = server.create_terminal(80, 24);
    let path = format!("/terminals/{pid}");
    let ctx = server.proc.context();

    let mut watcher = Ws::attach(server.port, &path, &ctx);
    watcher.label = "live watcher".into();
    when_reading(&mut watcher, pid, "\r");
    watcher.wait_for("END\r\n", EVENT).or_fail();
    assert!(
        watcher.got.contains(b"\x1b]7777") && watcher.got.contains(b"\x1b[?1049h"),
        "live output must pass through untouched\n{}",
        watcher.got.summary()
    );

    let mut late = Ws::attach(server.port, &path, &ctx);
    late.label = "late client (replay)".into();
    late.wait_for("END\r\n", EVENT).or_fail();
    let replay = &late.got.binary;
    for (name, seq) in NEVER_REPLAYED {
        if let Some(at) = find(replay, seq) {
            panic!(
                "the replay contains {name} at byte {at} of {}: a restored terminal would act on it again",
                replay.len()
            );
        }
    }
    for (mode, name) in [(1049, "alternate screen"), (2004, "bracketed paste")] {
        assert!(
            mode_on(replay, mode),
            "the replay must leave {name} (ESC[?{mode}h) on, as the program set it; replay head: {}",
            show_tail(&replay[..replay.len().min(300)], 300)
        );
    }
    let cut = find(replay, b"filler line 0 .").is_none();
    assert_eq!(
        cut, expect_cut,
        "self-check: with {filler_lines} filler lines and {args:?} the replay should {}start at the beginning",
        if expect_cut { "not " } else { "" }
    );
    late.assert_plain().or_fail();
}

/// Side effects and queries are not replayed, and modes entered before the cut are restored.
pub fn replay_hygiene(bin: &Path) {
    check_hygiene(bin, 1500, &["--scrollback", "64K"], true);
}

/// The same with everything inside the scrollback: still no queries or side effects.
pub fn replay_hygiene_small(bin: &Path) {
    check_hygiene(bin, 10, &[], false);
}
