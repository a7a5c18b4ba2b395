//! axs-core: the sans-IO heart of the axs terminal server.
