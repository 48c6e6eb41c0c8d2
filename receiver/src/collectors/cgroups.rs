//! The containers of the host, as cgroups, for the per-container collectors.
//!
//! A container is a cgroup whose path the attribution parser recognises as a container
//! ([`crate::container::parse_cgroup_path`] finds a container id); pod-level and system cgroups
//! are not. Each controller is read from one hierarchy: the unified (v2) one when the controller is
//! enabled there, else the controller's v1 hierarchy. This covers pure v2 hosts
//! (`/sys/fs/cgroup`), hybrid ones (v1 controllers under `/sys/fs/cgroup/<controller>`, v2 under
//! `/sys/fs/cgroup/unified`) and pure v1 ones, all under the sysfs root (`agent.sysfs_prefix`), so
//! fixture trees work.

use crate::attribution::{Attributor, Owner};
use crate::container::container_dirs;
use crate::kernel::Roots;
use crate::telemetry::Telemetry;
use opentelemetry::KeyValue;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

/// Bound on directories visited per hierarchy and cycle.
const MAX_WALK: usize = 100_000;

/// Cgroup version of the hierarchy a controller is read from: file names and formats differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    V1,
    V2,
}

/// The hierarchy a controller's files are read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hierarchy {
    pub root: PathBuf,
    pub version: Version,
}

/// One container cgroup in a hierarchy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerCgroup {
    /// Relative to the hierarchy's mount, as `/proc/<pid>/cgroup` shows it.
    pub path: String,
    pub dir: PathBuf,
}

impl ContainerCgroup {
    /// `file` of this cgroup; `None` when absent (a controller file the kernel lacks, or a
    /// container removed since the walk).
    pub fn read(&self, file: &str) -> Option<String> {
        std::fs::read_to_string(self.dir.join(file)).ok()
    }
}

impl Hierarchy {
    /// The hierarchy a controller is read from, under `roots.sysfs`: the unified one when it has
    /// the controller named `v2_name` there (`cpu`, `memory`, `io`), else the v1 hierarchy named
    /// `v1_name` (`cpu`, `cpuacct`, `memory`, `blkio`; a symlink to a co-mounted `cpu,cpuacct`
    /// works).
    pub fn of(roots: &Roots, v2_name: &str, v1_name: &str) -> Option<Self> {
        let base = roots.sysfs.join("fs/cgroup");
        let unified = [base.clone(), base.join("unified")]
            .into_iter()
            .find(|dir| dir.join("cgroup.controllers").is_file());
        if let Some(unified) = &unified {
            let controllers =
                std::fs::read_to_string(unified.join("cgroup.controllers")).unwrap_or_default();
            if controllers.split_whitespace().any(|c| c == v2_name) {
                return Some(Self {
                    root: unified.clone(),
                    version: Version::V2,
                });
            }
        }
        let v1 = base.join(v1_name);
        v1.join("cgroup.procs").is_file().then_some(Self {
            root: v1,
            version: Version::V1,
        })
    }

    /// Every container cgroup, outermost only: a container's own sub-cgroups (podman's
    /// `libpod-<id>.scope/container`) are already counted in it, the kernel's files being
    /// hierarchical.
    pub fn containers(&self) -> Vec<ContainerCgroup> {
        let (found, truncated) = container_dirs(&self.root, MAX_WALK);
        if truncated {
            tracing::warn!(root = %self.root.display(), "more than {MAX_WALK} cgroups: the rest are not collected");
        }
        let mut found: Vec<_> = found
            .into_iter()
            .map(|c| ContainerCgroup {
                path: c.path,
                dir: c.dir,
            })
            .collect();
        found.sort_by(|a, b| a.path.cmp(&b.path));
        found
    }
}

/// `key value` lines (cpu.stat, memory.stat, memory.events, cpuacct.stat) as pairs; lines of
/// another shape are skipped (a kernel may add some).
pub fn flat_keyed(text: &str) -> impl Iterator<Item = (&str, u64)> {
    text.lines().filter_map(|line| {
        let (key, value) = line.split_once(' ')?;
        Some((key, value.trim().parse().ok()?))
    })
}

/// The container and pod attributes of a container cgroup's series: those of the agent's
/// [`Attributor`] (with the kubelet's names when enabled) once bound to the agent's telemetry,
/// else those of an attributor without the kubelet (tests, benchmarks).
#[derive(Default)]
pub struct ContainerAttributes {
    telemetry: OnceLock<Arc<Telemetry>>,
    standalone: OnceLock<Attributor>,
}

impl ContainerAttributes {
    pub fn bind(&self, telemetry: &Arc<Telemetry>) {
        let _ = self.telemetry.set(telemetry.clone());
    }

    pub fn of(&self, cgroup: &ContainerCgroup) -> Vec<KeyValue> {
        let owner = Owner::default().with_cgroup_path(Some(cgroup.path.clone()));
        match self.telemetry.get() {
            Some(telemetry) => telemetry.attribution.metric_attributes(&owner),
            None => self
                .standalone
                .get_or_init(|| Attributor::new(&Default::default(), None))
                .metric_attributes(&owner),
        }
    }
}

/// `attributes` followed by `more`.
pub fn with(attributes: &[KeyValue], more: impl IntoIterator<Item = KeyValue>) -> Vec<KeyValue> {
    attributes.iter().cloned().chain(more).collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::framework::collector_test_support::fixture;
    use crate::framework::Points;
    use huatuo_semconv::container as names;

    /// The container id of the fixtures' containers: the SHA-256 of a word (see their READMEs).
    pub fn id(word: &str) -> String {
        match word {
            "app" => "a172cedcae47474b615c54d510a5d84a8dea3032e958587430b413538be3f333",
            "pause" => "6210c0bf05396716df932f0729df69de0533933e5ad9871fd07b61811c4c28df",
            "podman" => "2f259bab93aaaaa2542ba43ef33eb990d0999ee1b9924b557b7be53c0b7a1bb9",
            "huatuo-fixture-1" => {
                "5bde1488b622b60202e3243d501b62c8655f981f81f30e32615e9502b4a3cecd"
            }
            "huatuo-fixture-2" => {
                "5891265e630cd62b6c134871b9578f9c643749e36c72c23040eddf593bb6a639"
            }
            _ => panic!("no fixture container {word}"),
        }
        .to_string()
    }

    /// The value of the point of `metric` of container `id` with the other attributes `filter`.
    pub fn value(points: &Points, metric: &str, id: &str, filter: &[(&str, &str)]) -> Option<f64> {
        let mut all = vec![(names::CONTAINER_ID, id)];
        all.extend_from_slice(filter);
        points.value(metric, &all)
    }

    #[test]
    fn flat_keyed_skips_other_shapes() {
        let pairs: Vec<_> = flat_keyed("a 1\nb x\nc 3\n\nd\n").collect();
        assert_eq!(pairs, [("a", 1), ("c", 3)]);
    }

    #[test]
    fn v1_hybrid_layout_reads_v1_controllers() {
        let roots = fixture("cgroup-v1-hybrid");
        let memory = Hierarchy::of(&roots, "memory", "memory").unwrap();
        assert_eq!(memory.version, Version::V1);
        assert!(memory.root.ends_with("fs/cgroup/memory"));
        let paths: Vec<_> = memory.containers().into_iter().map(|c| c.path).collect();
        assert_eq!(
            paths,
            [
                format!("/docker/{}", id("huatuo-fixture-1")),
                format!(
                    "/kubepods/burstable/pod0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b/{}",
                    id("huatuo-fixture-2")
                ),
            ]
        );
        assert_eq!(
            Hierarchy::of(&roots, "io", "blkio").unwrap().version,
            Version::V1
        );
    }

    #[test]
    fn v2_layout_takes_outermost_container_cgroups_only() {
        let roots = fixture("cgroup-v2");
        let cpu = Hierarchy::of(&roots, "cpu", "cpu").unwrap();
        assert_eq!(cpu.version, Version::V2);
        assert_eq!(cpu.root, roots.sysfs.join("fs/cgroup"));
        let paths: Vec<_> = cpu.containers().into_iter().map(|c| c.path).collect();
        // The pod's cgroup and system services are not containers; podman's inner
        // `container` cgroup is inside one.
        assert_eq!(paths.len(), 3, "{paths:?}");
        assert!(paths.iter().all(|p| !p.ends_with("/container")));
    }

    #[test]
    fn no_cgroup_hierarchy_no_containers() {
        assert_eq!(
            Hierarchy::of(&fixture("host-6.18"), "memory", "memory"),
            None
        );
    }
}
