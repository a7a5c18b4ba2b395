//! The port file `~/.axs/lsp_ports/<basename of SERVER>_<session or pid>`: written
//! atomically once the bridge listens, removed on every way out.
//!
//! Invariants: a reader sees no file or a whole one (a temporary file in the same
//! directory is renamed over it); at most one port file per process is registered, and
//! [`remove_port_file`] removes it at most once, from any thread (a signal-handling
//! thread, an error path, or the [`PortFile`] guard's drop).

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use axs_core::lsp::program_base_name;

/// The registered port file, removed by [`remove_port_file`].
static REGISTERED: Mutex<Option<PathBuf>> = Mutex::new(None);

/// The port file's path under `home` for `program` (as given) and `suffix` (the session,
/// or the bridge's pid).
pub fn port_file_path(home: &Path, program: &str, suffix: &str) -> PathBuf {
    home.join(".axs")
        .join("lsp_ports")
        .join(format!("{}_{suffix}", program_base_name(program)))
}

/// Removes the file on drop (see [`remove_port_file`] for exits that skip drops).
#[derive(Debug)]
pub struct PortFile {
    path: PathBuf,
}

impl PortFile {
    /// Writes `port` (decimal, with a newline) to `path` atomically, creating the
    /// directories, and registers it for [`remove_port_file`].
    pub fn write(path: PathBuf, port: u16) -> io::Result<PortFile> {
        let dir = path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir)?;
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        let temp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
        let written = std::fs::File::create(&temp)
            .and_then(|mut f| f.write_all(format!("{port}\n").as_bytes()))
            .and_then(|()| std::fs::rename(&temp, &path));
        if let Err(e) = written {
            let _ = std::fs::remove_file(&temp);
            return Err(io::Error::new(
                e.kind(),
                format!("cannot write the port file {}: {e}", path.display()),
            ));
        }
        *REGISTERED.lock().unwrap_or_else(PoisonError::into_inner) = Some(path.clone());
        Ok(PortFile { path })
    }

    /// Where it is.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for PortFile {
    fn drop(&mut self) {
        remove_port_file();
    }
}

/// Removes the registered port file, if any (idempotent, any thread). Call it on every
/// way out that does not drop the [`PortFile`]: a signal, `process::exit`.
pub fn remove_port_file() {
    let path = REGISTERED
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .take();
    if let Some(path) = path {
        if let Err(e) = std::fs::remove_file(&path) {
            log::debug!("cannot remove the port file {}: {e}", path.display());
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;

    #[test]
    fn path_is_named_after_the_base_name_and_suffix() {
        let p = port_file_path(Path::new("/home/u"), "/usr/bin/pylsp", "s1");
        assert_eq!(p, Path::new("/home/u/.axs/lsp_ports/pylsp_s1"));
    }

    #[test]
    fn written_whole_then_removed_once() {
        let home = std::env::temp_dir().join(format!("axs-portfile-{}", std::process::id()));
        let path = port_file_path(&home, "fake-lsp", "t");
        let file = PortFile::write(path.clone(), 4321).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "4321\n");
        let entries = std::fs::read_dir(path.parent().unwrap()).unwrap().count();
        assert_eq!(entries, 1, "no temporary file left");
        remove_port_file();
        assert!(!path.exists());
        // Someone else's file at the same path later is not ours to remove.
        std::fs::write(&path, "1\n").unwrap();
        drop(file);
        assert!(path.exists());
        std::fs::remove_dir_all(&home).unwrap();
    }
}
