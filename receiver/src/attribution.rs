//! Attribution: from what a kernel record says about whose event it is (a cgroup id, a cgroup
//! path, a network namespace) to the container and pod it belongs to, as attributes for log
//! events, spans and metrics. [`Attributor`] is the one place this happens.
//!
//! - Cgroup ids: `bpf_get_current_cgroup_id` and a socket's cgroup are ids in the unified (v2)
//!   hierarchy, the inode of the cgroup's directory. [`CgroupCache`] maps them to paths: the
//!   `cgroup_events` tracer tells it about cgroups created and removed; an id it does not know
//!   is looked up once by a search of the hierarchy, which also learns every other cgroup it
//!   passes, and is remembered as unknown when not found.
//!   The search is bounded in directories and time, and removed cgroups leave a tombstone, so
//!   late records of a cgroup that is gone cost a lookup, not a search.
//! - Cgroup paths (v1 or v2): parsed directly; the OOM tracer names the victim's memory cgroup.
//! - Tasks, on hosts with v1 hierarchies: there a container's tasks sit in v1 cgroups and the
//!   unified id names nothing (its root on v1-only hosts), so when a record's id, path and
//!   namespace name no container, the v1 lines of `/proc/<tid>/cgroup` of its task do; read once
//!   per task per [`TASK_TTL`], and not at all once the task has exited.
//! - Network namespaces: a packet dropped in softirq or sent by a kernel socket has no owning
//!   task; its namespace's inode is matched against the namespaces of running processes.
//! - Kubernetes names: from the kubelet's pod list when enabled ([`crate::kubelet`]).

use crate::container::{parse_cgroup_path, ContainerIdentity};
use crate::kubelet::PodDirectory;
use crate::procfs::Procfs;
use hashlink::LruCache;
use huatuo_config::AttributionConfig;
use huatuo_semconv::{container as names, net as net_names};
use opentelemetry::logs::AnyValue;
use opentelemetry::KeyValue;
use std::collections::{HashMap, HashSet};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// Bounds on directories visited, and time spent, to resolve one miss: records are attributed
/// while the ring buffers are drained.
const MAX_WALK: usize = 100_000;
const MAX_WALK_TIME: Duration = Duration::from_millis(20);
/// Task ids are reused once a task exits, so what `/proc/<tid>/cgroup` said is trusted this long.
const TASK_TTL: Duration = Duration::from_secs(5);
/// Network namespace inodes are recycled once a namespace is gone, so what was learned about
/// one is trusted this long.
const NETNS_TTL: Duration = Duration::from_secs(60);

/// What a record knows about whose event it is. Every field is optional; the most specific one
/// that names a container wins: the cgroup path, then the cgroup id, then the network namespace.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Owner {
    /// Unified-hierarchy id of the task's cgroup, or of the socket owner's.
    pub cgroup_id: Option<u64>,
    /// A cgroup path the tracer already knows (v1 or v2, relative to its mount), e.g. the
    /// memory cgroup of an OOM victim.
    pub cgroup_path: Option<String>,
    /// Inode of the network namespace of a network record.
    pub netns_inum: Option<u32>,
    /// The task the record is about, whose v1 cgroups name its container on v1 and hybrid hosts.
    pub tid: Option<u32>,
}

impl Owner {
    /// The owner with this cgroup id; 0 (what the kernel programs write when they do not know)
    /// is no owner.
    pub fn cgroup(id: u64) -> Self {
        Self {
            cgroup_id: (id != 0).then_some(id),
            ..Self::default()
        }
    }

    /// Adds the network namespace; 0 is unknown.
    pub fn with_netns(mut self, inum: u32) -> Self {
        self.netns_inum = (inum != 0).then_some(inum);
        self
    }

    pub fn with_cgroup_path(mut self, path: Option<String>) -> Self {
        self.cgroup_path = path;
        self
    }

    /// Adds the task (thread id); 0 (the idle task, or none) is unknown.
    pub fn with_task(mut self, tid: u32) -> Self {
        self.tid = (tid != 0).then_some(tid);
        self
    }
}

/// What a cgroup id resolves to.
#[derive(Debug, PartialEq, Eq)]
pub struct Attribution {
    /// Path relative to the unified hierarchy's mount, e.g. `/system.slice/foo.service`.
    pub cgroup_path: String,
    pub container: ContainerIdentity,
}

impl Attribution {
    fn new(cgroup_path: String) -> Arc<Self> {
        Arc::new(Self {
            container: parse_cgroup_path(&cgroup_path),
            cgroup_path,
        })
    }
}

/// The one place records get their container and pod attributes.
pub struct Attributor {
    cgroups: CgroupCache,
    /// None on hosts without v1 hierarchies, where the unified id says it all.
    tasks: Option<TaskCgroups>,
    netns: NetnsResolver,
    pods: Option<Arc<PodDirectory>>,
}

/// The container a record was attributed to, and how.
struct Found {
    cgroup: Option<Arc<Attribution>>,
    container: ContainerIdentity,
    source: &'static str,
}

impl Attributor {
    pub fn new(config: &AttributionConfig, pods: Option<Arc<PodDirectory>>) -> Self {
        let tasks = v1_mounted().then(|| TaskCgroups::new(Procfs::default(), config.cache_size));
        Self {
            cgroups: CgroupCache::new(unified_root(), config.cache_size),
            tasks,
            netns: NetnsResolver::new(config.cache_size),
            pods,
        }
    }

    /// The attributor the agent runs with: with `[attribution.kubelet]` enabled, it also starts
    /// reading the kubelet's pod list until `cancel` fires.
    pub fn start(config: &AttributionConfig, cancel: CancellationToken) -> Self {
        let pods = config.kubelet.enabled.then(|| {
            let pods = Arc::new(PodDirectory::default());
            tokio::spawn(pods.clone().run(config.kubelet.clone(), cancel));
            pods
        });
        Self::new(config, pods)
    }

    /// Reads tasks' cgroups under `procfs` (`agent.procfs_prefix`): thread ids in records are
    /// the host's, which a containerized agent sees in the host's /proc mounted there.
    pub fn with_procfs(mut self, procfs: &Path) -> Self {
        if let Some(tasks) = &mut self.tasks {
            tasks.procfs = Procfs::at(procfs);
        }
        self
    }

    pub fn cgroups(&self) -> &CgroupCache {
        &self.cgroups
    }

    /// Attributes for a log event or span: the cgroup (id and path) and everything known about
    /// its container and pod.
    pub fn record_attributes(&self, owner: &Owner) -> Vec<(&'static str, AnyValue)> {
        let found = self.find(owner);
        let mut attributes = Vec::new();
        if let Some(id) = owner.cgroup_id {
            attributes.push((net_names::CGROUP_ID, AnyValue::Int(id as i64)));
        }
        if let Some(cgroup) = &found.cgroup {
            attributes.push((
                net_names::CGROUP_PATH,
                AnyValue::from(cgroup.cgroup_path.clone()),
            ));
        }
        if !found.container.is_empty() {
            attributes.push((names::ATTRIBUTION_SOURCE, AnyValue::from(found.source)));
        }
        attributes.extend(
            self.identity_attributes(&found.container, true)
                .into_iter()
                .map(|kv| (kv.0, AnyValue::from(kv.1.to_string()))),
        );
        attributes
    }

    /// Attributes for a per-container metric series: the container's and pod's identity only
    /// (no cgroup path, pid or address), so series stay bounded by the containers on the host.
    pub fn metric_attributes(&self, owner: &Owner) -> Vec<KeyValue> {
        let found = self.find(owner);
        self.identity_attributes(&found.container, false)
            .into_iter()
            .map(|(key, value)| KeyValue::new(key, value))
            .collect()
    }

    /// A cgroup was created (from the kernel's cgroup_mkdir): remember it. `id` 0 (old kernels)
    /// is read from the directory.
    pub fn cgroup_created(&self, id: u64, path: &str) {
        let id = match id {
            0 => match self.cgroups.inode_of(path) {
                Some(id) => id,
                None => return,
            },
            id => id,
        };
        tracing::debug!(id, path, "cgroup created");
        self.cgroups.insert(id, path.to_string());
    }

    /// A cgroup was removed: it becomes a tombstone (its late records must not each search the
    /// hierarchy for it), and the network namespaces learned from it are forgotten.
    pub fn cgroup_removed(&self, id: u64, path: &str) {
        tracing::debug!(id, path, "cgroup removed");
        if id != 0 {
            self.cgroups.tombstone(id);
        }
        self.netns.forget_cgroup(path);
    }

    fn find(&self, owner: &Owner) -> Found {
        let cgroup = owner.cgroup_id.and_then(|id| self.cgroups.resolve(id));
        let from_path = owner.cgroup_path.as_deref().map(parse_cgroup_path);
        let from_id = cgroup.as_ref().map(|c| c.container.clone());
        if let Some(container) = from_path.into_iter().chain(from_id).find(|c| !c.is_empty()) {
            return Found {
                cgroup,
                container,
                source: "cgroup",
            };
        }
        let task = owner
            .tid
            .zip(self.tasks.as_ref())
            .and_then(|(tid, tasks)| tasks.resolve(tid));
        if let Some(task) = task {
            return Found {
                container: task.container.clone(),
                cgroup: Some(task),
                source: "task",
            };
        }
        let (container, source) = match owner.netns_inum.and_then(|n| self.netns.resolve(n)) {
            Some(container) => (container, "netns"),
            None => (ContainerIdentity::default(), "cgroup"),
        };
        Found {
            cgroup,
            container,
            source,
        }
    }

    /// The container's identity and, with the kubelet enabled, its pod's names. `detailed` adds
    /// what metrics leave out (runtime, QoS, container type) because the ids imply it.
    fn identity_attributes(
        &self,
        container: &ContainerIdentity,
        detailed: bool,
    ) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        if let Some(id) = &container.container_id {
            out.push((names::CONTAINER_ID, id.clone()));
        }
        if let (true, Some(runtime)) = (detailed, container.runtime) {
            out.push((names::CONTAINER_RUNTIME_NAME, runtime.to_string()));
        }
        let Some(uid) = &container.pod_uid else {
            return out;
        };
        out.push((names::K8S_POD_UID, uid.clone()));
        let pod = self.pods.as_ref().and_then(|pods| pods.lookup(uid));
        let qos = pod
            .as_ref()
            .and_then(|p| p.qos)
            .or(container.qos)
            .filter(|_| detailed);
        if let Some(qos) = qos {
            out.push((names::K8S_POD_QOS, qos.to_string()));
        }
        let Some(pod) = pod else { return out };
        out.push((names::K8S_POD_NAME, pod.name.clone()));
        out.push((names::K8S_NAMESPACE_NAME, pod.namespace.clone()));
        if let Some(id) = &container.container_id {
            let (name, kind) = pod.container(id);
            if let Some(name) = name {
                out.push((names::K8S_CONTAINER_NAME, name.to_string()));
            }
            if detailed {
                out.push((names::K8S_CONTAINER_TYPE, kind.to_string()));
            }
        }
        out
    }
}

type Entries = LruCache<u64, Option<Arc<Attribution>>>;

/// Unified-hierarchy cgroup id -> path and container, bounded, least recently used first out.
/// Unknown ids are remembered as such, so a miss is looked up once.
pub struct CgroupCache {
    root: Option<PathBuf>,
    entries: Mutex<Entries>,
}

impl CgroupCache {
    pub fn new(root: Option<PathBuf>, capacity: usize) -> Self {
        Self {
            root,
            entries: Mutex::new(LruCache::new(capacity.max(1))),
        }
    }

    /// The cgroup with this id and its container; `None` when unknown.
    pub fn resolve(&self, id: u64) -> Option<Arc<Attribution>> {
        let root = self.root.as_ref()?;
        if let Some(hit) = self.lock().get(&id) {
            return hit.clone();
        }
        // The search runs unlocked: other tracers' lookups go on meanwhile.
        let mut seen = Vec::new();
        let found = search(root, id, &mut seen);
        let mut entries = self.lock();
        for (inode, path) in seen {
            if !entries.contains_key(&inode) {
                entries.insert(inode, Some(Attribution::new(path)));
            }
        }
        let found = found.map(Attribution::new);
        entries.insert(id, found.clone());
        found
    }

    pub fn insert(&self, id: u64, path: String) {
        self.lock().insert(id, Some(Attribution::new(path)));
    }

    /// Remembers `id` as unknown: its cgroup is gone.
    pub fn tombstone(&self, id: u64) {
        self.lock().insert(id, None);
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn inode_of(&self, path: &str) -> Option<u64> {
        let dir = self.root.as_ref()?.join(path.trim_start_matches('/'));
        std::fs::metadata(dir).ok().map(|m| m.ino())
    }

    fn lock(&self) -> MutexGuard<'_, Entries> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Searches the hierarchy at `root` for the directory whose inode is `inode`; returns its path
/// relative to `root`, and adds every directory passed to `seen`.
fn search(root: &Path, inode: u64, seen: &mut Vec<(u64, String)>) -> Option<String> {
    let started = Instant::now();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        if seen.len() >= MAX_WALK || started.elapsed() >= MAX_WALK_TIME {
            tracing::debug!(inode, visited = seen.len(), "cgroup search gave up");
            return None;
        }
        let Ok(meta) = std::fs::metadata(&dir) else {
            continue;
        };
        let relative = dir.strip_prefix(root).unwrap_or(&dir);
        let path = format!("/{}", relative.display());
        if meta.ino() == inode {
            return Some(path);
        }
        seen.push((meta.ino(), path));
        stack.extend(crate::procfs::subdirectories(&dir));
    }
    None
}

/// The cgroup id (as above) of a live task, from `/proc/<tid>/cgroup`: for tracers that learn
/// of a task from the kernel log rather than from a BPF record.
pub fn task_cgroup_id(tid: u32) -> Option<u64> {
    crate::procfs::Procfs::default().cgroup_id(tid, &unified_root()?)
}

/// The mount point of the unified hierarchy: `/sys/fs/cgroup` on v2 hosts,
/// `/sys/fs/cgroup/unified` on hybrid ones.
pub fn unified_root() -> Option<PathBuf> {
    cgroup_mounts("cgroup2").min_by_key(|p| p.as_os_str().len())
}

/// Whether v1 hierarchies are mounted (v1-only and hybrid hosts).
fn v1_mounted() -> bool {
    cgroup_mounts("cgroup").next().is_some()
}

/// Mount points of file systems of type `fstype`.
fn cgroup_mounts(fstype: &str) -> impl Iterator<Item = PathBuf> + '_ {
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
    let dirs: Vec<PathBuf> = mounts
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let (_, dir, kind) = (f.next()?, f.next()?, f.next()?);
            (kind == fstype).then(|| PathBuf::from(dir))
        })
        .collect();
    dirs.into_iter()
}

/// Task id -> the container its cgroups in `/proc/<tid>/cgroup` name (the first line that names
/// one, v1 lines included), bounded, each answer trusted for [`TASK_TTL`].
struct TaskCgroups {
    procfs: Procfs,
    entries: Mutex<TaskEntries>,
}

/// Per task: its container's cgroup (None: none), and when that was read.
type TaskEntries = LruCache<u32, (Option<Arc<Attribution>>, Instant)>;

impl TaskCgroups {
    fn new(procfs: Procfs, capacity: usize) -> Self {
        Self {
            procfs,
            entries: Mutex::new(LruCache::new(capacity.max(1))),
        }
    }

    /// The cgroup of `tid` that names a container; None when none does or the task is gone.
    fn resolve(&self, tid: u32) -> Option<Arc<Attribution>> {
        let mut entries = self.lock();
        if let Some((found, learned)) = entries.get(&tid) {
            if learned.elapsed() < TASK_TTL {
                return found.clone();
            }
        }
        drop(entries);
        let found = self
            .procfs
            .cgroups(tid)
            .and_then(|text| process_cgroup(&text))
            .map(Attribution::new)
            .filter(|a| !a.container.is_empty());
        self.lock().insert(tid, (found.clone(), Instant::now()));
        found
    }

    fn lock(&self) -> MutexGuard<'_, TaskEntries> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Network namespace inode -> the container (or pod) whose processes live in it.
struct NetnsResolver {
    /// The agent's own namespace: the host's, which belongs to no container.
    own: Option<u64>,
    state: Mutex<NetnsState>,
}

struct NetnsState {
    entries: LruCache<u64, NetnsEntry>,
}

struct NetnsEntry {
    /// None: no container owns it (the host's, or one with processes outside containers).
    container: Option<ContainerIdentity>,
    /// Cgroup path of a process in it, so the cgroup's removal forgets the namespace.
    cgroup_path: Option<String>,
    learned: Instant,
}

impl NetnsResolver {
    fn new(capacity: usize) -> Self {
        Self {
            own: netns_inode("self"),
            state: Mutex::new(NetnsState {
                entries: LruCache::new(capacity.max(1)),
            }),
        }
    }

    fn resolve(&self, inum: u32) -> Option<ContainerIdentity> {
        let inum = u64::from(inum);
        if Some(inum) == self.own {
            return None;
        }
        let mut state = self.lock();
        if let Some(entry) = state.entries.get(&inum) {
            if entry.learned.elapsed() < NETNS_TTL {
                return entry.container.clone();
            }
        }
        // A scan learns every namespace, and an unknown one is remembered as such: at most one
        // scan per namespace per NETNS_TTL.
        drop(state);
        let scanned = scan_namespaces();
        let now = Instant::now();
        let mut state = self.lock();
        let mut result = None;
        for (ns, (container, cgroup_path)) in scanned {
            if ns == inum {
                result = container.clone();
            }
            let entry = NetnsEntry {
                container,
                cgroup_path,
                learned: now,
            };
            state.entries.insert(ns, entry);
        }
        if !state.entries.contains_key(&inum) {
            let unknown = NetnsEntry {
                container: None,
                cgroup_path: None,
                learned: now,
            };
            state.entries.insert(inum, unknown);
        }
        result
    }

    /// A cgroup was removed: namespaces learned from a process in it may be gone with it.
    fn forget_cgroup(&self, path: &str) {
        self.lock()
            .entries
            .retain(|_, e| e.cgroup_path.as_deref() != Some(path));
    }

    fn lock(&self) -> MutexGuard<'_, NetnsState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn netns_inode(pid: &str) -> Option<u64> {
    std::fs::metadata(format!("/proc/{pid}/ns/net"))
        .ok()
        .map(|m| m.ino())
}

/// Every network namespace with a process in it, and the container owning it: the one pod (or
/// container) all its processes belong to; none when any process is outside a container.
fn scan_namespaces() -> HashMap<u64, (Option<ContainerIdentity>, Option<String>)> {
    let mut members: HashMap<u64, Vec<(ContainerIdentity, String)>> = HashMap::new();
    let Ok(proc) = std::fs::read_dir("/proc") else {
        return HashMap::new();
    };
    for entry in proc.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
        else {
            continue;
        };
        let Some(ns) = netns_inode(pid) else { continue };
        let Some(path) = std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
            .ok()
            .and_then(|text| process_cgroup(&text))
        else {
            continue;
        };
        members
            .entry(ns)
            .or_default()
            .push((parse_cgroup_path(&path), path));
    }
    members
        .into_iter()
        .map(|(ns, processes)| {
            let path = processes.first().map(|(_, p)| p.clone());
            (ns, (namespace_owner(&processes), path))
        })
        .collect()
}

/// The container of a namespace from its processes' containers: a pod's namespace is shared by
/// all its containers, so the pod is named, and a container only when it is the sole one.
fn namespace_owner(processes: &[(ContainerIdentity, String)]) -> Option<ContainerIdentity> {
    if processes.iter().any(|(c, _)| c.is_empty()) {
        return None;
    }
    let distinct = |f: fn(&ContainerIdentity) -> Option<String>| {
        let set: HashSet<Option<String>> = processes.iter().map(|(c, _)| f(c)).collect();
        (set.len() == 1)
            .then(|| set.into_iter().next().flatten())
            .flatten()
    };
    let first = &processes.first()?.0;
    let owner = ContainerIdentity {
        container_id: distinct(|c| c.container_id.clone()),
        runtime: first.runtime,
        pod_uid: distinct(|c| c.pod_uid.clone()),
        qos: first.qos,
    };
    let owner = ContainerIdentity {
        runtime: owner.container_id.as_ref().and(owner.runtime),
        qos: owner.pod_uid.as_ref().and(owner.qos),
        ..owner
    };
    (!owner.is_empty()).then_some(owner)
}

/// The path a process's container shows in `/proc/<pid>/cgroup`: the unified line (`0::`) when
/// it names a container, else the first v1 line that does (v1-only and hybrid hosts where the
/// unified hierarchy holds nothing).
fn process_cgroup(text: &str) -> Option<String> {
    let paths: Vec<&str> = text
        .lines()
        .filter_map(|line| line.splitn(3, ':').nth(2))
        .collect();
    let unified = text
        .lines()
        .find_map(|line| line.strip_prefix("0::"))
        .filter(|p| !parse_cgroup_path(p).is_empty());
    unified
        .or_else(|| {
            paths
                .iter()
                .copied()
                .find(|p| !parse_cgroup_path(p).is_empty())
        })
        .or(paths.first().copied())
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "abababababababababababababababababababababababababababababababab";
    const UID: &str = "0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b";

    fn tree() -> (tempfile::TempDir, u64) {
        let root = tempfile::tempdir().unwrap();
        let leaf = root.path().join(format!("system.slice/docker-{ID}.scope"));
        std::fs::create_dir_all(&leaf).unwrap();
        let inode = std::fs::metadata(&leaf).unwrap().ino();
        (root, inode)
    }

    #[test]
    fn resolves_directories_by_inode_and_remembers_misses() {
        let (root, inode) = tree();
        let cache = CgroupCache::new(Some(root.path().to_path_buf()), 100);
        let found = cache.resolve(inode).unwrap();
        assert_eq!(
            found.cgroup_path,
            format!("/system.slice/docker-{ID}.scope")
        );
        assert_eq!(found.container.container_id.as_deref(), Some(ID));
        // The search learned every directory it passed.
        let slice = std::fs::metadata(root.path().join("system.slice"))
            .unwrap()
            .ino();
        assert!(cache.lock().contains_key(&slice));
        assert_eq!(cache.resolve(u64::MAX), None);
        assert!(matches!(cache.lock().get(&u64::MAX), Some(None)));
    }

    #[test]
    fn the_cache_is_bounded_and_events_update_it() {
        let (root, inode) = tree();
        let cache = CgroupCache::new(Some(root.path().to_path_buf()), 2);
        cache.resolve(inode);
        assert!(cache.len() <= 2);
        cache.insert(7, format!("/kubepods/pod{UID}/{ID}"));
        let created = cache.resolve(7).unwrap();
        assert_eq!(created.container.pod_uid.as_deref(), Some(UID));
        cache.tombstone(7);
        assert_eq!(cache.resolve(7), None);
        for id in 100..110 {
            cache.insert(id, "/x".into());
        }
        assert_eq!(cache.len(), 2);
    }

    #[test]
    fn a_removed_cgroup_is_a_tombstone_not_a_search() {
        let (root, inode) = tree();
        let cache = CgroupCache::new(Some(root.path().to_path_buf()), 100);
        cache.tombstone(inode);
        // Still on disk, but a search would find it: the tombstone answers first.
        assert_eq!(cache.resolve(inode), None);
        assert_eq!(cache.len(), 1, "no search learned the tree");
        // An id reused by a new cgroup replaces its tombstone.
        cache.insert(inode, "/docker/x".into());
        assert!(cache.resolve(inode).is_some());
    }

    /// An attributor of a host with v1 hierarchies whose unified hierarchy is `root` and whose
    /// procfs prefix is `proc`.
    fn attributor(root: &Path, proc: &Path) -> Attributor {
        Attributor {
            cgroups: CgroupCache::new(Some(root.to_path_buf()), 100),
            tasks: Some(TaskCgroups::new(Procfs::default(), 100)),
            netns: NetnsResolver::new(100),
            pods: None,
        }
        .with_procfs(proc)
    }

    fn write_task(proc: &Path, tid: u32, cgroups: &str) {
        std::fs::create_dir_all(proc.join(tid.to_string())).unwrap();
        std::fs::write(proc.join(format!("{tid}/cgroup")), cgroups).unwrap();
    }

    fn container_of(attributes: &[(&'static str, AnyValue)]) -> Option<String> {
        attributes
            .iter()
            .find(|(k, _)| *k == names::CONTAINER_ID)
            .and_then(|(_, v)| match v {
                AnyValue::String(s) => Some(s.to_string()),
                _ => None,
            })
    }

    #[test]
    fn on_v1_hosts_the_tasks_v1_cgroups_name_its_container() {
        let (root, inode) = tree();
        let proc = tempfile::tempdir().unwrap();
        let other = "cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd";
        // A v1-only host: the task is in the unified root, its container in v1 hierarchies.
        write_task(
            proc.path(),
            10,
            &format!("5:pids:/\n4:memory:/kubepods/pod{UID}/{other}\n1:name=systemd:/\n0::/\n"),
        );
        write_task(proc.path(), 11, "4:memory:/user.slice\n0::/\n");
        let attribution = attributor(root.path(), proc.path());
        let root_id = std::fs::metadata(root.path()).unwrap().ino();

        let owner = Owner::cgroup(root_id).with_task(10);
        let record = attribution.record_attributes(&owner);
        assert_eq!(container_of(&record).as_deref(), Some(other));
        assert!(record.contains(&(names::ATTRIBUTION_SOURCE, AnyValue::from("task"))));
        assert!(record.contains(&(
            net_names::CGROUP_PATH,
            AnyValue::from(format!("/kubepods/pod{UID}/{other}"))
        )));
        let metric = attribution.metric_attributes(&owner);
        assert!(metric.contains(&KeyValue::new(names::K8S_POD_UID, UID)));

        // The unified cgroup naming a container wins over the task's.
        let owner = Owner::cgroup(inode).with_task(10);
        let record = attribution.record_attributes(&owner);
        assert_eq!(container_of(&record).as_deref(), Some(ID));
        assert!(record.contains(&(names::ATTRIBUTION_SOURCE, AnyValue::from("cgroup"))));

        // A task outside containers, and one that exited, have none.
        for tid in [11, 12] {
            let record = attribution.record_attributes(&Owner::cgroup(root_id).with_task(tid));
            assert_eq!(container_of(&record), None, "{tid}");
        }
    }

    #[test]
    fn a_task_is_read_once_per_ttl() {
        let proc = tempfile::tempdir().unwrap();
        write_task(proc.path(), 10, &format!("4:memory:/docker/{ID}\n0::/\n"));
        let tasks = TaskCgroups::new(Procfs::at(proc.path()), 2);
        let found = tasks.resolve(10).unwrap();
        assert_eq!(found.container.container_id.as_deref(), Some(ID));
        // Gone from /proc: the answer of the last read stands until it expires.
        std::fs::remove_dir_all(proc.path().join("10")).unwrap();
        assert!(tasks.resolve(10).is_some());
        tasks.lock().get_mut(&10).unwrap().1 -= TASK_TTL;
        assert_eq!(tasks.resolve(10), None);
        // Bounded.
        for tid in 20..30 {
            tasks.resolve(tid);
        }
        assert_eq!(tasks.lock().len(), 2);
    }

    #[test]
    fn no_unified_hierarchy_resolves_nothing() {
        assert_eq!(CgroupCache::new(None, 10).resolve(1), None);
    }

    fn identity(path: &str) -> (ContainerIdentity, String) {
        (parse_cgroup_path(path), path.to_string())
    }

    #[test]
    fn a_pod_namespace_names_the_pod_and_a_sole_container() {
        let other = "cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd";
        let sandbox = identity(&format!("/kubepods/burstable/pod{UID}/{other}"));
        let app = identity(&format!("/kubepods/burstable/pod{UID}/{ID}"));
        let pod = namespace_owner(&[sandbox.clone(), app.clone()]).unwrap();
        assert_eq!(pod.pod_uid.as_deref(), Some(UID));
        assert_eq!(pod.container_id, None);
        assert_eq!(pod.qos, Some("burstable"));
        let alone = namespace_owner(&[app.clone(), app]).unwrap();
        assert_eq!(alone.container_id.as_deref(), Some(ID));
        let docker = identity(&format!("/system.slice/docker-{ID}.scope"));
        assert_eq!(
            namespace_owner(std::slice::from_ref(&docker))
                .unwrap()
                .runtime,
            Some("docker")
        );
        // The host's namespace, shared with a host-network container: nobody's.
        let host = identity("/system.slice/sshd.service");
        assert_eq!(namespace_owner(&[host, docker]), None);
    }

    #[test]
    fn a_process_container_comes_from_the_line_that_names_one() {
        let hybrid = format!("12:memory:/docker/{ID}\n1:name=systemd:/docker/{ID}\n0::/\n");
        assert_eq!(process_cgroup(&hybrid), Some(format!("/docker/{ID}")));
        let v2 = format!("0::/system.slice/docker-{ID}.scope\n");
        assert_eq!(
            process_cgroup(&v2),
            Some(format!("/system.slice/docker-{ID}.scope"))
        );
        assert_eq!(
            process_cgroup("0::/user.slice\n").as_deref(),
            Some("/user.slice")
        );
    }

    #[test]
    fn the_agents_own_namespace_is_nobodys() {
        let resolver = NetnsResolver::new(10);
        let own = resolver.own.unwrap() as u32;
        assert_eq!(resolver.resolve(own), None);
    }

    #[test]
    fn owner_treats_zero_as_unknown() {
        assert_eq!(Owner::cgroup(0), Owner::default());
        assert_eq!(Owner::cgroup(5).with_netns(0).netns_inum, None);
        assert_eq!(Owner::cgroup(5).with_netns(9).netns_inum, Some(9));
        assert_eq!(Owner::cgroup(5).with_task(0).tid, None);
        assert_eq!(Owner::default().with_task(7).tid, Some(7));
    }
}
