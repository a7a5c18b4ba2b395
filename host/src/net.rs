//! Where the server listens: the address `-i` asks for, and the listener itself.
//!
//! Policy: without `-i`, loopback only. `-i` alone picks the LAN address of an up,
//! non-loopback IPv4 interface, ranked Wi-Fi > Ethernet > anything else > cellular
//! (on a phone the first interface up may be the cellular link, which is not the LAN
//! the user means); ties keep the kernel's order. Nothing here sends traffic.

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener};

use axs_core::admission::AcceptFailure;
use axs_pty::{error_text, up_ipv4_interfaces, Ipv4Interface};

use crate::cli::Bind;

/// The address to listen on.
pub fn bind_address(bind: Bind) -> Result<IpAddr, String> {
    match bind {
        Bind::Loopback => Ok(IpAddr::V4(Ipv4Addr::LOCALHOST)),
        Bind::Addr(ip) => Ok(ip),
        Bind::Lan => lan_address().map_err(|e| format!("-i: {e}")),
    }
}

/// The IPv4 address of the best-ranked interface that is up and is not loopback.
pub fn lan_address() -> io::Result<IpAddr> {
    choose_lan(&up_ipv4_interfaces()?).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::NotFound,
            "no network interface with an IPv4 address is up (besides loopback)",
        )
    })
}

/// The first of the best-ranked usable interfaces, when there is one.
fn choose_lan(interfaces: &[Ipv4Interface]) -> Option<IpAddr> {
    let usable = interfaces
        .iter()
        .filter(|i| !i.loopback && !i.ip.is_loopback() && !i.ip.is_unspecified());
    let mut best: Option<(u8, Ipv4Addr)> = None;
    for interface in usable {
        let rank = interface_rank(&interface.name);
        if best.is_none_or(|(r, _)| rank < r) {
            best = Some((rank, interface.ip));
        }
    }
    best.map(|(_, ip)| IpAddr::V4(ip))
}

/// Lower is preferred: Wi-Fi, then Ethernet, then anything else, cellular last.
fn interface_rank(name: &str) -> u8 {
    const ORDER: [&[&str]; 3] = [
        &["wlan", "wl"],
        &["eth", "en"],
        &["rmnet", "ccmni", "wwan", "ppp"],
    ];
    match ORDER
        .iter()
        .position(|prefixes| prefixes.iter().any(|p| name.starts_with(p)))
    {
        Some(0) => 0,
        Some(1) => 1,
        Some(_) => 3,
        None => 2,
    }
}

/// Binds a TCP listener on `ip:port` (close-on-exec, `SO_REUSEADDR`), with an error
/// message that names the problem: "port 8767 is already in use".
pub fn bind_listener(ip: IpAddr, port: u16) -> io::Result<TcpListener> {
    let addr = SocketAddr::new(ip, port);
    TcpListener::bind(addr).map_err(|e| {
        let text = match e.kind() {
            io::ErrorKind::AddrInUse => format!("port {port} is already in use"),
            io::ErrorKind::AddrNotAvailable => {
                format!("address {ip} does not belong to this machine")
            }
            io::ErrorKind::PermissionDenied => {
                format!("not allowed to listen on port {port} (ports below 1024 need privileges)")
            }
            _ => format!("cannot listen on {addr}: {}", error_text(&e)),
        };
        io::Error::new(e.kind(), text)
    })
}

/// `EMFILE` and `ENFILE` (the same on every Linux architecture): the process's or the
/// system's descriptor table is full.
const OUT_OF_DESCRIPTORS: [i32; 2] = [24, 23];

/// What a failed `accept` means to the core's admission.
pub fn accept_failure(error: &io::Error) -> AcceptFailure {
    match error.raw_os_error() {
        Some(errno) if OUT_OF_DESCRIPTORS.contains(&errno) => AcceptFailure::OutOfDescriptors,
        _ => AcceptFailure::Other,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;

    fn interface(name: &str, ip: [u8; 4]) -> Ipv4Interface {
        Ipv4Interface {
            name: name.into(),
            ip: Ipv4Addr::from(ip),
            loopback: name == "lo",
        }
    }

    #[test]
    fn wifi_and_ethernet_come_before_cellular() {
        let mut names = ["rmnet_data0", "tun0", "eth0", "wlan0"];
        names.sort_by_key(|n| interface_rank(n));
        assert_eq!(names, ["wlan0", "eth0", "tun0", "rmnet_data0"]);
    }

    #[test]
    fn the_lan_is_the_best_ranked_non_loopback_interface() {
        let up = [
            interface("lo", [127, 0, 0, 1]),
            interface("rmnet_data0", [10, 1, 1, 1]),
            interface("eth0", [192, 168, 1, 2]),
            interface("wlan0", [192, 168, 1, 3]),
            interface("wlan1", [192, 168, 1, 4]),
        ];
        assert_eq!(choose_lan(&up), Some(IpAddr::from([192, 168, 1, 3])));
        assert_eq!(choose_lan(&up[..2]), Some(IpAddr::from([10, 1, 1, 1])));
        assert_eq!(choose_lan(&up[..1]), None);
        assert_eq!(choose_lan(&[interface("eth0", [0, 0, 0, 0])]), None);
    }

    #[test]
    fn port_in_use_is_named() {
        let first = bind_listener(IpAddr::V4(Ipv4Addr::LOCALHOST), 0).unwrap();
        let port = first.local_addr().unwrap().port();
        let err = bind_listener(IpAddr::V4(Ipv4Addr::LOCALHOST), port).unwrap_err();
        assert_eq!(err.to_string(), format!("port {port} is already in use"));
        assert_eq!(err.kind(), io::ErrorKind::AddrInUse);
    }

    #[test]
    fn lan_address_is_not_loopback() {
        // Containers may have no interface besides loopback: then the error says so.
        match lan_address() {
            Ok(ip) => assert!(!ip.is_loopback()),
            Err(e) => assert_eq!(e.kind(), io::ErrorKind::NotFound),
        }
    }

    #[test]
    fn a_full_descriptor_table_is_told_apart() {
        let emfile = io::Error::from_raw_os_error(24);
        assert_eq!(accept_failure(&emfile), AcceptFailure::OutOfDescriptors);
        let enfile = io::Error::from_raw_os_error(23);
        assert_eq!(accept_failure(&enfile), AcceptFailure::OutOfDescriptors);
        let aborted = io::Error::from(io::ErrorKind::ConnectionAborted);
        assert_eq!(accept_failure(&aborted), AcceptFailure::Other);
    }

    #[test]
    fn loopback_by_default() {
        assert_eq!(
            bind_address(Bind::Loopback).unwrap(),
            IpAddr::V4(Ipv4Addr::LOCALHOST)
        );
        let ip: IpAddr = "127.0.0.2".parse().unwrap();
        assert_eq!(bind_address(Bind::Addr(ip)).unwrap(), ip);
    }
}
