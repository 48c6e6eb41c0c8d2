//! Where the test process sits in the unified (v2) cgroup hierarchy, to check the cgroup ids the
//! kernel programs report.

use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

use anyhow::Context as _;

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
