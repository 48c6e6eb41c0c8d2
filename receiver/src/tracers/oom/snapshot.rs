//! What the kernel record cannot carry, read from cgroupfs and procfs when the record is decoded,
//! milliseconds after the kill: the memory cgroups' paths, the victim's cgroup limit, peak and
//! event counts, and the host's `/proc/meminfo`.

use crate::attribution::CgroupCache;
use huatuo_ebpf::oom::OomEvent;
use huatuo_semconv::memory as names;
use std::fs;
use std::path::{Path, PathBuf};

/// cgroup v1 reports "no limit" as the largest page-aligned i64 (9223372036854771712 with 4 KiB
/// pages); no real limit comes near 2^62.
const V1_UNLIMITED: u64 = 1 << 62;

/// Memory cgroups whose paths are remembered (OOM kills are rare; a miss searches once).
const MEMCGS_REMEMBERED: usize = 1024;

/// The `/proc/meminfo` fields reported with each kill, and the attribute each becomes.
const MEMINFO: [(&str, &str); 9] = [
    ("MemTotal", names::HOST_MEMORY_TOTAL),
    ("MemFree", names::HOST_MEMORY_FREE),
    ("MemAvailable", names::HOST_MEMORY_AVAILABLE),
    ("Cached", names::HOST_MEMORY_CACHED),
    ("AnonPages", names::HOST_MEMORY_ANON),
    ("Shmem", names::HOST_MEMORY_SHMEM),
    ("Slab", names::HOST_MEMORY_SLAB),
    ("SwapTotal", names::HOST_SWAP_TOTAL),
    ("SwapFree", names::HOST_SWAP_FREE),
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Version {
    V1,
    V2,
}

/// Where the memory controller's hierarchy is mounted, and which cgroup version it is.
#[derive(Debug, PartialEq, Eq)]
pub struct MemoryHierarchy {
    root: PathBuf,
    version: Version,
}

impl MemoryHierarchy {
    pub fn detect() -> Option<Self> {
        let mounts = fs::read_to_string("/proc/self/mounts").ok()?;
        Self::from_mounts(&mounts, |root| {
            fs::read_to_string(root.join("cgroup.controllers")).ok()
        })
    }

    /// A v1 mount with the `memory` option wins: on hybrid hosts the unified hierarchy is
    /// mounted too, but without the controller (its `cgroup.controllers` says which it has).
    fn from_mounts(mounts: &str, controllers: impl Fn(&Path) -> Option<String>) -> Option<Self> {
        let mut unified = None;
        for line in mounts.lines() {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let [_, dir, fstype, options, ..] = fields[..] else {
                continue;
            };
            match fstype {
                "cgroup" if options.split(',').any(|o| o == "memory") => {
                    return Some(Self {
                        root: dir.into(),
                        version: Version::V1,
                    });
                }
                "cgroup2" if unified.is_none() => unified = Some(PathBuf::from(dir)),
                _ => {}
            }
        }
        let root = unified?;
        let has_memory = controllers(&root)?
            .split_whitespace()
            .any(|c| c == "memory");
        has_memory.then_some(Self {
            root,
            version: Version::V2,
        })
    }

    /// Where the hierarchy is mounted: the root of the paths of its cgroups.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The memory cgroup of `pid` from `/proc/<pid>/cgroup`; None once the process is reaped.
    fn cgroup_of(&self, pid: u32) -> Option<String> {
        let text = fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
        self.cgroup_in(&text)
    }

    /// The line of a `/proc/<pid>/cgroup` for this hierarchy: `N:...,memory,...:/path` on v1,
    /// `0::/path` on v2.
    fn cgroup_in(&self, proc_cgroup: &str) -> Option<String> {
        proc_cgroup.lines().find_map(|line| {
            let mut parts = line.splitn(3, ':');
            let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
            let ours = match self.version {
                Version::V1 => controllers.split(',').any(|c| c == "memory"),
                Version::V2 => controllers.is_empty(),
            };
            ours.then(|| path.to_string())
        })
    }

    /// What the memory cgroup at `path` (relative to the root) says about itself.
    fn stats(&self, path: &str) -> MemcgStats {
        let dir = self.root.join(path.trim_start_matches('/'));
        let read = |file: &str| fs::read_to_string(dir.join(file)).ok();
        // v2 writes "max" for no limit, which deliberately fails to parse.
        let number = |file: &str| read(file).and_then(|s| s.trim().parse::<u64>().ok());
        match self.version {
            Version::V1 => MemcgStats {
                limit: number("memory.limit_in_bytes").filter(|&l| l < V1_UNLIMITED),
                usage: number("memory.usage_in_bytes"),
                peak: number("memory.max_usage_in_bytes"),
                events_max: number("memory.failcnt"),
                events_oom: None,
                events_oom_kill: read("memory.oom_control").and_then(|t| keyed(&t, "oom_kill")),
            },
            Version::V2 => {
                let events = read("memory.events").unwrap_or_default();
                MemcgStats {
                    limit: number("memory.max"),
                    usage: number("memory.current"),
                    peak: number("memory.peak"),
                    events_max: keyed(&events, "max"),
                    events_oom: keyed(&events, "oom"),
                    events_oom_kill: keyed(&events, "oom_kill"),
                }
            }
        }
    }
}

/// A memory cgroup's own accounting; None where a file is missing (older kernels, other
/// version) or, for `limit`, where there is no limit.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MemcgStats {
    pub limit: Option<u64>,
    pub usage: Option<u64>,
    pub peak: Option<u64>,
    pub events_max: Option<u64>,
    pub events_oom: Option<u64>,
    pub events_oom_kill: Option<u64>,
}

/// The value of `key` in a flat-keyed cgroup file (`key value` per line).
fn keyed(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let (k, v) = line.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok()).flatten()
    })
}

/// The [`MEMINFO`] fields of `/proc/meminfo` text as (attribute, bytes).
pub fn meminfo(text: &str) -> Vec<(&'static str, u64)> {
    MEMINFO
        .iter()
        .filter_map(|&(field, attribute)| {
            let kib = text.lines().find_map(|line| {
                let rest = line.strip_prefix(field)?.strip_prefix(':')?;
                rest.trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse::<u64>()
                    .ok()
            })?;
            Some((attribute, kib * 1024))
        })
        .collect()
}

/// Everything read from the system for one kill.
#[derive(Debug, Default)]
pub struct Snapshot {
    /// The victim's memory cgroup path and its accounting.
    pub victim_memcg: Option<(String, MemcgStats)>,
    pub trigger_memcg: Option<String>,
    pub meminfo: Vec<(&'static str, u64)>,
}

/// Takes [`Snapshot`]s; remembers which memory cgroup ids name which paths.
pub struct Snapshotter {
    hierarchy: Option<MemoryHierarchy>,
    paths: CgroupCache,
}

impl Snapshotter {
    pub fn new(hierarchy: Option<MemoryHierarchy>) -> Self {
        let root = hierarchy.as_ref().map(|h| h.root.clone());
        let paths = CgroupCache::new(root, MEMCGS_REMEMBERED);
        Self { hierarchy, paths }
    }

    pub fn take(&self, raw: &OomEvent) -> Snapshot {
        let meminfo = fs::read_to_string("/proc/meminfo")
            .map(|text| meminfo(&text))
            .unwrap_or_default();
        let Some(hierarchy) = &self.hierarchy else {
            return Snapshot {
                meminfo,
                ..Snapshot::default()
            };
        };
        let path_of = |id: u64| {
            let found = (id != 0).then(|| self.paths.resolve(id)).flatten()?;
            Some(found.cgroup_path.clone())
        };
        // The kernel's id names the cgroup exactly, even once the victim is gone. Without it
        // (no victim task in the record), /proc still has the victim until its parent reaps
        // it; after that the cgroup stays unknown.
        let victim_path = if raw.has_victim_task() {
            path_of(raw.victim_memcg_id)
        } else {
            hierarchy.cgroup_of(raw.victim_pid)
        };
        Snapshot {
            victim_memcg: victim_path.map(|path| {
                let stats = hierarchy.stats(&path);
                (path, stats)
            }),
            trigger_memcg: path_of(raw.trigger_memcg_id),
            meminfo,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "\
tmpfs /sys/fs/cgroup tmpfs rw,relatime,mode=755 0 0
cgroup /sys/fs/cgroup/cpu cgroup rw,relatime,cpu 0 0
cgroup /sys/fs/cgroup/memory cgroup rw,relatime,memory 0 0
cgroup2 /sys/fs/cgroup/unified cgroup2 rw,relatime 0 0
";

    fn v2(root: &Path) -> MemoryHierarchy {
        MemoryHierarchy {
            root: root.to_path_buf(),
            version: Version::V2,
        }
    }

    #[test]
    fn finds_the_hierarchy_that_has_the_memory_controller() {
        let no_memory = |_: &Path| Some("cpu io pids".to_string());
        assert_eq!(
            MemoryHierarchy::from_mounts(HYBRID, no_memory),
            Some(MemoryHierarchy {
                root: "/sys/fs/cgroup/memory".into(),
                version: Version::V1
            })
        );
        let unified = "cgroup2 /sys/fs/cgroup cgroup2 rw,nosuid 0 0\n";
        let with_memory = |root: &Path| {
            assert_eq!(root, Path::new("/sys/fs/cgroup"));
            Some("cpuset cpu io memory pids".to_string())
        };
        assert_eq!(
            MemoryHierarchy::from_mounts(unified, with_memory),
            Some(v2(Path::new("/sys/fs/cgroup")))
        );
        assert_eq!(MemoryHierarchy::from_mounts(unified, no_memory), None);
        assert_eq!(MemoryHierarchy::from_mounts("", no_memory), None);
    }

    #[test]
    fn picks_the_memory_line_of_proc_cgroup() {
        let text =
            "9:name=systemd:/\n4:memory:/kubepods/pod1/abc\n3:cpu,cpuacct:/x\n0::/user.slice\n";
        let v1 = MemoryHierarchy {
            root: "/sys/fs/cgroup/memory".into(),
            version: Version::V1,
        };
        assert_eq!(v1.cgroup_in(text).as_deref(), Some("/kubepods/pod1/abc"));
        assert_eq!(
            v2(Path::new("/")).cgroup_in(text).as_deref(),
            Some("/user.slice")
        );
        assert_eq!(v1.cgroup_in("0::/only-v2\n"), None);
    }

    #[test]
    fn reads_v1_files_and_treats_the_maximum_as_unlimited() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("job");
        fs::create_dir(&dir).unwrap();
        for (file, text) in [
            ("memory.limit_in_bytes", "67108864\n"),
            ("memory.usage_in_bytes", "1048576\n"),
            ("memory.max_usage_in_bytes", "67108864\n"),
            ("memory.failcnt", "210\n"),
            (
                "memory.oom_control",
                "oom_kill_disable 0\nunder_oom 0\noom_kill 1\n",
            ),
        ] {
            fs::write(dir.join(file), text).unwrap();
        }
        let v1 = MemoryHierarchy {
            root: root.path().to_path_buf(),
            version: Version::V1,
        };
        assert_eq!(
            v1.stats("/job"),
            MemcgStats {
                limit: Some(64 << 20),
                usage: Some(1 << 20),
                peak: Some(64 << 20),
                events_max: Some(210),
                events_oom: None,
                events_oom_kill: Some(1),
            }
        );
        fs::write(dir.join("memory.limit_in_bytes"), "9223372036854771712\n").unwrap();
        assert_eq!(v1.stats("/job").limit, None);
        assert_eq!(v1.stats("/gone"), MemcgStats::default());
    }

    #[test]
    fn reads_v2_files() {
        let root = tempfile::tempdir().unwrap();
        for (file, text) in [
            ("memory.max", "max\n"),
            ("memory.current", "4096\n"),
            (
                "memory.events",
                "low 0\nhigh 0\nmax 37\noom 2\noom_kill 2\noom_group_kill 0\n",
            ),
        ] {
            fs::write(root.path().join(file), text).unwrap();
        }
        assert_eq!(
            v2(root.path()).stats("/"),
            MemcgStats {
                limit: None,
                usage: Some(4096),
                peak: None,
                events_max: Some(37),
                events_oom: Some(2),
                events_oom_kill: Some(2),
            }
        );
    }

    #[test]
    fn meminfo_fields_become_bytes() {
        let text = "MemTotal:       24684096 kB\nMemFree:        15179652 kB\n\
                    MemAvailable:   23445400 kB\nSwapCached:            0 kB\n\
                    Cached:          8229192 kB\nSwapTotal:             0 kB\n";
        assert_eq!(
            meminfo(text),
            [
                (names::HOST_MEMORY_TOTAL, 24684096 * 1024),
                (names::HOST_MEMORY_FREE, 15179652 * 1024),
                (names::HOST_MEMORY_AVAILABLE, 23445400 * 1024),
                (names::HOST_MEMORY_CACHED, 8229192 * 1024),
                (names::HOST_SWAP_TOTAL, 0),
            ]
        );
    }
}
