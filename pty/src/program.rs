//! Finding a program the way `exec` will, before trying to run it.
//!
//! A name without `/` is looked up in `PATH` (`/usr/bin:/bin` when unset, as `execvp`
//! does); a path is taken as it is. The check is cheap and advisory: `exec` has the
//! last word.

use std::ffi::OsString;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::spawn::error_text;

/// Finds `program` the way `exec` will (a name without `/` is looked up in `PATH`)
/// and checks that it is an executable file; the error is one line a user can act on.
pub fn find_program(program: &Path) -> Result<PathBuf, String> {
    let shown = program.display();
    if program.as_os_str().is_empty() {
        return Err(String::from("the program name is empty"));
    }
    if program.as_os_str().to_string_lossy().contains('/') {
        return match std::fs::metadata(program) {
            Ok(meta) if meta.is_dir() => Err(format!("{shown} is a directory, not a program")),
            Ok(_) if is_executable(program) => Ok(program.to_path_buf()),
            Ok(_) => Err(format!("{shown} is not executable")),
            Err(e) => Err(format!("cannot run {shown}: {}", error_text(&e))),
        };
    }
    let path = std::env::var_os("PATH").unwrap_or_else(|| OsString::from("/usr/bin:/bin"));
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| is_executable(candidate))
        .ok_or_else(|| format!("program {shown} not found in PATH"))
}

/// True for a regular file with an execute bit (a cheap check; `exec` has the last word).
pub fn is_executable(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;

    #[test]
    fn finds_programs() {
        assert!(find_program(Path::new("sh")).is_ok());
        assert!(find_program(Path::new("/bin/sh")).is_ok());
        let missing = find_program(Path::new("no-such-program-axs")).unwrap_err();
        assert_eq!(missing, "program no-such-program-axs not found in PATH");
        let dir = find_program(Path::new("/")).unwrap_err();
        assert_eq!(dir, "/ is a directory, not a program");
        let gone = find_program(Path::new("/no/such/x")).unwrap_err();
        assert_eq!(gone, "cannot run /no/such/x: No such file or directory");
        let empty = find_program(Path::new("")).unwrap_err();
        assert_eq!(empty, "the program name is empty");
    }

    #[test]
    fn directories_are_not_executable() {
        assert!(is_executable(Path::new("/bin/sh")));
        assert!(!is_executable(Path::new("/")));
    }
}
