//! The offset that moves wall-clock receive stamps onto the monotonic clock the programs read,
//! kept current across NTP slews and clock steps.

use aya::maps::{Array, MapData};
use huatuo_ebpf::netrecvlat::{measure_wall_clock, WallClock};
use std::borrow::BorrowMut;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How often the offset is re-measured: a wall-clock step is noticed within this.
pub const REFRESH: Duration = Duration::from_millis(250);

/// A change of the offset beyond what NTP slewing can do in [`REFRESH`] (at most 500 ppm, 125 µs)
/// is a step of the wall clock.
const STEP_NS: i64 = 1_000_000;

/// The map value for a fresh measurement `offset` taken at `now_mono`, given the previous one.
/// After a step, stamps taken before it are on the old wall clock and would give nonsense
/// latencies: everything stamped before the step was noticed is skipped from then on.
pub fn next(previous: Option<WallClock>, offset: i64, now_mono: u64) -> WallClock {
    let stepped_at_mono_ns = match previous {
        None => 0,
        Some(p) if (offset - p.real_minus_mono_ns).abs() > STEP_NS => now_mono,
        Some(p) => p.stepped_at_mono_ns,
    };
    WallClock {
        real_minus_mono_ns: offset,
        stepped_at_mono_ns,
    }
}

/// Measures and writes the offset; returns what was written.
pub fn write<M: BorrowMut<MapData>>(
    map: &mut Array<M, WallClock>,
    previous: Option<WallClock>,
) -> anyhow::Result<WallClock> {
    let (offset, now) = measure_wall_clock();
    let value = next(previous, offset, now);
    map.set(0, value, 0)?;
    if previous.is_some_and(|p| p.stepped_at_mono_ns != value.stepped_at_mono_ns) {
        tracing::warn!(
            tracer = super::NAME,
            step_ns = offset - previous.map_or(offset, |p| p.real_minus_mono_ns),
            "wall clock stepped; packets stamped before now are not measured"
        );
    }
    Ok(value)
}

/// Keeps the map current every [`REFRESH`] until `cancel`.
pub fn keep_current(
    mut map: Array<MapData, WallClock>,
    mut current: WallClock,
    cancel: CancellationToken,
) {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(REFRESH);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = cancel.cancelled() => break,
                _ = ticks.tick() => match write(&mut map, Some(current)) {
                    Ok(value) => current = value,
                    Err(e) => tracing::warn!(tracer = super::NAME, error = %e, "updating the wall clock offset"),
                },
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slews_keep_and_steps_move_the_trust_horizon() {
        let first = next(None, 1_000_000_000, 50);
        assert_eq!(first.stepped_at_mono_ns, 0);
        // NTP slewing: a few µs per refresh.
        let slewed = next(Some(first), 1_000_000_000 + 40_000, 100);
        assert_eq!(slewed.stepped_at_mono_ns, 0);
        assert_eq!(slewed.real_minus_mono_ns, 1_000_040_000);
        // A step either way.
        let back = next(Some(slewed), 1_000_040_000 - 2_000_000_000, 150);
        assert_eq!(back.stepped_at_mono_ns, 150);
        let kept = next(Some(back), back.real_minus_mono_ns, 200);
        assert_eq!(kept.stepped_at_mono_ns, 150);
        assert_eq!(
            next(Some(kept), kept.real_minus_mono_ns + 5_000_000, 250).stepped_at_mono_ns,
            250
        );
    }
}
