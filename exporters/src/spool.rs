//! The on-disk spool: log and span batches the collector could not take, one file per batch,
//! kept in the order they were produced until the replay delivers them.
//!
//! A file is `<seq>.<signal>.pb`: a 24-byte header (magic, creation time in Unix milliseconds,
//! record count, CRC-32 of the body) and the OTLP protobuf export request. Files are written
//! under a temporary name and renamed, so a crash leaves either a whole batch or none; the
//! sequence number, shared by both signals, orders them across restarts.

use crate::delivery::{DeliveryStats, Signal};
use anyhow::Context as _;
use huatuo_config::SpoolConfig;
use std::collections::BTreeMap;
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const MAGIC: &[u8; 8] = b"HTSPOOL1";
const HEADER_LEN: usize = 24;
const SUFFIX: &str = ".pb";
const TMP_PREFIX: &str = ".tmp-";

/// One spooled batch.
#[derive(Clone, Debug)]
pub(crate) struct Entry {
    pub seq: u64,
    pub signal: Signal,
    pub records: u64,
    created_ms: u64,
    /// File size, header included.
    bytes: u64,
}

#[derive(Default)]
struct State {
    next_seq: u64,
    /// By sequence number: the first entry is the oldest of all signals.
    entries: BTreeMap<u64, Entry>,
    bytes: u64,
    /// Entries per signal, so exporters can tell cheaply whether older data is waiting.
    pending: [usize; 2],
}

pub(crate) struct Spool {
    dir: PathBuf,
    max_bytes: u64,
    max_age: Duration,
    state: Mutex<State>,
    stats: Arc<DeliveryStats>,
    /// Wakes the replay when a batch arrives.
    pub wake: tokio::sync::Notify,
    stopping: AtomicBool,
    halt: tokio::sync::Notify,
    /// Set while batches are spooled for want of a collector, so the outage is logged once.
    outage_logged: AtomicBool,
    /// What opening found (corrupted files, batches left to replay), held until the agent's
    /// logging is set up: the spool opens before it.
    startup_notes: Mutex<Vec<String>>,
}

impl std::fmt::Debug for Spool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Spool").field("dir", &self.dir).finish()
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn file_name(seq: u64, signal: Signal) -> String {
    format!("{seq:020}.{}{SUFFIX}", signal.name())
}

fn parse_name(name: &str) -> Option<(u64, Signal)> {
    let stem = name.strip_suffix(SUFFIX)?;
    let (seq, signal) = stem.split_once('.')?;
    let signal = Signal::ALL.into_iter().find(|s| s.name() == signal)?;
    Some((seq.parse().ok()?, signal))
}

/// Header fields: creation time and record count, after checking the magic.
fn parse_header(header: &[u8]) -> Result<(u64, u64, u32), String> {
    if header.len() < HEADER_LEN || &header[..8] != MAGIC {
        return Err("not a spool file (bad header)".into());
    }
    let u64_at = |i: usize| u64::from_le_bytes(header[i..i + 8].try_into().unwrap());
    let u32_at = |i: usize| u32::from_le_bytes(header[i..i + 4].try_into().unwrap());
    Ok((u64_at(8), u64::from(u32_at(16)), u32_at(20)))
}

fn crc32(body: &[u8]) -> u32 {
    let mut crc = flate2::Crc::new();
    crc.update(body);
    crc.sum()
}

impl Spool {
    /// Opens (creating) the spool directory and indexes what a previous run left there.
    pub fn open(config: &SpoolConfig, stats: Arc<DeliveryStats>) -> anyhow::Result<Arc<Self>> {
        let dir = config.directory.clone();
        crate::file::create_dir(&dir).context("exporters.otlp.spool.directory")?;
        let listing = std::fs::read_dir(&dir).with_context(|| {
            format!(
                "exporters.otlp.spool.directory: cannot read {}",
                dir.display()
            )
        })?;
        let spool = Self {
            dir,
            max_bytes: config.max_bytes,
            max_age: Duration::from_secs(config.max_age_secs),
            state: Mutex::new(State::default()),
            stats,
            wake: tokio::sync::Notify::new(),
            stopping: AtomicBool::new(false),
            halt: tokio::sync::Notify::new(),
            outage_logged: AtomicBool::new(false),
            startup_notes: Mutex::default(),
        };
        let mut notes = Vec::new();
        let mut state = State::default();
        for item in listing {
            let item = item.with_context(|| format!("reading {}", spool.dir.display()))?;
            let name = item.file_name().to_string_lossy().into_owned();
            let path = item.path();
            if name.starts_with(TMP_PREFIX) {
                // A write the previous run did not finish: its batch was never acknowledged.
                let _ = std::fs::remove_file(&path);
                continue;
            }
            let Some((seq, signal)) = parse_name(&name) else {
                continue;
            };
            state.next_seq = state.next_seq.max(seq + 1);
            match read_header(&path) {
                Ok((created_ms, records, bytes)) => {
                    state.insert(Entry {
                        seq,
                        signal,
                        records,
                        created_ms,
                        bytes,
                    });
                }
                Err(why) => notes.push(spool.discard_corrupt(&path, signal, 0, &why)),
            }
        }
        if !state.entries.is_empty() {
            notes.push(format!(
                "{} spooled batches ({} bytes) in {} from a previous run will be replayed",
                state.entries.len(),
                state.bytes,
                spool.dir.display()
            ));
        }
        *spool
            .startup_notes
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = notes;
        *spool.lock() = state;
        spool.stats.set_spool_bytes(spool.lock().bytes);
        Ok(Arc::new(spool))
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn path(&self, entry: &Entry) -> PathBuf {
        self.dir.join(file_name(entry.seq, entry.signal))
    }

    /// Whether batches of `signal` wait: new ones must then queue behind them.
    pub fn has_pending(&self, signal: Signal) -> bool {
        self.lock().pending[signal as usize] > 0
    }

    /// Appends a batch of `records` log records or spans, encoded as an OTLP request. Makes room
    /// by dropping the oldest batches (counted) when the spool is full.
    pub fn push(&self, signal: Signal, records: u64, body: &[u8]) -> anyhow::Result<()> {
        let size = (HEADER_LEN + body.len()) as u64;
        let mut state = self.lock();
        self.expire(&mut state);
        if size > self.max_bytes {
            self.stats.dropped(signal, "spool_full", records);
            anyhow::bail!(
                "a batch of {size} bytes exceeds exporters.otlp.spool.max_bytes ({})",
                self.max_bytes
            );
        }
        while state.bytes + size > self.max_bytes {
            let Some(oldest) = state.pop_first() else {
                break;
            };
            self.remove_file(&oldest);
            self.stats
                .dropped(oldest.signal, "spool_full", oldest.records);
            tracing::warn!(
                signal = oldest.signal.name(),
                records = oldest.records,
                "the OTLP spool is full (exporters.otlp.spool.max_bytes): dropped its oldest batch"
            );
        }
        let entry = Entry {
            seq: state.next_seq,
            signal,
            records,
            created_ms: now_ms(),
            bytes: size,
        };
        if let Err(e) = self.write(&entry, body) {
            self.stats.dropped(signal, "spool_error", records);
            return Err(e);
        }
        state.next_seq += 1;
        state.insert(entry);
        self.stats.set_spool_bytes(state.bytes);
        drop(state);
        self.stats.spooled(signal, records);
        self.wake.notify_one();
        Ok(())
    }

    fn write(&self, entry: &Entry, body: &[u8]) -> anyhow::Result<()> {
        let path = self.path(entry);
        let tmp = self.dir.join(format!("{TMP_PREFIX}{}", entry.seq));
        let mut header = Vec::with_capacity(HEADER_LEN);
        header.extend_from_slice(MAGIC);
        header.extend_from_slice(&entry.created_ms.to_le_bytes());
        header.extend_from_slice(&(entry.records.min(u64::from(u32::MAX)) as u32).to_le_bytes());
        header.extend_from_slice(&crc32(body).to_le_bytes());
        let written = (|| {
            let mut file = std::fs::OpenOptions::new()
                .create(true)
                .write(true)
                .truncate(true)
                .mode(crate::file::FILE_MODE)
                .open(&tmp)?;
            file.write_all(&header)?;
            file.write_all(body)?;
            // The batch counts as delivered once here: it must survive a crash or power loss.
            file.sync_data()?;
            std::fs::rename(&tmp, &path)
        })();
        written.with_context(|| {
            let _ = std::fs::remove_file(&tmp);
            format!("writing the spool file {}", path.display())
        })
    }

    /// Drops (and counts) batches older than `max_age_secs`.
    fn expire(&self, state: &mut State) {
        let oldest_kept = now_ms().saturating_sub(self.max_age.as_millis() as u64);
        while state
            .entries
            .first_key_value()
            .is_some_and(|(_, e)| e.created_ms < oldest_kept)
        {
            let Some(old) = state.pop_first() else { break };
            self.remove_file(&old);
            self.stats.dropped(old.signal, "spool_expired", old.records);
            tracing::warn!(
                signal = old.signal.name(),
                records = old.records,
                "dropped a spooled batch older than exporters.otlp.spool.max_age_secs"
            );
        }
        self.stats.set_spool_bytes(state.bytes);
    }

    fn remove_file(&self, entry: &Entry) {
        let path = self.path(entry);
        if let Err(e) = std::fs::remove_file(&path) {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!(file = %path.display(), "cannot remove a spool file: {e}");
            }
        }
    }

    /// Counts and removes an unreadable file; returns the report naming it.
    fn discard_corrupt(&self, path: &Path, signal: Signal, records: u64, why: &str) -> String {
        self.stats.dropped(signal, "spool_corrupt", records);
        let _ = std::fs::remove_file(path);
        format!(
            "skipped the corrupted OTLP spool file {}: {why}",
            path.display()
        )
    }

    /// Logs what opening the spool found; call once logging is set up.
    pub fn log_startup_notes(&self) {
        let notes =
            std::mem::take(&mut *self.startup_notes.lock().unwrap_or_else(|e| e.into_inner()));
        for note in notes {
            if note.starts_with("skipped") {
                tracing::error!("{note}");
            } else {
                tracing::info!("{note}");
            }
        }
    }

    /// The oldest batch of any signal, after dropping expired ones.
    pub fn oldest(&self) -> Option<Entry> {
        let mut state = self.lock();
        self.expire(&mut state);
        state.entries.first_key_value().map(|(_, e)| e.clone())
    }

    /// The request stored for `entry`. A corrupted file is reported, dropped (counted) and `None`.
    pub fn read(&self, entry: &Entry) -> Option<Vec<u8>> {
        let path = self.path(entry);
        let checked = std::fs::read(&path)
            .map_err(|e| format!("cannot read it: {e}"))
            .and_then(|data| {
                let (_, _, crc) = parse_header(&data)?;
                let body = data[HEADER_LEN..].to_vec();
                if crc32(&body) != crc {
                    return Err("checksum mismatch".into());
                }
                Ok(body)
            });
        match checked {
            Ok(body) => Some(body),
            Err(why) => {
                if self.forget(entry) {
                    let report = self.discard_corrupt(&path, entry.signal, entry.records, &why);
                    tracing::error!("{report}");
                }
                None
            }
        }
    }

    /// Removes a batch the collector took, or refused for good (`cause`, counted).
    pub fn complete(&self, entry: &Entry, dropped_cause: Option<&'static str>) {
        // A batch evicted meanwhile was already counted as dropped.
        if !self.forget(entry) {
            return;
        }
        self.remove_file(entry);
        match dropped_cause {
            Some(cause) => self.stats.dropped(entry.signal, cause, entry.records),
            None => self.stats.replayed(entry.signal, entry.records),
        }
        if self.lock().entries.is_empty() && self.outage_logged.swap(false, Ordering::Relaxed) {
            tracing::info!("the OTLP spool is empty again: every spooled batch was replayed");
        }
    }

    fn forget(&self, entry: &Entry) -> bool {
        let mut state = self.lock();
        let found = state.remove(entry.seq).is_some();
        self.stats.set_spool_bytes(state.bytes);
        found
    }

    /// Logs the start of an outage once, not once per batch.
    pub fn note_outage(&self, signal: Signal, why: &str) {
        if !self.outage_logged.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                signal = signal.name(),
                directory = %self.dir.display(),
                "OTLP export failed ({why}): spooling log and span batches until the collector takes them again"
            );
        }
    }

    pub fn stop(&self) {
        self.stopping.store(true, Ordering::Relaxed);
        self.halt.notify_waiters();
    }

    pub fn stopping(&self) -> bool {
        self.stopping.load(Ordering::Relaxed)
    }

    /// Completes once [`Spool::stop`] was called, even before this future was first polled.
    pub async fn stopped(&self) {
        let notified = self.halt.notified();
        let mut notified = std::pin::pin!(notified);
        notified.as_mut().enable();
        if !self.stopping() {
            notified.await;
        }
    }
}

impl State {
    fn insert(&mut self, entry: Entry) {
        self.bytes += entry.bytes;
        self.pending[entry.signal as usize] += 1;
        self.entries.insert(entry.seq, entry);
    }

    fn remove(&mut self, seq: u64) -> Option<Entry> {
        let entry = self.entries.remove(&seq)?;
        self.bytes -= entry.bytes;
        self.pending[entry.signal as usize] -= 1;
        Some(entry)
    }

    fn pop_first(&mut self) -> Option<Entry> {
        let seq = *self.entries.first_key_value()?.0;
        self.remove(seq)
    }
}

/// Creation time, record count and size of a spool file, from its header alone.
fn read_header(path: &Path) -> Result<(u64, u64, u64), String> {
    use std::io::Read as _;
    let mut file = std::fs::File::open(path).map_err(|e| format!("cannot open it: {e}"))?;
    let size = file.metadata().map_err(|e| e.to_string())?.len();
    let mut header = [0u8; HEADER_LEN];
    file.read_exact(&mut header)
        .map_err(|_| "shorter than its header".to_string())?;
    let (created_ms, records, _) = parse_header(&header)?;
    Ok((created_ms, records, size))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(dir: &Path, max_bytes: u64) -> SpoolConfig {
        SpoolConfig {
            directory: dir.to_path_buf(),
            max_bytes,
            ..SpoolConfig::default()
        }
    }

    #[test]
    fn reopening_keeps_order_and_skips_corrupt_files() {
        let dir = tempfile::tempdir().unwrap();
        let stats = Arc::new(DeliveryStats::default());
        let spool = Spool::open(&config(dir.path(), 1 << 20), stats.clone()).unwrap();
        spool.push(Signal::Logs, 2, b"first").unwrap();
        spool.push(Signal::Traces, 1, b"second").unwrap();
        spool.push(Signal::Logs, 3, b"third").unwrap();
        drop(spool);
        // Flip a body byte of the second batch, and leave garbage and a half-written file.
        let second = dir.path().join(file_name(1, Signal::Traces));
        let mut data = std::fs::read(&second).unwrap();
        *data.last_mut().unwrap() ^= 0xff;
        std::fs::write(&second, data).unwrap();
        std::fs::write(dir.path().join(".tmp-9"), b"partial").unwrap();

        let spool = Spool::open(&config(dir.path(), 1 << 20), stats.clone()).unwrap();
        assert!(!dir.path().join(".tmp-9").exists());
        let first = spool.oldest().unwrap();
        assert_eq!(spool.read(&first).unwrap(), b"first");
        spool.complete(&first, None);
        let corrupt = spool.oldest().unwrap();
        assert_eq!(corrupt.signal, Signal::Traces);
        assert!(spool.read(&corrupt).is_none());
        assert_eq!(stats.dropped_count(Signal::Traces, "spool_corrupt"), 1);
        let third = spool.oldest().unwrap();
        assert_eq!(spool.read(&third).unwrap(), b"third");
        spool.complete(&third, None);
        assert!(spool.oldest().is_none());
        assert_eq!(stats.replayed_count(Signal::Logs), 5);
        // A new batch never reuses a sequence number of the previous run.
        spool.push(Signal::Logs, 1, b"fourth").unwrap();
        assert_eq!(spool.oldest().unwrap().seq, 3);
    }

    #[test]
    fn full_spool_drops_the_oldest_and_counts_records() {
        let dir = tempfile::tempdir().unwrap();
        let stats = Arc::new(DeliveryStats::default());
        let batch = [0u8; 76];
        // Room for two 100-byte files.
        let spool = Spool::open(&config(dir.path(), 250), stats.clone()).unwrap();
        for records in [10, 20, 30] {
            spool.push(Signal::Logs, records, &batch).unwrap();
        }
        assert_eq!(stats.dropped_count(Signal::Logs, "spool_full"), 10);
        assert_eq!(spool.oldest().unwrap().records, 20);
        assert_eq!(stats.spool_bytes(), 200);
        assert!(spool.push(Signal::Traces, 4, &[0u8; 300]).is_err());
        assert_eq!(stats.dropped_count(Signal::Traces, "spool_full"), 4);
    }

    #[test]
    fn expired_batches_are_dropped_and_counted() {
        let dir = tempfile::tempdir().unwrap();
        let stats = Arc::new(DeliveryStats::default());
        let mut cfg = config(dir.path(), 1 << 20);
        cfg.max_age_secs = 1;
        let spool = Spool::open(&cfg, stats.clone()).unwrap();
        spool.push(Signal::Traces, 7, b"old").unwrap();
        std::thread::sleep(Duration::from_millis(1100));
        assert!(spool.oldest().is_none());
        assert_eq!(stats.dropped_count(Signal::Traces, "spool_expired"), 7);
        assert!(!spool.has_pending(Signal::Traces));
    }
}
