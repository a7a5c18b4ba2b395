//! A terminal client in its own process, for cases that signal the client (`SIGSTOP`).
//!
//! `ws-client PORT PATH` attaches to `ws://127.0.0.1:PORT{PATH}` (Origin
//! `https://localhost`) and writes what happens to stdout as records: a line `KIND LEN`,
//! then LEN bytes. Kinds: `O` opened (no bytes), `B` a binary frame, `T` a text frame, `C`
//! a close frame (the code or `-`, a space, the reason), `E` the end of the stream (how it
//! ended). It exits 0 after `E`, 2 when the handshake is refused (`E` says why).

use std::io::{self, Write};
use std::process::ExitCode;

use axs_conformance::ws::{Open, Ws};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [port, path] = args.as_slice() else {
        eprintln!("usage: ws-client PORT PATH");
        return ExitCode::from(2);
    };
    let Ok(port) = port.parse::<u16>() else {
        eprintln!("ws-client: bad port {port:?}");
        return ExitCode::from(2);
    };
    let mut out = io::stdout().lock();
    let opts = Open {
        headers: vec![("Origin", "https://localhost".into())],
        recv_buffer: None,
    };
    let mut ws = match Ws::open(port, path, opts) {
        Ok(ws) => ws,
        Err(e) => {
            let _ = record(&mut out, b'E', format!("refused: {e:?}").as_bytes());
            return ExitCode::from(2);
        }
    };
    if record(&mut out, b'O', b"").is_err() || relay(&mut ws, &mut out).is_err() {
        // The reader of our stdout went away: nobody is left to tell.
        return ExitCode::from(1);
    }
    ExitCode::SUCCESS
}

/// Reads messages until the stream ends, writing a record for each.
fn relay(ws: &mut Ws, out: &mut impl Write) -> io::Result<()> {
    let (mut binary, mut texts, mut closed) = (0, 0, false);
    loop {
        let open = ws.pump();
        let got = &ws.got;
        if got.binary.len() > binary {
            record(out, b'B', &got.binary[binary..])?;
            binary = got.binary.len();
        }
        for (_, text) in &got.texts[texts..] {
            record(out, b'T', text.as_bytes())?;
        }
        texts = got.texts.len();
        if let (Some(close), false) = (&got.close, closed) {
            let code = close.code.map_or("-".to_string(), |c| c.to_string());
            record(out, b'C', format!("{code} {}", close.reason).as_bytes())?;
            closed = true;
        }
        if !open {
            let how = got.ended.clone().unwrap_or_default();
            return record(out, b'E', how.as_bytes());
        }
    }
}

/// Writes one record and flushes it, so the reader sees it at once.
fn record(out: &mut impl Write, kind: u8, bytes: &[u8]) -> io::Result<()> {
    writeln!(out, "{} {}", kind as char, bytes.len())?;
    out.write_all(bytes)?;
    out.flush()
}
