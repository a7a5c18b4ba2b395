//! Exit statuses in the exit frame, after all output; reconnecting after the exit.

use std::path::Path;

use super::{sh_script, when_reading, OrFail, EVENT};
use crate::procfs;
use crate::server::{Server, TempDir};

/// Runs `ending` after printing LAST-LINE on demand; returns the exit (code, signal).
fn run_until_exit(bin: &Path, ending: &str) -> (Option<i64>, Option<String>) {
    let dir = TempDir::new("exit");
    let script = format!("stty -echo\nread go\necho LAST-LINE\n{ending}\n");
    let cmd = sh_script(&dir, "exit.sh", &script);
    let server = Server::start(bin, &["-c", &cmd], &[]);
    let pid = server.create_terminal(80, 24);
    let mut ws = server.attach(pid);
    ws.label = format!("client of `{ending}`");
    when_reading(&mut ws, pid, "\r");
    let exit = ws.expect_exit(EVENT).or_fail();
    assert!(
        ws.got.contains(b"LAST-LINE\r\n"),
        "the last output must arrive before the exit frame\n{}",
        ws.got.summary()
    );
    ws.assert_plain().or_fail();
    (exit.exit_code, exit.signal)
}

/// `exit 7` arrives as exit_code 7, signal null.
pub fn exit_code_7(bin: &Path) {
    let got = run_until_exit(bin, "exit 7");
    assert_eq!(
        got,
        (Some(7), None),
        "exit 7: expected exit_code 7 and signal null"
    );
}

/// `kill -9 $$` arrives as signal "SIGKILL", exit_code null.
pub fn exit_sigkill(bin: &Path) {
    let got = run_until_exit(bin, "kill -9 $$");
    assert_eq!(
        got,
        (None, Some("SIGKILL".into())),
        "kill -9: expected signal SIGKILL, exit_code null"
    );
}

/// `kill -TERM $$` arrives as signal "SIGTERM", exit_code null.
pub fn exit_sigterm(bin: &Path) {
    let got = run_until_exit(bin, "kill -TERM $$");
    assert_eq!(
        got,
        (None, Some("SIGTERM".into())),
        "kill -TERM: expected signal SIGTERM, exit_code null"
    );
}

/// A client that connects after the exit (within retention) gets the final output, the exit
/// frame and a close; so does a second one; terminating the dead id is a quiet 2xx.
pub fn after_exit_reconnect(bin: &Path) {
    let dir = TempDir::new("after-exit");
    let cmd = sh_script(&dir, "final.sh", "echo FINAL-OUTPUT-$((6 * 7))\nexit 3\n");
    let server = Server::start(bin, &["-c", &cmd], &[]);
    let pid = server.create_terminal(80, 24);
    assert!(
        procfs::poll(EVENT, || !procfs::running(pid)),
        "self-check: the program {pid} did not exit"
    );
    for n in 1..=2 {
        let mut ws = server.attach(pid);
        ws.label = format!("client {n} connecting after the exit");
        let exit = ws.expect_exit(EVENT).or_fail();
        assert!(
            ws.got.contains(b"FINAL-OUTPUT-42"),
            "{}: the final output must be sent before the exit frame\n{}",
            ws.label,
            ws.got.summary()
        );
        assert_eq!(
            (exit.exit_code, exit.signal.as_deref()),
            (Some(3), None),
            "{}: {exit:?}",
            ws.label
        );
        ws.assert_plain().or_fail();
    }
    server.terminate(pid);
    server.terminate(pid);
}
