//! The fake language server answers as its docs say (the `axs lsp` cases rely on it).

#![allow(clippy::unwrap_used)] // tests may unwrap

use std::io::{Read, Write};
use std::process::{Command, Stdio};

fn frame(body: &str) -> Vec<u8> {
    let mut out = format!("content-length: {}\r\n\r\n", body.len()).into_bytes();
    out.extend_from_slice(body.as_bytes());
    out
}

/// Runs fake-lsp with `bodies` on stdin (then EOF); returns stdout, stderr and the code.
fn run(bodies: &[&str]) -> (String, String, Option<i32>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_fake-lsp"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    for body in bodies {
        stdin.write_all(&frame(body)).unwrap();
    }
    drop(stdin);
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    (out, err, child.wait().unwrap().code())
}

#[test]
fn echoes_and_modes() {
    let (out, err, code) = run(&[
        r#"{"id":1,"text":"é"}"#,
        r#"{"method":"split"}"#,
        r#"{"method":"stderr"}"#,
        r#"{"method":"flood","count":2}"#,
    ]);
    let expected: Vec<u8> = [
        r#"{"id":1,"text":"é"}"#,
        r#"{"method":"split"}"#,
        r#"{"method":"stderr"}"#,
        r#"{"n":0}"#,
        r#"{"n":1}"#,
    ]
    .iter()
    .flat_map(|b| {
        let mut f = format!("Content-Length: {}\r\n\r\n", b.len()).into_bytes();
        f.extend_from_slice(b.as_bytes());
        f
    })
    .collect();
    assert_eq!(out.as_bytes(), expected.as_slice());
    assert!(err.starts_with("fake-lsp started "), "{err:?}");
    assert!(
        err.contains("to stderr: {\"method\":\"stderr\"}\n"),
        "{err:?}"
    );
    assert_eq!(code, Some(0));
}

#[test]
fn malformed_then_good_and_exit_code() {
    let (out, _, code) = run(&[r#"{"method":"malformed"}"#, r#"{"method":"exit","code":3}"#]);
    assert!(
        out.starts_with("Content-Length: nope\r\n\r\njunk"),
        "{out:?}"
    );
    assert!(
        out.ends_with("\r\n\r\n{\"method\":\"exit\",\"code\":3}"),
        "{out:?}"
    );
    assert_eq!(code, Some(3));
}
