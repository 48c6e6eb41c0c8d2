//! What the attach tests of tracers with a tp_btf and a classic tracepoint entry point per hook
//! share: attaching every hook through one of them, detaching, and reading the `stats` map.

use aya::maps::{MapData, PerCpuArray};
use aya::programs::{BtfTracePoint, Program, TracePoint};
use aya::Ebpf;
use huatuo_ebpf::STATS_MAP;

#[derive(Clone, Copy, Debug)]
pub enum Entry {
    BtfTracePoint,
    TracePoint,
}

/// One hook: tracepoint category, tracepoint (and tp_btf) name, tp_btf program, tracepoint
/// program.
pub type Hook = (&'static str, &'static str, &'static str, &'static str);

/// Loads and attaches every hook through `entry`; returns the programs attached.
pub fn attach(ebpf: &mut Ebpf, entry: Entry, hooks: &[Hook]) -> Vec<&'static str> {
    let vmlinux = aya::Btf::from_sys_fs().expect("kernel BTF");
    let mut attached = Vec::new();
    for &(category, name, btf_prog, tp_prog) in hooks {
        match entry {
            Entry::BtfTracePoint => {
                let prog: &mut BtfTracePoint = ebpf
                    .program_mut(btf_prog)
                    .unwrap_or_else(|| panic!("program {btf_prog}"))
                    .try_into()
                    .expect("a tp_btf program");
                prog.load(name, &vmlinux)
                    .unwrap_or_else(|e| panic!("verifier rejects {btf_prog}: {e:?}"));
                prog.attach().expect("attach tp_btf");
                attached.push(btf_prog);
            }
            Entry::TracePoint => {
                let prog: &mut TracePoint = ebpf
                    .program_mut(tp_prog)
                    .unwrap_or_else(|| panic!("program {tp_prog}"))
                    .try_into()
                    .expect("a tracepoint program");
                prog.load()
                    .unwrap_or_else(|e| panic!("verifier rejects {tp_prog}: {e:?}"));
                prog.attach(category, name).expect("attach tracepoint");
                attached.push(tp_prog);
            }
        }
    }
    attached
}

/// Detaches and unloads `programs`; their maps stay readable.
pub fn detach(ebpf: &mut Ebpf, programs: &[&str]) {
    for name in programs {
        match ebpf.program_mut(name).expect("attached program") {
            Program::BtfTracePoint(p) => p.unload(),
            Program::TracePoint(p) => p.unload(),
            _ => unreachable!("{name} is neither tp_btf nor a tracepoint"),
        }
        .expect("unload");
    }
}

/// Slot `slot` of the object's `stats` map, summed over CPUs.
pub fn stat(ebpf: &Ebpf, slot: u32) -> u64 {
    let map: PerCpuArray<&MapData, u64> =
        PerCpuArray::try_from(ebpf.map(STATS_MAP).expect("stats")).expect("per-CPU");
    map.get(&slot, 0).expect("read stats").iter().sum()
}
