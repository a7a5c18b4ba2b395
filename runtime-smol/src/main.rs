//! axs: the terminal server on smol.
fn main() {}
