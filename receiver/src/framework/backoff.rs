//! HuaTuo's back-off for reports that repeat while a condition lasts (a CPU stuck for minutes is
//! reported by the kernel every watchdog period): the first report goes out, later ones only
//! once a window has passed, the window doubling up to a maximum; after a quiet spell with no
//! report at all, it starts over from the initial window. What is held back is counted.

use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackoffPolicy {
    /// Window after the first report admitted (zero: every report is admitted).
    pub initial: Duration,
    pub max: Duration,
    /// A report after this long without any report starts over from `initial`.
    pub reset_after: Duration,
}

pub struct Backoff {
    policy: BackoffPolicy,
    window: Duration,
    last_admitted: Option<Instant>,
    last_seen: Option<Instant>,
    held_back: u64,
}

impl Backoff {
    /// A window that never grows nor resets: one report per `window`.
    pub fn fixed(window: Duration) -> Self {
        Self::new(BackoffPolicy {
            initial: window,
            max: window,
            reset_after: Duration::MAX,
        })
    }

    pub fn new(policy: BackoffPolicy) -> Self {
        Self {
            policy,
            window: policy.initial,
            last_admitted: None,
            last_seen: None,
            held_back: 0,
        }
    }

    /// Whether a report at `now` goes out; if so, how many were held back since the last one
    /// that did.
    pub fn admit(&mut self, now: Instant) -> Option<u64> {
        let quiet = self
            .last_seen
            .is_none_or(|seen| now.saturating_duration_since(seen) >= self.policy.reset_after);
        self.last_seen = Some(now);
        match self.last_admitted {
            Some(_) if quiet => self.window = self.policy.initial,
            Some(last) if now.saturating_duration_since(last) < self.window => {
                self.held_back += 1;
                return None;
            }
            Some(_) => self.window = self.window.saturating_mul(2).min(self.policy.max),
            None => {}
        }
        self.last_admitted = Some(now);
        Some(std::mem::take(&mut self.held_back))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: Duration = Duration::from_secs(60);

    fn huatuo() -> Backoff {
        Backoff::new(BackoffPolicy {
            initial: 10 * MIN,
            max: 180 * MIN,
            reset_after: 60 * MIN,
        })
    }

    #[test]
    fn windows_double_up_to_the_maximum_while_reports_keep_coming() {
        let start = Instant::now();
        let mut backoff = huatuo();
        let mut admitted = Vec::new();
        // A report every 20 s for 9 hours, as from a CPU that stays stuck.
        for i in 0..(9 * 180) {
            let now = start + Duration::from_secs(20 * i);
            if let Some(held) = backoff.admit(now) {
                admitted.push(((now - start).as_secs() / 60, held));
            }
        }
        // Windows 10, 20, 40, 80, 160, then capped at 180 minutes.
        assert_eq!(
            admitted,
            [
                (0, 0),
                (10, 29),
                (30, 59),
                (70, 119),
                (150, 239),
                (310, 479),
                (490, 539)
            ]
        );
    }

    #[test]
    fn a_quiet_hour_starts_over() {
        let start = Instant::now();
        let mut backoff = huatuo();
        assert_eq!(backoff.admit(start), Some(0));
        assert_eq!(backoff.admit(start + 10 * MIN), Some(0));
        // Window now 20 minutes; a report inside it is held back.
        assert_eq!(backoff.admit(start + 15 * MIN), None);
        // An hour without reports: admitted, and the window is back to 10 minutes.
        assert_eq!(backoff.admit(start + 75 * MIN), Some(1));
        assert_eq!(backoff.admit(start + 84 * MIN), None);
        assert_eq!(backoff.admit(start + 85 * MIN), Some(1));
    }

    #[test]
    fn a_zero_window_admits_everything() {
        let now = Instant::now();
        let mut backoff = Backoff::new(BackoffPolicy {
            initial: Duration::ZERO,
            max: Duration::ZERO,
            reset_after: MIN,
        });
        assert_eq!(backoff.admit(now), Some(0));
        assert_eq!(backoff.admit(now), Some(0));
    }

    #[test]
    fn a_fixed_window_admits_once_per_window_and_counts_the_rest() {
        let start = Instant::now();
        let mut backoff = Backoff::fixed(10 * MIN);
        assert_eq!(backoff.admit(start), Some(0));
        assert_eq!(backoff.admit(start + 2 * MIN), None);
        assert_eq!(backoff.admit(start + 4 * MIN), None);
        assert_eq!(backoff.admit(start + 10 * MIN), Some(2));
        // Hours later the window is still 10 minutes.
        assert_eq!(backoff.admit(start + 300 * MIN), Some(0));
        assert_eq!(backoff.admit(start + 309 * MIN), None);
        assert_eq!(backoff.admit(start + 310 * MIN), Some(1));
    }
}
