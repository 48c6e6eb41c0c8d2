//! Kernel packet drops on demand: UDP datagrams to a port on 127.0.0.1 that nothing listens on,
//! each dropped by the kernel with `NO_SOCKET` (the dropwatch tracer's cheapest event source).

use std::net::UdpSocket;

/// A UDP port on 127.0.0.1 that nothing listens on: bound once to get a free number, then closed.
pub fn closed_udp_port() -> std::io::Result<u16> {
    Ok(UdpSocket::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Sends one datagram from a fresh socket and returns its source port, which tells the drop
/// events apart (and so their order and count) without reading the payload.
pub fn send_numbered_drop(port: u16) -> std::io::Result<u16> {
    let socket = UdpSocket::bind("127.0.0.1:0")?;
    // The error, if any, is ICMP feedback about the drop itself.
    let _ = socket.send_to(b"drop", ("127.0.0.1", port));
    Ok(socket.local_addr()?.port())
}
