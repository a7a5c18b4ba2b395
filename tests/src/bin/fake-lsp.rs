//! A fake language server for the `axs lsp` conformance cases (std only).
//!
//! Reads LSP-framed messages on stdin and answers each with one framed message on stdout.
//! The body chooses the behaviour by containing `"method":"<mode>"`:
//!
//! | mode | answer |
//! |---|---|
//! | (anything else) | the body itself (echo) |
//! | `pid` | `{"pid":<its pid>}` |
//! | `split` | the echo, written one byte at a time with a flush after each |
//! | `malformed` | a malformed header block and junk, then the echo |
//! | `stderr` | the body as a line on stderr (split in two writes), then the echo |
//! | `exit` | the echo, then exit with the number after `"code":` |
//! | `flood` | `"count":N` messages `{"n":i}` in a row |
//! | `child` | starts `sleep 1000` in its group, answers `{"child":<pid>}` |
//! | `ignore_term` | answers `{"pid":..}`, then becomes `sleep 1000` ignoring SIGTERM |
//!
//! It prints `fake-lsp started <pid>` on stderr at start and exits 0 at stdin's end.

use std::io::{self, BufRead, BufReader, Write};
use std::os::unix::process::CommandExt;
use std::process::Command;

fn main() {
    let pid = std::process::id();
    eprintln!("fake-lsp started {pid}");
    let mut input = BufReader::new(io::stdin().lock());
    let mut out = io::stdout().lock();
    while let Some(body) = read_message(&mut input) {
        if answer(&body, &mut out).is_err() {
            break;
        }
    }
}

/// One framed message's body; `None` at the end of stdin or on a broken frame.
fn read_message(input: &mut impl BufRead) -> Option<String> {
    let mut length = None;
    loop {
        let mut line = String::new();
        if input.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let line = line.trim_end_matches(['\r', '\n']);
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            if name.trim().eq_ignore_ascii_case("content-length") {
                length = value.trim().parse::<usize>().ok();
            }
        }
    }
    let mut body = vec![0u8; length?];
    input.read_exact(&mut body).ok()?;
    String::from_utf8(body).ok()
}

fn frame(body: &str) -> Vec<u8> {
    let mut out = format!("Content-Length: {}\r\n\r\n", body.len()).into_bytes();
    out.extend_from_slice(body.as_bytes());
    out
}

/// The number after `"key":` in `body`.
fn number(body: &str, key: &str) -> Option<i64> {
    let start = body.find(&format!("\"{key}\":"))? + key.len() + 3;
    let digits: String = body[start..]
        .trim_start()
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '-')
        .collect();
    digits.parse().ok()
}

fn answer(body: &str, out: &mut impl Write) -> io::Result<()> {
    let mode = [
        "pid",
        "split",
        "malformed",
        "stderr",
        "exit",
        "flood",
        "child",
        "ignore_term",
    ]
    .into_iter()
    .find(|m| body.contains(&format!("\"method\":\"{m}\"")));
    match mode {
        Some("pid") => out.write_all(&frame(&format!("{{\"pid\":{}}}", std::process::id())))?,
        Some("split") => {
            for byte in frame(body) {
                out.write_all(&[byte])?;
                out.flush()?;
            }
        }
        Some("malformed") => {
            out.write_all(b"Content-Length: nope\r\n\r\njunk without a header")?;
            out.flush()?;
            out.write_all(b"\r\n")?;
            out.write_all(&frame(body))?;
        }
        Some("stderr") => {
            let mut err = io::stderr().lock();
            err.write_all(b"to stderr: ")?;
            err.flush()?;
            writeln!(err, "{body}")?;
            out.write_all(&frame(body))?;
        }
        Some("exit") => {
            out.write_all(&frame(body))?;
            out.flush()?;
            std::process::exit(number(body, "code").unwrap_or(0) as i32);
        }
        Some("flood") => {
            for n in 0..number(body, "count").unwrap_or(0) {
                out.write_all(&frame(&format!("{{\"n\":{n}}}")))?;
            }
        }
        Some("child") => {
            let child = Command::new("sleep").arg("1000").spawn()?;
            out.write_all(&frame(&format!("{{\"child\":{}}}", child.id())))?;
        }
        Some("ignore_term") => {
            out.write_all(&frame(&format!("{{\"pid\":{}}}", std::process::id())))?;
            out.flush()?;
            let err = Command::new("sh")
                .args(["-c", "trap '' TERM; exec sleep 1000"])
                .exec();
            return Err(err);
        }
        _ => out.write_all(&frame(body))?,
    }
    out.flush()
}
