//! `/proc/loadavg`: 1, 5 and 15 minute load averages.

use super::malformed;
use crate::framework::{Collector, Points};
use crate::kernel::Roots;
use huatuo_config::Config;
use huatuo_semconv::system as names;

pub struct Loadavg;

impl Collector for Loadavg {
    type State = ();
    const NAME: &'static str = "loadavg";
    const METRICS: &'static [&'static str] = &[
        names::LOAD_AVERAGE_1M,
        names::LOAD_AVERAGE_5M,
        names::LOAD_AVERAGE_15M,
    ];

    fn enabled(config: &Config) -> bool {
        config.collectors.loadavg.enabled
    }

    fn required(&self) -> &'static [(&'static str, &'static str)] {
        &[("loadavg", "procfs not mounted there?")]
    }

    fn collect(
        &self,
        _: &Config,
        roots: &Roots,
        _: &mut (),
        out: &mut Points,
    ) -> anyhow::Result<()> {
        let text = roots.read_proc("loadavg")?;
        let averages: Vec<f64> = text
            .split_ascii_whitespace()
            .take(3)
            .map(|f| f.parse().map_err(|_| malformed("loadavg", &text)))
            .collect::<anyhow::Result<_>>()?;
        if averages.len() != 3 {
            return Err(malformed("loadavg", &text));
        }
        for (metric, value) in Self::METRICS.iter().zip(averages) {
            out.add(metric, value, vec![]);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framework::collector_test_support::collect_fixture;

    #[test]
    fn fixture_values() {
        let points = collect_fixture(&Loadavg, "host-6.18");
        assert_eq!(points.value(names::LOAD_AVERAGE_1M, &[]), Some(17.73));
        assert_eq!(points.value(names::LOAD_AVERAGE_15M, &[]), Some(7.32));
    }
}
