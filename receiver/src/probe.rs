//! `huatuo-otel probe`: what this host supports, tracer by tracer, without starting anything.

use crate::kernel::KernelEnv;
use huatuo_config::Config;
use std::process::ExitCode;

pub fn print(config: &Config) -> ExitCode {
    let kernel = KernelEnv::detect().with_roots(crate::kernel::Roots::from_config(&config.agent));
    println!("kernel      {}", kernel.release);
    println!(
        "root        {}",
        if kernel.is_root() {
            "yes"
        } else {
            "no (BPF needs CAP_BPF, CAP_PERFMON)"
        }
    );
    println!(
        "tracefs     {}",
        match kernel.tracepoint_exists("skb", "kfree_skb") {
            Ok(_) => "mounted".to_string(),
            Err(why) => why,
        }
    );
    println!(
        "kernel BTF  {}",
        match kernel.has_btf() {
            Ok(()) => format!("available ({})", huatuo_ebpf::btf::VMLINUX_BTF_PATH),
            Err(why) => why,
        }
    );
    println!();
    println!("{:<24} {:<12} {:<12} detail", "tracer", "kind", "status");
    for tracer in crate::tracers::all() {
        let (status, detail) = if !tracer.enabled(config) {
            ("disabled", "disabled in the configuration".to_string())
        } else {
            match tracer.probe(&kernel) {
                Ok(()) => ("supported", tracer.probe_detail(&kernel)),
                Err(reason) => ("unsupported", reason.0),
            }
        };
        println!(
            "{:<24} {:<12} {:<12} {}",
            tracer.name(),
            tracer.kind().as_str(),
            status,
            detail
        );
    }
    ExitCode::SUCCESS
}
