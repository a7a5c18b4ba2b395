//! Network facts and socket options the standard library does not offer: the IPv4
//! interfaces that are up (`getifaddrs`), and `TCP_NOTSENT_LOWAT`.
//!
//! Nothing here sends traffic, and nothing ranks or chooses: which interface a server
//! binds to is the caller's decision.

use std::ffi::CStr;
use std::io;
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, BorrowedFd};

/// An IPv4 address of a network interface that is up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ipv4Interface {
    /// The interface's name (`wlan0`, `eth0`, `rmnet_data0`).
    pub name: String,
    /// One of its IPv4 addresses.
    pub ip: Ipv4Addr,
    /// The interface is a loopback one (`IFF_LOOPBACK`).
    pub loopback: bool,
}

/// Every IPv4 address of an interface that is up, in the order the kernel lists them
/// (an interface with several addresses appears once per address).
pub fn up_ipv4_interfaces() -> io::Result<Vec<Ipv4Interface>> {
    let mut list: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs writes a list head into `list`, freed below with freeifaddrs.
    if unsafe { libc::getifaddrs(&mut list) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let mut found = Vec::new();
    let mut cursor = list;
    while !cursor.is_null() {
        // SAFETY: `cursor` is a node of the list getifaddrs returned, not yet freed.
        let ifa = unsafe { &*cursor };
        cursor = ifa.ifa_next;
        found.extend(ipv4_interface(ifa));
    }
    // SAFETY: `list` came from getifaddrs and is freed once; no reference outlives it
    // (`found` holds owned copies).
    unsafe { libc::freeifaddrs(list) };
    Ok(found)
}

/// The interface a list node describes, when it is up and has an IPv4 address.
fn ipv4_interface(ifa: &libc::ifaddrs) -> Option<Ipv4Interface> {
    let flags = ifa.ifa_flags;
    let up = flags & libc::IFF_UP as libc::c_uint != 0;
    if !up || ifa.ifa_addr.is_null() || ifa.ifa_name.is_null() {
        return None;
    }
    // SAFETY: ifa_addr is non-null and points to a sockaddr of the family it names.
    let family = unsafe { (*ifa.ifa_addr).sa_family };
    if i32::from(family) != libc::AF_INET {
        return None;
    }
    // SAFETY: the family is AF_INET, so the address is a sockaddr_in.
    let sin = unsafe { &*ifa.ifa_addr.cast::<libc::sockaddr_in>() };
    // SAFETY: ifa_name is a non-null, NUL-terminated string owned by the list, alive
    // while the caller holds the node.
    let name = unsafe { CStr::from_ptr(ifa.ifa_name) };
    Some(Ipv4Interface {
        name: name.to_string_lossy().into_owned(),
        ip: Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr)),
        loopback: flags & libc::IFF_LOOPBACK as libc::c_uint != 0,
    })
}

/// Makes a TCP socket report "writable" only while less than `bytes` of queued data is
/// still unsent (`TCP_NOTSENT_LOWAT`). A writer then wakes as soon as a slow reader has
/// taken some data, instead of when a third of a multi-megabyte buffer has drained: its
/// progress is seen early and little data sits queued in the kernel.
pub fn set_send_low_water(socket: BorrowedFd<'_>, bytes: u32) -> io::Result<()> {
    let value = libc::c_int::try_from(bytes).unwrap_or(libc::c_int::MAX);
    // SAFETY: setsockopt reads `size_of::<c_int>()` bytes from a live c_int; the fd is
    // borrowed, so it is open for the duration of the call.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_NOTSENT_LOWAT,
            (&value as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;
    use std::net::TcpListener;
    use std::os::fd::AsFd;

    #[test]
    fn loopback_is_listed_as_loopback() {
        let interfaces = up_ipv4_interfaces().unwrap();
        // Every sandbox we run in has `lo` up; if one does not, there is nothing to check.
        for lo in interfaces.iter().filter(|i| i.ip.is_loopback()) {
            assert!(lo.loopback, "{lo:?}");
        }
        assert!(interfaces.iter().all(|i| !i.name.is_empty()));
    }

    #[test]
    fn low_water_applies_to_tcp_sockets() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        assert!(set_send_low_water(listener.as_fd(), 16 * 1024).is_ok());
    }
}
