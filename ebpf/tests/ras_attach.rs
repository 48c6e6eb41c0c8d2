//! The ras contract on a live kernel: load the embedded object with aya and attach the program
//! of every RAS tracepoint this kernel has (a kernel with none fails the test: it could not
//! check anything). Real hardware errors cannot be caused on demand, so decoding is tested with
//! built records.
//!
//! Needs root. Set HUATUO_SKIP_BPF_TESTS=1 to skip where BPF is unavailable; otherwise any
//! failure to load or attach fails.

use std::path::Path;

use aya::maps::{MapData, PerCpuArray, RingBuf};
use aya::programs::TracePoint;
use aya::Ebpf;
use huatuo_ebpf::ras::{self as abi, RasCounts, Source};
use huatuo_ebpf::{EVENTS_MAP, RAS};
use huatuo_otel_tests::require_root_and_bpf;

fn tracepoint_exists(category: &str, name: &str) -> bool {
    ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"]
        .iter()
        .any(|root| {
            Path::new(root)
                .join("events")
                .join(category)
                .join(name)
                .is_dir()
        })
}

#[test]
fn every_existing_ras_tracepoint_attaches() {
    if !require_root_and_bpf() {
        return;
    }
    let mut ebpf = Ebpf::load(RAS).expect("kernel accepts the object");
    RingBuf::try_from(ebpf.map(EVENTS_MAP).expect("events")).expect("a ring buffer");
    let mut attached = Vec::new();
    for source in Source::ALL {
        let (category, name) = source.tracepoint();
        if !tracepoint_exists(category, name) {
            continue;
        }
        let prog: &mut TracePoint = ebpf
            .program_mut(source.program())
            .unwrap_or_else(|| panic!("program {}", source.program()))
            .try_into()
            .expect("a tracepoint program");
        prog.load()
            .unwrap_or_else(|e| panic!("verifier accepts {}: {e}", source.program()));
        prog.attach(category, name)
            .unwrap_or_else(|e| panic!("attach {category}:{name}: {e}"));
        attached.push(source);
    }
    assert!(
        !attached.is_empty(),
        "this kernel has no RAS tracepoint to attach to"
    );
    // The agent reads the per-source counts from this map.
    let counts: PerCpuArray<MapData, RasCounts> =
        PerCpuArray::try_from(ebpf.take_map(abi::COUNTS_MAP).expect("ras_counts"))
            .expect("a per-CPU array");
    let counts = abi::read_counts(&counts).expect("read ras_counts");
    assert_eq!(counts.len(), Source::ALL.len());
}
