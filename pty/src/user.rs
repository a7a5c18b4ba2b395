//! The current user's entry in the user database (`getpwuid_r`): login shell and home.
//!
//! Only the lookup lives here; which of `$SHELL`, this entry or a fallback wins is the
//! caller's choice. An empty field counts as missing.

use std::ffi::{CStr, OsString};
use std::os::unix::ffi::OsStringExt;

/// The fields axs reads from the current user's entry.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserEntry {
    /// The login shell (`pw_shell`), when set.
    pub shell: Option<OsString>,
    /// The home directory (`pw_dir`), when set.
    pub home: Option<OsString>,
}

/// The size of the buffer the entry's strings are copied into; entries are far smaller.
const ENTRY_BUFFER: usize = 4096;

/// The current user's entry (`getpwuid_r` for the real uid), or `None` when the
/// database has none (a container running as an unnamed uid, for one).
pub fn current_user() -> Option<UserEntry> {
    let uid = rustix::process::getuid().as_raw();
    let mut buf = vec![0u8; ENTRY_BUFFER];
    // SAFETY: an all-zero passwd is a valid value of a plain C struct; getpwuid_r fills it.
    let mut entry: libc::passwd = unsafe { std::mem::zeroed() };
    let mut result: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: every pointer is valid for the call; buf outlives every use of `entry`'s
    // string pointers, which point into it.
    let rc = unsafe {
        libc::getpwuid_r(
            uid,
            &mut entry,
            buf.as_mut_ptr().cast(),
            buf.len(),
            &mut result,
        )
    };
    if rc != 0 || result.is_null() {
        return None;
    }
    // SAFETY: getpwuid_r succeeded, so each non-null field is a NUL-terminated string
    // inside `buf`, which is still alive.
    let (shell, home) = unsafe { (owned(entry.pw_shell), owned(entry.pw_dir)) };
    Some(UserEntry { shell, home })
}

/// Copies a C string field; `None` for a null pointer or an empty string.
///
/// # Safety
/// `ptr` is null or points to a NUL-terminated string valid for the call.
unsafe fn owned(ptr: *const libc::c_char) -> Option<OsString> {
    if ptr.is_null() {
        return None;
    }
    // SAFETY: the caller promises a valid NUL-terminated string.
    let bytes = unsafe { CStr::from_ptr(ptr) }.to_bytes().to_vec();
    (!bytes.is_empty()).then(|| OsString::from_vec(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_never_empty() {
        // The test user may have no entry at all (a bare uid in a container).
        if let Some(entry) = current_user() {
            assert!(entry.shell.as_ref().is_none_or(|s| !s.is_empty()));
            assert!(entry.home.as_ref().is_none_or(|h| !h.is_empty()));
        }
    }
}
