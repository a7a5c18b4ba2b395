//! axs-core: the sans-IO heart of the axs terminal server.

pub mod api;
pub mod cli;
pub mod client;
pub mod frame;
pub mod http;
pub mod ring;
pub mod server;
pub mod session;
pub mod term;
pub mod time;
