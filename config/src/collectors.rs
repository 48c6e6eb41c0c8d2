//! `[collectors]`: passive metric collection from procfs (the seeds' `metrics` mode). One section
//! per collector, `[collectors.NAME]`; collectors whose sources have many keys (vmstat, netstat)
//! or devices (disks, interfaces) take include/exclude regular expressions.

use serde::{Deserialize, Serialize};
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CollectorsConfig {
    /// Seconds between two reads of each source; 0 = `exporters.metrics_interval_secs`, so each
    /// export carries a fresh reading.
    pub interval_secs: u64,
    /// Wait before restarting a collector whose read failed.
    pub restart_backoff_secs: u64,
    pub cpu: CollectorToggle,
    pub loadavg: CollectorToggle,
    pub memory: CollectorToggle,
    pub vmstat: VmstatCollectorConfig,
    pub buddyinfo: CollectorToggle,
    pub pressure: CollectorToggle,
    pub diskio: DiskioCollectorConfig,
    pub netdev: NetdevCollectorConfig,
    pub netstat: NetstatCollectorConfig,
    pub sockstat: CollectorToggle,
    pub arp: CollectorToggle,
    pub qdisc: QdiscCollectorConfig,
    pub container_cpu: CollectorToggle,
    pub container_memory: ContainerMemoryCollectorConfig,
    pub container_io: CollectorToggle,
    pub container_netdev: ContainerNetdevCollectorConfig,
}

impl Default for CollectorsConfig {
    fn default() -> Self {
        Self {
            interval_secs: 0,
            restart_backoff_secs: 30,
            cpu: CollectorToggle::default(),
            loadavg: CollectorToggle::default(),
            memory: CollectorToggle::default(),
            vmstat: VmstatCollectorConfig::default(),
            buddyinfo: CollectorToggle::default(),
            pressure: CollectorToggle::default(),
            diskio: DiskioCollectorConfig::default(),
            netdev: NetdevCollectorConfig::default(),
            netstat: NetstatCollectorConfig::default(),
            sockstat: CollectorToggle::default(),
            arp: CollectorToggle::default(),
            qdisc: QdiscCollectorConfig::default(),
            container_cpu: CollectorToggle::default(),
            container_memory: ContainerMemoryCollectorConfig::default(),
            container_io: CollectorToggle::default(),
            container_netdev: ContainerNetdevCollectorConfig::default(),
        }
    }
}

impl CollectorsConfig {
    /// The collection period, given the export period it defaults to.
    pub fn interval(&self, metrics_interval_secs: u64) -> Duration {
        Duration::from_secs(match self.interval_secs {
            0 => metrics_interval_secs,
            secs => secs,
        })
    }

    pub fn restart_backoff(&self) -> Duration {
        Duration::from_secs(self.restart_backoff_secs)
    }
}

/// A collector without options beyond being on or off.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CollectorToggle {
    pub enabled: bool,
}

impl Default for CollectorToggle {
    fn default() -> Self {
        Self { enabled: true }
    }
}

/// A regular expression from the configuration, compiled when the configuration is read so a bad
/// one is an error naming its key.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Pattern(regex::Regex);

impl Pattern {
    pub fn is_match(&self, text: &str) -> bool {
        self.0.is_match(text)
    }
}

impl TryFrom<String> for Pattern {
    type Error = String;

    fn try_from(text: String) -> Result<Self, String> {
        regex::Regex::new(&text)
            .map(Self)
            .map_err(|e| format!("invalid regular expression {text:?}: {e}"))
    }
}

impl From<Pattern> for String {
    fn from(pattern: Pattern) -> String {
        pattern.0.as_str().to_string()
    }
}

impl PartialEq for Pattern {
    fn eq(&self, other: &Self) -> bool {
        self.0.as_str() == other.0.as_str()
    }
}

pub(crate) fn patterns(texts: &[&str]) -> Vec<Pattern> {
    texts
        .iter()
        .map(|t| Pattern::try_from(t.to_string()).expect("built-in pattern"))
        .collect()
}

/// Declares a collector section with `enabled`, `include` and `exclude`, and its defaults. A
/// macro rather than one generic struct: each section keeps its own defaults when a user sets only
/// some of its keys.
macro_rules! filtered_collector {
    ($(#[doc = $doc:literal])+ $section:ident, include: [$($include:literal),*], exclude: [$($exclude:literal),*]) => {
        $(#[doc = $doc])+
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
        #[serde(deny_unknown_fields, default)]
        pub struct $section {
            pub enabled: bool,
            /// Regular expressions (unanchored); when not empty, only names matching one are kept.
            pub include: Vec<Pattern>,
            /// Regular expressions; names matching one are dropped, even if included.
            pub exclude: Vec<Pattern>,
        }

        impl Default for $section {
            fn default() -> Self {
                Self {
                    enabled: true,
                    include: patterns(&[$($include),*]),
                    exclude: patterns(&[$($exclude),*]),
                }
            }
        }

        impl $section {
            /// Whether the include and exclude lists keep `name`.
            pub fn allows(&self, name: &str) -> bool {
                (self.include.is_empty() || self.include.iter().any(|p| p.is_match(name)))
                    && !self.exclude.iter().any(|p| p.is_match(name))
            }
        }
    };
}

filtered_collector!(
    /// `/proc/vmstat`, filtered by key (`pgfault`, `nr_free_pages`, ...).
    VmstatCollectorConfig,
    include: [],
    exclude: []
);

filtered_collector!(
    /// `/proc/diskstats`, filtered by device name. RAM disks, loop devices, floppies and optical
    /// drives are left out by default.
    DiskioCollectorConfig,
    include: [],
    exclude: ["^(ram|loop|fd|sr)[0-9]+$"]
);

filtered_collector!(
    /// `/proc/net/dev`, filtered by interface name. Container-side veth and CNI interfaces are left
    /// out by default: one per pod would make the series count follow the pod count.
    NetdevCollectorConfig,
    include: [],
    exclude: ["^(veth|cali|lxc|flannel\\.|cni)"]
);

filtered_collector!(
    /// `/proc/net/snmp` and `/proc/net/netstat`, filtered by `Protocol_Field` (`TcpExt_ListenDrops`,
    /// `Tcp_RetransSegs`). By default the Ip, Tcp, TcpExt and Udp protocols.
    NetstatCollectorConfig,
    include: ["^(Ip|Tcp|TcpExt|Udp)_"],
    exclude: []
);

filtered_collector!(
    /// Root qdisc statistics from rtnetlink, filtered by interface name. Container-side veth and
    /// CNI interfaces are left out by default, as for netdev.
    QdiscCollectorConfig,
    include: [],
    exclude: ["^(veth|cali|lxc|flannel\\.|cni)"]
);

filtered_collector!(
    /// Each container's `memory.stat`, filtered by key. By default the keys HuaTuo exports for
    /// containers (sizes by kind and LRU list, faults, reclaim scans and steals, refaults), from
    /// both cgroup versions; v1's hierarchical `total_*` duplicates are left out.
    ContainerMemoryCollectorConfig,
    include: ["^(anon|file|kernel|kernel_stack|pagetables|sock|shmem|file_mapped|file_dirty|file_writeback|swapcached|anon_thp|slab|slab_reclaimable|slab_unreclaimable|cache|rss|rss_huge|mapped_file|dirty|writeback|swap)$", "^(in)?active_(anon|file)$", "^unevictable$", "^(pgfault|pgmajfault|pgscan|pgsteal|pgrefill|pgactivate|pgdeactivate|pgpgin|pgpgout)$", "^workingset_refault"],
    exclude: ["^total_"]
);

filtered_collector!(
    /// Interfaces in containers' network namespaces, filtered by name. Loopback is left out by
    /// default.
    ContainerNetdevCollectorConfig,
    include: [],
    exclude: ["^lo$"]
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn include_then_exclude() {
        let config = DiskioCollectorConfig {
            include: patterns(&["^sd", "^nvme"]),
            ..Default::default()
        };
        assert!(config.allows("sda"));
        assert!(config.allows("nvme0n1"));
        assert!(!config.allows("vda"));
        let default = DiskioCollectorConfig::default();
        assert!(default.allows("vda"));
        assert!(!default.allows("loop0"));
        assert!(!default.allows("ram15"));
        assert!(NetstatCollectorConfig::default().allows("TcpExt_ListenDrops"));
        assert!(!NetstatCollectorConfig::default().allows("Icmp_InMsgs"));
        assert!(!NetdevCollectorConfig::default().allows("veth1234"));
        assert!(NetdevCollectorConfig::default().allows("eth0"));
        let memory = ContainerMemoryCollectorConfig::default();
        for key in [
            "anon",
            "rss",
            "active_file",
            "pgmajfault",
            "workingset_refault_file",
        ] {
            assert!(memory.allows(key), "{key}");
        }
        for key in ["total_rss", "thp_fault_alloc", "hierarchical_memory_limit"] {
            assert!(!memory.allows(key), "{key}");
        }
        assert!(!ContainerNetdevCollectorConfig::default().allows("lo"));
        assert!(!QdiscCollectorConfig::default().allows("veth0"));
    }
}
