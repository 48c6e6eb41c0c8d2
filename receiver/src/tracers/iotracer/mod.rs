//! `iotracer` (autotracing): every disk's /proc/diskstats sampled; when its utilisation (on NVMe,
//! with its bandwidth) or its await is above a threshold on two consecutive samples (HuaTuo's
//! rule), a capture counts that disk's block requests per submitting process and cgroup in the
//! kernel for `capture_secs` (bytes, requests, q2c and d2c latency), then reports the top
//! processes with the files they have open on the disk, and the tasks seen in state D.
//!
//! Files are best effort: the block layer does not know them, and without kprobes the file
//! layer cannot be watched, so a process's files are those it has open on the disk (or one of
//! its partitions) at the end of the capture, not ranked by IO.

use crate::attribution::Owner;
use crate::collectors::diskio::{parse_diskstats, DiskStat, SECTOR_BYTES};
use crate::framework::{
    take_map, Autotracer, Capture, Captures, TracepointHook, Trigger, Unsupported,
};
use crate::kernel::KernelEnv;
use crate::procfs::{BlockedDump, Procfs};
use crate::telemetry::Event;
use crate::tracers::dload::stacks_event;
use anyhow::Context as _;
use aya::maps::{HashMap as BpfHashMap, MapData, PerCpuArray};
use aya::EbpfLoader;
use huatuo_config::{Config, IotracerConfig};
use huatuo_ebpf::iotracer::{self as abi, Io, IoKey};
use huatuo_semconv::{autotracing as names, net, system};
use opentelemetry::logs::{AnyValue, Severity};
use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

pub const NAME: &str = "iotracer";

const MIB: f64 = (1 << 20) as f64;

const START: TracepointHook =
    TracepointHook::named(NAME, abi::TRACEPOINT_CATEGORY, abi::START_HOOK);
const INSERT: TracepointHook =
    TracepointHook::named(NAME, abi::TRACEPOINT_CATEGORY, abi::INSERT_HOOK);
const ISSUE: TracepointHook =
    TracepointHook::named(NAME, abi::TRACEPOINT_CATEGORY, abi::ISSUE_HOOK);
const COMPLETE: TracepointHook =
    TracepointHook::named(NAME, abi::TRACEPOINT_CATEGORY, abi::COMPLETE_HOOK);

pub struct Iotracer {
    proc: PathBuf,
    sys: PathBuf,
    captures: Captures,
}

impl Default for Iotracer {
    fn default() -> Self {
        Self {
            proc: PathBuf::from("/proc"),
            sys: PathBuf::from("/sys"),
            captures: Captures::default(),
        }
    }
}

crate::framework::autotracer!(Iotracer);

/// Per disk: its counters at the previous sample, and whether that sample was an anomaly.
#[derive(Default)]
pub struct Disks {
    previous: HashMap<String, (Instant, DiskStat, bool)>,
}

/// One disk over one sampling interval, as iostat shows it.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Readings {
    util_percent: f64,
    read_bps: f64,
    write_bps: f64,
    read_iops: f64,
    write_iops: f64,
    read_await_ms: f64,
    write_await_ms: f64,
    queue_size: f64,
}

impl Readings {
    /// None when a counter went backwards (the device was replaced) or no time passed.
    fn between(before: &DiskStat, now: &DiskStat, seconds: f64) -> Option<Self> {
        if seconds <= 0.0 {
            return None;
        }
        let delta = |f: fn(&DiskStat) -> u64| f(now).checked_sub(f(before));
        let reads = delta(|d| d.reads)?;
        let writes = delta(|d| d.writes)?;
        let await_ms = |ms: u64, ios: u64| {
            if ios == 0 {
                0.0
            } else {
                ms as f64 / ios as f64
            }
        };
        Some(Self {
            util_percent: (delta(|d| d.io_ms)? as f64 / (seconds * 10.0)).min(100.0),
            read_bps: (delta(|d| d.read_sectors)? * SECTOR_BYTES) as f64 / seconds,
            write_bps: (delta(|d| d.write_sectors)? * SECTOR_BYTES) as f64 / seconds,
            read_iops: reads as f64 / seconds,
            write_iops: writes as f64 / seconds,
            read_await_ms: await_ms(delta(|d| d.read_ms)?, reads),
            write_await_ms: await_ms(delta(|d| d.write_ms)?, writes),
            queue_size: delta(|d| d.weighted_ms)? as f64 / (seconds * 1000.0),
        })
    }

    /// HuaTuo's rule: a saturated disk (on NVMe, which looks busy long before it is, a busy one
    /// also moving a lot of data), else a slow one.
    fn anomaly(&self, device: &str, section: &IotracerConfig) -> Option<&'static str> {
        if self.util_percent > section.util_percent_threshold {
            if !device.starts_with("nvme") {
                return Some("io_util");
            }
            if self.read_bps > section.read_mib_per_sec_threshold * MIB {
                return Some("read_bps");
            }
            if self.write_bps > section.write_mib_per_sec_threshold * MIB {
                return Some("write_bps");
            }
        }
        if self.read_await_ms > section.await_ms_threshold {
            return Some("read_await");
        }
        (self.write_await_ms > section.await_ms_threshold).then_some("write_await")
    }

    fn attributes(&self, device: &str, section: &IotracerConfig) -> Vec<(&'static str, AnyValue)> {
        let double = AnyValue::Double;
        vec![
            (system::SYSTEM_DEVICE, device.to_string().into()),
            (names::DISK_UTIL_PERCENT, double(self.util_percent)),
            (names::DISK_READ_BPS, double(self.read_bps)),
            (names::DISK_WRITE_BPS, double(self.write_bps)),
            (names::DISK_READ_IOPS, double(self.read_iops)),
            (names::DISK_WRITE_IOPS, double(self.write_iops)),
            (names::DISK_READ_AWAIT_MS, double(self.read_await_ms)),
            (names::DISK_WRITE_AWAIT_MS, double(self.write_await_ms)),
            (names::DISK_QUEUE_SIZE, double(self.queue_size)),
            (
                names::DISK_UTIL_PERCENT_THRESHOLD,
                double(section.util_percent_threshold),
            ),
            (
                names::DISK_READ_BPS_THRESHOLD,
                double(section.read_mib_per_sec_threshold * MIB),
            ),
            (
                names::DISK_WRITE_BPS_THRESHOLD,
                double(section.write_mib_per_sec_threshold * MIB),
            ),
            (
                names::DISK_AWAIT_MS_THRESHOLD,
                double(section.await_ms_threshold),
            ),
        ]
    }
}

impl Autotracer for Iotracer {
    const NAME: &'static str = NAME;
    const SPAN: &'static str = names::IOTRACER_CAPTURE;
    type Section = IotracerConfig;
    type Sampler = Disks;

    fn section(config: &Config) -> &IotracerConfig {
        &config.tracers.iotracer
    }

    fn captures(&self) -> &Captures {
        &self.captures
    }

    fn probe(&self, kernel: &KernelEnv) -> Result<(), Unsupported> {
        ISSUE.probe(kernel)?;
        COMPLETE.probe(kernel)
    }

    fn probe_detail(&self, kernel: &KernelEnv) -> String {
        let start = start_hook(kernel);
        format!(
            "captures attach {}:{}, {}:{}, {}:{}",
            start.category,
            start.name,
            ISSUE.category,
            ISSUE.name,
            COMPLETE.category,
            COMPLETE.name
        )
    }

    fn sampler(&self, _section: &IotracerConfig) -> anyhow::Result<Disks> {
        Ok(Disks::default())
    }

    fn sample(&self, disks: &mut Disks, section: &IotracerConfig) -> anyhow::Result<Vec<Trigger>> {
        let path = self.proc.join("diskstats");
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        let now = Instant::now();
        let mut previous = std::mem::take(&mut disks.previous);
        let mut triggers = Vec::new();
        for disk in parse_diskstats(&text).with_context(|| path.display().to_string())? {
            if !section.watches(&disk.device) || self.is_partition(disk.major, disk.minor) {
                continue;
            }
            let readings = previous
                .remove(&disk.device)
                .and_then(|(then, before, was)| {
                    let seconds = now.duration_since(then).as_secs_f64();
                    Some((Readings::between(&before, &disk, seconds)?, was))
                });
            let anomaly = readings.and_then(|(r, _)| r.anomaly(&disk.device, section));
            if let (Some(reason), Some((readings, true))) = (anomaly, readings) {
                triggers.push((
                    readings.util_percent,
                    Trigger {
                        reason,
                        target: Some(disk.device.clone()),
                        cgroup_id: None,
                        at: SystemTime::now(),
                        attributes: readings.attributes(&disk.device, section),
                    },
                ));
            }
            disks
                .previous
                .insert(disk.device.clone(), (now, disk, anomaly.is_some()));
        }
        triggers.sort_by(|a, b| b.0.total_cmp(&a.0));
        Ok(triggers.into_iter().map(|(_, t)| t).collect())
    }

    fn capture(&self, trigger: &Trigger, section: &IotracerConfig) -> anyhow::Result<Capture> {
        let device = trigger
            .target
            .as_deref()
            .context("an iotracer trigger names its disk")?;
        let (major, minor) = self
            .device_numbers(device)
            .with_context(|| format!("disk {device} is gone"))?;
        let duration = Duration::from_secs(section.capture_secs);
        let counted = count_io(
            huatuo_ebpf::iolatency::kernel_dev(major, minor),
            duration,
            || self.procfs().blocked(section.max_stacks as usize),
        )?;
        let mut events = self.top_processes(&counted.io, (major, minor), duration, device, section);
        if counted.stalled.tasks > 0 {
            events.push(stacks_event(
                names::IOTRACER_STALLED,
                NAME,
                counted.stalled,
                "the host during the capture",
                Owner::default(),
            ));
        }
        let requests: u64 = counted.io.iter().map(|(_, io)| io.requests()).sum();
        Ok(Capture {
            attributes: vec![
                (names::IOTRACER_DURATION, int(section.capture_secs)),
                (names::IOTRACER_REQUESTS, int(requests)),
                (names::IOTRACER_PROCESSES, int(counted.io.len() as u64)),
                (names::IOTRACER_UNCOUNTED, int(counted.uncounted)),
            ],
            events,
        })
    }
}

/// Where requests start: block_io_start (6.5+) sees every request start in its submitter's
/// context; insertion only those going through an I/O scheduler.
fn start_hook(kernel: &KernelEnv) -> &'static TracepointHook {
    match kernel.tracepoint_exists(START.category, START.name) {
        Ok(true) => &START,
        _ => &INSERT,
    }
}

/// What one capture counted.
struct Counted {
    io: Vec<(IoKey, Io)>,
    /// Requests lost to full kernel tables.
    uncounted: u64,
    /// The D-state tasks when the most were seen.
    stalled: BlockedDump,
}

/// Counts the IO of disk `dev` for `duration`, calling `stalled` once a second meanwhile.
fn count_io(
    dev: u32,
    duration: Duration,
    stalled: impl Fn() -> BlockedDump,
) -> anyhow::Result<Counted> {
    let kernel = KernelEnv::detect();
    let mut ebpf = EbpfLoader::new()
        .override_global(abi::GLOBAL_TARGET_DEV, &dev, true)
        .load(huatuo_ebpf::IOTRACER)
        .context("loading the iotracer BPF object")?;
    // Taken out so they outlive the programs, which detach when `ebpf` is dropped.
    let io_map = take_map(&mut ebpf, abi::IO_MAP)?;
    let stats_map = take_map(&mut ebpf, huatuo_ebpf::STATS_MAP)?;
    for hook in [start_hook(&kernel), &ISSUE, &COMPLETE] {
        hook.attach(&mut ebpf, &kernel)
            .map_err(|e| anyhow::anyhow!("{e}"))
            .with_context(|| format!("attaching to block:{}", hook.name))?;
    }
    let until = Instant::now() + duration;
    let mut worst = BlockedDump::default();
    loop {
        let dump = stalled();
        if dump.tasks > worst.tasks {
            worst = dump;
        }
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        std::thread::sleep(left.min(Duration::from_secs(1)));
    }
    drop(ebpf);

    let io: BpfHashMap<MapData, IoKey, Io> = BpfHashMap::try_from(io_map)?;
    let io = io.iter().collect::<Result<Vec<_>, _>>()?;
    let stats: PerCpuArray<MapData, u64> = PerCpuArray::try_from(stats_map)?;
    let mut uncounted = 0;
    for slot in [
        huatuo_ebpf::STAT_COUNTER_MAP_FULL,
        huatuo_ebpf::STAT_TRACKING_MAP_FULL,
    ] {
        uncounted += stats.get(&slot, 0)?.iter().sum::<u64>();
    }
    Ok(Counted {
        io,
        uncounted,
        stalled: worst,
    })
}

impl Iotracer {
    fn procfs(&self) -> Procfs {
        Procfs::at(&self.proc)
    }

    /// Partitions are left out: their IO is their disk's, and requests name the disk.
    fn is_partition(&self, major: u32, minor: u32) -> bool {
        self.sys
            .join(format!("dev/block/{major}:{minor}/partition"))
            .exists()
    }

    fn device_numbers(&self, device: &str) -> Option<(u32, u32)> {
        let text = std::fs::read_to_string(self.sys.join("class/block").join(device).join("dev"));
        parse_device_numbers(&text.ok()?)
    }

    /// The whole disk a device number belongs to: itself, or a partition's parent.
    fn disk_of(&self, major: u32, minor: u32) -> (u32, u32) {
        let dir = self.sys.join(format!("dev/block/{major}:{minor}"));
        if !dir.join("partition").exists() {
            return (major, minor);
        }
        std::fs::read_to_string(dir.join("../dev"))
            .ok()
            .and_then(|t| parse_device_numbers(&t))
            .unwrap_or((major, minor))
    }

    /// Up to `limit` files `pid` has open on `disk`: block devices of the disk, and files on a
    /// filesystem of it.
    fn open_files(&self, pid: u32, disk: (u32, u32), limit: usize) -> Vec<String> {
        use std::os::unix::fs::{FileTypeExt as _, MetadataExt as _};
        let Ok(entries) = std::fs::read_dir(self.proc.join(format!("{pid}/fd"))) else {
            return Vec::new();
        };
        let mut fds: Vec<(u32, PathBuf)> = entries
            .flatten()
            .filter_map(|e| Some((e.file_name().to_str()?.parse().ok()?, e.path())))
            .collect();
        fds.sort();
        let mut files: Vec<String> = Vec::new();
        for (_, fd) in fds {
            if files.len() >= limit {
                break;
            }
            // Follows the link to the open file itself, even one deleted since.
            let Ok(meta) = std::fs::metadata(&fd) else {
                continue;
            };
            let on_disk = if meta.file_type().is_block_device() {
                self.disk_of(libc::major(meta.rdev()), libc::minor(meta.rdev())) == disk
            } else {
                meta.is_file()
                    && self.disk_of(libc::major(meta.dev()), libc::minor(meta.dev())) == disk
            };
            let Ok(path) = std::fs::read_link(&fd) else {
                continue;
            };
            let path = path.to_string_lossy().into_owned();
            if on_disk && !files.contains(&path) {
                files.push(path);
            }
        }
        files
    }

    fn top_processes(
        &self,
        io: &[(IoKey, Io)],
        disk: (u32, u32),
        duration: Duration,
        device: &str,
        section: &IotracerConfig,
    ) -> Vec<Event> {
        let mut io = io.to_vec();
        io.sort_by_key(|(key, io)| {
            (
                std::cmp::Reverse(io.read_bytes + io.write_bytes),
                std::cmp::Reverse(io.requests()),
                key.pid,
            )
        });
        io.truncate(section.top_processes as usize);
        let seconds = duration.as_secs_f64().max(1.0);
        io.into_iter()
            .zip(1u32..)
            .map(|((key, io), rank)| {
                let files = self.open_files(key.pid, disk, section.top_files as usize);
                process_event(&key, &io, rank, seconds, device, files)
            })
            .collect()
    }
}

/// One reported process.
fn process_event(
    key: &IoKey,
    io: &Io,
    rank: u32,
    seconds: f64,
    device: &str,
    files: Vec<String>,
) -> Event {
    let requests = io.requests();
    let avg_us = |sum: u64| int(sum / requests.max(1) / 1000);
    let comm = io.comm().into_owned();
    Event {
        name: names::IOTRACER_PROCESS,
        tracer: NAME,
        time: SystemTime::now(),
        severity: Severity::Warn,
        body: format!(
            "#{rank} on {device}: {comm} (pid {}) read {} KiB, wrote {} KiB in {requests} requests",
            key.pid,
            io.read_bytes >> 10,
            io.write_bytes >> 10,
        ),
        attributes: vec![
            (system::SYSTEM_DEVICE, device.to_string().into()),
            (net::PROCESS_PID, int(u64::from(key.pid))),
            (names::PROCESS_EXECUTABLE_NAME, comm.into()),
            (names::IOTRACER_READ_BYTES, int(io.read_bytes)),
            (names::IOTRACER_WRITE_BYTES, int(io.write_bytes)),
            (names::IOTRACER_PROCESS_REQUESTS, int(requests)),
            (
                names::IOTRACER_IOPS,
                AnyValue::Double(requests as f64 / seconds),
            ),
            (names::IOTRACER_Q2C_AVG_US, avg_us(io.q2c_ns_sum)),
            (names::IOTRACER_Q2C_MAX_US, int(io.q2c_ns_max / 1000)),
            (names::IOTRACER_D2C_AVG_US, avg_us(io.d2c_ns_sum)),
            (names::IOTRACER_D2C_MAX_US, int(io.d2c_ns_max / 1000)),
            (names::IOTRACER_FILES, files.join("\n").into()),
            (names::RANK, int(u64::from(rank))),
        ],
        owner: Owner::cgroup(key.cgroup_id).with_task(key.pid),
        span: None,
    }
}

/// `8:16\n` → (8, 16).
fn parse_device_numbers(text: &str) -> Option<(u32, u32)> {
    let (major, minor) = text.trim().split_once(':')?;
    Some((major.parse().ok()?, minor.parse().ok()?))
}

fn int(value: u64) -> AnyValue {
    AnyValue::Int(i64::try_from(value).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn disk(device: &str, counters: [u64; 11]) -> DiskStat {
        let line = format!(
            "   7       0 {device} {}",
            counters.map(|c| c.to_string()).join(" ")
        );
        parse_diskstats(&line).unwrap().remove(0)
    }

    #[test]
    fn readings_are_iostat_s() {
        // Over 2 s: 100 reads of 800 sectors taking 500 ms, 50 writes of 400 sectors taking
        // 5000 ms, busy 1900 ms, 4000 ms of requests in flight.
        let before = disk(
            "sda",
            [1000, 0, 8000, 1000, 500, 0, 4000, 2000, 0, 10000, 20000],
        );
        let now = disk(
            "sda",
            [1100, 0, 8800, 1500, 550, 0, 4400, 7000, 1, 11900, 24000],
        );
        let r = Readings::between(&before, &now, 2.0).unwrap();
        assert_eq!(r.util_percent, 95.0);
        assert_eq!(r.read_bps, 800.0 * 512.0 / 2.0);
        assert_eq!(r.write_bps, 400.0 * 512.0 / 2.0);
        assert_eq!((r.read_iops, r.write_iops), (50.0, 25.0));
        assert_eq!((r.read_await_ms, r.write_await_ms), (5.0, 100.0));
        assert_eq!(r.queue_size, 2.0);
        assert!(
            Readings::between(&now, &before, 2.0).is_none(),
            "counters went backwards"
        );
    }

    #[test]
    fn huatuo_rule_busy_disks_nvme_needing_bandwidth_then_await() {
        let section = IotracerConfig::default();
        let busy = Readings {
            util_percent: 95.0,
            read_bps: 0.0,
            write_bps: 0.0,
            read_iops: 0.0,
            write_iops: 0.0,
            read_await_ms: 1.0,
            write_await_ms: 1.0,
            queue_size: 1.0,
        };
        assert_eq!(busy.anomaly("sda", &section), Some("io_util"));
        assert_eq!(busy.anomaly("nvme0n1", &section), None);
        let reading = Readings {
            read_bps: 2001.0 * MIB,
            ..busy
        };
        assert_eq!(reading.anomaly("nvme0n1", &section), Some("read_bps"));
        let writing = Readings {
            write_bps: 1501.0 * MIB,
            ..busy
        };
        assert_eq!(writing.anomaly("nvme0n1", &section), Some("write_bps"));
        let slow = Readings {
            util_percent: 10.0,
            write_await_ms: 150.0,
            ..busy
        };
        assert_eq!(slow.anomaly("sda", &section), Some("write_await"));
        let slower_reads = Readings {
            read_await_ms: 101.0,
            ..slow
        };
        assert_eq!(slower_reads.anomaly("sda", &section), Some("read_await"));
    }

    /// A fake /proc/diskstats and /sys: sda with partition sda1, and loop0.
    fn fake() -> (tempfile::TempDir, Iotracer) {
        let dir = tempfile::tempdir().unwrap();
        let tracer = Iotracer {
            proc: dir.path().join("proc"),
            sys: dir.path().join("sys"),
            captures: Captures::default(),
        };
        std::fs::create_dir_all(&tracer.proc).unwrap();
        let partition = tracer.sys.join("dev/block/8:1");
        std::fs::create_dir_all(&partition).unwrap();
        std::fs::write(partition.join("partition"), "1\n").unwrap();
        (dir, tracer)
    }

    fn write_diskstats(tracer: &Iotracer, busy_ms: u64) {
        let line = |major, minor, name: &str| {
            format!("{major} {minor} {name} 1 0 8 0 1 0 8 0 0 {busy_ms} {busy_ms}\n")
        };
        let text = [line(8, 0, "sda"), line(8, 1, "sda1"), line(7, 0, "loop0")].concat();
        std::fs::write(tracer.proc.join("diskstats"), text).unwrap();
    }

    #[test]
    fn triggers_on_two_consecutive_anomalous_samples_of_watched_disks() {
        let (_dir, tracer) = fake();
        let section = IotracerConfig {
            exclude_devices: vec!["^loop".to_string().try_into().unwrap()],
            ..IotracerConfig::default()
        };
        let mut disks = tracer.sampler(&section).unwrap();
        // Busy all the time from the second sample on (io_ticks grows faster than the clock).
        let mut busy_ms = 0;
        let mut fired = Vec::new();
        for _ in 0..4 {
            write_diskstats(&tracer, busy_ms);
            fired.push(tracer.sample(&mut disks, &section).unwrap());
            busy_ms += 1_000_000;
            std::thread::sleep(Duration::from_millis(20));
        }
        let counts: Vec<usize> = fired.iter().map(Vec::len).collect();
        assert_eq!(
            counts,
            [0, 0, 1, 1],
            "primed, one anomaly, then two in a row"
        );
        let trigger = &fired[2][0];
        assert_eq!(trigger.reason, "io_util");
        assert_eq!(
            trigger.target.as_deref(),
            Some("sda"),
            "no partition, no loop"
        );
        assert!(trigger
            .attributes
            .iter()
            .any(|(k, v)| *k == names::DISK_UTIL_PERCENT && *v == AnyValue::Double(100.0)));

        std::fs::write(tracer.proc.join("diskstats"), "8 0 sda 1 2\n").unwrap();
        let error = format!("{:#}", tracer.sample(&mut disks, &section).unwrap_err());
        assert!(
            error.contains("diskstats") && error.contains("sda 1 2"),
            "{error}"
        );
    }

    #[test]
    fn reports_a_process_with_its_latency_and_its_files_on_the_disk() {
        use std::os::unix::fs::MetadataExt as _;
        let (dir, tracer) = fake();
        let data = dir.path().join("data.db");
        std::fs::write(&data, "x").unwrap();
        let fd_dir = tracer.proc.join("42/fd");
        std::fs::create_dir_all(&fd_dir).unwrap();
        std::os::unix::fs::symlink(&data, fd_dir.join("3")).unwrap();
        std::os::unix::fs::symlink(&data, fd_dir.join("4")).unwrap();
        std::os::unix::fs::symlink("/dev/null", fd_dir.join("5")).unwrap();
        let dev = std::fs::metadata(&data).unwrap().dev();
        let disk = (libc::major(dev), libc::minor(dev));
        assert_eq!(
            tracer.open_files(42, disk, 5),
            [data.to_string_lossy().into_owned()],
            "once, and not /dev/null"
        );
        assert!(tracer.open_files(42, (disk.0, disk.1 + 1), 5).is_empty());

        let mut comm = [0u8; 16];
        comm[..2].copy_from_slice(b"dd");
        let key = IoKey {
            cgroup_id: 7,
            pid: 42,
            pad: 0,
        };
        let small = Io {
            reads: 1,
            read_bytes: 4096,
            q2c_ns_sum: 1_000_000,
            d2c_ns_sum: 1_000_000,
            comm,
            ..Io::default()
        };
        let big = Io {
            writes: 4,
            write_bytes: 1 << 20,
            q2c_ns_sum: 8_000_000,
            q2c_ns_max: 5_000_000,
            d2c_ns_sum: 4_000_000,
            d2c_ns_max: 2_000_000,
            comm,
            ..Io::default()
        };
        let other = IoKey { pid: 43, ..key };
        let section = IotracerConfig {
            top_processes: 1,
            ..IotracerConfig::default()
        };
        let events = tracer.top_processes(
            &[(other, small), (key, big)],
            disk,
            Duration::from_secs(2),
            "sda",
            &section,
        );
        assert_eq!(events.len(), 1, "bounded to top_processes");
        let event = &events[0];
        let attr = |name| {
            event
                .attributes
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.clone())
                .unwrap()
        };
        assert_eq!(
            attr(net::PROCESS_PID),
            AnyValue::Int(42),
            "most bytes first"
        );
        assert_eq!(attr(names::PROCESS_EXECUTABLE_NAME), AnyValue::from("dd"));
        assert_eq!(attr(names::IOTRACER_WRITE_BYTES), AnyValue::Int(1 << 20));
        assert_eq!(attr(names::IOTRACER_IOPS), AnyValue::Double(2.0));
        assert_eq!(attr(names::IOTRACER_Q2C_AVG_US), AnyValue::Int(2000));
        assert_eq!(attr(names::IOTRACER_Q2C_MAX_US), AnyValue::Int(5000));
        assert_eq!(attr(names::IOTRACER_D2C_AVG_US), AnyValue::Int(1000));
        assert_eq!(attr(names::IOTRACER_D2C_MAX_US), AnyValue::Int(2000));
        assert_eq!(
            attr(names::IOTRACER_FILES),
            AnyValue::from(data.to_string_lossy().into_owned())
        );
        assert_eq!(event.owner.cgroup_id, Some(7));
    }

    #[test]
    fn device_numbers_from_sysfs() {
        assert_eq!(parse_device_numbers("259:3\n"), Some((259, 3)));
        assert_eq!(parse_device_numbers("sda"), None);
        let (_dir, tracer) = fake();
        assert_eq!(tracer.disk_of(7, 0), (7, 0));
        assert!(tracer.device_numbers("sda").is_none());
    }
}
