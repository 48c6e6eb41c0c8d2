//! Attaching a tracer object's programs the two ways the agent can, for the attach tests: the
//! `tp_btf` program, or the classic tracepoint one. Panics with what failed: these are tests.

use aya::programs::{BtfTracePoint, TracePoint};
use aya::Ebpf;

/// Which of a hook's two programs to attach.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Entry {
    BtfTracePoint,
    TracePoint,
}

/// Loads and attaches `prog_btf` (as `tp_btf/<name>`) or `prog_tracepoint` (as
/// `tracepoint/<category>/<name>`) of `ebpf`.
pub fn attach_tracepoint(
    ebpf: &mut Ebpf,
    entry: Entry,
    (prog_btf, prog_tracepoint): (&str, &str),
    category: &str,
    name: &str,
) {
    match entry {
        Entry::BtfTracePoint => {
            let vmlinux = aya::Btf::from_sys_fs().expect("kernel BTF");
            let prog: &mut BtfTracePoint = ebpf
                .program_mut(prog_btf)
                .unwrap_or_else(|| panic!("program {prog_btf} missing"))
                .try_into()
                .expect("a tp_btf program");
            prog.load(name, &vmlinux)
                .unwrap_or_else(|e| panic!("verifier rejects {prog_btf}: {e}"));
            prog.attach()
                .unwrap_or_else(|e| panic!("attaching tp_btf/{name}: {e}"));
        }
        Entry::TracePoint => {
            let prog: &mut TracePoint = ebpf
                .program_mut(prog_tracepoint)
                .unwrap_or_else(|| panic!("program {prog_tracepoint} missing"))
                .try_into()
                .expect("a tracepoint program");
            prog.load()
                .unwrap_or_else(|e| panic!("verifier rejects {prog_tracepoint}: {e}"));
            prog.attach(category, name)
                .unwrap_or_else(|e| panic!("attaching tracepoint {category}/{name}: {e}"));
        }
    }
}
