//! The conformance suite (`axs-conformance`) run against this crate's `axs` binary.

axs_conformance::conformance_tests!(env!("CARGO_BIN_EXE_axs"));

axs_conformance::lsp_conformance_tests!(env!("CARGO_BIN_EXE_axs"));
