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
pub const SECTOR_BYTES: u64 = 512;

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
        for disk in parse_diskstats(&roots.read_proc("diskstats")?)? {
            let device = disk.device.as_str();
            if !config.collectors.diskio.allows(device) {
                continue;
            }
            let device_attr = || KeyValue::new(names::SYSTEM_DEVICE, device.to_string());
            let attrs = |direction: &'static str| {
                vec![
                    device_attr(),
                    KeyValue::new(names::DISK_IO_DIRECTION, direction),
                ]
            };
            for (direction, ops, merged, sectors, ms) in [
                (
                    "read",
                    disk.reads,
                    disk.read_merged,
                    disk.read_sectors,
                    disk.read_ms,
                ),
                (
                    "write",
                    disk.writes,
                    disk.write_merged,
                    disk.write_sectors,
                    disk.write_ms,
                ),
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
            out.add(
                names::DISK_PENDING_OPERATIONS,
                disk.in_flight,
                vec![device_attr()],
            );
            out.add(
                names::SYSTEM_DISK_IO_TIME,
                seconds(disk.io_ms),
                vec![device_attr()],
            );
            out.add(
                names::DISK_WEIGHTED_IO_TIME,
                seconds(disk.weighted_ms),
                vec![device_attr()],
            );
            if let Some(flushes) = disk.flushes {
                out.add(names::DISK_FLUSHES, flushes, vec![device_attr()]);
            }
            if let Some((then, previous)) = &state.previous {
                if let Some(before) = previous.get(device) {
                    let share = utilization(*before, disk.io_ms, now.duration_since(*then));
                    out.add(names::DISK_UTILIZATION, share, vec![device_attr()]);
                }
            }
            busy.insert(disk.device, disk.io_ms);
        }
        state.previous = Some((now, busy));
        Ok(())
    }
}

/// One device's line of `/proc/diskstats` (Documentation/admin-guide/iostats.rst).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskStat {
    pub major: u32,
    pub minor: u32,
    pub device: String,
    pub reads: u64,
    pub read_merged: u64,
    /// Sectors of [`SECTOR_BYTES`].
    pub read_sectors: u64,
    pub read_ms: u64,
    pub writes: u64,
    pub write_merged: u64,
    pub write_sectors: u64,
    pub write_ms: u64,
    pub in_flight: u64,
    /// Time the device had requests in flight.
    pub io_ms: u64,
    /// Time requests spent in flight, summed over the requests.
    pub weighted_ms: u64,
    /// Linux 5.5+.
    pub flushes: Option<u64>,
}

/// Every line of `/proc/diskstats`; an error names the malformed line.
pub fn parse_diskstats(text: &str) -> anyhow::Result<Vec<DiskStat>> {
    let mut disks = Vec::new();
    for line in text.lines() {
        let mut fields = line.split_ascii_whitespace();
        let (Some(major), Some(minor), Some(device)) =
            (fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        let (Ok(major), Ok(minor)) = (major.parse(), minor.parse()) else {
            return Err(malformed("diskstats", line));
        };
        // 11 counters since 2.6; 15 with discards (4.18); 17 with flushes (5.5).
        let v = integers(fields, "diskstats", line)?;
        if v.len() < 11 {
            return Err(malformed("diskstats", line));
        }
        disks.push(DiskStat {
            major,
            minor,
            device: device.to_string(),
            reads: v[0],
            read_merged: v[1],
            read_sectors: v[2],
            read_ms: v[3],
            writes: v[4],
            write_merged: v[5],
            write_sectors: v[6],
            write_ms: v[7],
            in_flight: v[8],
            io_ms: v[9],
            weighted_ms: v[10],
            flushes: v.get(15).copied(),
        });
    }
    Ok(disks)
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
