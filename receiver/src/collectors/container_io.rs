//! Per-container block IO: bytes and operations by device and direction. v2 `io.stat`
//! (`rbytes`, `wbytes`, `rios`, `wios` per `major:minor`); v1 the blkio controller's
//! `blkio.throttle.io_service_bytes` and `blkio.throttle.io_serviced`, which recent kernels (6.x)
//! count only for devices with a throttling rule somewhere in the hierarchy (v1 has no other
//! per-cgroup IO counters without the BFQ scheduler). Devices are named from sysfs and filtered
//! by `collectors.diskio`.

use super::cgroups::{with, ContainerAttributes, Hierarchy, Version};
use crate::framework::{Collector, Points};
use crate::kernel::Roots;
use crate::telemetry::Telemetry;
use huatuo_config::Config;
use huatuo_semconv::{container as names, system as system_names};
use opentelemetry::KeyValue;
use std::collections::HashMap;
use std::sync::Arc;

#[derive(Default)]
pub struct ContainerIo {
    attributes: ContainerAttributes,
}

/// One counter of one device: (`major:minor`, metric, direction, value).
type Counter<'a> = (&'a str, &'static str, &'static str, u64);

impl Collector for ContainerIo {
    type State = ();
    const NAME: &'static str = "container_io";
    const METRICS: &'static [&'static str] =
        &[names::CONTAINER_DISK_IO, names::CONTAINER_DISK_OPERATIONS];

    fn enabled(config: &Config) -> bool {
        config.collectors.container_io.enabled
    }

    fn required(&self) -> &'static [(&'static str, &'static str)] {
        &[]
    }

    fn bind(&self, telemetry: &Arc<Telemetry>) {
        self.attributes.bind(telemetry);
    }

    fn collect(
        &self,
        config: &Config,
        roots: &Roots,
        _: &mut (),
        out: &mut Points,
    ) -> anyhow::Result<()> {
        let Some(io) = Hierarchy::of(roots, "io", "blkio") else {
            return Ok(());
        };
        let mut devices = HashMap::new();
        for container in io.containers() {
            let files: &[(&str, &'static str)] = match io.version {
                Version::V2 => &[("io.stat", names::CONTAINER_DISK_IO)],
                Version::V1 => &[
                    ("blkio.throttle.io_service_bytes", names::CONTAINER_DISK_IO),
                    (
                        "blkio.throttle.io_serviced",
                        names::CONTAINER_DISK_OPERATIONS,
                    ),
                ],
            };
            let texts: Vec<(String, &'static str)> = files
                .iter()
                .filter_map(|(file, metric)| Some((container.read(file)?, *metric)))
                .collect();
            if texts.is_empty() {
                continue;
            }
            let mut counters: Vec<Counter> = Vec::new();
            for (text, metric) in &texts {
                match io.version {
                    Version::V2 => counters.extend(parse_io_stat(text)),
                    Version::V1 => counters.extend(parse_blkio(text, metric)),
                }
            }
            let attributes = self.attributes.of(&container);
            for (device, metric, direction, value) in counters {
                let name = devices
                    .entry(device.to_string())
                    .or_insert_with(|| device_name(roots, device));
                if !config.collectors.diskio.allows(name) {
                    continue;
                }
                out.add(
                    metric,
                    value,
                    with(
                        &attributes,
                        [
                            KeyValue::new(system_names::SYSTEM_DEVICE, name.clone()),
                            KeyValue::new(system_names::DISK_IO_DIRECTION, direction),
                        ],
                    ),
                );
            }
        }
        Ok(())
    }
}

/// `8:0 rbytes=1 wbytes=2 rios=3 wios=4 dbytes=0 dios=0` lines.
fn parse_io_stat(text: &str) -> impl Iterator<Item = Counter<'_>> {
    text.lines().flat_map(|line| {
        let mut fields = line.split_ascii_whitespace();
        let device = fields.next().unwrap_or_default();
        fields.filter_map(move |field| {
            let (key, value) = field.split_once('=')?;
            let (metric, direction) = match key {
                "rbytes" => (names::CONTAINER_DISK_IO, "read"),
                "wbytes" => (names::CONTAINER_DISK_IO, "write"),
                "rios" => (names::CONTAINER_DISK_OPERATIONS, "read"),
                "wios" => (names::CONTAINER_DISK_OPERATIONS, "write"),
                _ => return None,
            };
            Some((device, metric, direction, value.parse().ok()?))
        })
    })
}

/// `8:0 Read 4096` lines (also Write, Sync, Async, Discard, Total, and a last `Total N`).
fn parse_blkio<'a>(text: &'a str, metric: &'static str) -> impl Iterator<Item = Counter<'a>> {
    text.lines().filter_map(move |line| {
        let mut fields = line.split_ascii_whitespace();
        let (device, operation, value) = (fields.next()?, fields.next()?, fields.next()?);
        let direction = match operation {
            "Read" => "read",
            "Write" => "write",
            _ => return None,
        };
        Some((device, metric, direction, value.parse().ok()?))
    })
}

/// The kernel's name of block device `major:minor` (`DEVNAME` of its uevent in sysfs), or
/// `major:minor` when sysfs does not know it.
fn device_name(roots: &Roots, device: &str) -> String {
    let uevent = roots.sysfs.join("dev/block").join(device).join("uevent");
    std::fs::read_to_string(uevent)
        .ok()
        .and_then(|text| {
            text.lines()
                .find_map(|l| l.strip_prefix("DEVNAME="))
                .map(str::to_string)
        })
        .unwrap_or_else(|| device.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collectors::cgroups::tests::{id, value};
    use crate::framework::collector_test_support::{collect, collect_fixture, fixture};

    #[test]
    fn v2_fixture_by_device_name_or_number() {
        let points = collect_fixture(&ContainerIo::default(), "cgroup-v2");
        let app = id("app");
        let of = |metric, device, direction| {
            value(
                &points,
                metric,
                &app,
                &[
                    (system_names::SYSTEM_DEVICE, device),
                    (system_names::DISK_IO_DIRECTION, direction),
                ],
            )
        };
        assert_eq!(of(names::CONTAINER_DISK_IO, "vda", "read"), Some(1048576.0));
        assert_eq!(
            of(names::CONTAINER_DISK_IO, "vda", "write"),
            Some(4194304.0)
        );
        assert_eq!(
            of(names::CONTAINER_DISK_OPERATIONS, "vda", "write"),
            Some(1024.0)
        );
        // No uevent in the fixture's sysfs for 7:3: named by its number.
        assert_eq!(of(names::CONTAINER_DISK_IO, "7:3", "read"), Some(4096.0));
        assert_eq!(
            value(
                &points,
                names::CONTAINER_DISK_IO,
                &id("podman"),
                &[(system_names::DISK_IO_DIRECTION, "read")]
            ),
            Some(8192.0)
        );
    }

    #[test]
    fn v1_fixture_with_the_diskio_filter() {
        // loop devices are excluded by default, as for the host's disks.
        let points = collect_fixture(&ContainerIo::default(), "cgroup-v1-hybrid");
        assert!(points.is_empty());
        let mut config = Config::default();
        config.collectors.diskio.exclude.clear();
        let points = collect(
            &ContainerIo::default(),
            &config,
            &fixture("cgroup-v1-hybrid"),
            &mut (),
        )
        .unwrap();
        let docker = id("huatuo-fixture-1");
        let of = |metric, direction| {
            value(
                &points,
                metric,
                &docker,
                &[
                    (system_names::SYSTEM_DEVICE, "loop0"),
                    (system_names::DISK_IO_DIRECTION, direction),
                ],
            )
        };
        assert_eq!(of(names::CONTAINER_DISK_IO, "read"), Some(262144.0));
        assert_eq!(of(names::CONTAINER_DISK_IO, "write"), Some(65536.0));
        assert_eq!(of(names::CONTAINER_DISK_OPERATIONS, "read"), Some(64.0));
        assert_eq!(of(names::CONTAINER_DISK_OPERATIONS, "write"), Some(16.0));
    }

    #[test]
    fn both_formats() {
        let v2: Vec<_> =
            parse_io_stat("253:0 rbytes=4096 wbytes=8192 rios=1 wios=2 dbytes=0 dios=0\n")
                .collect();
        assert_eq!(
            v2,
            [
                ("253:0", names::CONTAINER_DISK_IO, "read", 4096),
                ("253:0", names::CONTAINER_DISK_IO, "write", 8192),
                ("253:0", names::CONTAINER_DISK_OPERATIONS, "read", 1),
                ("253:0", names::CONTAINER_DISK_OPERATIONS, "write", 2),
            ]
        );
        let v1: Vec<_> = parse_blkio(
            "8:0 Read 512\n8:0 Write 1024\n8:0 Sync 1536\n8:0 Total 1536\nTotal 1536\n",
            names::CONTAINER_DISK_IO,
        )
        .collect();
        assert_eq!(
            v1,
            [
                ("8:0", names::CONTAINER_DISK_IO, "read", 512),
                ("8:0", names::CONTAINER_DISK_IO, "write", 1024),
            ]
        );
    }
}
