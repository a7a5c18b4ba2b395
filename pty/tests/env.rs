//! Spawned programs never see AXS_READY_PIPE (one test: it changes the process env).

#![allow(clippy::unwrap_used)] // tests may unwrap

mod common;

use axs_pty::{spawn, ExitStatus, SpawnOptions};
use common::{args, wait_exit, Reader};

#[test]
fn ready_pipe_variable_is_not_inherited() {
    std::env::set_var("AXS_READY_PIPE", "/tmp/inherited");
    let mut opts = SpawnOptions::new("sh");
    opts.args = args(&["-c", "echo \"P=${AXS_READY_PIPE-unset}\"; echo DONE"]);
    // Even when passed explicitly it is dropped.
    opts.env = vec![("AXS_READY_PIPE".into(), "/tmp/explicit".into())];
    let child = spawn(&opts).unwrap();
    let mut out = Reader::new(&child.master);
    assert!(out.expect("DONE").contains("P=unset"), "{:?}", out.text);
    assert_eq!(wait_exit(child.pid), ExitStatus::Code(0));
}
