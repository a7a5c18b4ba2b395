//! Conformance cases for axs servers, driven over 127.0.0.1 only.
//!
//! The suite is a library of cases, each a plain `fn(&Path)` taking the server binary and
//! panicking with a precise message on failure. A runtime runs all of them from its
//! integration tests with one line:
//!
//! ```ignore
//! axs_conformance::conformance_tests!(env!("CARGO_BIN_EXE_axs"));
//! ```
//!
//! which expands to one `#[test]` per case, named after the case. The `axs lsp` bridge's
//! cases are opted into separately, with `axs_conformance::lsp_conformance_tests!(bin)`
//! (they drive the fake language server `fake-lsp`, a binary of this crate). The harness talks to the
//! binary only through loopback sockets, a ready FIFO and `/proc`. Set `AXS_TEST_LOG` to pass
//! a `RUST_LOG` filter to the servers; their stderr tail is printed when a case fails.

pub mod browser;
pub mod cases;
pub mod control;
pub mod http;
pub mod procfs;
pub mod relay;
pub mod server;
pub mod text;
pub mod ws;
pub mod ws_process;

/// Calls `$crate::$callback!{ ($($args)*) case, case, ... }` with the name of every case.
#[doc(hidden)]
#[macro_export]
macro_rules! __with_cases {
    ($callback:ident ($($args:tt)*)) => {
        $crate::$callback! { ($($args)*)
            editor_client_contract,
            http_status_and_root,
            http_create_errors,
            http_methods_and_paths,
            http_oversized_body,
            http_oversized_body_many,
            http_resize,
            http_terminate_any_body,
            http_execute_command,
            http_execute_command_background_job,
            http_idle_connections_do_not_block_status,
            http_incomplete_request_gets_408,
            http_cors_preflight,
            ws_unknown_id_404,
            ws_bad_frames,
            ws_large_paste,
            ws_close_is_echoed,
            ws_oversized_message,
            replay_exact,
            resume_since,
            replay_hygiene,
            replay_hygiene_small,
            reconnect_storm_shared,
            reconnect_storm_takeover,
            reconnect_storm_takeover_query,
            slow_client_32mib,
            stalled_client,
            exit_code_7,
            exit_sigkill,
            exit_sigterm,
            after_exit_reconnect,
            origin_checks,
            origin_allow_any,
            token_required,
            token_from_env,
            child_fds,
            child_fds_pty_peer,
            ready_after_listen,
            ready_pipe_regular_file,
            ready_pipe_no_reader,
            ready_pipe_port_in_use,
            ready_pipe_bad_flag,
            terminate_kills_group,
            sessions_200,
            sigkill_server,
            shutdown_sigterm,
            shutdown_kills_hup_ignoring_command,
            connection_flood,
            fd_exhaustion_recovers,
            spawn_failure_recovers,
            pty_eio_while_attached,
            process_group_killed_outside,
            stopped_client_resumes,
            clock_jump_keeps_timeouts,
            viewer_watches_and_cannot_act,
            view_token_alone_only_watches,
            attach_view_by_choice,
            viewer_never_holds_a_flood_back,
            no_axs_variables_in_sessions,
            host_header_checked_on_loopback,
            allow_any_origin_warning,
            short_token_refused_off_loopback,
            web_page,
        }
    };
}

/// Expands to one `#[test] fn` per case, each running that case against the binary `$bin`.
#[macro_export]
macro_rules! conformance_tests {
    ($bin:expr) => {
        $crate::__with_cases! { __gen_tests ($bin) }
    };
}

/// Calls `$crate::$callback!{ ($($args)*) case, case, ... }` with every `axs lsp` case.
#[doc(hidden)]
#[macro_export]
macro_rules! __with_lsp_cases {
    ($callback:ident ($($args:tt)*)) => {
        $crate::$callback! { ($($args)*)
            lsp_listening_line_and_port_file,
            lsp_status_before_during_after,
            lsp_round_trip_1000_messages,
            lsp_malformed_header_and_stderr,
            lsp_exit_closes_after_last_message,
            lsp_socket_close_leaves_no_process,
            lsp_two_sockets_isolated,
            lsp_slow_reader_loses_nothing,
            lsp_origin_refused,
            lsp_startup_failures,
            lsp_sigterm_ends_children,
            lsp_oversized_message,
        }
    };
}

/// Expands to one `#[test] fn` per `axs lsp` case, each running it against the binary
/// `$bin` (its `lsp` subcommand), with the fake server `fake-lsp` found beside `$bin`
/// (built on first use) or at `$AXS_FAKE_LSP`. Separate from [`conformance_tests!`] so
/// that a runtime opts in once it has the bridge.
#[macro_export]
macro_rules! lsp_conformance_tests {
    ($bin:expr) => {
        $crate::__with_lsp_cases! { __gen_tests ($bin) }
    };
}

/// Every `axs lsp` case with its name, in a stable order.
pub fn lsp_cases() -> &'static [(&'static str, Case)] {
    __with_lsp_cases! { __gen_table () }
}

#[doc(hidden)]
#[macro_export]
macro_rules! __gen_tests {
    (($bin:expr) $($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                $crate::cases::$name(::std::path::Path::new($bin));
            }
        )*
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __gen_table {
    (() $($name:ident),* $(,)?) => {
        &[$((stringify!($name), $crate::cases::$name as fn(&::std::path::Path))),*]
    };
}

/// A case: takes the server binary, panics with a message on failure.
pub type Case = fn(&std::path::Path);

/// Every case with its name, in a stable order.
pub fn cases() -> &'static [(&'static str, Case)] {
    __with_cases! { __gen_table () }
}

/// The names of every case.
pub fn case_names() -> Vec<&'static str> {
    cases().iter().map(|(n, _)| *n).collect()
}
