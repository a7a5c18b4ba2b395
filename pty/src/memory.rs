//! How much memory a process holds, from `/proc`, and giving freed memory back.
//!
//! glibc's allocator keeps what a program frees for reuse, in one arena per thread that
//! ever contended for it (up to 8 per core): a thread-per-connection server that served a
//! burst ends with every arena holding its high-water mark, free but resident. Trimming
//! returns the free pages of every arena to the OS; it changes nothing a program can see
//! but its resident set. musl's allocator returns freed memory by itself, so there it is a
//! no-op.

/// The resident set of process `pid` in bytes (`/proc/<pid>/statm`'s second field times
/// the page size); `None` when the process is gone or `/proc` cannot be read.
pub fn resident_bytes(pid: u32) -> Option<u64> {
    let statm = std::fs::read_to_string(format!("/proc/{pid}/statm")).ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    pages.checked_mul(rustix::param::page_size() as u64)
}

/// Gives the free memory the C allocator holds back to the OS (glibc's `malloc_trim(0)`,
/// every arena); returns whether any was released. A no-op returning `false` on other C
/// libraries. It walks every arena under its lock: call it when a burst is over (the last
/// session gone), not per request.
pub fn release_free_memory() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: malloc_trim takes no pointers; it only locks each arena in turn and
        // madvises its free pages away, which is safe while other threads allocate.
        unsafe { libc::malloc_trim(0) == 1 }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        false
    }
}

/// Caps the C allocator's arenas at `arenas` (glibc's `mallopt(M_ARENA_MAX)`); returns
/// whether the setting was taken. Call it first thing in `main`, before any thread exists.
/// glibc otherwise gives a thread that meets a locked arena its own (up to 8 per core),
/// and `malloc_trim` cannot give back what each keeps between live blocks. A no-op
/// returning `false` on other C libraries.
pub fn limit_allocator_arenas(arenas: u16) -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: mallopt takes no pointers; it sets one field of the allocator's
        // parameters under the allocator's own lock.
        unsafe { libc::mallopt(libc::M_ARENA_MAX, libc::c_int::from(arenas)) == 1 }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        let _ = arenas;
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn freed_memory_can_be_given_back() {
        // Free every other block allocated on another thread (its own arena), keeping the
        // rest alive: the holes are free pages the allocator keeps until trimmed.
        let kept = std::thread::spawn(|| {
            let mut blocks: Vec<Vec<u8>> = (0..64).map(|i| vec![i as u8; 64 * 1024]).collect();
            let mut i = 0;
            blocks.retain(|_| {
                i += 1;
                i % 2 == 0
            });
            blocks
        })
        .join();
        let released = release_free_memory();
        drop(kept);
        let gnu = cfg!(all(target_os = "linux", target_env = "gnu"));
        assert_eq!(released, gnu, "released: {released}");
    }

    #[test]
    fn our_own_resident_set_is_plausible() {
        let bytes = resident_bytes(std::process::id());
        assert!(bytes.is_some_and(|b| b > 64 * 1024), "{bytes:?}");
        assert_eq!(resident_bytes(u32::MAX), None);
    }
}
