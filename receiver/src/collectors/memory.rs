//! `/proc/meminfo`: host memory by state, limit, available, shared, slab, swap.

use super::malformed;
use crate::framework::{Collector, Points};
use crate::kernel::Roots;
use huatuo_config::Config;
use huatuo_semconv::system as names;
use opentelemetry::KeyValue;
use std::collections::HashMap;

pub struct Memory;

impl Collector for Memory {
    type State = ();
    const NAME: &'static str = "memory";
    const METRICS: &'static [&'static str] = &[
        names::SYSTEM_MEMORY_USAGE,
        names::SYSTEM_MEMORY_LIMIT,
        names::SYSTEM_MEMORY_LINUX_AVAILABLE,
        names::SYSTEM_MEMORY_LINUX_SHARED,
        names::SYSTEM_MEMORY_LINUX_SLAB_USAGE,
        names::SYSTEM_PAGING_USAGE,
    ];

    fn enabled(config: &Config) -> bool {
        config.collectors.memory.enabled
    }

    fn required(&self) -> &'static [(&'static str, &'static str)] {
        &[("meminfo", "procfs not mounted there?")]
    }

    fn collect(
        &self,
        _: &Config,
        roots: &Roots,
        _: &mut (),
        out: &mut Points,
    ) -> anyhow::Result<()> {
        let text = roots.read_proc("meminfo")?;
        let info = parse_meminfo(&text)?;
        let get = |key: &str| {
            info.get(key)
                .copied()
                .ok_or_else(|| anyhow::anyhow!("/proc/meminfo has no {key}"))
        };
        let total = get("MemTotal")?;
        let free = get("MemFree")?;
        let buffers = get("Buffers")?;
        let cached = get("Cached")?;
        let used = total.saturating_sub(free + buffers + cached);
        for (state, value) in [
            ("used", used),
            ("free", free),
            ("buffers", buffers),
            ("cached", cached),
        ] {
            out.add(
                names::SYSTEM_MEMORY_USAGE,
                value,
                vec![KeyValue::new(names::SYSTEM_MEMORY_STATE, state)],
            );
        }
        out.add(names::SYSTEM_MEMORY_LIMIT, total, vec![]);
        // Present on every kernel this agent runs on, but optional in the format.
        if let Some(available) = info.get("MemAvailable") {
            out.add(names::SYSTEM_MEMORY_LINUX_AVAILABLE, *available, vec![]);
        }
        if let Some(shared) = info.get("Shmem") {
            out.add(names::SYSTEM_MEMORY_LINUX_SHARED, *shared, vec![]);
        }
        for (state, key) in [
            ("reclaimable", "SReclaimable"),
            ("unreclaimable", "SUnreclaim"),
        ] {
            if let Some(value) = info.get(key) {
                out.add(
                    names::SYSTEM_MEMORY_LINUX_SLAB_USAGE,
                    *value,
                    vec![KeyValue::new(names::SYSTEM_MEMORY_LINUX_SLAB_STATE, state)],
                );
            }
        }
        if let (Some(swap_total), Some(swap_free)) = (info.get("SwapTotal"), info.get("SwapFree")) {
            for (state, value) in [
                ("used", swap_total.saturating_sub(*swap_free)),
                ("free", *swap_free),
            ] {
                out.add(
                    names::SYSTEM_PAGING_USAGE,
                    value,
                    vec![KeyValue::new(names::SYSTEM_PAGING_STATE, state)],
                );
            }
        }
        Ok(())
    }
}

/// `Key:   value [kB]` lines, values in bytes (kB is KiB) or as printed when without a unit.
fn parse_meminfo(text: &str) -> anyhow::Result<HashMap<&str, u64>> {
    text.lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            let (key, rest) = line
                .split_once(':')
                .ok_or_else(|| malformed("meminfo", line))?;
            let mut fields = rest.split_ascii_whitespace();
            let value: u64 = fields
                .next()
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| malformed("meminfo", line))?;
            let scale = match fields.next() {
                None => 1,
                Some("kB") => 1024,
                Some(_) => return Err(malformed("meminfo", line)),
            };
            Ok((key, value * scale))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framework::collector_test_support::collect_fixture;

    const MEM_TOTAL_KIB: f64 = 24684096.0;
    const MEM_FREE_KIB: f64 = 13200328.0;

    #[test]
    fn fixture_values_in_bytes_adding_up_to_the_total() {
        let points = collect_fixture(&Memory, "host-6.18");
        let state = |s| {
            points
                .value(
                    names::SYSTEM_MEMORY_USAGE,
                    &[(names::SYSTEM_MEMORY_STATE, s)],
                )
                .unwrap()
        };
        let total = points.value(names::SYSTEM_MEMORY_LIMIT, &[]).unwrap();
        assert_eq!(total, MEM_TOTAL_KIB * 1024.0);
        assert_eq!(state("free"), MEM_FREE_KIB * 1024.0);
        assert_eq!(
            state("used") + state("free") + state("buffers") + state("cached"),
            total
        );
        assert!(points
            .value(names::SYSTEM_MEMORY_LINUX_AVAILABLE, &[])
            .is_some());
        let slab = points.of(names::SYSTEM_MEMORY_LINUX_SLAB_USAGE);
        assert_eq!(slab.len(), 2);
    }

    #[test]
    fn old_kernels_without_mem_available() {
        let points = collect_fixture(&Memory, "handmade-old-formats");
        assert!(points.value(names::SYSTEM_MEMORY_LIMIT, &[]).is_some());
        assert!(points.of(names::SYSTEM_MEMORY_LINUX_AVAILABLE).is_empty());
    }

    #[test]
    fn units_are_checked() {
        assert_eq!(
            parse_meminfo("HugePages_Total:       4\n").unwrap()["HugePages_Total"],
            4
        );
        assert!(parse_meminfo("MemTotal: 10 MB\n").is_err());
        assert!(parse_meminfo("MemTotal 10 kB\n").is_err());
    }
}
