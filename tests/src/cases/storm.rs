//! Reconnect storms under both attach policies.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use super::{sh_script, OrFail, EVENT};
use crate::server::{Server, TempDir};
use crate::text::{check_numbered, Rng};
use crate::ws::{Received, Ws};

/// Numbered lines, forever, paced so the storm does not just measure CPU starvation.
const COUNTER: &str = r#"stty -echo
i=0
while :; do
  echo $i
  i=$((i + 1))
  if [ $((i % 200)) -eq 0 ]; then sleep 0.02; fi
done
"#;

const STORM: Duration = Duration::from_secs(3);

#[derive(Clone, Copy, PartialEq)]
enum Policy {
    Shared,
    TakeoverServer,
    TakeoverQuery,
}

struct Client {
    index: usize,
    stop: Arc<AtomicBool>,
    progress: Arc<AtomicUsize>,
    handle: JoinHandle<Report>,
}

struct Report {
    got: Received,
    /// The close frame arrived before this client decided to close.
    server_closed_first: bool,
}

fn spawn_client(mut ws: Ws, index: usize, seed: u64) -> Client {
    let stop = Arc::new(AtomicBool::new(false));
    let progress = Arc::new(AtomicUsize::new(0));
    let (stop2, progress2) = (stop.clone(), progress.clone());
    let handle = thread::spawn(move || {
        let mut rng = Rng::new(seed);
        let mut server_closed_first = false;
        loop {
            if stop2.load(Ordering::Relaxed) {
                // Half the clients close politely, the others just vanish.
                if rng.range(0, 2) == 0 {
                    ws.close();
                    let _ = ws.wait_end(Duration::from_secs(3));
                }
                return Report {
                    got: ws.got,
                    server_closed_first,
                };
            }
            let alive = ws.pump();
            progress2.store(ws.got.binary.len(), Ordering::Relaxed);
            if ws.got.close.is_some() && !stop2.load(Ordering::Relaxed) {
                server_closed_first = true;
            }
            if !alive {
                return Report {
                    got: ws.got,
                    server_closed_first,
                };
            }
        }
    });
    Client {
        index,
        stop,
        progress,
        handle,
    }
}

fn storm(bin: &Path, policy: Policy) {
    let dir = TempDir::new("storm");
    let cmd = sh_script(&dir, "counter.sh", COUNTER);
    let mut args = vec!["-c", cmd.as_str()];
    if policy == Policy::TakeoverServer {
        args.extend_from_slice(&["--attach", "takeover"]);
    }
    let server = Server::start(bin, &args, &[]);
    let pid = server.create_terminal(80, 24);
    let path = match policy {
        Policy::TakeoverQuery => format!("/terminals/{pid}?attach=takeover"),
        _ => format!("/terminals/{pid}"),
    };
    let ctx = server.proc.context();
    let mut rng = Rng::from_clock("reconnect storm");
    let mut open: Vec<Client> = Vec::new();
    let mut done: Vec<(usize, Report)> = Vec::new();
    let mut closed_by_us: Vec<Client> = Vec::new();
    let start = Instant::now();
    let mut index = 0;
    while start.elapsed() < STORM {
        let mut ws = Ws::attach(server.port, &path, &ctx);
        ws.label = format!("storm client {index}");
        open.push(spawn_client(ws, index, rng.next_u64()));
        index += 1;
        if open.len() > 1 && rng.range(0, 3) == 0 {
            let victim = open.remove(rng.range(0, open.len() as u64 - 1) as usize);
            victim.stop.store(true, Ordering::Relaxed);
            closed_by_us.push(victim);
        }
        thread::sleep(Duration::from_millis(rng.range(20, 81)));
    }
    let newest = index - 1;
    // The newest client must keep receiving live output after the storm.
    let newest_client = open.iter().find(|c| c.index == newest);
    if let Some(c) = newest_client {
        let before = c.progress.load(Ordering::Relaxed);
        let grew =
            crate::procfs::poll(EVENT, || c.progress.load(Ordering::Relaxed) > before + 2000);
        assert!(grew, "the newest client (storm client {newest}) stopped receiving live output after the storm");
    }
    if policy != Policy::Shared {
        // Give the older clients' close frames time to arrive before stopping everyone.
        crate::procfs::poll(EVENT, || {
            open.iter()
                .filter(|c| c.index != newest)
                .all(|c| c.handle.is_finished())
        });
    }
    let victims: Vec<usize> = closed_by_us.iter().map(|c| c.index).collect();
    for c in open.iter().chain(closed_by_us.iter()) {
        c.stop.store(true, Ordering::Relaxed);
    }
    for c in open.into_iter().chain(closed_by_us) {
        let r = c
            .handle
            .join()
            .unwrap_or_else(|_| panic!("storm client {} panicked", c.index));
        done.push((c.index, r));
    }
    done.sort_by_key(|(i, _)| *i);
    check_reports(policy, &done, newest, &victims);
}

/// `victims` are the clients this test closed during the storm.
fn check_reports(policy: Policy, done: &[(usize, Report)], newest: usize, victims: &[usize]) {
    let mut with_data = 0;
    for (i, r) in done {
        let what = format!("storm client {i} of {}", newest + 1);
        check_numbered(&r.got.binary, "")
            .map_err(|e| format!("{what}: {e}\n{}", r.got.summary()))
            .or_fail();
        if !r.got.binary.is_empty() {
            with_data += 1;
        }
        assert!(
            r.got.texts.is_empty(),
            "{what}: no text frame may arrive while the program runs\n{}",
            r.got.summary()
        );
        let takeover = policy != Policy::Shared;
        if !takeover || *i == newest {
            assert!(
                !r.server_closed_first,
                "{what}: the server closed the socket ({:?}); it must never close a terminal socket \
                 for a newer connection{}",
                r.got.close,
                if takeover { " when this client is the newest" } else { " under the shared policy" }
            );
        } else if !victims.contains(i) || r.server_closed_first {
            let close = r.got.close.as_ref();
            assert!(
                close.is_some_and(|c| c.code.is_some()),
                "{what}: under takeover an older client must receive a close frame with a code \
                 (got close {close:?}, ended {:?})",
                r.got.ended
            );
        }
    }
    assert!(
        done.last().is_some_and(|(_, r)| !r.got.binary.is_empty()),
        "the newest client received nothing"
    );
    assert!(
        with_data > 0,
        "self-check: no storm client received any output"
    );
}

/// Shared attach: every client's stream is contiguous, nobody is closed by the server.
pub fn reconnect_storm_shared(bin: &Path) {
    storm(bin, Policy::Shared);
}

/// Takeover by server flag: contiguous streams, older clients get a close code, newest lives.
pub fn reconnect_storm_takeover(bin: &Path) {
    storm(bin, Policy::TakeoverServer);
}

/// Takeover by query (`?attach=takeover`), same expectations.
pub fn reconnect_storm_takeover_query(bin: &Path) {
    storm(bin, Policy::TakeoverQuery);
}
