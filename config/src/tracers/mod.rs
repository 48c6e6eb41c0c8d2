//! One section per tracer, `[tracers.NAME]`, each in its own file.

mod cpuidle;
mod cpusys;
mod dload;
mod dropwatch;
mod hungtask;
mod iolatency;
mod iotracer;
mod memburst;
mod memreclaim;
mod netdev;
mod netdev_txqueue_timeout;
mod netrecvlat;
mod oom;
mod ras;
mod runqlat;
mod sched_tick;
mod softirq;
mod softlockup;
mod tcp_retransmit;
mod waitrate;

pub use cpuidle::*;
pub use cpusys::*;
pub use dload::*;
pub use dropwatch::*;
pub use hungtask::*;
pub use iolatency::*;
pub use iotracer::*;
pub use memburst::*;
pub use memreclaim::*;
pub use netdev::*;
pub use netdev_txqueue_timeout::*;
pub use netrecvlat::*;
pub use oom::*;
pub use ras::*;
pub use runqlat::*;
pub use sched_tick::*;
pub use softirq::*;
pub use softlockup::*;
pub use tcp_retransmit::*;
pub use waitrate::*;

use serde::{Deserialize, Serialize};
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct TracersConfig {
    pub dropwatch: DropwatchConfig,
    pub tcp_retransmit: TcpRetransmitConfig,
    pub oom: OomConfig,
    pub hungtask: HungtaskConfig,
    pub netdev_txqueue_timeout: NetdevTxqueueTimeoutConfig,
    pub netrecvlat: NetrecvlatConfig,
    pub memburst: MemburstConfig,
    pub dload: DloadConfig,
    pub cpusys: CpusysConfig,
    pub cpuidle: CpuidleConfig,
    pub iotracer: IotracerConfig,
    pub sched_tick: SchedTickConfig,
    pub ras: RasConfig,
    pub softlockup: SoftlockupConfig,
    pub netdev_events: NetdevConfig,
    pub softirq: SoftirqConfig,
    pub memreclaim: MemreclaimConfig,
    pub runqlat: RunqlatConfig,
    pub iolatency: IolatencyConfig,
    pub waitrate: WaitrateConfig,
}

/// What the supervisor reads from every tracer's section, whatever else the section holds.
pub trait TracerSection {
    fn enabled(&self) -> bool;
    /// Wait between a failure and the next start.
    fn restart_backoff(&self) -> Duration;
}

// A macro rather than a shared struct: `#[serde(flatten)]` would lose `deny_unknown_fields`.
macro_rules! tracer_section {
    ($section:ty) => {
        impl $crate::TracerSection for $section {
            fn enabled(&self) -> bool {
                self.enabled
            }

            fn restart_backoff(&self) -> std::time::Duration {
                std::time::Duration::from_secs(self.restart_backoff_secs)
            }
        }
    };
}
use tracer_section;

/// What the autotracing runner reads from an autotracing tracer's section.
pub trait AutotracerSection: TracerSection {
    /// Period of the cheap sampling that looks for anomalies.
    fn interval(&self) -> Duration;
    /// After a capture, triggers for the same target are only counted for this long.
    fn cooldown(&self) -> Duration;
}

macro_rules! autotracer_section {
    ($section:ty) => {
        $crate::tracers::tracer_section!($section);

        impl $crate::AutotracerSection for $section {
            fn interval(&self) -> std::time::Duration {
                std::time::Duration::from_secs(self.interval_secs)
            }

            fn cooldown(&self) -> std::time::Duration {
                std::time::Duration::from_secs(self.cooldown_secs)
            }
        }
    };
}
use autotracer_section;

/// Size of a kernel-to-agent ring buffer. BPF ring buffers are a power-of-two number of pages,
/// so anything else is rejected when the configuration is read, naming the key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "u32", into = "u32")]
pub struct RingBufferKib(u32);

impl RingBufferKib {
    pub fn bytes(self) -> u32 {
        self.0 * 1024
    }
}

impl TryFrom<u32> for RingBufferKib {
    type Error = String;

    fn try_from(kib: u32) -> Result<Self, String> {
        if kib < 4 || !kib.is_power_of_two() {
            return Err(format!("{kib} KiB: must be a power of two and at least 4"));
        }
        Ok(Self(kib))
    }
}

impl From<RingBufferKib> for u32 {
    fn from(size: RingBufferKib) -> u32 {
        size.0
    }
}
