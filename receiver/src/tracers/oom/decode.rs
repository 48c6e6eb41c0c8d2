//! From the raw `oom_event` record (plus what was read from the system) to its OTel event.

use super::snapshot::Snapshot;
use crate::attribution::Owner;
use crate::kernel::BootClock;
use crate::telemetry::Event;
use huatuo_ebpf::oom::OomEvent;
use huatuo_semconv::{memory as names, net};
use opentelemetry::logs::{AnyValue, Severity};

/// Kernel counts are u64; OTel integers are i64, and no real size or count reaches 2^63.
fn int(value: impl Into<u64>) -> AnyValue {
    AnyValue::Int(i64::try_from(value.into()).unwrap_or(i64::MAX))
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

/// The OTel mapping of one kill.
pub fn to_event(raw: &OomEvent, snapshot: &Snapshot, clock: BootClock) -> Event {
    let trigger_comm = raw.trigger_comm().into_owned();
    let mut attributes: Vec<(&'static str, AnyValue)> = vec![
        (net::PROCESS_PID, int(raw.trigger_pid)),
        (net::THREAD_ID, int(raw.trigger_tid)),
        (net::THREAD_NAME, trigger_comm.clone().into()),
        (names::OOM_VICTIM_PID, int(raw.victim_pid)),
        (names::OOM_VICTIM_TID, int(raw.victim_tid)),
    ];
    let mut victim = format!("pid {}", raw.victim_pid);
    if raw.has_victim_details() {
        let comm = raw.victim_comm().into_owned();
        victim = format!(
            "pid {} ({comm}, anon-rss {})",
            raw.victim_pid,
            mib(raw.victim_anon_rss)
        );
        attributes.extend([
            (names::OOM_VICTIM_COMM, comm.into()),
            (names::OOM_VICTIM_UID, int(raw.victim_uid)),
            (
                names::OOM_VICTIM_OOM_SCORE_ADJ,
                i64::from(raw.victim_oom_score_adj).into(),
            ),
            (names::OOM_VICTIM_MEMORY_VIRTUAL, int(raw.victim_total_vm)),
            (names::OOM_VICTIM_RSS_ANON, int(raw.victim_anon_rss)),
            (names::OOM_VICTIM_RSS_FILE, int(raw.victim_file_rss)),
            (names::OOM_VICTIM_RSS_SHMEM, int(raw.victim_shmem_rss)),
            (names::OOM_VICTIM_PAGE_TABLES, int(raw.victim_pgtables)),
        ]);
    }
    if raw.victim_memcg_id != 0 {
        attributes.push((names::MEMCG_ID, int(raw.victim_memcg_id)));
    }
    let mut memcg = String::new();
    if let Some((path, stats)) = &snapshot.victim_memcg {
        memcg = format!(" in memory cgroup {path}");
        if let Some(limit) = stats.limit {
            memcg.push_str(&format!(" (limit {})", mib(limit)));
        }
        // Usage read from the files would be after the kill freed memory; only the kernel's
        // reading is from the moment of the kill.
        let usage = if raw.has_victim_task() {
            (raw.victim_memcg_usage != 0).then_some(raw.victim_memcg_usage)
        } else {
            stats.usage
        };
        attributes.push((names::MEMCG_PATH, path.clone().into()));
        for (name, value) in [
            (names::MEMCG_LIMIT, stats.limit),
            (names::MEMCG_USAGE, usage),
            (names::MEMCG_USAGE_PEAK, stats.peak),
            (names::MEMCG_EVENTS_MAX, stats.events_max),
            (names::MEMCG_EVENTS_OOM, stats.events_oom),
            (names::MEMCG_EVENTS_OOM_KILL, stats.events_oom_kill),
        ] {
            if let Some(value) = value {
                attributes.push((name, int(value)));
            }
        }
    }
    if let Some(path) = &snapshot.trigger_memcg {
        attributes.push((names::OOM_TRIGGER_MEMCG_PATH, path.clone().into()));
    }
    attributes.extend(
        snapshot
            .meminfo
            .iter()
            .map(|&(name, bytes)| (name, int(bytes))),
    );
    Event {
        name: names::OOM_KILL,
        tracer: super::NAME,
        time: clock.to_system_time(raw.ts_ns),
        severity: Severity::Error,
        body: format!(
            "OOM killer chose {victim}{memcg}; allocation by pid {} ({trigger_comm})",
            raw.trigger_pid
        ),
        attributes,
        // Which container was killed: the victim's memory cgroup names it.
        owner: Owner::cgroup(raw.trigger_cgroup_id)
            .with_cgroup_path(snapshot.victim_memcg.as_ref().map(|(path, _)| path.clone())),
        span: None,
    }
}

#[cfg(test)]
mod tests {
    use super::super::snapshot::{meminfo, MemcgStats};
    use super::*;
    use crate::tracers::test_support::{assert_registered, attr, reparse};
    use huatuo_ebpf::oom::{FLAG_VICTIM_DETAILS, FLAG_VICTIM_TASK};

    fn comm(text: &str) -> [u8; 16] {
        let mut out = [0; 16];
        out[..text.len()].copy_from_slice(text.as_bytes());
        out
    }

    /// A kill in a 64 MiB memory cgroup as Linux 6.9+ reports it through tp_btf.
    fn kill() -> OomEvent {
        let mut raw = OomEvent::from_bytes(&[0; OomEvent::SIZE]).unwrap();
        raw.ts_ns = 1_000;
        raw.trigger_cgroup_id = 7;
        raw.trigger_memcg_id = 900;
        raw.victim_memcg_id = 900;
        raw.victim_memcg_usage = 64 << 20;
        raw.victim_total_vm = 300 << 20;
        raw.victim_anon_rss = 63 << 20;
        raw.victim_file_rss = 1 << 20;
        raw.victim_pgtables = 256 << 10;
        raw.trigger_pid = 4242;
        raw.trigger_tid = 4243;
        raw.victim_pid = 4242;
        raw.victim_tid = 4243;
        raw.victim_uid = 1000;
        raw.flags = FLAG_VICTIM_TASK | FLAG_VICTIM_DETAILS;
        raw.victim_oom_score_adj = 500;
        raw.trigger_comm = comm("hog");
        raw.victim_comm = comm("hog");
        raw
    }

    fn snapshot() -> Snapshot {
        Snapshot {
            victim_memcg: Some((
                "/jobs/42".into(),
                MemcgStats {
                    limit: Some(64 << 20),
                    usage: Some(4096),
                    peak: Some(64 << 20),
                    events_max: Some(210),
                    events_oom: None,
                    events_oom_kill: Some(1),
                },
            )),
            trigger_memcg: Some("/jobs/42".into()),
            meminfo: meminfo("MemTotal: 1024 kB\nMemAvailable: 512 kB\n"),
        }
    }

    #[test]
    fn parses_a_record_byte_for_byte() {
        let raw = kill();
        let (parsed, short) = reparse(&raw);
        assert_eq!(parsed, raw);
        assert!(short.contains("expected 144"), "{short}");
    }

    #[test]
    fn maps_a_kill_to_registered_names() {
        let event = to_event(&kill(), &snapshot(), BootClock::now());
        assert_registered(&event);
        assert_eq!(event.name, names::OOM_KILL);
        assert_eq!(event.severity, Severity::Error);
        assert_eq!(event.owner.cgroup_id, Some(7));
        for (key, value) in [
            (net::PROCESS_PID, 4242),
            (net::THREAD_ID, 4243),
            (names::OOM_VICTIM_PID, 4242),
            (names::OOM_VICTIM_UID, 1000),
            (names::OOM_VICTIM_OOM_SCORE_ADJ, 500),
            (names::OOM_VICTIM_RSS_ANON, 63 << 20),
            (names::OOM_VICTIM_PAGE_TABLES, 256 << 10),
            (names::MEMCG_ID, 900),
            (names::MEMCG_LIMIT, 64 << 20),
            // The kernel's reading at the kill, not the file's after it.
            (names::MEMCG_USAGE, 64 << 20),
            (names::MEMCG_EVENTS_MAX, 210),
            (names::MEMCG_EVENTS_OOM_KILL, 1),
            (names::HOST_MEMORY_TOTAL, 1 << 20),
            (names::HOST_MEMORY_AVAILABLE, 512 << 10),
        ] {
            assert_eq!(attr(&event, key), Some(&AnyValue::Int(value)), "{key}");
        }
        assert_eq!(
            attr(&event, names::OOM_VICTIM_COMM),
            Some(&AnyValue::from("hog"))
        );
        assert_eq!(
            attr(&event, names::MEMCG_PATH),
            Some(&AnyValue::from("/jobs/42"))
        );
        assert_eq!(attr(&event, names::MEMCG_EVENTS_OOM), None);
        assert_eq!(
            event.body,
            "OOM killer chose pid 4242 (hog, anon-rss 63.0 MiB) in memory cgroup /jobs/42 \
             (limit 64.0 MiB); allocation by pid 4242 (hog)"
        );
    }

    #[test]
    fn old_kernels_report_only_the_pid() {
        let mut raw = kill();
        raw.flags = 0;
        raw.victim_memcg_id = 0;
        raw.victim_memcg_usage = 0;
        let event = to_event(&raw, &snapshot(), BootClock::now());
        assert_registered(&event);
        assert_eq!(attr(&event, names::OOM_VICTIM_COMM), None);
        assert_eq!(attr(&event, names::OOM_VICTIM_RSS_ANON), None);
        assert_eq!(attr(&event, names::MEMCG_ID), None);
        // Without the kernel's reading, the cgroup file's is the best there is.
        assert_eq!(attr(&event, names::MEMCG_USAGE), Some(&AnyValue::Int(4096)));
        assert!(event
            .body
            .starts_with("OOM killer chose pid 4242 in memory"));
    }

    #[test]
    fn unknown_cgroups_leave_their_attributes_out() {
        let empty = Snapshot::default();
        let event = to_event(&kill(), &empty, BootClock::now());
        assert_registered(&event);
        for key in [
            names::MEMCG_PATH,
            names::MEMCG_LIMIT,
            names::MEMCG_USAGE,
            names::OOM_TRIGGER_MEMCG_PATH,
        ] {
            assert_eq!(attr(&event, key), None, "{key}");
        }
        assert_eq!(
            event.body,
            "OOM killer chose pid 4242 (hog, anon-rss 63.0 MiB); allocation by pid 4242 (hog)"
        );
    }
}
