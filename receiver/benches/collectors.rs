//! CPU time per collection cycle of the host metric collectors, on this host's procfs (or the tree
//! given as the first argument). Prints a Markdown table. Run: `scripts/bench-collectors [PROCFS]`.
//!
//! Each collector runs CYCLES cycles back to back on one thread; the table gives the thread's CPU
//! time and the wall time per cycle, and the points one cycle yields.

use huatuo_config::Config;
use huatuo_receiver::collectors::{
    arp::Arp, buddyinfo::Buddyinfo, cpu::Cpu, diskio::Diskio, loadavg::Loadavg, memory::Memory,
    netdev::Netdev, netstat::Netstat, pressure::Pressure, sockstat::Sockstat, vmstat::Vmstat,
};
use huatuo_receiver::framework::{Collector, Points};
use huatuo_receiver::kernel::Roots;
use std::time::{Duration, Instant};

const CYCLES: u32 = 500;

struct Row {
    name: &'static str,
    points: usize,
    cpu: Duration,
    wall: Duration,
}

fn thread_cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is a valid, writable timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

fn measure<C: Collector>(collector: C, config: &Config, roots: &Roots) -> Row {
    let mut state = C::State::default();
    let mut points = Points::default();
    let (cpu_start, wall_start) = (thread_cpu_time(), Instant::now());
    for _ in 0..CYCLES {
        points = Points::default();
        if let Err(e) = collector.collect(config, roots, &mut state, &mut points) {
            eprintln!("{}: {e:#}", C::NAME);
            break;
        }
    }
    Row {
        name: C::NAME,
        points: points.len(),
        cpu: (thread_cpu_time() - cpu_start) / CYCLES,
        wall: wall_start.elapsed() / CYCLES,
    }
}

fn main() {
    let procfs = std::env::args()
        .nth(1)
        .filter(|a| !a.starts_with('-'))
        .unwrap_or_else(|| "/proc".into());
    let roots = Roots {
        procfs: procfs.clone().into(),
        ..Roots::default()
    };
    let config = Config::default();
    let rows = vec![
        measure(Cpu, &config, &roots),
        measure(Loadavg, &config, &roots),
        measure(Memory, &config, &roots),
        measure(Vmstat, &config, &roots),
        measure(Buddyinfo, &config, &roots),
        measure(Pressure, &config, &roots),
        measure(Diskio, &config, &roots),
        measure(Netdev, &config, &roots),
        measure(Netstat, &config, &roots),
        measure(Sockstat, &config, &roots),
        measure(Arp, &config, &roots),
    ];
    println!("Host collectors on {procfs}, default configuration, {CYCLES} cycles each\n");
    println!("| collector | points per cycle | CPU µs per cycle | wall µs per cycle |");
    println!("|---|---|---|---|");
    for row in &rows {
        println!(
            "| {} | {} | {:.1} | {:.1} |",
            row.name,
            row.points,
            row.cpu.as_secs_f64() * 1e6,
            row.wall.as_secs_f64() * 1e6
        );
    }
    let cpu: Duration = rows.iter().map(|r| r.cpu).sum();
    let wall: Duration = rows.iter().map(|r| r.wall).sum();
    let points: usize = rows.iter().map(|r| r.points).sum();
    println!(
        "| **all host collectors, 0 cgroups** | {points} | {:.1} | {:.1} |",
        cpu.as_secs_f64() * 1e6,
        wall.as_secs_f64() * 1e6
    );
    // Filled in by the container collectors, which read per-cgroup files.
    println!("| all collectors, 50 cgroups | - | (container collectors pending) | - |");
    println!("| all collectors, 500 cgroups | - | (container collectors pending) | - |");
}
