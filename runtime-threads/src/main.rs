//! axs-threads: the terminal server on plain OS threads.
fn main() {}
