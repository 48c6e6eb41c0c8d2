//! The netdev_txqueue_timeout contract on a live kernel: load the embedded object with aya and
//! attach each entry point (tp_btf, then the classic tracepoint).
//!
//! Only attaching is checked: a transmit timeout needs a driver whose queue really stalls for
//! `watchdog_timeo`, which no test can cause on demand. Decoding is tested with built records.
//!
//! Needs root. Set HUATUO_SKIP_BPF_TESTS=1 to skip where BPF is unavailable; otherwise any
//! failure to load or attach fails.

use aya::maps::RingBuf;
use aya::programs::{BtfTracePoint, TracePoint};
use aya::Ebpf;
use huatuo_ebpf::netdev_txqueue_timeout as abi;
use huatuo_ebpf::{EVENTS_MAP, NETDEV_TXQUEUE_TIMEOUT};
use huatuo_otel_tests::require_root_and_bpf;

fn load() -> Ebpf {
    let ebpf = Ebpf::load(NETDEV_TXQUEUE_TIMEOUT).expect("kernel accepts the object");
    // The agent reads the ring buffer by this name.
    RingBuf::try_from(ebpf.map(EVENTS_MAP).expect("events")).expect("a ring buffer");
    ebpf
}

#[test]
fn tp_btf_entry_point_attaches() {
    if !require_root_and_bpf() {
        return;
    }
    let mut ebpf = load();
    let vmlinux = aya::Btf::from_sys_fs().expect("kernel BTF");
    let prog: &mut BtfTracePoint = ebpf
        .program_mut(abi::PROG_BTF)
        .expect("program txq_timeout_btf")
        .try_into()
        .expect("a tp_btf program");
    prog.load(abi::TP_BTF_NAME, &vmlinux)
        .expect("verifier accepts the tp_btf program");
    prog.attach().expect("attach tp_btf/net_dev_xmit_timeout");
}

#[test]
fn tracepoint_entry_point_attaches() {
    if !require_root_and_bpf() {
        return;
    }
    let mut ebpf = load();
    let prog: &mut TracePoint = ebpf
        .program_mut(abi::PROG_TRACEPOINT)
        .expect("program txq_timeout_tp")
        .try_into()
        .expect("a tracepoint program");
    prog.load()
        .expect("verifier accepts the tracepoint program");
    prog.attach(abi::TRACEPOINT_CATEGORY, abi::TRACEPOINT_NAME)
        .expect("attach tracepoint net/net_dev_xmit_timeout");
}
