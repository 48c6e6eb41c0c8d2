//! Loading and attaching a tracer's programs on a tracepoint, the same way for every tracer.
//!
//! A tracer's object carries two programs doing the same work on one tracepoint: a `tp_btf` one
//! (typed arguments, no copy of the trace record; needs kernel BTF) and a classic tracepoint one
//! for kernels where that is unavailable.

use super::{RunError, Unsupported};
use crate::kernel::KernelEnv;
use anyhow::Context as _;
use aya::programs::{BtfTracePoint, ProgramError, ProgramFd, TracePoint};
use aya::{Btf, Ebpf};
use std::os::fd::{AsFd, OwnedFd};

const BTF_MODE: &str = "tp_btf";

/// The two entry points of one tracepoint in a tracer's object.
pub struct TracepointHook {
    pub tracer: &'static str,
    /// `tp_btf/<tp_btf_name>` program; empty when the object only has the classic one.
    pub prog_btf: &'static str,
    pub tp_btf_name: &'static str,
    /// `tracepoint/<category>/<name>` program; empty when the object only has the `tp_btf` one.
    pub prog_tracepoint: &'static str,
    pub category: &'static str,
    pub name: &'static str,
}

impl TracepointHook {
    /// A hook whose `tp_btf` name is the tracepoint's, from a (tracepoint, `tp_btf` program,
    /// tracepoint program) row of a tracer's ABI module.
    pub const fn named(
        tracer: &'static str,
        category: &'static str,
        (name, prog_btf, prog_tracepoint): (&'static str, &'static str, &'static str),
    ) -> Self {
        Self {
            tracer,
            prog_btf,
            tp_btf_name: name,
            prog_tracepoint,
            category,
            name,
        }
    }

    /// The program that `attach` attached in `mode`.
    pub fn program(&self, mode: &str) -> &'static str {
        if mode == BTF_MODE {
            self.prog_btf
        } else {
            self.prog_tracepoint
        }
    }

    /// What the hook needs, checked without loading anything: privileges, BPF ring buffers,
    /// kernel BTF when it has no classic program, and the tracepoint itself.
    pub fn probe(&self, kernel: &KernelEnv) -> Result<(), Unsupported> {
        kernel.require_ring_buffer_tracing().map_err(Unsupported)?;
        if self.prog_tracepoint.is_empty() {
            kernel.has_btf().map_err(Unsupported)?;
        }
        let (group, name) = (self.category, self.name);
        match kernel.tracepoint_exists(group, name) {
            Ok(true) => Ok(()),
            Ok(false) => Err(Unsupported(format!("missing tracepoint {group}:{name}"))),
            Err(why) => Err(Unsupported(why)),
        }
    }

    /// Attaches through tp_btf when the kernel has BTF, else through the classic tracepoint.
    /// Returns which one, and the attached program's fd for its run statistics.
    pub fn attach(
        &self,
        ebpf: &mut Ebpf,
        kernel: &KernelEnv,
    ) -> Result<(&'static str, OwnedFd), RunError> {
        let (group, name) = (self.category, self.name);
        if !self.prog_btf.is_empty() && kernel.has_btf().is_ok() {
            match self.attach_btf(ebpf) {
                Ok(fd) => return Ok((BTF_MODE, fd)),
                // No classic program to fall back on (it could not read what the hook needs).
                Err(e) if self.prog_tracepoint.is_empty() => {
                    return Err(e
                        .context(format!("attaching tp_btf/{}", self.tp_btf_name))
                        .into())
                }
                Err(e) => {
                    tracing::info!(tracer = self.tracer, error = %format!("{e:#}"), "tp_btf unavailable; using the tracepoint")
                }
            }
        }
        let program: &mut TracePoint = program(ebpf, self.prog_tracepoint)?;
        program.load().context("loading the tracepoint program")?;
        program
            .attach(group, name)
            .with_context(|| format!("attaching to tracepoint {group}:{name}"))?;
        Ok(("tracepoint", owned_fd(program.fd())?))
    }

    fn attach_btf(&self, ebpf: &mut Ebpf) -> anyhow::Result<OwnedFd> {
        let btf = Btf::from_sys_fs()?;
        let program: &mut BtfTracePoint = program(ebpf, self.prog_btf)?;
        program
            .load(self.tp_btf_name, &btf)
            .context("loading the tp_btf program")?;
        program.attach().context("attaching the tp_btf program")?;
        owned_fd(program.fd())
    }
}

/// Takes a map out of the object, so it can outlive the borrow of `ebpf`.
pub fn take_map(ebpf: &mut Ebpf, name: &str) -> anyhow::Result<aya::maps::Map> {
    ebpf.take_map(name)
        .with_context(|| format!("map {name} missing from the object"))
}

fn owned_fd(fd: Result<&ProgramFd, ProgramError>) -> anyhow::Result<OwnedFd> {
    Ok(fd?.as_fd().try_clone_to_owned()?)
}

fn program<'a, P>(ebpf: &'a mut Ebpf, name: &str) -> anyhow::Result<&'a mut P>
where
    &'a mut P: TryFrom<&'a mut aya::programs::Program, Error = ProgramError>,
{
    let program = ebpf
        .program_mut(name)
        .with_context(|| format!("program {name} missing from the object"))?;
    Ok(program.try_into()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_tracepoint_is_unsupported_and_named() {
        let kernel = KernelEnv::detect();
        let hook = TracepointHook {
            tracer: "test",
            prog_btf: "none_btf",
            tp_btf_name: "huatuo_missing",
            prog_tracepoint: "none_tp",
            category: "huatuo_none",
            name: "huatuo_missing",
        };
        let Unsupported(why) = hook.probe(&kernel).unwrap_err();
        // Without root or tracefs the probe stops earlier, with that as the reason.
        if kernel.require_ring_buffer_tracing().is_ok()
            && kernel.tracepoint_exists("oom", "mark_victim").is_ok()
        {
            assert_eq!(why, "missing tracepoint huatuo_none:huatuo_missing");
        }
    }
}
