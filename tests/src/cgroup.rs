//! Where the test process sits in the unified (v2) cgroup hierarchy, to check the cgroup ids the
//! kernel programs report; and throwaway cgroups named like containers, in every hierarchy the
//! per-container collectors read.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};

/// Bound on waiting for a cgroup's tasks to die and its directory to go.
const CLEANUP: Duration = Duration::from_secs(10);

/// The mount point of the unified hierarchy: `/sys/fs/cgroup` on v2 hosts,
/// `/sys/fs/cgroup/unified` on hybrid ones.
pub fn unified_root() -> anyhow::Result<PathBuf> {
    let mounts = std::fs::read_to_string("/proc/self/mounts").context("reading mounts")?;
    mounts
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.get(2) == Some(&"cgroup2")).then(|| PathBuf::from(f[1]))
        })
        .min_by_key(|p| p.as_os_str().len())
        .context("no cgroup2 hierarchy is mounted")
}

/// The id of this process's v2 cgroup: the inode of its directory, which is what
/// `bpf_get_current_cgroup_id` and a socket's `sk_cgrp_data` report.
pub fn own_cgroup_id() -> anyhow::Result<u64> {
    let own = std::fs::read_to_string("/proc/self/cgroup").context("reading /proc/self/cgroup")?;
    let path = own
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .context("this process is in no unified cgroup")?;
    let dir = unified_root()?.join(path.trim_start_matches('/'));
    Ok(std::fs::metadata(&dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .ino())
}

/// `count` cgroups named like docker containers (`/huatuo-test-<pid>-<tag>/docker-<id>.scope`,
/// with the systemd driver's naming) in every hierarchy with a controller the per-container
/// collectors read: the v1 cpu, cpuacct, memory and blkio hierarchies, else the unified one with
/// those controllers enabled for the children. Dropping it kills their tasks and removes them.
pub struct ContainerCgroups {
    ids: Vec<String>,
    /// The parent directory in each hierarchy; the containers are its children.
    parents: Vec<PathBuf>,
}

impl ContainerCgroups {
    pub fn create(tag: &str, count: usize) -> anyhow::Result<Self> {
        Self::create_in(tag, count, container_hierarchies()?, true)
    }

    /// Like [`ContainerCgroups::create`], in the unified hierarchy only and without
    /// controllers: what the kernel programs' `bpf_get_current_cgroup_id` reports, also on hybrid
    /// hosts (where the controllers live in v1 hierarchies).
    pub fn create_unified(tag: &str, count: usize) -> anyhow::Result<Self> {
        Self::create_in(tag, count, vec![unified_root()?], false)
    }

    fn create_in(
        tag: &str,
        count: usize,
        hierarchies: Vec<PathBuf>,
        controllers: bool,
    ) -> anyhow::Result<Self> {
        let pid = std::process::id();
        let parent = format!("huatuo-test-{pid}-{tag}");
        let mut cgroups = Self {
            // Unique per process, tag and index; 64 lower-case hex digits like a real id.
            ids: (0..count)
                .map(|i| format!("{pid:08x}{:024x}{i:032x}", hash(tag)))
                .collect(),
            parents: Vec::new(),
        };
        // From here on the guard owns what was created, so a failure still removes it.
        for root in hierarchies {
            let dir = root.join(&parent);
            std::fs::create_dir(&dir).with_context(|| format!("creating {}", dir.display()))?;
            cgroups.parents.push(dir.clone());
            if controllers && root.join("cgroup.subtree_control").exists() {
                // v2: children get a controller only if their parent passes it down; cpu and io
                // may not be enabled at the root, then their files are missing.
                for controller in ["+memory", "+cpu", "+io"] {
                    let written = std::fs::write(dir.join("cgroup.subtree_control"), controller);
                    if controller == "+memory" {
                        written.with_context(|| format!("enabling memory in {}", dir.display()))?;
                    }
                }
            }
            for id in &cgroups.ids {
                let child = dir.join(format!("docker-{id}.scope"));
                std::fs::create_dir(&child)
                    .with_context(|| format!("creating {}", child.display()))?;
            }
        }
        Ok(cgroups)
    }

    pub fn ids(&self) -> &[String] {
        &self.ids
    }

    /// The directory of container `index` in each hierarchy.
    pub fn dirs(&self, index: usize) -> impl Iterator<Item = PathBuf> + '_ {
        let name = format!("docker-{}.scope", self.ids[index]);
        self.parents.iter().map(move |p| p.join(&name))
    }

    /// Moves task `pid` into container `index` in every hierarchy.
    pub fn add(&self, index: usize, pid: u32) -> anyhow::Result<()> {
        for dir in self.dirs(index) {
            let procs = dir.join("cgroup.procs");
            std::fs::write(&procs, pid.to_string())
                .with_context(|| format!("writing {pid} to {}", procs.display()))?;
        }
        Ok(())
    }

    /// `file` of container `index`, from the hierarchy that has it (e.g. `cpuacct.stat`).
    pub fn read(&self, index: usize, file: &str) -> anyhow::Result<String> {
        let path = self
            .dirs(index)
            .map(|d| d.join(file))
            .find(|p| p.exists())
            .with_context(|| format!("no hierarchy has {file}"))?;
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))
    }

    /// Writes `value` to `file` of container `index`, in the hierarchy that has it.
    pub fn write(&self, index: usize, file: &str, value: &str) -> anyhow::Result<()> {
        let path = self
            .dirs(index)
            .map(|d| d.join(file))
            .find(|p| p.exists())
            .with_context(|| format!("no hierarchy has {file}"))?;
        std::fs::write(&path, value)
            .with_context(|| format!("writing {value} to {}", path.display()))
    }

    /// Whether the cgroups are in v1 hierarchies (file names differ).
    pub fn is_v1(&self) -> bool {
        self.parents.iter().any(|p| {
            !p.parent()
                .unwrap_or(p)
                .join("cgroup.subtree_control")
                .exists()
        })
    }
}

impl Drop for ContainerCgroups {
    fn drop(&mut self) {
        let deadline = Instant::now() + CLEANUP;
        for parent in &self.parents {
            let children: Vec<PathBuf> = std::fs::read_dir(parent)
                .into_iter()
                .flatten()
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.is_dir())
                .collect();
            for child in children.iter().chain(std::iter::once(parent)) {
                remove_cgroup(child, deadline);
            }
        }
    }
}

/// Kills the tasks of the cgroup at `dir` and removes it, until `deadline`.
fn remove_cgroup(dir: &Path, deadline: Instant) {
    loop {
        let procs = std::fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
        for pid in procs
            .lines()
            .filter_map(|l| l.trim().parse::<libc::pid_t>().ok())
        {
            // SAFETY: kill has no memory-safety preconditions.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        // The last task may still be on its way out: rmdir fails with EBUSY until it is.
        match std::fs::remove_dir(dir) {
            Ok(()) => return,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return,
            Err(e) if Instant::now() >= deadline => {
                eprintln!("cannot remove {}: {e}", dir.display());
                return;
            }
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

fn hash(text: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    text.hash(&mut hasher);
    hasher.finish()
}

/// The hierarchies to create container cgroups in: the v1 mounts of cpu, cpuacct, memory and
/// blkio (once each, they may share a mount), else the unified one.
fn container_hierarchies() -> anyhow::Result<Vec<PathBuf>> {
    let mounts = std::fs::read_to_string("/proc/self/mounts").context("reading mounts")?;
    let mut v1 = Vec::new();
    for line in mounts.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [_, dir, "cgroup", options, ..] = fields[..] else {
            continue;
        };
        let wanted = ["cpu", "cpuacct", "memory", "blkio"];
        if options.split(',').any(|o| wanted.contains(&o)) && !v1.contains(&PathBuf::from(dir)) {
            v1.push(PathBuf::from(dir));
        }
    }
    if !v1.is_empty() {
        return Ok(v1);
    }
    let root = unified_root()?;
    let enabled = std::fs::read_to_string(root.join("cgroup.subtree_control")).unwrap_or_default();
    if !enabled.split_whitespace().any(|c| c == "memory") {
        bail!(
            "no v1 controllers mounted and memory not enabled in {}",
            root.display()
        );
    }
    Ok(vec![root])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_cgroup_is_a_directory_of_the_unified_hierarchy() {
        let root = unified_root().unwrap();
        assert!(root.join("cgroup.procs").is_file(), "{}", root.display());
        assert!(own_cgroup_id().unwrap() > 0);
    }
}
