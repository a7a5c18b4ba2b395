//! Flow control: a slow reader loses nothing; a stalled one holds nobody back and is not dropped.

use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use super::{sh_script, when_reading, OrFail, EVENT};
use crate::server::{Server, TempDir};
use crate::text::{first_difference, fnv1a, show_tail, Rng};
use crate::ws::{Open, Ws};

const MIB: usize = 1 << 20;

/// A client reading 32 MiB of raw output with random pauses receives every byte.
pub fn slow_client_32mib(bin: &Path) {
    let dir = TempDir::new("slow");
    let mut rng = Rng::from_clock("slow_client_32mib");
    let mut data = vec![0u8; 32 * MIB];
    rng.fill(&mut data);
    let file = dir.write("payload.bin", &data);
    let script = format!("stty raw -echo -opost\nread go\ncat {}\n", file.display());
    let cmd = sh_script(&dir, "slow.sh", &script);
    let server = Server::start(bin, &["-c", &cmd], &[]);
    let pid = server.create_terminal(80, 24);
    let mut ws = server.attach(pid);
    ws.label = "slow client".into();
    // Raw mode: no CR-to-NL mapping, so the read ends at "\n". The stream from offset 0 is
    // exactly the file: nothing else is printed.
    when_reading(&mut ws, pid, "\n");
    let start = 0;

    let deadline = Instant::now() + Duration::from_secs(120);
    let mut next_pause = start + MIB / 2;
    while ws.got.binary.len() < start + data.len() {
        assert!(
            Instant::now() < deadline,
            "slow client: only {} of {} bytes after 120 s",
            ws.got.binary.len() - start,
            data.len()
        );
        if !ws.pump() {
            break;
        }
        if ws.got.binary.len() >= next_pause {
            thread::sleep(Duration::from_millis(rng.range(0, 200)));
            next_pause = ws.got.binary.len() + rng.range(64 << 10, 2 * MIB as u64) as usize;
        }
    }
    let got = &ws.got.binary[start.min(ws.got.binary.len())..];
    if got != data.as_slice() {
        let at = first_difference(got, &data);
        panic!(
            "slow client: received {} bytes (fnv {:016x}), expected {} (fnv {:016x}); first difference at byte {at}\n{}",
            got.len(),
            fnv1a(got),
            data.len(),
            fnv1a(&data),
            ws.got.summary()
        );
    }
    let exit = ws.expect_exit(EVENT).or_fail();
    assert_eq!(
        exit.exit_code,
        Some(0),
        "cat finished: exit 0 expected, got {exit:?}"
    );
}

const FILLER: &str = "stall-test-filler-line";

/// A client that stops reading neither blocks the program past the stall timeout nor gets
/// disconnected; when it reads again it gets the newest output from a safe cut.
pub fn stalled_client(bin: &Path) {
    let dir = TempDir::new("stall");
    let script = format!(
        "stty -echo\nread go\necho START\nyes '{FILLER}' | head -n {}\necho DONE\nread x\necho BYE\n",
        32 * MIB / (FILLER.len() + 1) + 1000
    );
    let cmd = sh_script(&dir, "stall.sh", &script);
    let server = Server::start(bin, &["-c", &cmd, "--stall-timeout", "1"], &[]);
    let pid = server.create_terminal(80, 24);
    let path = format!("/terminals/{pid}");
    let opts = Open {
        headers: vec![("Origin", "https://localhost".into())],
        recv_buffer: Some(4096),
    };
    let mut stalled = Ws::open(server.port, &path, opts)
        .unwrap_or_else(|e| panic!("stalled client refused: {e:?}\n{}", server.proc.context()));
    stalled.label = "stalled client".into();

    let mut reader = Ws::attach(server.port, &path, &server.proc.context());
    reader.label = "reading client".into();
    when_reading(&mut reader, pid, "\r");
    let began = Instant::now();
    reader
        .wait_for("DONE\r\n", Duration::from_secs(90))
        .map_err(|e| format!("the program must not be held back by a stalled client beyond the stall timeout: {e}"))
        .or_fail();
    let elapsed = began.elapsed();
    assert!(
        reader.got.binary.len() >= 32 * MIB,
        "the reading client lost output: {} bytes received, the program wrote more than 32 MiB \
         ({} filler lines of {}); it read continuously, and only a client that makes no progress \
         for the stall timeout may be skipped",
        reader.got.binary.len(),
        String::from_utf8_lossy(&reader.got.binary)
            .matches(FILLER)
            .count(),
        32 * MIB / (FILLER.len() + 1) + 1000
    );

    stalled
        .wait_for("DONE\r\n", Duration::from_secs(60))
        .map_err(|e| format!("after the stall (program done in {elapsed:?}), reading again must reach the newest output: {e}"))
        .or_fail();
    assert!(
        stalled.got.close.is_none() && stalled.got.texts.is_empty(),
        "the stalled client must not be disconnected nor sent text\n{}",
        stalled.got.summary()
    );
    assert!(
        stalled.got.binary.len() < reader.got.binary.len(),
        "the stalled client got all {} bytes: the server buffered the whole output for it \
         instead of letting it lag (memory must stay bounded)",
        stalled.got.binary.len()
    );
    check_safe_cut(&stalled.got.binary);

    stalled.send_text("\r").or_fail();
    stalled.wait_for("BYE\r\n", EVENT).or_fail();
    let exit = stalled.expect_exit(EVENT).or_fail();
    assert_eq!(exit.exit_code, Some(0), "{exit:?}");
}

/// Every line the stalled client got is a whole filler line or a marker, except at most two
/// seams (where its socket buffer ended and where the skip resumed).
fn check_safe_cut(b: &[u8]) {
    let text = String::from_utf8_lossy(b);
    let bad: Vec<&str> = text
        .split("\r\n")
        .filter(|l| !l.is_empty() && *l != FILLER && !["START", "DONE", "BYE"].contains(l))
        .collect();
    assert!(
        bad.len() <= 2,
        "the stalled client's stream resumed inside a line more than once: {} odd lines, first {:?}; tail {}",
        bad.len(),
        &bad[..bad.len().min(4)],
        show_tail(b, 200)
    );
}
