//! `/proc/diskstats`: bytes, operations, merges and times per block device, in-flight requests,
//! utilisation since the previous cycle and cache flushes (Linux 5.5+). Devices are filtered by
//! `collectors.diskio`.

use super::{integers, malformed};
use crate::framework::{Collector, Points};
use crate::kernel::Roots;
use huatuo_config::Config;
use huatuo_semconv::system as names;
use opentelemetry::KeyValue;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// `/proc/diskstats` counts sectors of 512 bytes whatever the device's sector size.
const SECTOR_BYTES: u64 = 512;

pub struct Diskio;

/// Busy time per device at the previous cycle, for utilisation.
#[derive(Default)]
pub struct DiskioState {
    previous: Option<(Instant, HashMap<String, u64>)>,
}

impl Collector for Diskio {
    type State = DiskioState;
    const NAME: &'static str = "diskio";
    const METRICS: &'static [&'static str] = &[
        names::SYSTEM_DISK_IO,
        names::SYSTEM_DISK_OPERATIONS,
        names::SYSTEM_DISK_MERGED,
        names::SYSTEM_DISK_OPERATION_TIME,
        names::SYSTEM_DISK_IO_TIME,
        names::DISK_WEIGHTED_IO_TIME,
        names::DISK_PENDING_OPERATIONS,
        names::DISK_UTILIZATION,
        names::DISK_FLUSHES,
    ];

    fn enabled(config: &Config) -> bool {
        config.collectors.diskio.enabled
    }

    fn required(&self) -> &'static [(&'static str, &'static str)] {
        &[("diskstats", "procfs not mounted there?")]
    }

    fn collect(
        &self,
        config: &Config,
        roots: &Roots,
        state: &mut DiskioState,
        out: &mut Points,
    ) -> anyhow::Result<()> {
        let now = Instant::now();
        let mut busy = HashMap::new();
        for line in roots.read_proc("diskstats")?.lines() {
            let mut fields = line.split_ascii_whitespace();
            let (Some(_major), Some(_minor), Some(device)) =
                (fields.next(), fields.next(), fields.next())
            else {
                continue;
            };
            if !config.collectors.diskio.allows(device) {
                continue;
            }
            // 11 counters since 2.6; 15 with discards (4.18); 17 with flushes (5.5).
            let v = integers(fields, "diskstats", line)?;
            if v.len() < 11 {
                return Err(malformed("diskstats", line));
            }
            let device_attr = || KeyValue::new(names::SYSTEM_DEVICE, device.to_string());
            let attrs = |direction: &'static str| {
                vec![
                    device_attr(),
                    KeyValue::new(names::DISK_IO_DIRECTION, direction),
                ]
            };
            for (direction, ops, merged, sectors, ms) in [
                ("read", v[0], v[1], v[2], v[3]),
                ("write", v[4], v[5], v[6], v[7]),
            ] {
                out.add(
                    names::SYSTEM_DISK_IO,
                    sectors * SECTOR_BYTES,
                    attrs(direction),
                );
                out.add(names::SYSTEM_DISK_OPERATIONS, ops, attrs(direction));
                out.add(names::SYSTEM_DISK_MERGED, merged, attrs(direction));
                out.add(
                    names::SYSTEM_DISK_OPERATION_TIME,
                    seconds(ms),
                    attrs(direction),
                );
            }
            out.add(names::DISK_PENDING_OPERATIONS, v[8], vec![device_attr()]);
            out.add(
                names::SYSTEM_DISK_IO_TIME,
                seconds(v[9]),
                vec![device_attr()],
            );
            out.add(
                names::DISK_WEIGHTED_IO_TIME,
                seconds(v[10]),
                vec![device_attr()],
            );
            if let Some(flushes) = v.get(15) {
                out.add(names::DISK_FLUSHES, *flushes, vec![device_attr()]);
            }
            if let Some((then, previous)) = &state.previous {
                if let Some(before) = previous.get(device) {
                    let share = utilization(*before, v[9], now.duration_since(*then));
                    out.add(names::DISK_UTILIZATION, share, vec![device_attr()]);
                }
            }
            busy.insert(device.to_string(), v[9]);
        }
        state.previous = Some((now, busy));
        Ok(())
    }
}

fn seconds(ms: u64) -> f64 {
    ms as f64 / 1000.0
}

/// Share of `elapsed` the device was busy, from its busy-time counter (ms) at both ends.
fn utilization(before_ms: u64, now_ms: u64, elapsed: Duration) -> f64 {
    if elapsed.is_zero() {
        return 0.0;
    }
    (now_ms.saturating_sub(before_ms) as f64 / (elapsed.as_secs_f64() * 1000.0)).min(1.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framework::collector_test_support::{collect, collect_fixture, fixture};

    #[test]
    fn fixture_values() {
        let points = collect_fixture(&Diskio, "host-6.18");
        let vda = |metric, direction: Option<&str>| {
            let mut filter = vec![(names::SYSTEM_DEVICE, "vda")];
            filter.extend(direction.map(|d| (names::DISK_IO_DIRECTION, d)));
            points.value(metric, &filter)
        };
        assert_eq!(
            vda(names::SYSTEM_DISK_IO, Some("read")),
            Some(72235218.0 * 512.0)
        );
        assert_eq!(
            vda(names::SYSTEM_DISK_OPERATIONS, Some("write")),
            Some(157340.0)
        );
        assert_eq!(vda(names::SYSTEM_DISK_MERGED, Some("read")), Some(36990.0));
        assert_eq!(
            vda(names::SYSTEM_DISK_OPERATION_TIME, Some("read")),
            Some(4375.806)
        );
        assert_eq!(vda(names::SYSTEM_DISK_IO_TIME, None), Some(251.324));
        assert_eq!(vda(names::DISK_FLUSHES, None), Some(3236.0));
        let devices: std::collections::BTreeSet<String> = points
            .of(names::SYSTEM_DISK_IO_TIME)
            .iter()
            .map(|(_, a)| a[0].value.as_str().to_string())
            .collect();
        assert_eq!(
            devices.into_iter().collect::<Vec<_>>(),
            ["vda", "zram0"],
            "loop devices excluded by default"
        );
    }

    #[test]
    fn old_format_without_discards_and_flushes() {
        let points = collect_fixture(&Diskio, "handmade-old-formats");
        assert_eq!(
            points.value(
                names::SYSTEM_DISK_OPERATIONS,
                &[
                    (names::SYSTEM_DEVICE, "sda"),
                    (names::DISK_IO_DIRECTION, "read")
                ]
            ),
            Some(1000.0)
        );
        assert!(points.of(names::DISK_FLUSHES).is_empty());
    }

    #[test]
    fn utilisation_from_busy_time() {
        assert_eq!(utilization(1000, 1500, Duration::from_secs(1)), 0.5);
        assert_eq!(
            utilization(1000, 3000, Duration::from_secs(1)),
            1.0,
            "clamped"
        );
        assert_eq!(
            utilization(1000, 900, Duration::from_secs(1)),
            0.0,
            "counter reset"
        );
        let mut state = DiskioState::default();
        let roots = fixture("host-6.18");
        collect(&Diskio, &Config::default(), &roots, &mut state).unwrap();
        let second = collect(&Diskio, &Config::default(), &roots, &mut state).unwrap();
        assert_eq!(
            second.value(names::DISK_UTILIZATION, &[(names::SYSTEM_DEVICE, "vda")]),
            Some(0.0)
        );
    }
}
