//! Network namespaces for tests that need to break networking (netfilter rules, lost packets)
//! without touching the host's: created with `ip netns`, entered per thread with setns(2), and
//! deleted, with every rule and socket route in them, when the guard is dropped.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::AsRawFd;
use std::process::Command;

use anyhow::{bail, Context as _};

/// Where `ip netns add` mounts the namespaces it creates.
const NETNS_RUN_DIR: &str = "/run/netns";

/// A named network namespace with its loopback interface up. Dropping it deletes it.
pub struct NetNs {
    name: String,
}

impl NetNs {
    /// Creates `huatuo-test-<pid>-<tag>`; `tag` keeps namespaces of one test process apart.
    pub fn create(tag: &str) -> anyhow::Result<Self> {
        let name = format!("huatuo-test-{}-{tag}", std::process::id());
        run("ip", &["netns", "add", &name])?;
        // From here on the guard owns the namespace, so a failure below still deletes it.
        let ns = Self { name };
        run("ip", &["-n", &ns.name, "link", "set", "lo", "up"])?;
        Ok(ns)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Runs `program args` inside the namespace (`ip netns exec`); an error unless it succeeds.
    pub fn exec(&self, program: &str, args: &[&str]) -> anyhow::Result<()> {
        let mut full = vec!["netns", "exec", &self.name, program];
        full.extend_from_slice(args);
        run("ip", &full)
    }

    /// Runs `f` on a thread that has entered the namespace. Sockets it creates stay in the
    /// namespace wherever they are used afterwards.
    pub fn enter<T: Send>(&self, f: impl FnOnce() -> T + Send) -> anyhow::Result<T> {
        let path = format!("{NETNS_RUN_DIR}/{}", self.name);
        let ns = std::fs::File::open(&path).with_context(|| format!("opening {path}"))?;
        std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    // SAFETY: setns only reads the fd, which stays open for the call; it
                    // changes the namespace of this (short-lived) thread only.
                    if unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                        return Err(std::io::Error::last_os_error())
                            .with_context(|| format!("entering network namespace {path}"));
                    }
                    Ok(f())
                })
                .join()
                .map_err(|_| anyhow::anyhow!("thread in namespace {path} panicked"))?
        })
    }

    /// A TCP listener on `listen` (a loopback address) and a client connected to it, inside
    /// the namespace, with every segment to the listener's port except the client's SYN
    /// dropped by netfilter from the start. The handshake completes on the client's side only:
    /// the server keeps resending its SYN-ACK (the first after about 1 s), and whatever the
    /// client writes is resent from about 200 ms on (tail loss probe first, then timeouts).
    ///
    /// The client dials `dial` at the listener's port: `listen` itself, or for an IPv4
    /// listener its IPv4-mapped IPv6 form, which makes the client a dual-stack IPv6 socket.
    pub fn lossy_connection(
        &self,
        listen: IpAddr,
        dial: IpAddr,
    ) -> anyhow::Result<LossyConnection> {
        let listener = self
            .enter(|| TcpListener::bind((listen, 0)))?
            .with_context(|| format!("binding a listener on {listen} in the namespace"))?;
        let server = listener.local_addr()?;
        let port = server.port().to_string();
        let firewall = if listen.is_ipv4() {
            "iptables"
        } else {
            "ip6tables"
        };
        self.exec(
            firewall,
            &[
                "-A", "INPUT", "-p", "tcp", "--dport", &port, "!", "--syn", "-j", "DROP",
            ],
        )?;
        let target = SocketAddr::new(dial, server.port());
        let client = self
            .enter(|| TcpStream::connect(target))?
            .with_context(|| format!("connecting to {target} in the namespace"))?;
        Ok(LossyConnection {
            client,
            server,
            _listener: listener,
        })
    }

    /// Sends `count` UDP datagrams over the namespace's loopback, each answered before the next
    /// leaves, so every one is received (one NET_RX softirq raised and run per datagram, with
    /// nothing queued or dropped on the way).
    pub fn udp_round_trips(&self, count: usize) -> anyhow::Result<()> {
        self.enter(|| -> anyhow::Result<()> {
            let localhost = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0);
            let server = UdpSocket::bind(localhost)?;
            let client = UdpSocket::bind(localhost)?;
            let timeout = Some(std::time::Duration::from_secs(1));
            server.set_read_timeout(timeout)?;
            client.set_read_timeout(timeout)?;
            client.connect(server.local_addr()?)?;
            let mut buf = [0u8; 64];
            for _ in 0..count {
                client.send(b"huatuo softirq")?;
                let (len, from) = server.recv_from(&mut buf)?;
                server.send_to(&buf[..len], from)?;
                client.recv(&mut buf)?;
            }
            Ok(())
        })?
        .context("UDP round trips over the namespace's loopback")
    }
}

/// See [`NetNs::lossy_connection`].
pub struct LossyConnection {
    pub client: TcpStream,
    /// The listener's address: the destination of the client's retransmits, the source of the
    /// server's.
    pub server: SocketAddr,
    _listener: TcpListener,
}

impl Drop for LossyConnection {
    fn drop(&mut self) {
        // Close with a reset: a FIN that never gets through would be resent by the orphaned
        // socket for minutes, keeping the namespace and its retransmits alive after the test.
        let linger = libc::linger {
            l_onoff: 1,
            l_linger: 0,
        };
        // SAFETY: the fd is open (owned by `client`) and `linger` outlives the call, which only
        // reads it.
        unsafe {
            libc::setsockopt(
                self.client.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_LINGER,
                (&linger as *const libc::linger).cast(),
                std::mem::size_of::<libc::linger>() as libc::socklen_t,
            );
        }
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        if let Err(e) = run("ip", &["netns", "delete", &self.name]) {
            eprintln!("could not delete network namespace {}: {e:#}", self.name);
        }
    }
}

/// A veth pair in the test's own network namespace (where the agent runs), both ends down;
/// dropping it deletes both ends.
pub struct VethPair {
    name: String,
    peer: String,
}

impl VethPair {
    /// Creates `<tag><pid>a` and `<tag><pid>b`; `tag` (a few letters) keeps tests apart, the
    /// pid concurrent runs. Interface names have at most 15 bytes.
    pub fn create(tag: &str) -> anyhow::Result<Self> {
        let base = format!("{tag}{}", std::process::id() % 100_000);
        if base.len() + 1 > 15 {
            bail!("veth tag {tag:?} too long for an interface name");
        }
        let (name, peer) = (format!("{base}a"), format!("{base}b"));
        run(
            "ip",
            &["link", "add", &name, "type", "veth", "peer", "name", &peer],
        )?;
        Ok(Self { name, peer })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn peer(&self) -> &str {
        &self.peer
    }

    /// `ip link set <interface> up|down`.
    pub fn set(&self, interface: &str, up: bool) -> anyhow::Result<()> {
        run(
            "ip",
            &["link", "set", interface, if up { "up" } else { "down" }],
        )
    }
}

impl Drop for VethPair {
    fn drop(&mut self) {
        // Deleting one end deletes its peer.
        if let Err(e) = run("ip", &["link", "del", &self.name]) {
            eprintln!("could not delete veth pair {}: {e:#}", self.name);
        }
    }
}

fn run(program: &str, args: &[&str]) -> anyhow::Result<()> {
    let output = Command::new(program)
        .args(args)
        .output()
        .with_context(|| format!("running {program} (is it installed? scripts/install-deps)"))?;
    if !output.status.success() {
        bail!(
            "{program} {} failed ({}): {}",
            args.join(" "),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaces_are_isolated_and_deleted() {
        if !crate::require_root_and_bpf() {
            return;
        }
        let ns = NetNs::create("netns-selftest").unwrap();
        let path = format!("{NETNS_RUN_DIR}/{}", ns.name());
        let inode = |p: &str| std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(p).unwrap());
        let inside = ns.enter(|| inode("/proc/thread-self/ns/net")).unwrap();
        assert_eq!(inside, inode(&path));
        assert_ne!(inside, inode("/proc/self/ns/net"));
        let bad = ns.exec("false", &[]).unwrap_err().to_string();
        assert!(bad.contains("failed"), "{bad}");
        drop(ns);
        assert!(!std::path::Path::new(&path).exists(), "{path} survived");
    }
}
