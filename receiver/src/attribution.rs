//! Attribution: from the cgroup id a kernel record carries to the cgroup it names, and from
//! that cgroup's path to the container and pod it belongs to.
//!
//! `bpf_get_current_cgroup_id` returns the id of the task's cgroup in the unified (v2) hierarchy,
//! which is the inode number of that cgroup's directory. On v1-only hosts there is no such
//! hierarchy and ids cannot be resolved (records still carry the id).

use crate::container::{parse_cgroup_path, ContainerIdentity};
use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// Bound on remembered ids; beyond it the cache starts over (ids of removed cgroups are not
/// reused, so stale entries are only a memory cost).
const MAX_CACHED: usize = 8192;
/// Bound on directories visited to resolve one miss.
const MAX_WALK: usize = 100_000;

/// What a cgroup id resolves to.
#[derive(Debug, PartialEq, Eq)]
pub struct Attribution {
    /// Path relative to the unified hierarchy's mount, e.g. `/system.slice/foo.service`.
    pub cgroup_path: String,
    pub container: ContainerIdentity,
}

pub struct CgroupResolver {
    root: Option<PathBuf>,
    cache: Mutex<HashMap<u64, Option<Arc<Attribution>>>>,
}

impl CgroupResolver {
    pub fn detect() -> Self {
        Self::with_root(unified_root())
    }

    pub fn with_root(root: Option<PathBuf>) -> Self {
        Self {
            root,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// The cgroup with this id and its container, resolved once per id; `None` when unknown.
    pub fn resolve(&self, id: u64) -> Option<Arc<Attribution>> {
        let root = self.root.as_ref()?;
        if let Some(hit) = self.lock().get(&id) {
            return hit.clone();
        }
        let found = find_by_inode(root, id).map(|p| {
            let relative = p.strip_prefix(root).unwrap_or(&p);
            let cgroup_path = format!("/{}", relative.display());
            Arc::new(Attribution {
                container: parse_cgroup_path(&cgroup_path),
                cgroup_path,
            })
        });
        let mut cache = self.lock();
        if cache.len() >= MAX_CACHED {
            cache.clear();
        }
        cache.insert(id, found.clone());
        found
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Option<Arc<Attribution>>>> {
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The cgroup id (as above) of a live task, from `/proc/<tid>/cgroup`: for tracers that learn
/// of a task from the kernel log rather than from a BPF record.
pub fn task_cgroup_id(tid: u32) -> Option<u64> {
    let root = unified_root()?;
    let cgroups = std::fs::read_to_string(format!("/proc/{tid}/cgroup")).ok()?;
    let path = cgroups.lines().find_map(|l| l.strip_prefix("0::"))?;
    let dir = root.join(path.trim_start_matches('/'));
    std::fs::metadata(dir).ok().map(|m| m.ino())
}

/// The mount point of the unified hierarchy: `/sys/fs/cgroup` on v2 hosts,
/// `/sys/fs/cgroup/unified` on hybrid ones.
pub fn unified_root() -> Option<PathBuf> {
    let mounts = std::fs::read_to_string("/proc/self/mounts").ok()?;
    mounts
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let (_, dir, fstype) = (f.next()?, f.next()?, f.next()?);
            (fstype == "cgroup2").then(|| PathBuf::from(dir))
        })
        .min_by_key(|p| p.as_os_str().len())
}

fn find_by_inode(root: &Path, inode: u64) -> Option<PathBuf> {
    let mut stack = vec![root.to_path_buf()];
    let mut visited = 0;
    while let Some(dir) = stack.pop() {
        visited += 1;
        if visited > MAX_WALK {
            return None;
        }
        if std::fs::metadata(&dir).map(|m| m.ino()).ok() == Some(inode) {
            return Some(dir);
        }
        if let Ok(entries) = std::fs::read_dir(&dir) {
            stack.extend(
                entries
                    .flatten()
                    .filter(|e| e.file_type().map(|t| t.is_dir()).unwrap_or(false))
                    .map(|e| e.path()),
            );
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_directories_by_inode_and_caches_misses() {
        let root = tempfile::tempdir().unwrap();
        let id = "ab".repeat(32);
        let path = format!("/system.slice/docker-{id}.scope");
        let leaf = root.path().join(&path[1..]);
        std::fs::create_dir_all(&leaf).unwrap();
        let inode = std::fs::metadata(&leaf).unwrap().ino();
        let resolver = CgroupResolver::with_root(Some(root.path().to_path_buf()));
        let found = resolver.resolve(inode).unwrap();
        assert_eq!(found.cgroup_path, path);
        assert_eq!(found.container.container_id.as_deref(), Some(id.as_str()));
        assert_eq!(resolver.resolve(u64::MAX), None);
        assert!(resolver.lock().contains_key(&u64::MAX));
    }

    #[test]
    fn no_unified_hierarchy_resolves_nothing() {
        assert_eq!(CgroupResolver::with_root(None).resolve(1), None);
    }
}
