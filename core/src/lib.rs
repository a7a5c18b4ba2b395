//! axs-core: the sans-IO heart of the axs terminal server.

pub mod api;
pub mod cli;
pub mod http;
pub mod term;
