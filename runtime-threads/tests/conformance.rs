//! The conformance suite (`tests/`) against the `axs-threads` binary.

axs_conformance::conformance_tests!(env!("CARGO_BIN_EXE_axs-threads"));
axs_conformance::lsp_conformance_tests!(env!("CARGO_BIN_EXE_axs-threads"));
