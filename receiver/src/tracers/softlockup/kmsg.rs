//! The kernel log as `/dev/kmsg` hands it out: one record per read(2),
//! `<priority>,<sequence>,<timestamp µs>,<flags>[,...];<message>\n` then optional ` KEY=value`
//! dictionary lines.
//!
//! The priority is `facility << 3 | level`. The kernel's own records have facility 0; the
//! kernel gives every line written to `/dev/kmsg` from user space a non-zero facility (LOG_USER
//! when the writer asks for 0), so facility 0 is the one thing a forger cannot fake.

use std::fs::OpenOptions;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

pub const PATH: &str = "/dev/kmsg";

/// Larger than any record: the kernel fails a read into a smaller buffer with EINVAL.
const READ_BUFFER: usize = 16 * 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub facility: u32,
    pub level: u32,
    pub sequence: u64,
    /// Kernel clock at printk, in microseconds since boot.
    pub timestamp_us: u64,
    /// The first line, as the kernel escaped it (non-printable bytes as `\xNN`).
    pub message: String,
}

impl Record {
    pub fn is_from_kernel(&self) -> bool {
        self.facility == 0
    }

    pub fn parse(bytes: &[u8]) -> Result<Self, String> {
        let text = String::from_utf8_lossy(bytes);
        let (prefix, rest) = text
            .split_once(';')
            .ok_or_else(|| format!("kernel log record without ';': {text:?}"))?;
        let mut fields = prefix.split(',');
        let mut number = |what: &str| -> Result<u64, String> {
            let field = fields.next().unwrap_or_default();
            field
                .parse()
                .map_err(|_| format!("kernel log record with {what} {field:?}: {text:?}"))
        };
        let priority = number("priority")?;
        let sequence = number("sequence number")?;
        let timestamp_us = number("timestamp")?;
        let priority = u32::try_from(priority).map_err(|_| format!("priority {priority}"))?;
        let message = rest.split('\n').next().unwrap_or_default().to_owned();
        Ok(Self {
            facility: priority >> 3,
            level: priority & 7,
            sequence,
            timestamp_us,
            message,
        })
    }
}

/// Reads records in sequence order, counting those the kernel overwrote before we got to them.
pub struct Reader {
    fd: AsyncFd<OwnedFd>,
    buffer: Vec<u8>,
    last_sequence: Option<u64>,
    lost: Arc<AtomicU64>,
}

/// Where a new reader starts.
pub enum Start {
    /// Only records logged from now on.
    End,
    /// Records after this sequence number still in the kernel's buffer, then new ones: a
    /// restarted tracer misses nothing logged while it was down (if the buffer kept it).
    After(u64),
}

impl Reader {
    pub fn open(start: Start, lost: Arc<AtomicU64>) -> io::Result<Self> {
        let file = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
            .open(PATH)?;
        let whence = match start {
            Start::End => libc::SEEK_END,
            Start::After(_) => libc::SEEK_SET,
        };
        // SAFETY: lseek on a file descriptor we own; /dev/kmsg accepts offset 0 only.
        if unsafe { libc::lseek(file.as_raw_fd(), 0, whence) } < 0 {
            return Err(io::Error::last_os_error());
        }
        let fd = OwnedFd::from(file);
        // SAFETY: the AsyncFd owns the descriptor for its whole life and always reports that fd.
        let fd = unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE) }
            .map_err(|e| e.into_parts().1)?;
        Ok(Self {
            fd,
            buffer: vec![0; READ_BUFFER],
            last_sequence: match start {
                Start::End => None,
                Start::After(sequence) => Some(sequence),
            },
            lost,
        })
    }

    pub fn last_sequence(&self) -> Option<u64> {
        self.last_sequence
    }

    /// The next record; waits for one. Cancel-safe: a record is read and returned in one step.
    pub async fn next(&mut self) -> io::Result<Record> {
        loop {
            let mut guard = self.fd.readable().await?;
            let buffer = &mut self.buffer;
            let read = guard.try_io(|fd| {
                // SAFETY: reading into our own buffer, of the length we pass.
                let n = unsafe {
                    libc::read(
                        fd.get_ref().as_raw_fd(),
                        buffer.as_mut_ptr().cast(),
                        buffer.len(),
                    )
                };
                if n < 0 {
                    Err(io::Error::last_os_error())
                } else {
                    Ok(n as usize)
                }
            });
            let n = match read {
                Err(_would_block) => continue,
                Ok(Ok(n)) => n,
                // The kernel overwrote records we had not read; the next read returns the oldest
                // one left, and the gap in sequence numbers says how many went.
                Ok(Err(e)) if e.raw_os_error() == Some(libc::EPIPE) => continue,
                Ok(Err(e)) => return Err(e),
            };
            let record = match Record::parse(&self.buffer[..n]) {
                Ok(record) => record,
                Err(e) => {
                    tracing::warn!(tracer = super::NAME, error = %e, "unparsable kernel log record");
                    continue;
                }
            };
            if let Some(last) = self.last_sequence {
                if record.sequence <= last {
                    continue;
                }
                let gap = record.sequence - last - 1;
                if gap > 0 {
                    self.lost.fetch_add(gap, Ordering::Relaxed);
                }
            }
            self.last_sequence = Some(record.sequence);
            return Ok(record);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_kernel_and_user_records() {
        let kernel = Record::parse(
            b"0,2291,6024171035,-;watchdog: BUG: soft lockup - CPU#1 stuck for 22s! [spin:812]\n",
        )
        .unwrap();
        assert_eq!(
            kernel,
            Record {
                facility: 0,
                level: 0,
                sequence: 2291,
                timestamp_us: 6_024_171_035,
                message: "watchdog: BUG: soft lockup - CPU#1 stuck for 22s! [spin:812]".into(),
            }
        );
        assert!(kernel.is_from_kernel());

        // What `echo '<0>...' > /dev/kmsg` becomes: the kernel forces LOG_USER (facility 1).
        let forged = Record::parse(b"8,2292,6024171100,-;BUG: soft lockup\n").unwrap();
        assert_eq!((forged.facility, forged.level), (1, 0));
        assert!(!forged.is_from_kernel());

        // Newer kernels add fields after the flags (the caller id); dictionary lines follow.
        let with_dict = Record::parse(
            b"6,339,5140900,-,caller=T1;usb 1-1: new high-speed USB device\n SUBSYSTEM=usb\n DEVICE=c189:1\n",
        )
        .unwrap();
        assert_eq!(with_dict.level, 6);
        assert_eq!(with_dict.message, "usb 1-1: new high-speed USB device");
    }

    #[test]
    fn rejects_malformed_records_naming_the_field() {
        let no_separator = Record::parse(b"0,1,2,-").unwrap_err();
        assert!(no_separator.contains("without ';'"), "{no_separator}");
        let bad_sequence = Record::parse(b"0,x,2,-;hello\n").unwrap_err();
        assert!(
            bad_sequence.contains("sequence number \"x\""),
            "{bad_sequence}"
        );
    }

    /// Only records logged after opening come back, and they come in sequence (needs root).
    #[tokio::test]
    async fn reads_new_records_only() {
        let lost = Arc::new(AtomicU64::new(0));
        let mut reader = Reader::open(Start::End, lost.clone()).unwrap();
        let marker = format!("huatuo-otel softlockup kmsg test {}", std::process::id());
        std::fs::write(PATH, format!("<6>{marker}\n")).unwrap();
        let record = tokio::time::timeout(std::time::Duration::from_secs(10), async {
            loop {
                let record = reader.next().await.unwrap();
                if record.message.contains(&marker) {
                    return record;
                }
            }
        })
        .await
        .expect("our own record within 10 s");
        assert!(!record.is_from_kernel(), "written from user space");
        assert_eq!(lost.load(Ordering::Relaxed), 0);

        // A reader resuming after that record sees the next one first.
        let mut resumed = Reader::open(Start::After(record.sequence), lost.clone()).unwrap();
        std::fs::write(PATH, format!("<6>{marker} again\n")).unwrap();
        let next = tokio::time::timeout(std::time::Duration::from_secs(10), resumed.next())
            .await
            .unwrap()
            .unwrap();
        assert!(next.sequence > record.sequence);
    }
}
