//! The ready pipe: READY after the listener is up; every failure ends with a message.

use std::net::TcpListener;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::server::{connect_once, free_port, Proc, Server, StartError, TempDir};

/// READY comes only once the port accepts connections.
pub fn ready_after_listen(bin: &Path) {
    for _ in 0..3 {
        let server = Server::start(bin, &["-c", "sh"], &[]);
        if let Err(e) = connect_once(server.port) {
            panic!(
                "connecting right after READY failed: {e}; READY must follow the bind\n{}",
                server.proc.context()
            );
        }
        server.assert_alive("READY");
    }
}

/// Asserts `proc` exits non-zero within `bound` with something on stderr.
fn assert_fails(proc: &mut Proc, what: &str, bound: Duration) {
    let start = Instant::now();
    let status = proc.wait_timeout(bound);
    assert!(
        status.is_some(),
        "{what}: the server was still running after {bound:?}\n{}",
        proc.context()
    );
    assert!(
        status.is_some_and(|s| !s.success()),
        "{what}: expected a non-zero exit, got {status:?} after {:?}",
        start.elapsed()
    );
    assert!(
        !proc.stderr().trim().is_empty(),
        "{what}: the server exited without a message on stderr"
    );
}

fn spawn_with_pipe(bin: &Path, pipe: &Path, extra: &[&str]) -> Proc {
    let mut args = vec![
        "-p".to_string(),
        free_port().to_string(),
        "-c".into(),
        "sh".into(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    let pipe = pipe.to_string_lossy().into_owned();
    Proc::spawn(bin, &args, &[("AXS_READY_PIPE", &pipe)])
}

/// AXS_READY_PIPE naming a regular file: non-zero exit with a message.
pub fn ready_pipe_regular_file(bin: &Path) {
    let dir = TempDir::new("not-fifo");
    let file = dir.write("plain-file", "");
    let mut proc = spawn_with_pipe(bin, &file, &[]);
    assert_fails(
        &mut proc,
        "AXS_READY_PIPE is a regular file",
        Duration::from_secs(20),
    );
}

/// A FIFO nobody opens: non-zero exit with a message within a bound.
pub fn ready_pipe_no_reader(bin: &Path) {
    let dir = TempDir::new("no-reader");
    let fifo = dir.fifo("ready");
    let mut proc = spawn_with_pipe(bin, &fifo, &[]);
    assert_fails(
        &mut proc,
        "nobody opens the ready FIFO",
        Duration::from_secs(20),
    );
}

/// Port in use: the FIFO reader gets `ERROR ...`, the process exits non-zero with a message.
pub fn ready_pipe_port_in_use(bin: &Path) {
    let holder = TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("bind: {e}"));
    let port = holder
        .local_addr()
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("{e}"));
    match Server::try_start_on(bin, port, &["-c", "sh"], &[]) {
        Ok(proc) => panic!(
            "the server wrote READY on a port in use\n{}",
            proc.context()
        ),
        Err((StartError::Error(line), mut proc)) => {
            assert!(
                line.len() > "ERROR ".len(),
                "ERROR line without a reason: {line:?}"
            );
            assert_fails(&mut proc, "port in use", Duration::from_secs(10));
        }
        Err((e, proc)) => panic!(
            "port in use: expected `ERROR <reason>` on the pipe, got {e:?}\n{}",
            proc.context()
        ),
    }
    drop(holder);
}

/// A bad flag: `ERROR ...` on the pipe (the reader must not hang), non-zero exit, message.
pub fn ready_pipe_bad_flag(bin: &Path) {
    match Server::try_start_on(bin, free_port(), &["--no-such-flag"], &[]) {
        Ok(proc) => panic!("the server accepted --no-such-flag\n{}", proc.context()),
        Err((StartError::Error(_), mut proc)) => {
            assert_fails(&mut proc, "--no-such-flag", Duration::from_secs(10));
        }
        Err((e, proc)) => panic!(
            "a bad flag must still answer the ready pipe with `ERROR <reason>`, got {e:?}\n{}",
            proc.context()
        ),
    }
}
