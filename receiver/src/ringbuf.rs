//! Reads a BPF ring buffer asynchronously: the task sleeps in epoll until the kernel signals
//! data, then drains every available record.

use aya::maps::{MapData, RingBuf};
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;
use tokio_util::sync::CancellationToken;

/// Hands every record to `on_record` until `cancel` fires. Records still in the buffer when it
/// fires are drained first, so nothing the kernel already submitted is lost on shutdown.
pub async fn drain(
    ring: RingBuf<MapData>,
    cancel: &CancellationToken,
    mut on_record: impl FnMut(&[u8]),
) -> anyhow::Result<()> {
    // SAFETY: the AsyncFd owns the RingBuf, which owns its map fd for the AsyncFd's whole life and
    // always reports that same fd.
    let mut ring =
        unsafe { AsyncFd::register_with_interest(ring, Interest::READABLE) }.map_err(|e| {
            anyhow::anyhow!(
                "registering the ring buffer with epoll: {}",
                e.into_parts().1
            )
        })?;
    loop {
        tokio::select! {
            biased;
            _ = cancel.cancelled() => {
                drain_available(ring.get_mut(), &mut on_record);
                return Ok(());
            }
            guard = ring.readable_mut() => {
                let mut guard = guard?;
                drain_available(guard.get_inner_mut(), &mut on_record);
                guard.clear_ready();
            }
        }
    }
}

fn drain_available(ring: &mut RingBuf<MapData>, on_record: &mut impl FnMut(&[u8])) {
    while let Some(item) = ring.next() {
        on_record(&item);
    }
}
