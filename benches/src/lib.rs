//! Benchmarks for axs.
