//! `netdev_txqueue_timeout`: every transmit queue the netdev watchdog declares stuck
//! (`net:net_dev_xmit_timeout`), as one log event with the interface, its driver and the queue,
//! and a counter by interface.
//!
//! No rate limit and no kernel-side counter: the watchdog reports a device at most once per
//! `watchdog_timeo` and then resets it, so the ring buffer cannot fill and counting the records
//! here is exact.

mod decode;

use crate::framework::{
    event_tracer, EventTracer, RunError, TracepointHook, TracerContext, UserCounter,
};
use crate::kernel::BootClock;
use crate::telemetry::{Event, Telemetry};
use anyhow::Context as _;
use aya::Ebpf;
use huatuo_config::{Config, NetdevTxqueueTimeoutConfig};
use huatuo_ebpf::netdev_txqueue_timeout::{self as abi, TxqTimeoutEvent};
use huatuo_semconv::net as names;
use opentelemetry::KeyValue;

pub const NAME: &str = "netdev_txqueue_timeout";

const HOOK: TracepointHook = TracepointHook {
    tracer: NAME,
    prog_btf: abi::PROG_BTF,
    tp_btf_name: abi::TP_BTF_NAME,
    prog_tracepoint: abi::PROG_TRACEPOINT,
    category: abi::TRACEPOINT_CATEGORY,
    name: abi::TRACEPOINT_NAME,
};

pub struct NetdevTxqueueTimeout {
    timeouts: UserCounter,
}

impl Default for NetdevTxqueueTimeout {
    fn default() -> Self {
        Self {
            timeouts: UserCounter::new(
                names::NETDEV_TXQUEUE_TIMEOUTS,
                "Transmit queue timeouts, by interface",
                "{timeout}",
            ),
        }
    }
}

event_tracer!(NetdevTxqueueTimeout);

impl EventTracer for NetdevTxqueueTimeout {
    const NAME: &'static str = NAME;
    const HOOKS: &'static [TracepointHook] = &[HOOK];
    type Section = NetdevTxqueueTimeoutConfig;
    type Record = TxqTimeoutEvent;

    fn section(config: &Config) -> &NetdevTxqueueTimeoutConfig {
        &config.tracers.netdev_txqueue_timeout
    }

    fn register_metrics(&self, telemetry: &Telemetry) {
        self.timeouts.get(&telemetry.meter);
    }

    fn load(&self, _ctx: &TracerContext) -> Result<Ebpf, RunError> {
        Ebpf::load(huatuo_ebpf::NETDEV_TXQUEUE_TIMEOUT)
            .context("loading the netdev_txqueue_timeout BPF object")
            .map_err(RunError::Failed)
    }

    fn start<'a>(
        &'a self,
        _ebpf: &mut Ebpf,
        ctx: &'a TracerContext,
    ) -> anyhow::Result<impl FnMut(TxqTimeoutEvent) -> Event + Send + 'a> {
        let timeouts = self.timeouts.get(&ctx.telemetry.meter);
        let clock = BootClock::now();
        Ok(move |raw: TxqTimeoutEvent| {
            let interface = KeyValue::new(names::NETWORK_INTERFACE_NAME, raw.dev().into_owned());
            timeouts.add(1, &[interface]);
            decode::to_event(&raw, clock)
        })
    }
}
