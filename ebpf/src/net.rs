//! Socket address families as the kernel programs report them, and the addresses they carry.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// `AF_INET` in a record's `family`.
pub const FAMILY_INET: u8 = 2;
/// `AF_INET6` in a record's `family`.
pub const FAMILY_INET6: u8 = 10;

/// The address in a record's 16-byte field (wire order, IPv4 in bytes 0..4); `None` when the
/// family is neither IPv4 nor IPv6.
pub fn ip_addr(family: u8, addr: &[u8; 16]) -> Option<IpAddr> {
    match family {
        FAMILY_INET => Some(IpAddr::V4(Ipv4Addr::new(
            addr[0], addr[1], addr[2], addr[3],
        ))),
        FAMILY_INET6 => Some(IpAddr::V6(Ipv6Addr::from(*addr))),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_follow_the_family() {
        let mut raw = [0u8; 16];
        raw[..4].copy_from_slice(&[10, 0, 0, 1]);
        assert_eq!(
            ip_addr(FAMILY_INET, &raw),
            Some(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)))
        );
        assert_eq!(
            ip_addr(FAMILY_INET6, &Ipv6Addr::LOCALHOST.octets()),
            Some(IpAddr::V6(Ipv6Addr::LOCALHOST))
        );
        assert_eq!(ip_addr(0, &raw), None);
    }
}
