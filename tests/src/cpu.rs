//! CPU contention: more busy threads than CPUs, so tasks really wait on run queues; and CPU
//! burners in cgroups named like containers, optionally all on one CPU.

use anyhow::Context as _;
use std::path::{Path, PathBuf};
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

/// A cgroup v2 directory named like a docker container (systemd driver) under
/// `huatuo-test-<group>-<pid>`, with CPU burners in it (optionally pinned to one CPU), idle until
/// [`BurningContainer::burn`]; dropping it stops the burners and removes the cgroups.
pub struct BurningContainer {
    dir: PathBuf,
    burners: Vec<std::process::Child>,
}

impl BurningContainer {
    /// `burner` is the `cpu-burner` binary (`env!("CARGO_BIN_EXE_cpu-burner")` in tests).
    pub fn start(
        burner: &Path,
        group: &str,
        id: &str,
        burners: usize,
        cpu: Option<usize>,
    ) -> anyhow::Result<Self> {
        let root = crate::cgroup::unified_root()?;
        let dir = root.join(format!(
            "huatuo-test-{group}-{}/docker-{id}.scope",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let mut container = Self {
            dir,
            burners: Vec::new(),
        };
        for _ in 0..burners {
            let child = std::process::Command::new(burner)
                .arg("60")
                .stdin(std::process::Stdio::piped())
                .spawn()
                .with_context(|| format!("starting {}", burner.display()))?;
            let pid = child.id();
            container.burners.push(child);
            if let Some(cpu) = cpu {
                pin(pid, cpu).with_context(|| format!("pinning cpu-burner {pid} to CPU {cpu}"))?;
            }
            std::fs::write(container.dir.join("cgroup.procs"), pid.to_string())
                .context("moving cpu-burner into its cgroup")?;
        }
        Ok(container)
    }

    /// Lets every burner start burning.
    pub fn burn(&mut self) {
        use std::io::Write;
        for burner in &mut self.burners {
            let stdin = burner.stdin.as_mut().expect("piped");
            stdin
                .write_all(b"go\n")
                .and_then(|_| stdin.flush())
                .unwrap();
        }
    }

    /// The cgroup directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The burners' process ids (each burns on its main thread: also the burning thread's id).
    pub fn pids(&self) -> Vec<String> {
        self.burners.iter().map(|b| b.id().to_string()).collect()
    }
}

impl Drop for BurningContainer {
    fn drop(&mut self) {
        for burner in &mut self.burners {
            let _ = burner.kill();
            let _ = burner.wait();
        }
        let _ = std::fs::remove_dir(&self.dir);
        // The group's last container removes it.
        if let Some(parent) = self.dir.parent() {
            let _ = std::fs::remove_dir(parent);
        }
    }
}

/// Restricts process `pid` (its threads started later inherit it) to `cpu`.
pub fn pin(pid: u32, cpu: usize) -> std::io::Result<()> {
    // SAFETY: a zeroed cpu_set_t is a valid empty set; CPU_SET and sched_setaffinity only read
    // and write the set passed by reference.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        if libc::sched_setaffinity(pid as libc::pid_t, std::mem::size_of_val(&set), &set) != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}
