//! Waits for a line on stdin, then burns one CPU in user space for the given number of seconds
//! (default 60) in a function whose name the cpuidle test looks for in captured stacks. Exits
//! when stdin closes, so it never outlives the test that spawned it.

use std::hint::black_box;
use std::io::BufRead;
use std::time::{Duration, Instant};

#[inline(never)]
fn huatuo_burn_cpu_in_user_space(until: Instant) -> u64 {
    let mut x = 1u64;
    while Instant::now() < until {
        for _ in 0..100_000 {
            x = black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
        }
    }
    x
}

fn main() {
    let secs = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    if !matches!(std::io::stdin().lock().lines().next(), Some(Ok(_))) {
        return;
    }
    std::thread::spawn(|| {
        for _ in std::io::stdin().lock().lines() {}
        std::process::exit(0);
    });
    black_box(huatuo_burn_cpu_in_user_space(
        Instant::now() + Duration::from_secs(secs),
    ));
}
