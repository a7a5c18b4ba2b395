//! How much memory a process holds, from `/proc`.

/// The resident set of process `pid` in bytes (`/proc/<pid>/statm`'s second field times
/// the page size); `None` when the process is gone or `/proc` cannot be read.
pub fn resident_bytes(pid: u32) -> Option<u64> {
    let statm = std::fs::read_to_string(format!("/proc/{pid}/statm")).ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    pages.checked_mul(rustix::param::page_size() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn our_own_resident_set_is_plausible() {
        let bytes = resident_bytes(std::process::id());
        assert!(bytes.is_some_and(|b| b > 64 * 1024), "{bytes:?}");
        assert_eq!(resident_bytes(u32::MAX), None);
    }
}
