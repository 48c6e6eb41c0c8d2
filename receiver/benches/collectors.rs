//! CPU time per collection cycle of every metric collector, host and per-container, on this
//! host's procfs (or the tree given as the first argument), with 0, 50 and 500 container cgroups
//! present. Prints a Markdown table. Run as root: `scripts/bench-collectors [PROCFS]`.
//!
//! For the 50 and 500 rows the benchmark creates that many cgroups named like docker containers
//! in every hierarchy the container collectors read, each with one sleeping task in the host's
//! network namespace (so the network collector resolves and skips them), and removes them after,
//! also on failure (the guards' Drop). Each collector runs back to back on one thread; the table
//! gives the thread's CPU time per cycle and the points one cycle yields.

use huatuo_config::Config;
use huatuo_otel_tests::cgroup::ContainerCgroups;
use huatuo_receiver::collectors::{
    arp::Arp, buddyinfo::Buddyinfo, container_cpu::ContainerCpu, container_io::ContainerIo,
    container_memory::ContainerMemory, container_netdev::ContainerNetdev, cpu::Cpu, diskio::Diskio,
    loadavg::Loadavg, memory::Memory, netdev::Netdev, netstat::Netstat, pressure::Pressure,
    qdisc::Qdisc, sockstat::Sockstat, vmstat::Vmstat,
};
use huatuo_receiver::framework::{Collector, Points};
use huatuo_receiver::kernel::Roots;
use std::process::{Child, Command};
use std::time::Duration;

const CGROUPS: [usize; 3] = [0, 50, 500];

/// (name, points per cycle, CPU per cycle).
type Row = (&'static str, usize, Duration);

fn thread_cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is a valid, writable timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

fn measure<C: Collector>(collector: C, config: &Config, roots: &Roots, cycles: u32) -> Row {
    let mut state = C::State::default();
    let mut points = Points::default();
    let cpu_start = thread_cpu_time();
    for _ in 0..cycles {
        points = Points::default();
        if let Err(e) = collector.collect(config, roots, &mut state, &mut points) {
            eprintln!("{}: {e:#}", C::NAME);
            break;
        }
    }
    (
        C::NAME,
        points.len(),
        (thread_cpu_time() - cpu_start) / cycles,
    )
}

fn all(config: &Config, roots: &Roots, cycles: u32) -> Vec<Row> {
    vec![
        measure(Cpu, config, roots, cycles),
        measure(Loadavg, config, roots, cycles),
        measure(Memory, config, roots, cycles),
        measure(Vmstat, config, roots, cycles),
        measure(Buddyinfo, config, roots, cycles),
        measure(Pressure, config, roots, cycles),
        measure(Diskio, config, roots, cycles),
        measure(Netdev, config, roots, cycles),
        measure(Netstat, config, roots, cycles),
        measure(Sockstat, config, roots, cycles),
        measure(Arp, config, roots, cycles),
        measure(Qdisc, config, roots, cycles),
        measure(ContainerCpu::default(), config, roots, cycles),
        measure(ContainerMemory::default(), config, roots, cycles),
        measure(ContainerIo::default(), config, roots, cycles),
        measure(ContainerNetdev::default(), config, roots, cycles),
    ]
}

/// `count` container cgroups with a sleeping task each; the tasks are killed and reaped on drop,
/// before the cgroups' own cleanup.
struct Containers {
    sleepers: Vec<Child>,
    cgroups: ContainerCgroups,
}

impl Containers {
    fn create(count: usize) -> anyhow::Result<Self> {
        let cgroups = ContainerCgroups::create("bench", count)?;
        let mut containers = Self {
            sleepers: Vec::new(),
            cgroups,
        };
        for index in 0..count {
            let sleeper = Command::new("sleep").arg("3600").spawn()?;
            let pid = sleeper.id();
            containers.sleepers.push(sleeper);
            containers.cgroups.add(index, pid)?;
        }
        Ok(containers)
    }
}

impl Drop for Containers {
    fn drop(&mut self) {
        for sleeper in &mut self.sleepers {
            let _ = sleeper.kill();
            let _ = sleeper.wait();
        }
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
    let mut columns = Vec::new();
    for count in CGROUPS {
        // Fewer cycles where one cycle reads thousands of files.
        let cycles = match count {
            0 => 500,
            50 => 100,
            _ => 20,
        };
        let containers = match count {
            0 => None,
            _ => match Containers::create(count) {
                Ok(c) => Some(c),
                Err(e) => {
                    eprintln!("{count} container cgroups: {e:#} (needs root)");
                    break;
                }
            },
        };
        columns.push((count, all(&config, &roots, cycles)));
        drop(containers);
    }
    println!("Collectors on {procfs} and /sys, default configuration, CPU time per cycle\n");
    let header: Vec<String> = columns
        .iter()
        .map(|(n, _)| format!("points, {n} cgroups | CPU µs, {n} cgroups"))
        .collect();
    println!("| collector | {} |", header.join(" | "));
    println!("|---|{}", "---|---|".repeat(columns.len()));
    let Some((_, first)) = columns.first() else {
        return;
    };
    for (i, (name, ..)) in first.iter().enumerate() {
        let cells: Vec<String> = columns
            .iter()
            .map(|(_, rows)| format!("{} | {:.1}", rows[i].1, rows[i].2.as_secs_f64() * 1e6))
            .collect();
        println!("| {name} | {} |", cells.join(" | "));
    }
    let totals: Vec<String> = columns
        .iter()
        .map(|(_, rows)| {
            let points: usize = rows.iter().map(|r| r.1).sum();
            let cpu: Duration = rows.iter().map(|r| r.2).sum();
            format!("**{points}** | **{:.1}**", cpu.as_secs_f64() * 1e6)
        })
        .collect();
    println!("| **all collectors** | {} |", totals.join(" | "));
}
