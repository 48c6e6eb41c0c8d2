//! On-CPU stack sampling for autotracing CPU captures: the `cpuprofile` program on a cpu-clock
//! perf event on every online CPU for a bounded time, counts aggregated in the kernel, then
//! symbolized (kernel frames from /proc/kallsyms, user frames from the mapped ELF files) into
//! folded stacks, the input of flame graphs: `comm;outer;...;inner count`, kernel frames
//! suffixed `_[k]`.

mod user_symbols;

use crate::attribution::Owner;
use crate::framework::Capture;
use crate::ksyms::KernelSymbols;
use crate::telemetry::Event;
use anyhow::Context as _;
use aya::maps::{CgroupArray, PerCpuHashMap, StackTraceMap};
use aya::programs::perf_event::{PerfEventConfig, PerfEventScope, SamplePolicy, SoftwareEvent};
use aya::programs::PerfEvent;
use aya::EbpfLoader;
use huatuo_ebpf::cpuprofile::{self as abi, CpuProfileKey};
use huatuo_semconv::autotracing as names;
use opentelemetry::logs::{AnyValue, Severity};
use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

/// Time a capture may spend reading ELF files to name user frames.
const SYMBOLIZE_TIME: Duration = Duration::from_secs(10);
use user_symbols::UserSymbolizer;

/// What to sample.
pub struct ProfileRequest {
    pub duration: Duration,
    pub frequency_hz: u64,
    /// Only tasks under this cgroup v2 directory (descendants included); the host otherwise.
    pub cgroup_dir: Option<PathBuf>,
}

/// Size bound of the folded stacks of one capture; the least sampled stacks are left out beyond.
pub const MAX_FOLDED_BYTES: usize = 64 * 1024;

/// What was sampled.
#[derive(Debug, Default)]
pub struct Profile {
    pub samples: u64,
    /// Distinct stacks sampled.
    pub stacks: u64,
    /// Folded stacks, most sampled first, one per line.
    pub folded: String,
    /// Samples of the stacks left out of `folded` by its size bound.
    pub omitted_samples: u64,
}

/// Samples for `request.duration`, blocking the calling thread.
pub fn profile(request: &ProfileRequest) -> anyhow::Result<Profile> {
    let filter = u8::from(request.cgroup_dir.is_some());
    let mut ebpf = EbpfLoader::new()
        .override_global(abi::GLOBAL_FILTER_CGROUP, &filter, true)
        .load(huatuo_ebpf::CPUPROFILE)
        .context("loading the cpuprofile BPF object")?;
    if let Some(dir) = &request.cgroup_dir {
        let cgroup = std::fs::File::open(dir)
            .with_context(|| format!("opening cgroup {}", dir.display()))?;
        let mut target = CgroupArray::try_from(
            ebpf.map_mut(abi::TARGET_CGROUP_MAP)
                .context("no target_cgroup map")?,
        )?;
        target.set(0, cgroup, 0)?;
    }
    let program: &mut PerfEvent = ebpf
        .program_mut(abi::PROG)
        .context("no cpuprofile program")?
        .try_into()?;
    program.load()?;
    for cpu in online_cpus()? {
        program
            .attach(
                PerfEventConfig::Software(SoftwareEvent::CpuClock),
                PerfEventScope::AllProcessesOneCpu { cpu },
                SamplePolicy::Frequency(request.frequency_hz),
                false,
            )
            .with_context(|| format!("attaching the cpu-clock sampler on CPU {cpu}"))?;
    }
    std::thread::sleep(request.duration);
    // Stop sampling before reading, so the counts describe exactly the requested window.
    let program: &mut PerfEvent = ebpf
        .program_mut(abi::PROG)
        .context("no program")?
        .try_into()?;
    program.unload()?;

    let samples: PerCpuHashMap<_, CpuProfileKey, u64> =
        PerCpuHashMap::try_from(ebpf.map(abi::SAMPLES_MAP).context("no samples map")?)?;
    let stacks = StackTraceMap::try_from(ebpf.map(abi::STACKS_MAP).context("no stacks map")?)?;
    let mut counts: Vec<(CpuProfileKey, u64)> = Vec::new();
    for entry in samples.iter() {
        let (key, per_cpu) = entry?;
        counts.push((key, per_cpu.iter().sum()));
    }
    let kernel = KernelSymbols::load().context("reading /proc/kallsyms")?;
    let mut user = UserSymbolizer::default();
    let mut folded: HashMap<String, u64> = HashMap::new();
    // Most sampled first, so when symbolizing runs out of time only the rarest stacks are
    // left with raw addresses.
    counts.sort_by_key(|(_, count)| std::cmp::Reverse(*count));
    let symbolize_until = Instant::now() + SYMBOLIZE_TIME;
    for (key, count) in &counts {
        let frames = |id: i32| {
            u32::try_from(id)
                .ok()
                .and_then(|id| stacks.get(&id, 0).ok())
                .map(|s| s.frames().iter().map(|f| f.ip).collect::<Vec<_>>())
                .unwrap_or_default()
        };
        let mut line = key.comm().into_owned();
        let in_time = Instant::now() < symbolize_until;
        for ip in frames(key.user_stack_id).iter().rev() {
            line.push(';');
            if in_time {
                line.push_str(&user.symbolize(key.pid, *ip));
            } else {
                line.push_str(&format!("{ip:#x}"));
            }
        }
        for ip in frames(key.kernel_stack_id).iter().rev() {
            line.push(';');
            line.push_str(kernel.function(*ip).unwrap_or("[unknown]"));
            line.push_str("_[k]");
        }
        *folded.entry(line).or_default() += count;
    }
    Ok(fold(folded, MAX_FOLDED_BYTES))
}

/// An autotracing capture of `tracer`: a profile, as the span's sampling figures and one
/// `huatuo.cpu.profile` record with the folded stacks.
pub fn capture_profile(tracer: &'static str, request: &ProfileRequest) -> anyhow::Result<Capture> {
    let profile = profile(request)?;
    let attributes = vec![
        (names::PROFILE_SAMPLES, int(profile.samples)),
        (names::PROFILE_STACKS, int(profile.stacks)),
        (names::PROFILE_FREQUENCY, int(request.frequency_hz)),
        (names::PROFILE_DURATION, int(request.duration.as_secs())),
    ];
    let mut record = attributes.clone();
    record.push((names::PROFILE_OMITTED_SAMPLES, int(profile.omitted_samples)));
    record.push((names::PROFILE_FOLDED, profile.folded.into()));
    Ok(Capture {
        attributes,
        events: vec![Event {
            name: names::CPU_PROFILE,
            tracer,
            time: SystemTime::now(),
            severity: Severity::Info,
            body: format!(
                "{} on-CPU samples in {} stacks over {} s",
                profile.samples,
                profile.stacks,
                request.duration.as_secs()
            ),
            attributes: record,
            owner: Owner::default(),
            span: None,
        }],
    })
}

fn int(value: u64) -> AnyValue {
    AnyValue::Int(i64::try_from(value).unwrap_or(i64::MAX))
}

/// Most sampled first, bounded in size.
fn fold(stacks: HashMap<String, u64>, max_bytes: usize) -> Profile {
    let mut stacks: Vec<(String, u64)> = stacks.into_iter().collect();
    stacks.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let mut profile = Profile {
        samples: stacks.iter().map(|s| s.1).sum(),
        stacks: stacks.len() as u64,
        ..Profile::default()
    };
    for (stack, count) in stacks {
        let line = format!("{stack} {count}\n");
        if profile.folded.len() + line.len() > max_bytes {
            profile.omitted_samples += count;
        } else {
            profile.folded.push_str(&line);
        }
    }
    profile
}

pub fn online_cpus() -> anyhow::Result<Vec<u32>> {
    let path = "/sys/devices/system/cpu/online";
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {path}"))?;
    parse_cpu_list(text.trim()).with_context(|| format!("{path}: {:?}", text.trim()))
}

/// `0-3,8,10-11` → [0, 1, 2, 3, 8, 10, 11].
pub fn parse_cpu_list(list: &str) -> anyhow::Result<Vec<u32>> {
    let mut cpus = Vec::new();
    for part in list.split(',').filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((first, last)) => cpus.extend(first.parse::<u32>()?..=last.parse::<u32>()?),
            None => cpus.push(part.parse()?),
        }
    }
    Ok(cpus)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists() {
        assert_eq!(
            parse_cpu_list("0-3,8,10-11").unwrap(),
            [0, 1, 2, 3, 8, 10, 11]
        );
        assert_eq!(parse_cpu_list("0").unwrap(), [0]);
        assert!(parse_cpu_list("x").is_err());
    }

    #[test]
    fn folding_keeps_the_most_sampled_stacks_within_the_bound() {
        let stacks = HashMap::from([
            ("a;b".to_string(), 5),
            ("a;c".to_string(), 9),
            ("d".to_string(), 1),
        ]);
        let profile = fold(stacks, 15);
        assert_eq!(profile.folded, "a;c 9\na;b 5\n");
        assert_eq!(
            (profile.samples, profile.stacks, profile.omitted_samples),
            (15, 3, 1)
        );
    }
}
