//! Conformance cases for axs servers, driven over 127.0.0.1 only.
