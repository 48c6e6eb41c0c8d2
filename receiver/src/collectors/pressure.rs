//! `/proc/pressure/{cpu,memory,io,irq}` (PSI, Linux 4.20+ with CONFIG_PSI and not `psi=0`):
//! cumulative stall time and the kernel's 10/60/300 s averages. `irq` exists from Linux 6.1 with
//! CONFIG_IRQ_TIME_ACCOUNTING and is read when present.

use super::malformed;
use crate::framework::{Collector, Points};
use crate::kernel::Roots;
use huatuo_config::Config;
use huatuo_semconv::system as names;
use opentelemetry::KeyValue;

const RESOURCES: [&str; 4] = ["cpu", "memory", "io", "irq"];

pub struct Pressure;

impl Collector for Pressure {
    type State = ();
    const NAME: &'static str = "pressure";
    const METRICS: &'static [&'static str] =
        &[names::PRESSURE_STALL_TIME, names::PRESSURE_STALL_RATIO];

    fn enabled(config: &Config) -> bool {
        config.collectors.pressure.enabled
    }

    fn required(&self) -> &'static [(&'static str, &'static str)] {
        &[(
            "pressure/cpu",
            "pressure stall information needs Linux 4.20+ with CONFIG_PSI, not booted with psi=0",
        )]
    }

    fn collect(
        &self,
        _: &Config,
        roots: &Roots,
        _: &mut (),
        out: &mut Points,
    ) -> anyhow::Result<()> {
        for resource in RESOURCES {
            let file = format!("pressure/{resource}");
            let Some(text) = roots.read_proc_optional(&file)? else {
                continue;
            };
            for line in text.lines().filter(|l| !l.trim().is_empty()) {
                parse_line(resource, line, out).ok_or_else(|| malformed(&file, line))?;
            }
        }
        Ok(())
    }
}

/// `some avg10=0.52 avg60=0.60 avg300=0.75 total=118293700` (total in microseconds).
fn parse_line(resource: &'static str, line: &str, out: &mut Points) -> Option<()> {
    let mut fields = line.split_ascii_whitespace();
    let scope = match fields.next()? {
        "some" => "some",
        "full" => "full",
        _ => return None,
    };
    let attributes = |extra: Option<KeyValue>| {
        let mut attributes = vec![
            KeyValue::new(names::PRESSURE_RESOURCE, resource),
            KeyValue::new(names::PRESSURE_SCOPE, scope),
        ];
        attributes.extend(extra);
        attributes
    };
    for field in fields {
        let (key, value) = field.split_once('=')?;
        match key {
            "total" => {
                let micros: u64 = value.parse().ok()?;
                out.add(
                    names::PRESSURE_STALL_TIME,
                    micros as f64 / 1e6,
                    attributes(None),
                );
            }
            "avg10" | "avg60" | "avg300" => {
                let percent: f64 = value.parse().ok()?;
                let window = KeyValue::new(names::PRESSURE_WINDOW, format!("{}s", &key[3..]));
                out.add(
                    names::PRESSURE_STALL_RATIO,
                    percent / 100.0,
                    attributes(Some(window)),
                );
            }
            _ => return None,
        }
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framework::collector_test_support::collect_fixture;

    #[test]
    fn fixture_values() {
        let points = collect_fixture(&Pressure, "host-6.18");
        let memory_some = [
            (names::PRESSURE_RESOURCE, "memory"),
            (names::PRESSURE_SCOPE, "some"),
        ];
        let expected = crate::framework::collector_test_support::fixture("host-6.18")
            .read_proc("pressure/memory")
            .unwrap();
        let total: f64 = expected
            .lines()
            .next()
            .unwrap()
            .rsplit('=')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(
            points.value(names::PRESSURE_STALL_TIME, &memory_some),
            Some(total / 1e6)
        );
        // 3 resources (no irq on this kernel) x some/full x 3 windows.
        assert_eq!(points.of(names::PRESSURE_STALL_RATIO).len(), 18);
        assert!(points
            .of(names::PRESSURE_STALL_RATIO)
            .iter()
            .all(|(v, _)| (0.0..=1.0).contains(&v.as_f64())));
    }

    #[test]
    fn garbage_is_an_error() {
        let mut out = Points::default();
        assert!(parse_line("cpu", "some avg10=x total=1", &mut out).is_none());
        assert!(parse_line("cpu", "most avg10=1.0", &mut out).is_none());
    }
}
