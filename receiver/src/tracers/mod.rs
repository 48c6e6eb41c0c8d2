//! Every tracer the agent knows, registered in one place.

pub mod cgroup_events;
pub mod cpuidle;
pub mod cpusys;
pub mod dload;
pub mod dropwatch;
pub mod hungtask;
pub mod iolatency;
pub mod iotracer;
pub mod memburst;
pub mod memreclaim;
pub mod net;
pub mod netdev;
pub mod netdev_txqueue_timeout;
pub mod netrecvlat;
pub mod oom;
pub mod ras;
pub mod runqlat;
pub mod sched_tick;
pub mod softirq;
pub mod softlockup;
pub mod tcp_retransmit;
#[cfg(test)]
mod test_support;
pub mod waitrate;

use crate::framework::Tracer;
use std::sync::Arc;

/// All tracers, in the order `probe` lists them. Adding a tracer is one line here.
pub fn all() -> Vec<Arc<dyn Tracer>> {
    let mut all: Vec<Arc<dyn Tracer>> = vec![
        Arc::new(dropwatch::Dropwatch::default()),
        Arc::new(oom::Oom::default()),
        Arc::new(hungtask::Hungtask::default()),
        Arc::new(tcp_retransmit::TcpRetransmit::default()),
        Arc::new(netdev_txqueue_timeout::NetdevTxqueueTimeout::default()),
        Arc::new(sched_tick::SchedTick::default()),
        Arc::new(ras::Ras::default()),
        Arc::new(netrecvlat::Netrecvlat::default()),
        Arc::new(softlockup::Softlockup::default()),
        Arc::new(netdev::Netdev::default()),
        Arc::new(softirq::Softirq::default()),
        Arc::new(memreclaim::Memreclaim::default()),
        Arc::new(memburst::Memburst::default()),
        Arc::new(dload::Dload::default()),
        Arc::new(cpusys::Cpusys::default()),
        Arc::new(cpuidle::Cpuidle::default()),
        Arc::new(iotracer::Iotracer::default()),
        Arc::new(waitrate::Waitrate::default()),
        Arc::new(runqlat::Runqlat::default()),
        Arc::new(iolatency::Iolatency::default()),
        Arc::new(cgroup_events::CgroupEvents),
    ];
    all.extend(crate::collectors::all());
    all
}
