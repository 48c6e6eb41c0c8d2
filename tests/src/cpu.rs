//! CPU contention: more busy threads than CPUs, so tasks really wait on run queues.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Threads spinning (yielding now and then) until dropped: three per CPU, so each waits for a
/// CPU most of the time.
pub struct CpuContention {
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl CpuContention {
    pub fn start() -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
        let threads = (0..3 * cpus)
            .map(|_| {
                let stop = stop.clone();
                std::thread::spawn(move || {
                    // Bounded in time even if the guard is leaked.
                    let give_up = Instant::now() + Duration::from_secs(60);
                    while !stop.load(Ordering::Relaxed) && Instant::now() < give_up {
                        let spin = Instant::now();
                        while spin.elapsed() < Duration::from_millis(2) {
                            std::hint::spin_loop();
                        }
                        std::thread::yield_now();
                    }
                })
            })
            .collect();
        Self { stop, threads }
    }
}

impl Drop for CpuContention {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}
