//! The driver behind an interface, as `ethtool -i` shows it: the ETHTOOL_GDRVINFO ioctl, which
//! also knows software devices (veth, bridge), falling back to the sysfs driver link.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DriverInfo {
    /// Empty when the interface has none the kernel can name.
    pub driver: String,
    pub version: String,
    pub firmware: String,
}

const SIOCETHTOOL: libc::c_ulong = 0x8946;
const ETHTOOL_GDRVINFO: u32 = 0x0000_0003;

/// `struct ethtool_drvinfo` (linux/ethtool.h).
#[repr(C)]
struct EthtoolDrvinfo {
    cmd: u32,
    driver: [u8; 32],
    version: [u8; 32],
    fw_version: [u8; 32],
    bus_info: [u8; 32],
    erom_version: [u8; 32],
    reserved2: [u8; 12],
    n_priv_flags: u32,
    n_stats: u32,
    testinfo_len: u32,
    eedump_len: u32,
    regdump_len: u32,
}

/// `struct ifreq` with the `ifr_data` member of its union, padded to the union's size.
#[repr(C)]
struct IfreqData {
    name: [u8; libc::IFNAMSIZ],
    data: *mut libc::c_void,
    _union_rest: [u8; 24 - std::mem::size_of::<*mut libc::c_void>()],
}

fn c_string(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

pub fn driver_info(interface: &str) -> DriverInfo {
    ethtool(interface).unwrap_or_else(|| DriverInfo {
        driver: sysfs_driver(interface).unwrap_or_default(),
        ..DriverInfo::default()
    })
}

fn ethtool(interface: &str) -> Option<DriverInfo> {
    let name = interface.as_bytes();
    if name.len() >= libc::IFNAMSIZ {
        return None;
    }
    // SAFETY: socket(2) has no memory preconditions; the fd is owned below.
    let raw = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if raw < 0 {
        return None;
    }
    // SAFETY: raw is a fresh descriptor nobody else owns.
    let socket = unsafe { OwnedFd::from_raw_fd(raw) };
    // SAFETY: all-zero is a valid value of this plain C struct.
    let mut info: EthtoolDrvinfo = unsafe { std::mem::zeroed() };
    info.cmd = ETHTOOL_GDRVINFO;
    let mut request = IfreqData {
        name: [0; libc::IFNAMSIZ],
        data: (&mut info as *mut EthtoolDrvinfo).cast(),
        _union_rest: [0; 24 - std::mem::size_of::<*mut libc::c_void>()],
    };
    request.name[..name.len()].copy_from_slice(name);
    // SAFETY: request is a valid ifreq whose data points at `info`, which outlives the call; the
    // kernel writes at most sizeof(struct ethtool_drvinfo) there.
    let rc = unsafe { libc::ioctl(socket.as_raw_fd(), SIOCETHTOOL as _, &mut request) };
    if rc < 0 {
        return None;
    }
    Some(DriverInfo {
        driver: c_string(&info.driver),
        version: c_string(&info.version),
        firmware: c_string(&info.fw_version),
    })
}

fn sysfs_driver(interface: &str) -> Option<String> {
    let link = std::fs::read_link(format!("/sys/class/net/{interface}/device/driver")).ok()?;
    Some(link.file_name()?.to_string_lossy().into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts_match_the_kernel() {
        assert_eq!(std::mem::size_of::<EthtoolDrvinfo>(), 196);
        assert_eq!(std::mem::size_of::<IfreqData>(), 40);
    }

    #[test]
    fn loopback_has_no_driver_and_unknown_names_none() {
        // The loopback device answers GDRVINFO on no kernel; sysfs has no device for it.
        assert_eq!(driver_info("lo").driver, "");
        assert_eq!(driver_info("no-such-if0"), DriverInfo::default());
        assert_eq!(
            driver_info("a-name-far-too-long-for-linux"),
            DriverInfo::default()
        );
    }
}
