//! axs-pty: the OS layer both axs runtimes share.
