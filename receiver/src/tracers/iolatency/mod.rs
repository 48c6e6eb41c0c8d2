//! `iolatency`: block request latency per disk and container, counted in the kernel as histograms of
//! queue-to-completion (q2c) and issue-to-completion (d2c) time (`block:block_rq_insert`,
//! `block:block_rq_issue`, `block:block_rq_complete`) and folded into
//! `huatuo.disk.request.latency` every metric interval.
//!
//! The kernel keys its histograms by disk and the cgroup of the task that started the request;
//! each key's cgroup goes through attribution (container and pod identity, nothing for a cgroup
//! outside containers), so the host's own requests on a disk, whatever their cgroup, add up in
//! one container-less series. A cgroup is named when its key is first folded: one removed before
//! that (within a metric interval of its first request) counts as the host's.
//!
//! Queue freezes (HuaTuo's `blkdisk_freeze`) are not counted: no tracepoint marks them, and
//! `blk_mq_freeze_queue` is reachable only by kprobe; `probe` says so. Cache flushes need no
//! BPF: the diskio collector reads them from `/proc/diskstats` (`huatuo.disk.flushes`).

use crate::attribution::Owner;
use crate::framework::{
    metrics_tracer, take_map, KernelHistogram, MetricsTracer, RunError, TracepointHook,
    TracerContext,
};
use crate::kernel::KernelEnv;
use crate::telemetry::Telemetry;
use anyhow::Context as _;
use aya::maps::PerCpuHashMap;
use aya::Ebpf;
use huatuo_config::{Config, IolatencyConfig};
use huatuo_ebpf::hist::HIST_SLOTS;
use huatuo_ebpf::iolatency as abi;
use huatuo_semconv::block as names;
use opentelemetry::KeyValue;
use std::path::Path;
use std::sync::{Arc, OnceLock};

pub const NAME: &str = "iolatency";

const HOOKS: &[TracepointHook] = &[
    TracepointHook::named(NAME, abi::TRACEPOINT_CATEGORY, abi::HOOKS[0]),
    TracepointHook::named(NAME, abi::TRACEPOINT_CATEGORY, abi::HOOKS[1]),
    TracepointHook::named(NAME, abi::TRACEPOINT_CATEGORY, abi::HOOKS[2]),
];

/// 2^24 µs ≈ 17 s: requests slower than that go to the overflow bucket.
const SLOTS: usize = 25;
const _: () = assert!(SLOTS <= HIST_SLOTS);

const DESCRIPTION: &str = "Block request latency, by disk, container and stage (q2c: queued to completed, d2c: issued to the driver to completed)";

/// What `probe` adds: the HuaTuo disk metric this tracer cannot offer, and why.
const FREEZE_UNSUPPORTED: &str = "queue freezes not counted: no tracepoint marks a queue freeze \
     (blk_mq_freeze_queue is reachable only by kprobe); flushes: diskio collector (Linux 5.5+)";

pub struct Iolatency {
    q2c: Arc<KernelHistogram<abi::IolatKey>>,
    d2c: Arc<KernelHistogram<abi::IolatKey>>,
    /// Where attribution lives, known once started; the histograms' attribute functions read it.
    telemetry: Arc<OnceLock<Arc<Telemetry>>>,
}

impl Default for Iolatency {
    fn default() -> Self {
        let telemetry = Arc::new(OnceLock::<Arc<Telemetry>>::new());
        let histogram = |stage: &'static str| {
            let telemetry = telemetry.clone();
            KernelHistogram::new(
                names::DISK_REQUEST_LATENCY,
                DESCRIPTION,
                "us",
                SLOTS,
                move |key: abi::IolatKey| {
                    let mut attributes = disk_attributes(key.dev, stage);
                    if let Some(telemetry) = telemetry.get() {
                        attributes.extend(
                            telemetry
                                .attribution
                                .metric_attributes(&Owner::cgroup(key.cgroup_id)),
                        );
                    }
                    attributes
                },
            )
        };
        Self {
            q2c: histogram("q2c"),
            d2c: histogram("d2c"),
            telemetry,
        }
    }
}

fn disk_attributes(dev: u32, stage: &'static str) -> Vec<KeyValue> {
    vec![
        KeyValue::new(
            huatuo_semconv::system::SYSTEM_DEVICE,
            disk_name(Path::new("/sys"), dev),
        ),
        KeyValue::new(names::DISK_REQUEST_STAGE, stage),
    ]
}

/// The kernel's name for disk `dev` (`/sys/dev/block/M:m` links to `.../block/<name>`), or
/// `M:m` when the disk is already gone.
fn disk_name(sys: &Path, dev: u32) -> String {
    let (major, minor) = abi::dev_numbers(dev);
    let numbers = format!("{major}:{minor}");
    std::fs::read_link(sys.join("dev/block").join(&numbers))
        .ok()
        .and_then(|target| Some(target.file_name()?.to_string_lossy().into_owned()))
        .unwrap_or(numbers)
}

metrics_tracer!(Iolatency);

impl MetricsTracer for Iolatency {
    const NAME: &'static str = NAME;
    const HOOKS: &'static [TracepointHook] = HOOKS;
    type Section = IolatencyConfig;

    fn section(config: &Config) -> &IolatencyConfig {
        &config.tracers.iolatency
    }

    fn probe_detail(&self, _kernel: &KernelEnv) -> String {
        FREEZE_UNSUPPORTED.to_owned()
    }

    fn register_metrics(&self, telemetry: &crate::telemetry::Telemetry) {
        // One instrument: both histograms share the name and differ by the stage attribute.
        self.q2c.register(&telemetry.meter);
        self.d2c.register(&telemetry.meter);
    }

    fn load(&self, _ctx: &TracerContext) -> Result<Ebpf, RunError> {
        Ebpf::load(huatuo_ebpf::IOLATENCY)
            .context("loading the iolatency BPF object")
            .map_err(RunError::Failed)
    }

    fn start(&self, ebpf: &mut Ebpf, ctx: &TracerContext) -> anyhow::Result<()> {
        self.telemetry.get_or_init(|| ctx.telemetry.clone());
        let every = KernelHistogram::fold_interval(&ctx.config);
        for (histogram, map) in [(&self.q2c, abi::Q2C_MAP), (&self.d2c, abi::D2C_MAP)] {
            let map = PerCpuHashMap::try_from(take_map(ebpf, map)?)?;
            histogram.attach_keyed(map, every, ctx.cancel.clone());
        }
        Ok(())
    }

    fn stop(&self) {
        self.q2c.detach();
        self.d2c.detach();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disks_are_named_from_sys_dev_block() {
        let sys = tempfile::tempdir().unwrap();
        let links = sys.path().join("dev/block");
        std::fs::create_dir_all(&links).unwrap();
        std::os::unix::fs::symlink("../../devices/virtual/block/loop3", links.join("7:3")).unwrap();
        assert_eq!(disk_name(sys.path(), (7 << 20) | 3), "loop3");
        assert_eq!(disk_name(sys.path(), (8 << 20) | 16), "8:16");
    }
}
