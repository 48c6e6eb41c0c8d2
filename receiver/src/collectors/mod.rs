//! Metric collectors of the host and of each container: procfs, sysfs, cgroup and rtnetlink
//! sources read once per cycle, exported as OTel metrics (see `crate::framework::Collector`).
//! Parsers are small and hand-written: each format is a few lines
//! of whitespace-separated fields, and they must read any procfs root (`agent.procfs_prefix`).

pub mod arp;
pub mod buddyinfo;
pub mod cgroups;
pub mod container_cpu;
pub mod container_io;
pub mod container_memory;
pub mod container_netdev;
pub mod cpu;
pub mod diskio;
pub mod loadavg;
pub mod memory;
pub mod netdev;
pub mod netstat;
pub mod pressure;
pub mod qdisc;
pub mod sockstat;
pub mod vmstat;

use crate::framework::{CollectorBoard, CollectorTracer, Tracer};
use std::sync::Arc;

/// Every host collector, sharing one board for their self-metrics.
pub fn all() -> Vec<Arc<dyn Tracer>> {
    let board = CollectorBoard::default();
    vec![
        Arc::new(CollectorTracer::new(cpu::Cpu, &board)),
        Arc::new(CollectorTracer::new(loadavg::Loadavg, &board)),
        Arc::new(CollectorTracer::new(memory::Memory, &board)),
        Arc::new(CollectorTracer::new(vmstat::Vmstat, &board)),
        Arc::new(CollectorTracer::new(buddyinfo::Buddyinfo, &board)),
        Arc::new(CollectorTracer::new(pressure::Pressure, &board)),
        Arc::new(CollectorTracer::new(diskio::Diskio, &board)),
        Arc::new(CollectorTracer::new(netdev::Netdev, &board)),
        Arc::new(CollectorTracer::new(netstat::Netstat, &board)),
        Arc::new(CollectorTracer::new(sockstat::Sockstat, &board)),
        Arc::new(CollectorTracer::new(arp::Arp, &board)),
        Arc::new(CollectorTracer::new(qdisc::Qdisc, &board)),
        Arc::new(CollectorTracer::new(
            container_cpu::ContainerCpu::default(),
            &board,
        )),
        Arc::new(CollectorTracer::new(
            container_memory::ContainerMemory::default(),
            &board,
        )),
        Arc::new(CollectorTracer::new(
            container_io::ContainerIo::default(),
            &board,
        )),
        Arc::new(CollectorTracer::new(
            container_netdev::ContainerNetdev::default(),
            &board,
        )),
    ]
}

/// The error for a line that does not have the expected shape, naming the file and the line.
fn malformed(file: &str, line: &str) -> anyhow::Error {
    anyhow::anyhow!("/proc/{file}: unexpected line {:?}", line.trim())
}

/// All fields of `fields` as unsigned integers, or an error naming the file and line.
fn integers<'a>(
    fields: impl Iterator<Item = &'a str>,
    file: &str,
    line: &str,
) -> anyhow::Result<Vec<u64>> {
    fields
        .map(|f| f.parse().map_err(|_| malformed(file, line)))
        .collect()
}

/// Bytes per page, which several sources count in.
fn page_size() -> u64 {
    // SAFETY: sysconf has no preconditions.
    match unsafe { libc::sysconf(libc::_SC_PAGESIZE) } {
        size if size > 0 => size as u64,
        _ => 4096,
    }
}
