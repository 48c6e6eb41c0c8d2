//! Per-container network interface counters: `/proc/<pid>/net/dev` of one task of each
//! container, which shows the interfaces of the task's network namespace. Containers sharing a
//! namespace (a pod's) are read once, with the attributes they have in common (the pod, not one
//! of its containers); containers in the host's namespace (host networking) are skipped, the host
//! collector covers it. Interfaces are filtered by `collectors.container_netdev`.

use super::cgroups::{with, ContainerAttributes, Hierarchy};
use super::netdev::parse_net_dev;
use crate::framework::{Collector, Points};
use crate::kernel::Roots;
use crate::telemetry::Telemetry;
use huatuo_config::Config;
use huatuo_semconv::{container as names, net as net_names, system as system_names};
use opentelemetry::KeyValue;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

/// Bound on sub-cgroups searched for a task of a container.
const MAX_SEARCH: usize = 1_000;

#[derive(Default)]
pub struct ContainerNetdev {
    attributes: ContainerAttributes,
}

impl Collector for ContainerNetdev {
    type State = ();
    const NAME: &'static str = "container_netdev";
    const METRICS: &'static [&'static str] = &[
        names::CONTAINER_NETWORK_IO,
        names::CONTAINER_NETWORK_PACKET_COUNT,
        names::CONTAINER_NETWORK_PACKET_DROPPED,
        names::CONTAINER_NETWORK_ERRORS,
    ];

    fn enabled(config: &Config) -> bool {
        config.collectors.container_netdev.enabled
    }

    fn required(&self) -> &'static [(&'static str, &'static str)] {
        &[]
    }

    fn bind(&self, telemetry: &Arc<Telemetry>) {
        self.attributes.bind(telemetry);
    }

    fn collect(
        &self,
        config: &Config,
        roots: &Roots,
        _: &mut (),
        out: &mut Points,
    ) -> anyhow::Result<()> {
        // Every runtime puts its containers in the memory controller's hierarchy.
        let Some(hierarchy) = Hierarchy::of(roots, "memory", "memory") else {
            return Ok(());
        };
        // The host's namespace is init's; where init's link is unreadable (a restricted
        // container), the agent's own, which is the host's where the agent runs as it should.
        let host = netns_inode(roots, "1").or_else(|| netns_inode(roots, "self"));
        // Namespace inode -> a task in it, and the attributes of the containers sharing it.
        let mut namespaces: BTreeMap<u64, (u32, Vec<KeyValue>)> = BTreeMap::new();
        for container in hierarchy.containers() {
            let Some(pid) = first_task(&container.dir) else {
                continue;
            };
            let Some(inode) = netns_inode(roots, &pid.to_string()) else {
                continue;
            };
            if Some(inode) == host {
                continue;
            }
            let attributes = self.attributes.of(&container);
            namespaces
                .entry(inode)
                .and_modify(|(_, shared)| shared.retain(|kv| attributes.contains(kv)))
                .or_insert((pid, attributes));
        }
        for (pid, attributes) in namespaces.values() {
            let file = format!("{pid}/net/dev");
            // The task may have exited since the walk.
            let Some(text) = roots.read_proc_optional(&file)? else {
                continue;
            };
            for (name, v) in parse_net_dev(&text, &file)? {
                if !config.collectors.container_netdev.allows(name) {
                    continue;
                }
                for (direction, c) in [("receive", &v[..8]), ("transmit", &v[8..])] {
                    let attrs = || {
                        with(
                            attributes,
                            [
                                KeyValue::new(net_names::NETWORK_INTERFACE_NAME, name.to_string()),
                                KeyValue::new(system_names::NETWORK_IO_DIRECTION, direction),
                            ],
                        )
                    };
                    out.add(names::CONTAINER_NETWORK_IO, c[0], attrs());
                    out.add(names::CONTAINER_NETWORK_PACKET_COUNT, c[1], attrs());
                    out.add(names::CONTAINER_NETWORK_ERRORS, c[2], attrs());
                    out.add(names::CONTAINER_NETWORK_PACKET_DROPPED, c[3], attrs());
                }
            }
        }
        Ok(())
    }
}

/// The inode of task `pid`'s network namespace, from the `net:[inode]` its `ns/net` link reads.
fn netns_inode(roots: &Roots, pid: &str) -> Option<u64> {
    let link = std::fs::read_link(roots.procfs.join(pid).join("ns/net")).ok()?;
    link.to_str()?
        .strip_prefix("net:[")?
        .strip_suffix(']')?
        .parse()
        .ok()
}

/// A task of the cgroup at `dir` or of one of its sub-cgroups (v2 allows tasks only in leaves,
/// and runtimes may nest the container's tasks one level down).
fn first_task(dir: &Path) -> Option<u32> {
    let mut stack = vec![dir.to_path_buf()];
    let mut searched = 0;
    while let Some(dir) = stack.pop() {
        searched += 1;
        if searched > MAX_SEARCH {
            return None;
        }
        let procs = std::fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
        if let Some(pid) = procs.lines().find_map(|l| l.trim().parse().ok()) {
            return Some(pid);
        }
        stack.extend(crate::procfs::subdirectories(&dir));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collectors::cgroups::tests::{id, value};
    use crate::framework::collector_test_support::collect_fixture;

    #[test]
    fn v2_fixture_one_series_per_namespace() {
        let points = collect_fixture(&ContainerNetdev::default(), "cgroup-v2");
        let eth0 = |direction| {
            [
                (net_names::NETWORK_INTERFACE_NAME, "eth0"),
                (system_names::NETWORK_IO_DIRECTION, direction),
            ]
        };
        // The pod's two containers share a namespace: one series, with the pod and no
        // container id.
        let pod = points.value(
            names::CONTAINER_NETWORK_IO,
            &[
                (names::K8S_POD_UID, "0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b"),
                (net_names::NETWORK_INTERFACE_NAME, "eth0"),
                (system_names::NETWORK_IO_DIRECTION, "receive"),
            ],
        );
        assert_eq!(pod, Some(9000000.0));
        assert_eq!(
            value(
                &points,
                names::CONTAINER_NETWORK_IO,
                &id("app"),
                &eth0("receive")
            ),
            None
        );
        let podman = id("podman");
        let of = |metric, direction| value(&points, metric, &podman, &eth0(direction));
        assert_eq!(of(names::CONTAINER_NETWORK_IO, "transmit"), Some(6789.0));
        assert_eq!(
            of(names::CONTAINER_NETWORK_PACKET_COUNT, "receive"),
            Some(50.0)
        );
        // Two namespaces, eth0 only (lo excluded), two directions, four metrics.
        assert_eq!(points.len(), 2 * 2 * 4);
        let pod_dropped = points.value(
            names::CONTAINER_NETWORK_PACKET_DROPPED,
            &[
                (names::K8S_POD_UID, "0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b"),
                (system_names::NETWORK_IO_DIRECTION, "transmit"),
            ],
        );
        assert_eq!(pod_dropped, Some(3.0));
    }

    #[test]
    fn v1_fixture_skips_host_networking() {
        let points = collect_fixture(&ContainerNetdev::default(), "cgroup-v1-hybrid");
        let docker = id("huatuo-fixture-1");
        let rx = value(
            &points,
            names::CONTAINER_NETWORK_IO,
            &docker,
            &[
                (net_names::NETWORK_INTERFACE_NAME, "eth0"),
                (system_names::NETWORK_IO_DIRECTION, "receive"),
            ],
        );
        assert_eq!(rx, Some(1751.0));
        assert_eq!(
            points.len(),
            2 * 4,
            "the kubepods container shares the host's namespace"
        );
    }
}
