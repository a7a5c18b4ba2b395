//! Opening a pty pair, and the operations on its master: size and blocking mode.
//!
//! The master is always close-on-exec. The slave is opened by name; when that is
//! denied (Android's SELinux policy refuses `/dev/pts/N` to apps), it is obtained
//! from the master with `ioctl(TIOCGPTPEER)`, which needs no path at all.

use std::io;
use std::os::fd::{BorrowedFd, OwnedFd};

use rustix::fs::{Mode, OFlags};
use rustix::pty::OpenptFlags;
use rustix::termios::Winsize;

/// Environment variable that forces the `TIOCGPTPEER` slave path when set to `1`.
pub const PEER_ENV: &str = "AXS_PTY_PEER";

/// A terminal size in character cells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WinSize {
    /// Columns (characters per line).
    pub cols: u16,
    /// Rows (lines).
    pub rows: u16,
}

impl Default for WinSize {
    fn default() -> Self {
        WinSize { cols: 80, rows: 24 }
    }
}

/// How the slave side of a new pty is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SlaveOpen {
    /// Open `/dev/pts/N` by name; on failure fall back to `TIOCGPTPEER`.
    #[default]
    ByName,
    /// Always use `ioctl(TIOCGPTPEER)` (for tests, and platforms that deny the path).
    ForcePeer,
}

impl SlaveOpen {
    /// `ForcePeer` when `AXS_PTY_PEER=1` is set in the environment, else `ByName`.
    pub fn from_env() -> SlaveOpen {
        if std::env::var_os(PEER_ENV).is_some_and(|v| v == "1") {
            SlaveOpen::ForcePeer
        } else {
            SlaveOpen::ByName
        }
    }
}

/// Both ends of a freshly opened pty, each close-on-exec.
#[derive(Debug)]
pub struct PtyPair {
    /// The side the server reads output from and writes input to.
    pub master: OwnedFd,
    /// The side that becomes the child's terminal.
    pub slave: OwnedFd,
}

/// Opens a pty pair of the given size (posix_openpt, grantpt, unlockpt, slave).
pub fn open_pair(size: WinSize, how: SlaveOpen) -> io::Result<PtyPair> {
    let flags = OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC;
    let master = rustix::pty::openpt(flags)?;
    rustix::pty::grantpt(&master)?;
    rustix::pty::unlockpt(&master)?;
    resize(borrow(&master), size)?;
    let slave = match how {
        SlaveOpen::ForcePeer => open_peer(&master)?,
        SlaveOpen::ByName => match open_by_name(&master) {
            Ok(slave) => slave,
            Err(err) => {
                log::debug!("opening the pty slave by name failed ({err}); using TIOCGPTPEER");
                open_peer(&master)?
            }
        },
    };
    Ok(PtyPair { master, slave })
}

fn borrow(fd: &OwnedFd) -> BorrowedFd<'_> {
    use std::os::fd::AsFd;
    fd.as_fd()
}

fn open_by_name(master: &OwnedFd) -> io::Result<OwnedFd> {
    let name = rustix::pty::ptsname(master, Vec::new())?;
    let flags = OFlags::RDWR | OFlags::NOCTTY | OFlags::CLOEXEC;
    Ok(rustix::fs::open(name.as_c_str(), flags, Mode::empty())?)
}

fn open_peer(master: &OwnedFd) -> io::Result<OwnedFd> {
    let flags = OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC;
    Ok(rustix::pty::ioctl_tiocgptpeer(master, flags)?)
}

/// Switches `O_NONBLOCK` on or off (non-blocking for the smol runtime, blocking for threads).
pub fn set_nonblocking(fd: BorrowedFd<'_>, nonblocking: bool) -> io::Result<()> {
    let flags = rustix::fs::fcntl_getfl(fd)?;
    let wanted = if nonblocking {
        flags | OFlags::NONBLOCK
    } else {
        flags - OFlags::NONBLOCK
    };
    if wanted != flags {
        rustix::fs::fcntl_setfl(fd, wanted)?;
    }
    Ok(())
}

/// Bytes a pty master's reader can take now (`FIONREAD`): what the line discipline
/// holds, not what the kernel's tty worker has yet to move into it. Unlike a read (or a
/// poll) that finds nothing, asking does not wait for that worker to be scheduled (at
/// most for a move it is in the middle of): a read of an empty master blocks in the
/// kernel, even with `O_NONBLOCK`, until the worker has run, which under a flood happens
/// on every 4 KiB.
pub fn unread_bytes(fd: BorrowedFd<'_>) -> io::Result<usize> {
    let n = rustix::io::ioctl_fionread(fd)?;
    Ok(usize::try_from(n).unwrap_or(usize::MAX))
}

/// Sets the terminal size (`TIOCSWINSZ`); the kernel sends SIGWINCH to the foreground group.
pub fn resize(fd: BorrowedFd<'_>, size: WinSize) -> io::Result<()> {
    let ws = Winsize {
        ws_row: size.rows,
        ws_col: size.cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    Ok(rustix::termios::tcsetwinsize(fd, ws)?)
}

/// Reads the terminal size back (`TIOCGWINSZ`).
pub fn size(fd: BorrowedFd<'_>) -> io::Result<WinSize> {
    let ws = rustix::termios::tcgetwinsize(fd)?;
    Ok(WinSize {
        cols: ws.ws_col,
        rows: ws.ws_row,
    })
}
