//! Spawned programs never see AXS_READY_PIPE, AXS_TOKEN or AXS_VIEW_TOKEN (one test: it
//! changes the process env).

#![allow(clippy::unwrap_used)] // tests may unwrap

mod common;

use axs_pty::{spawn, ExitStatus, SpawnOptions};
use common::{args, wait_exit, Reader};

#[test]
fn server_variables_are_not_inherited() {
    std::env::set_var("AXS_READY_PIPE", "/tmp/inherited");
    std::env::set_var("AXS_TOKEN", "inherited-token");
    std::env::set_var("AXS_VIEW_TOKEN", "inherited-view-token");
    std::env::set_var("AXS_TEST_KEEP", "kept");
    let mut opts = SpawnOptions::new("sh");
    opts.args = args(&[
        "-c",
        "echo \"P=${AXS_READY_PIPE-unset} T=${AXS_TOKEN-unset} V=${AXS_VIEW_TOKEN-unset} K=$AXS_TEST_KEEP\"; echo DONE",
    ]);
    // Even when passed explicitly they are dropped.
    opts.env = vec![
        ("AXS_READY_PIPE".into(), "/tmp/explicit".into()),
        ("AXS_TOKEN".into(), "explicit".into()),
    ];
    let child = spawn(&opts).unwrap();
    let mut out = Reader::new(&child.master);
    let text = out.expect("DONE");
    assert!(
        text.contains("P=unset T=unset V=unset K=kept"),
        "{:?}",
        out.text
    );
    assert_eq!(wait_exit(child.pid), ExitStatus::Code(0));
}
