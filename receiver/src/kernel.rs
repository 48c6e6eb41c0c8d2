//! What the running kernel offers: tracefs, tracepoints, BTF, privileges. Tracers probe these
//! before loading anything, so an unsupported hook is reported with its reason instead of failing.

use huatuo_ebpf::btf::Btf;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

const TRACEFS_CANDIDATES: &[&str] = &["/sys/kernel/tracing", "/sys/kernel/debug/tracing"];

/// A snapshot of the kernel's capabilities, taken once and shared by all tracers.
pub struct KernelEnv {
    pub release: String,
    tracefs: Option<PathBuf>,
    /// Held while a tracer loads and attaches: each load parses the kernel's BTF (~15-25 MiB
    /// transient), and tracers starting together would otherwise multiply the agent's peak RSS.
    pub load_gate: tokio::sync::Mutex<()>,
    /// Where procfs and sysfs are read by metric collectors.
    pub roots: Roots,
    /// CONFIG_HZ, found once (measuring it takes 200 ms) for every tracer that needs it.
    hz: OnceLock<Option<u64>>,
}

/// Mount points of procfs and sysfs (`agent.procfs_prefix`, `agent.sysfs_prefix`): the host's, a
/// bind mount of them in a container, or a fixture tree in tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Roots {
    pub procfs: PathBuf,
    pub sysfs: PathBuf,
}

impl Default for Roots {
    fn default() -> Self {
        Self {
            procfs: PathBuf::from("/proc"),
            sysfs: PathBuf::from("/sys"),
        }
    }
}

impl Roots {
    pub fn from_config(agent: &huatuo_config::AgentConfig) -> Self {
        Self {
            procfs: agent.procfs_prefix.clone(),
            sysfs: agent.sysfs_prefix.clone(),
        }
    }

    /// `file` under procfs; `None` when it does not exist, any other error names the path.
    pub fn read_proc_optional(&self, file: &str) -> anyhow::Result<Option<String>> {
        let path = self.procfs.join(file);
        match std::fs::read_to_string(&path) {
            Ok(text) => Ok(Some(text)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(anyhow::anyhow!("reading {}: {e}", path.display())),
        }
    }

    /// `file` under procfs; an error names the path.
    pub fn read_proc(&self, file: &str) -> anyhow::Result<String> {
        self.read_proc_optional(file)?
            .ok_or_else(|| anyhow::anyhow!("{} does not exist", self.procfs.join(file).display()))
    }
}

impl KernelEnv {
    pub fn detect() -> Self {
        Self {
            release: kernel_release(),
            tracefs: TRACEFS_CANDIDATES
                .iter()
                .map(Path::new)
                .find(|p| p.join("events").is_dir())
                .map(Path::to_path_buf),
            load_gate: tokio::sync::Mutex::new(()),
            roots: Roots::default(),
            hz: OnceLock::new(),
        }
    }

    /// This kernel seen through another tracefs: a directory tree with `events/<group>/<name>/`
    /// directories, for tests of what tracers do with tracepoints this kernel lacks.
    #[cfg(test)]
    pub fn with_tracefs(tracefs: Option<PathBuf>) -> Self {
        Self {
            tracefs,
            ..Self::detect()
        }
    }

    /// The same, with collectors reading under `roots`.
    pub fn with_roots(mut self, roots: Roots) -> Self {
        self.roots = roots;
        self
    }

    /// (major, minor) parsed from the release, e.g. (6, 18) for "6.18.44-fc".
    pub fn version(&self) -> Option<(u32, u32)> {
        parse_version(&self.release)
    }

    /// `CONFIG_HZ`, the jiffy and tick rate: BPF has no kconfig externs under aya, so programs
    /// hand jiffies to userspace. From the kernel's config (`/proc/config.gz`, else
    /// `/boot/config-<release>`), else measured from how fast `jiffies` advance in
    /// `/proc/timer_list` (root only) over 200 ms. None when none of these can be read.
    pub fn config_hz(&self) -> Option<u64> {
        *self.hz.get_or_init(|| {
            self.configured_hz()
                .or_else(|| measured_hz(&self.roots.procfs.join("timer_list")))
        })
    }

    fn configured_hz(&self) -> Option<u64> {
        let gz = self.roots.procfs.join("config.gz");
        let text = match std::fs::File::open(&gz) {
            Ok(file) => {
                let mut text = String::new();
                std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(file), &mut text)
                    .ok()?;
                text
            }
            Err(_) => std::fs::read_to_string(format!("/boot/config-{}", self.release)).ok()?,
        };
        parse_config_hz(&text)
    }

    /// What every ring-buffer tracer needs: privileges and BPF ring buffers (Linux 5.8).
    pub fn require_ring_buffer_tracing(&self) -> Result<(), String> {
        if !self.is_root() {
            return Err("not root: loading BPF programs needs CAP_BPF and CAP_PERFMON".into());
        }
        match self.version() {
            Some(version) if version < (5, 8) => Err(format!(
                "kernel {} too old: BPF ring buffers need 5.8 or later",
                self.release
            )),
            _ => Ok(()),
        }
    }

    pub fn is_root(&self) -> bool {
        // SAFETY: geteuid has no preconditions and cannot fail.
        unsafe { libc::geteuid() == 0 }
    }

    /// Whether `group:name` exists; `Err` says why it cannot be known (no tracefs).
    pub fn tracepoint_exists(&self, group: &str, name: &str) -> Result<bool, String> {
        match &self.tracefs {
            Some(root) => Ok(root.join("events").join(group).join(name).is_dir()),
            None => Err(format!(
                "tracefs is not mounted (tried {}; mount it with `mount -t tracefs nodev /sys/kernel/tracing`)",
                TRACEFS_CANDIDATES.join(", ")
            )),
        }
    }

    /// The text of `events/<group>/<name>/format`: the fields of the tracepoint's record, with
    /// their offsets and sizes.
    pub fn tracepoint_format(&self, group: &str, name: &str) -> Result<String, String> {
        let root = self
            .tracefs
            .as_ref()
            .ok_or_else(|| "tracefs is not mounted".to_string())?;
        let path = root.join("events").join(group).join(name).join("format");
        std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Whether the kernel exposes its own BTF, without parsing it.
    pub fn has_btf(&self) -> Result<(), String> {
        match std::fs::metadata(huatuo_ebpf::btf::VMLINUX_BTF_PATH) {
            Ok(_) => Ok(()),
            Err(e) => Err(format!(
                "kernel BTF unavailable ({}: {e}; needs CONFIG_DEBUG_INFO_BTF)",
                huatuo_ebpf::btf::VMLINUX_BTF_PATH
            )),
        }
    }

    /// Parses the kernel's BTF. Not cached: it is several MiB, and callers only need a few
    /// facts from it once per tracer start.
    pub fn load_btf(&self) -> Result<Btf, String> {
        Btf::from_sys_fs().map_err(|e| format!("kernel BTF unavailable: {e}"))
    }

    /// Number of possible CPUs, which per-CPU BPF maps are sized by.
    pub fn possible_cpus(&self) -> usize {
        aya::util::nr_cpus().unwrap_or(1).max(1)
    }

    /// The value of a program's `events_per_cpu_per_sec` for a host-wide budget of `per_second`
    /// events (0 = unlimited). The kernel limits per CPU (no cross-CPU atomics on the hot path),
    /// so the budget is spread over the possible CPUs, rounded up so it never becomes 0.
    pub fn per_cpu_rate(&self, per_second: u32) -> u64 {
        u64::from(per_second).div_ceil(self.possible_cpus() as u64)
    }
}

/// Kernel tick rates (CONFIG_HZ) a kernel can be built with.
const HZ_CHOICES: [u64; 4] = [100, 250, 300, 1000];

/// How long jiffies are watched to tell the tick rate.
const HZ_SAMPLE: Duration = Duration::from_millis(200);

/// The first `jiffies:` value of a `/proc/timer_list`.
fn parse_jiffies(timer_list: impl std::io::BufRead) -> Option<u64> {
    timer_list
        .lines()
        .map_while(Result::ok)
        .find_map(|l| l.strip_prefix("jiffies:")?.trim().parse().ok())
}

fn read_jiffies(timer_list: &Path) -> Option<u64> {
    let file = std::fs::File::open(timer_list).ok()?;
    parse_jiffies(std::io::BufReader::new(file))
}

/// The CONFIG_HZ nearest to `jiffies` counted over `elapsed`.
fn nearest_hz(jiffies: u64, elapsed: Duration) -> u64 {
    let rate = jiffies as f64 / elapsed.as_secs_f64();
    HZ_CHOICES
        .into_iter()
        .min_by(|a, b| {
            (*a as f64 - rate)
                .abs()
                .total_cmp(&(*b as f64 - rate).abs())
        })
        .unwrap_or(1000)
}

/// The tick rate from how fast jiffies advance (nothing else in procfs states CONFIG_HZ).
fn measured_hz(timer_list: &Path) -> Option<u64> {
    let (start, before) = (std::time::Instant::now(), read_jiffies(timer_list)?);
    std::thread::sleep(HZ_SAMPLE);
    let jiffies = read_jiffies(timer_list)?.checked_sub(before)?;
    Some(nearest_hz(jiffies, start.elapsed()))
}

fn parse_config_hz(config: &str) -> Option<u64> {
    config
        .lines()
        .find_map(|l| l.strip_prefix("CONFIG_HZ="))?
        .trim()
        .parse()
        .ok()
        .filter(|&hz| hz > 0)
}

/// The numeric fields of a BPF object's `/proc/self/fdinfo` entry (`run_time_ns`, `run_cnt`,
/// `recursion_misses`, ...).
pub fn bpf_fdinfo(fd: std::os::fd::BorrowedFd<'_>) -> std::io::Result<HashMap<String, u64>> {
    use std::os::fd::AsRawFd;
    let text = std::fs::read_to_string(format!("/proc/self/fdinfo/{}", fd.as_raw_fd()))?;
    Ok(parse_fdinfo(&text))
}

fn parse_fdinfo(text: &str) -> HashMap<String, u64> {
    text.lines()
        .filter_map(|line| {
            let (key, value) = line.split_once(':')?;
            Some((key.trim().to_string(), value.trim().parse().ok()?))
        })
        .collect()
}

fn parse_version(release: &str) -> Option<(u32, u32)> {
    let mut parts = release.split(|c: char| !c.is_ascii_digit());
    Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
}

fn kernel_release() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown".into())
}

/// Converts kernel monotonic timestamps (`bpf_ktime_get_ns`) to wall-clock time. The offset is
/// taken once: re-reading it per event would make event times jump with NTP slews.
#[derive(Clone, Copy)]
pub struct BootClock {
    realtime_minus_monotonic_ns: i128,
}

impl BootClock {
    pub fn now() -> Self {
        let real = huatuo_ebpf::clock_ns(libc::CLOCK_REALTIME);
        let mono = huatuo_ebpf::clock_ns(libc::CLOCK_MONOTONIC);
        Self {
            realtime_minus_monotonic_ns: real - mono,
        }
    }

    pub fn to_system_time(self, monotonic_ns: u64) -> std::time::SystemTime {
        let unix_ns = (monotonic_ns as i128 + self.realtime_minus_monotonic_ns).max(0) as u64;
        std::time::UNIX_EPOCH + std::time::Duration::from_nanos(unix_ns)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fdinfo_numbers_are_parsed_and_text_skipped() {
        let info = parse_fdinfo(
            "pos:\t0\nflags:\t02000002\nprog_type:\t26\nprog_tag:\tab12\nrun_time_ns:\t700\nrun_cnt:\t10\nrecursion_misses:\t2\n",
        );
        assert_eq!(info["run_time_ns"], 700);
        assert_eq!(info["recursion_misses"], 2);
        assert!(!info.contains_key("prog_tag"));
    }

    #[test]
    fn rate_budgets_round_up_per_cpu() {
        let kernel = KernelEnv::detect();
        let cpus = kernel.possible_cpus() as u64;
        assert_eq!(kernel.per_cpu_rate(0), 0);
        assert_eq!(kernel.per_cpu_rate(1), 1);
        assert_eq!(kernel.per_cpu_rate(100), 100u64.div_ceil(cpus));
    }

    #[test]
    fn hz_comes_from_the_kernel_config() {
        let config = "# CONFIG_HZ_100 is not set\nCONFIG_HZ_250=y\nCONFIG_HZ=250\n";
        assert_eq!(parse_config_hz(config), Some(250));
        assert_eq!(parse_config_hz("CONFIG_HZ_1000=y\n"), None);
        // This kernel's, when it exposes its config or its timer list.
        if let Some(hz) = KernelEnv::detect().config_hz() {
            assert!(HZ_CHOICES.contains(&hz), "{hz}");
        }
    }

    #[test]
    fn without_a_config_hz_is_the_nearest_rate_jiffies_advance_at() {
        let timer_list =
            "Timer List Version: v0.10\nHRTIMER_MAX_CLOCK_BASES: 8\nnow at 1 nsecs\n\n\
                          cpu: 0\n  .idle_jiffies   : 4295928789\njiffies: 4295932935\n\
                          jiffies: 1\n";
        assert_eq!(parse_jiffies(timer_list.as_bytes()), Some(4295932935));
        assert_eq!(parse_jiffies("no such line\n".as_bytes()), None);
        let elapsed = Duration::from_millis(200);
        // Reading the two values takes some time; a sleep may also oversleep.
        assert_eq!(nearest_hz(49, elapsed), 250);
        assert_eq!(nearest_hz(53, elapsed), 250);
        assert_eq!(nearest_hz(61, elapsed), 300);
        assert_eq!(nearest_hz(21, elapsed), 100);
        assert_eq!(nearest_hz(203, elapsed), 1000);
        let Some(hz) = measured_hz(Path::new("/proc/timer_list")) else {
            return; // /proc/timer_list is for root
        };
        assert!(HZ_CHOICES.contains(&hz), "{hz}");
    }

    #[test]
    fn versions_parse_from_distribution_releases() {
        assert_eq!(parse_version("6.18.44-fc-v595"), Some((6, 18)));
        assert_eq!(parse_version("4.18.0-553.el8_10.x86_64"), Some((4, 18)));
        assert_eq!(parse_version("5.8"), Some((5, 8)));
        assert_eq!(parse_version("unknown"), None);
    }
}
