//! When work over all nodes is split across the thread pool.

/// Nodes per parallel task: enough work to be worth a thread hand-off.
pub(super) const CHUNK: usize = 128;

/// Whether to split work over `n` nodes across the current thread pool.
pub(super) fn parallel(threads: usize, n: usize) -> bool {
    threads > 1 && n >= 2 * CHUNK
}
