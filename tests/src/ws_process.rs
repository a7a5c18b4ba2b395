//! A terminal client running as its own process (`ws-client`), so that a case can stop
//! and resume it with signals as a backgrounded or suspended app would be.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use rustix::process::{kill_process, Pid, Signal};

use crate::procfs;
use crate::server::suite_binary;
use crate::ws::{Closed, Received};

/// What the client process reported so far.
#[derive(Debug, Default, Clone)]
pub struct Report {
    /// The handshake succeeded.
    pub opened: bool,
    /// Every frame it received, as an in-process [`crate::ws::Ws`] records them.
    pub got: Received,
}

/// A `ws-client` process attached to a session; killed when dropped.
pub struct ClientProcess {
    child: Child,
    report: Arc<Mutex<Report>>,
    /// Names the client in failure messages.
    pub label: String,
}

impl ClientProcess {
    /// Starts `ws-client PORT PATH` (found beside the server binary `bin`, or at
    /// `$AXS_WS_CLIENT`) and waits (bounded) until its handshake is done.
    pub fn attach(bin: &Path, port: u16, path: &str, label: &str) -> ClientProcess {
        let client = suite_binary(bin, "ws-client", "AXS_WS_CLIENT");
        let mut child = Command::new(&client)
            .args([port.to_string(), path.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("self-check: cannot start {}: {e}", client.display()));
        let report = Arc::new(Mutex::new(Report::default()));
        if let Some(stdout) = child.stdout.take() {
            let report = report.clone();
            thread::spawn(move || read_records(stdout, &report));
        }
        let process = ClientProcess {
            child,
            report,
            label: label.to_string(),
        };
        process
            .wait(crate::cases::EVENT, "the handshake", |r| {
                r.opened || r.got.ended.is_some()
            })
            .unwrap_or_else(|e| panic!("{e}"));
        let ended = process.report().got.ended;
        assert!(ended.is_none(), "{label}: {ended:?}");
        process
    }

    /// The client's pid.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends `signal` to the client process.
    pub fn signal(&self, signal: Signal) {
        let sent = Pid::from_raw(self.pid() as i32).map(|pid| kill_process(pid, signal));
        assert!(
            matches!(sent, Some(Ok(()))),
            "self-check: signal {signal:?} to {}: {sent:?}",
            self.label
        );
    }

    /// Stops the process (`SIGSTOP`) and waits until the kernel says it is stopped.
    pub fn stop(&self) {
        self.signal(Signal::STOP);
        let stopped = procfs::poll(crate::cases::EVENT, || {
            procfs::state(self.pid()) == Some('T')
        });
        assert!(stopped, "self-check: {} did not stop", self.label);
    }

    /// A copy of what it reported so far.
    pub fn report(&self) -> Report {
        self.report
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Waits until `done(&report)` holds or `timeout` passes (an error naming `what`).
    pub fn wait(
        &self,
        timeout: Duration,
        what: &str,
        mut done: impl FnMut(&Report) -> bool,
    ) -> Result<Report, String> {
        let deadline = Instant::now() + timeout;
        loop {
            let report = self.report();
            if done(&report) {
                return Ok(report);
            }
            if Instant::now() >= deadline || report.got.ended.is_some() {
                return Err(format!(
                    "{}: waited up to {timeout:?} for {what}\n{}",
                    self.label,
                    report.got.summary()
                ));
            }
            thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for ClientProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Reads `ws-client`'s records into `report` until its stdout ends.
fn read_records(stdout: ChildStdout, report: &Mutex<Report>) {
    let mut input = BufReader::new(stdout);
    let mut line = String::new();
    loop {
        line.clear();
        if !matches!(input.read_line(&mut line), Ok(n) if n > 0) {
            return;
        }
        let mut head = line.trim_end().splitn(2, ' ');
        let kind = head.next().unwrap_or_default().to_string();
        let Some(len) = head.next().and_then(|n| n.parse::<usize>().ok()) else {
            return;
        };
        let mut bytes = vec![0; len];
        if input.read_exact(&mut bytes).is_err() {
            return;
        }
        let mut r = report.lock().unwrap_or_else(PoisonError::into_inner);
        apply(&mut r, &kind, bytes);
    }
}

/// Adds one record to the report.
fn apply(report: &mut Report, kind: &str, bytes: Vec<u8>) {
    let got = &mut report.got;
    let text = || String::from_utf8_lossy(&bytes).into_owned();
    match kind {
        "O" => report.opened = true,
        "B" => {
            got.binary.extend_from_slice(&bytes);
            got.binary_frames += 1;
        }
        "T" => got.texts.push((got.binary.len(), text())),
        "C" => {
            let text = text();
            let (code, reason) = text.split_once(' ').unwrap_or((&text, ""));
            got.close = Some(Closed {
                code: code.parse().ok(),
                reason: reason.to_string(),
                at_byte: got.binary.len(),
            });
        }
        _ => got.ended = Some(text()),
    }
}
