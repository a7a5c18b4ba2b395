//! Exit statuses, the controlling terminal, job control, sizes.

#![allow(clippy::unwrap_used)] // tests may unwrap

mod common;

use std::os::fd::AsFd;

use axs_pty::{resize, size, spawn, ExitStatus, SlaveOpen, SpawnMethod, SpawnOptions, WinSize};
use common::{args, type_in, wait_exit, Reader};

fn sh(script: &str) -> SpawnOptions {
    let mut opts = SpawnOptions::new("sh");
    opts.args = args(&["-c", script]);
    opts
}

#[test]
fn exit_code_is_reported() {
    let child = spawn(&sh("exit 7")).unwrap();
    assert_eq!(wait_exit(child.pid), ExitStatus::Code(7));
}

#[test]
fn kill_9_is_reported_as_sigkill() {
    let child = spawn(&sh("kill -9 $$")).unwrap();
    let status = wait_exit(child.pid);
    assert_eq!(status, ExitStatus::Signal(9));
    assert_eq!(status.signal_name(), Some("SIGKILL"));
}

#[test]
fn kill_term_is_reported_as_sigterm() {
    let child = spawn(&sh("kill -TERM $$")).unwrap();
    let status = wait_exit(child.pid);
    assert_eq!(status, ExitStatus::Signal(15));
    assert_eq!(status.signal_name(), Some("SIGTERM"));
}

#[test]
fn try_wait_is_none_while_running() {
    let child = spawn(&SpawnOptions::new("cat")).unwrap();
    assert_eq!(axs_pty::try_wait(child.pid).unwrap(), None);
    type_in(&child.master, "\x04");
    assert_eq!(wait_exit(child.pid), ExitStatus::Code(0));
}

#[test]
fn child_has_a_controlling_tty_and_sees_its_size() {
    let cases = [
        (SlaveOpen::ByName, SpawnMethod::Auto),
        (SlaveOpen::ForcePeer, SpawnMethod::Auto),
        (SlaveOpen::ByName, SpawnMethod::Fork),
        (SlaveOpen::ForcePeer, SpawnMethod::Fork),
    ];
    for (slave_open, method) in cases {
        let mut opts = sh("tty; stty size; echo DONE");
        opts.spawn_method = method;
        opts.size = WinSize {
            cols: 111,
            rows: 33,
        };
        opts.slave_open = slave_open;
        let child = spawn(&opts).unwrap();
        let _guard = common::Guard(child.pid);
        let mut out = Reader::new(&child.master);
        let text = out.expect("DONE").to_string();
        assert!(text.contains("/dev/pts/"), "{slave_open:?}: {text:?}");
        assert!(!text.contains("not a tty"), "{slave_open:?}: {text:?}");
        assert!(text.contains("33 111"), "{slave_open:?}: {text:?}");
        assert_eq!(wait_exit(child.pid), ExitStatus::Code(0));
    }
}

#[test]
fn job_control_works() {
    let cases = [
        (SlaveOpen::ByName, SpawnMethod::Auto),
        (SlaveOpen::ForcePeer, SpawnMethod::Auto),
        (SlaveOpen::ByName, SpawnMethod::Fork),
    ];
    for (slave_open, method) in cases {
        let mut opts = SpawnOptions::new("sh");
        opts.spawn_method = method;
        opts.args = args(&["-i"]);
        opts.env = vec![("PS1".into(), "PROMPT> ".into())];
        opts.slave_open = slave_open;
        let child = spawn(&opts).unwrap();
        let _guard = common::Guard(child.pid);
        let mut out = Reader::new(&child.master);
        out.expect("PROMPT> ");
        // The job prints before reading: by then the shell has made it the
        // terminal's foreground group, so ^Z reaches it.
        type_in(
            &child.master,
            "sh -c 'echo STAR''TED; read x; echo GOT $x'\n",
        );
        out.expect("STARTED");
        type_in(&child.master, "\x1a");
        out.expect("Stopped");
        // After `fg` the shell waits, so the next line is read by the job, which
        // only works once it is back in the foreground.
        type_in(&child.master, "fg\n");
        type_in(&child.master, "hello\n");
        out.expect("GOT hello");
        type_in(&child.master, "exit 3\n");
        assert_eq!(wait_exit(child.pid), ExitStatus::Code(3), "{slave_open:?}");
    }
}

#[test]
fn resize_reaches_the_child() {
    let mut opts = sh("read x; stty size; echo DONE");
    opts.size = WinSize { cols: 80, rows: 24 };
    let child = spawn(&opts).unwrap();
    let master = child.master.as_fd();
    assert_eq!(size(master).unwrap(), WinSize { cols: 80, rows: 24 });
    resize(
        master,
        WinSize {
            cols: 120,
            rows: 40,
        },
    )
    .unwrap();
    assert_eq!(
        size(master).unwrap(),
        WinSize {
            cols: 120,
            rows: 40
        }
    );
    type_in(&child.master, "\n");
    let mut out = Reader::new(&child.master);
    let text = out.expect("DONE").to_string();
    assert!(text.contains("40 120"), "{text:?}");
    assert_eq!(wait_exit(child.pid), ExitStatus::Code(0));
}

#[test]
fn args_env_and_cwd_are_passed() {
    let mut opts = sh("echo \"A=$1 V=$AXS_TEST_VAR T=$TERM D=$(pwd)\"; echo DONE");
    opts.args.push("zero".into());
    opts.args.push("one two".into());
    opts.env = vec![("AXS_TEST_VAR".into(), "val".into())];
    opts.cwd = Some("/tmp".into());
    let child = spawn(&opts).unwrap();
    let mut out = Reader::new(&child.master);
    let text = out.expect("DONE").to_string();
    assert!(
        text.contains("A=one two V=val T=xterm-256color D=/tmp"),
        "{text:?}"
    );
    assert_eq!(wait_exit(child.pid), ExitStatus::Code(0));

    let mut opts = sh("echo T=$TERM; echo DONE");
    opts.env = vec![("TERM".into(), "vt100".into())];
    let child = spawn(&opts).unwrap();
    let mut out = Reader::new(&child.master);
    assert!(out.expect("DONE").contains("T=vt100"));
    assert_eq!(wait_exit(child.pid), ExitStatus::Code(0));
}

#[test]
fn master_reads_eio_after_child_exits() {
    let child = spawn(&sh("echo bye")).unwrap();
    let mut out = Reader::new(&child.master);
    out.read_to_end();
    assert!(out.closed && out.text.contains("bye"), "{:?}", out.text);
    assert_eq!(wait_exit(child.pid), ExitStatus::Code(0));
}

/// An executable file without `#!` is run by `/bin/sh`, as `execvp` does, by path and
/// through `PATH`, with both spawn methods; its arguments follow the script's path.
#[test]
fn script_without_shebang_runs_in_sh() {
    let dir = std::env::temp_dir().join(format!("axs-pty-noshebang-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let script = dir.join("greet");
    std::fs::write(&script, "echo \"hi $1 from $0\"\necho DONE\n").unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let path = format!("{}:/usr/bin:/bin", dir.display());
    for method in [SpawnMethod::Auto, SpawnMethod::Fork] {
        for (program, env) in [
            (script.as_os_str().to_owned(), vec![]),
            ("greet".into(), vec![("PATH".into(), path.clone().into())]),
        ] {
            let mut opts = SpawnOptions::new(program);
            opts.args = args(&["you"]);
            opts.env = env;
            opts.spawn_method = method;
            let child = spawn(&opts).unwrap();
            let mut out = Reader::new(&child.master);
            let text = out.expect("DONE").to_string();
            let expected = format!("hi you from {}", script.display());
            assert!(text.contains(&expected), "{method:?}: {text:?}");
            assert_eq!(wait_exit(child.pid), ExitStatus::Code(0));
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
