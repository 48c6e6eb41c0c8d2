//! Tasks as procfs shows them: kernel stacks, `kernel.hung_task_timeout_secs`, and the tasks in
//! state D with their stacks (hungtask reports, dload captures).
//!
//! `/proc/<tid>/stack` is already symbolized by the kernel and needs no kallsyms work here; it is
//! readable by root only.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

/// The sysctl whose absence means a kernel without CONFIG_DETECT_HUNG_TASK.
pub const TIMEOUT_SYSCTL: &str = "sys/kernel/hung_task_timeout_secs";

/// Size bound of the blocked tasks' stacks attribute: a storm of distinct stacks must not make
/// one log record megabytes long.
pub const MAX_BLOCKED_BYTES: usize = 64 * 1024;

/// A procfs mount (`/proc`, or a fake tree in tests).
pub struct Procfs {
    root: PathBuf,
}

/// Stacks of the tasks in state D, deduplicated.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct BlockedDump {
    /// Tasks in state D found, whether or not their stacks are in `stacks`.
    pub tasks: u64,
    pub stacks: String,
    /// Tasks found whose stacks are not in `stacks`.
    pub omitted: u64,
}

/// A thread in state D.
#[derive(Debug)]
pub struct BlockedTask {
    /// `/proc/<pid>/task/<tid>`.
    pub dir: PathBuf,
    pub pid: u32,
    pub tid: u32,
    pub comm: String,
}

impl Default for Procfs {
    fn default() -> Self {
        Self::at("/proc")
    }
}

impl Procfs {
    pub fn at(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    pub fn timeout_secs(&self) -> Option<u64> {
        read_trimmed(&self.root.join(TIMEOUT_SYSCTL))?.parse().ok()
    }

    /// The thread group of `tid`, for records of the classic tracepoint, which carry only the tid.
    pub fn tgid(&self, tid: u32) -> Option<u32> {
        let status = fs::read_to_string(self.root.join(format!("{tid}/status"))).ok()?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("Tgid:"))?
            .trim()
            .parse()
            .ok()
    }

    /// `tid`'s kernel stack, one frame per line; None once it has exited, or if it has no frames
    /// (running in user space by now). `/proc/<tid>` resolves any thread, not only leaders.
    pub fn stack(&self, tid: u32) -> Option<String> {
        read_stack(&self.root.join(format!("{tid}/stack")))
    }

    /// Every task in state D, with the stacks of at most `max_stacks` of them grouped by identical
    /// stack (largest group first), the text bounded by [`MAX_BLOCKED_BYTES`].
    pub fn blocked(&self, max_stacks: usize) -> BlockedDump {
        self.blocked_in(max_stacks, |_| true)
    }

    /// [`Procfs::blocked`], for the tasks of the processes `pid_filter` accepts.
    pub fn blocked_in(&self, max_stacks: usize, pid_filter: impl Fn(u32) -> bool) -> BlockedDump {
        let tasks: Vec<_> = self
            .tasks_in_d_state()
            .into_iter()
            .filter(|task| pid_filter(task.pid))
            .collect();
        let mut dump = BlockedDump {
            tasks: tasks.len() as u64,
            ..BlockedDump::default()
        };
        let mut groups: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for BlockedTask { dir, tid, comm, .. } in tasks.iter().take(max_stacks) {
            match read_stack(&dir.join("stack")) {
                Some(stack) => groups
                    .entry(stack)
                    .or_default()
                    .push(format!("{tid} ({comm})")),
                None => dump.omitted += 1,
            }
        }
        dump.omitted += tasks.len().saturating_sub(max_stacks) as u64;
        let mut groups: Vec<(String, Vec<String>)> = groups.into_iter().collect();
        groups.sort_by_key(|g| std::cmp::Reverse(g.1.len()));
        for (stack, members) in groups {
            let noun = if members.len() == 1 { "task" } else { "tasks" };
            let block = format!("{} {noun}: {}\n{stack}", members.len(), members.join(", "));
            let separator = if dump.stacks.is_empty() { 0 } else { 2 };
            if dump.stacks.len() + separator + block.len() > MAX_BLOCKED_BYTES {
                dump.omitted += members.len() as u64;
                continue;
            }
            if separator != 0 {
                dump.stacks.push_str("\n\n");
            }
            dump.stacks.push_str(&block);
        }
        dump
    }

    /// Every thread in state D, in /proc order.
    pub fn tasks_in_d_state(&self) -> Vec<BlockedTask> {
        let mut found = Vec::new();
        for (process_dir, pid) in numeric_entries(&self.root) {
            for (dir, tid) in numeric_entries(&process_dir.join("task")) {
                // Tasks exit while we look: a vanished one is simply not blocked any more.
                let Ok(stat) = fs::read_to_string(dir.join("stat")) else {
                    continue;
                };
                if let Some((comm, 'D')) = parse_stat(&stat) {
                    found.push(BlockedTask {
                        dir,
                        pid,
                        tid,
                        comm: comm.to_owned(),
                    });
                }
            }
        }
        found
    }

    /// `/proc/<tid>/cgroup`: one `hierarchy:controllers:path` line per hierarchy.
    pub fn cgroups(&self, tid: u32) -> Option<String> {
        fs::read_to_string(self.root.join(format!("{tid}/cgroup"))).ok()
    }

    /// The process's cgroup path in the unified (v2) hierarchy, from `/proc/<pid>/cgroup`.
    pub fn unified_cgroup(&self, pid: u32) -> Option<String> {
        self.cgroups(pid)?
            .lines()
            .find_map(|l| l.strip_prefix("0::"))
            .map(str::to_owned)
    }

    /// The id of the process's cgroup in the unified (v2) hierarchy mounted at `unified_root`:
    /// the inode of its directory, as `bpf_get_current_cgroup_id` reports it.
    pub fn cgroup_id(&self, pid: u32, unified_root: &Path) -> Option<u64> {
        use std::os::unix::fs::MetadataExt;
        let path = self.unified_cgroup(pid)?;
        let dir = unified_root.join(path.trim_start_matches('/'));
        Some(fs::metadata(dir).ok()?.ino())
    }

    /// (pid, comm, resident bytes) of every process with resident memory.
    pub fn resident_sets(&self, page_size: u64) -> Vec<(u32, String, u64)> {
        numeric_entries(&self.root)
            .into_iter()
            .filter_map(|(dir, pid)| {
                let statm = fs::read_to_string(dir.join("statm")).ok()?;
                let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
                let comm = read_trimmed(&dir.join("comm"))?;
                (pages > 0).then(|| (pid, comm, pages * page_size))
            })
            .collect()
    }

    /// A field of /proc/meminfo, in bytes.
    pub fn meminfo_bytes(&self, fields: &[&str]) -> anyhow::Result<Vec<u64>> {
        let path = self.root.join("meminfo");
        let text = fs::read_to_string(&path)
            .map_err(|e| anyhow::anyhow!("reading {}: {e}", path.display()))?;
        fields
            .iter()
            .map(|field| {
                text.lines()
                    .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
                    .and_then(|v| v.trim().strip_suffix("kB")?.trim().parse::<u64>().ok())
                    .map(|kib| kib * 1024)
                    .ok_or_else(|| anyhow::anyhow!("{}: no {field} in kB", path.display()))
            })
            .collect()
    }
}

/// Comm and state from a `/proc/<pid>/stat` line. The comm is in parentheses and may itself
/// contain ") ", so the state is what follows the last one.
fn parse_stat(stat: &str) -> Option<(&str, char)> {
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let comm = stat.get(open + 1..close)?;
    let state = stat.get(close + 1..)?.trim_start().chars().next()?;
    Some((comm, state))
}

fn numeric_entries(dir: &Path) -> Vec<(PathBuf, u32)> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<(PathBuf, u32)> = entries
        .flatten()
        .filter_map(|e| {
            let id = e.file_name().to_str()?.parse().ok()?;
            Some((e.path(), id))
        })
        .collect();
    out.sort_by_key(|e| e.1);
    out
}

/// The directories directly under `dir` (none when it cannot be read).
pub fn subdirectories(dir: &Path) -> impl Iterator<Item = PathBuf> {
    fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.path())
}

/// How many of `tasks` sleep in each kernel function (their `wchan`), one `function count` line
/// per function, most common first. A task that left state D meanwhile has no wchan (`0`) and,
/// like one whose file cannot be read, counts as `?`.
pub fn wait_reasons(tasks: &[BlockedTask]) -> String {
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    for task in tasks {
        let wchan = read_trimmed(&task.dir.join("wchan"))
            .filter(|w| !w.is_empty() && w != "0")
            .unwrap_or_else(|| "?".to_owned());
        *counts.entry(wchan).or_default() += 1;
    }
    let mut counts: Vec<(String, u64)> = counts.into_iter().collect();
    counts.sort_by_key(|(_, n)| std::cmp::Reverse(*n));
    counts
        .iter()
        .map(|(wchan, n)| format!("{wchan} {n}"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn read_trimmed(path: &Path) -> Option<String> {
    Some(fs::read_to_string(path).ok()?.trim().to_owned())
}

/// A `stack` file without its `[<0>] ` prefixes: the kernel zeroes the addresses for everyone
/// but root with kptr_restrict, and the symbol+offset is what identifies a frame anyway.
fn read_stack(path: &Path) -> Option<String> {
    let raw = fs::read_to_string(path).ok()?;
    let frames: Vec<&str> = raw
        .lines()
        .map(|l| match l.split_once("] ") {
            Some((prefix, frame)) if prefix.starts_with("[<") => frame,
            _ => l,
        })
        .filter(|f| !f.is_empty())
        .collect();
    (!frames.is_empty()).then(|| frames.join("\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const WRITER_STACK: &str = "[<0>] rwsem_down_write_slowpath+0x2a5/0x8d0\n\
                                [<0>] down_write+0x5b/0x60\n\
                                [<0>] fuse_cache_write_iter+0x5c/0x2a0\n";

    /// A fake /proc with `tasks` as (pid, tid, comm, state, stack).
    fn fake(tasks: &[(u32, u32, &str, char, &str)]) -> (tempfile::TempDir, Procfs) {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("sys/kernel")).unwrap();
        fs::write(dir.path().join(TIMEOUT_SYSCTL), "120\n").unwrap();
        for &(pid, tid, comm, state, stack) in tasks {
            let task = dir.path().join(format!("{pid}/task/{tid}"));
            fs::create_dir_all(&task).unwrap();
            let stat = format!("{tid} ({comm}) {state} 1 {pid} 0 0\n");
            fs::write(task.join("stat"), stat).unwrap();
            fs::write(task.join("stack"), stack).unwrap();
            // The first frame is where the task sleeps, as the kernel's wchan would say.
            let wchan = stack
                .lines()
                .next()
                .and_then(|l| l.split_once("] "))
                .and_then(|(_, frame)| frame.split('+').next());
            fs::write(task.join("wchan"), wchan.unwrap_or("0")).unwrap();
            // What /proc/<tid> shows for any thread, leader or not.
            let by_tid = dir.path().join(tid.to_string());
            fs::create_dir_all(&by_tid).unwrap();
            fs::write(by_tid.join("stack"), stack).unwrap();
            fs::write(
                by_tid.join("status"),
                format!("Name:\t{comm}\nTgid:\t{pid}\n"),
            )
            .unwrap();
        }
        let procfs = Procfs::at(dir.path());
        (dir, procfs)
    }

    #[test]
    fn reads_the_hung_task() {
        let (_dir, procfs) = fake(&[(10, 11, "dd", 'D', WRITER_STACK)]);
        assert_eq!(procfs.timeout_secs(), Some(120));
        assert_eq!(procfs.tgid(11), Some(10));
        assert_eq!(procfs.stack(12), None, "exited");
        assert_eq!(
            procfs.stack(11).as_deref(),
            Some(
                "rwsem_down_write_slowpath+0x2a5/0x8d0\ndown_write+0x5b/0x60\n\
                 fuse_cache_write_iter+0x5c/0x2a0"
            )
        );
    }

    #[test]
    fn groups_identical_stacks_and_skips_other_states() {
        let (_dir, procfs) = fake(&[
            (10, 10, "dd", 'D', WRITER_STACK),
            (10, 12, "dd worker", 'D', WRITER_STACK),
            (
                20,
                20,
                "sync) D x",
                'D',
                "[<0>] wb_wait_for_completion+0x1/0x2\n",
            ),
            (30, 30, "idle", 'S', "[<0>] do_nanosleep+0x1/0x2\n"),
        ]);
        let dump = procfs.blocked(32);
        assert_eq!(dump.tasks, 3);
        assert_eq!(dump.omitted, 0);
        assert_eq!(
            dump.stacks,
            "2 tasks: 10 (dd), 12 (dd worker)\nrwsem_down_write_slowpath+0x2a5/0x8d0\n\
             down_write+0x5b/0x60\nfuse_cache_write_iter+0x5c/0x2a0\n\n\
             1 task: 20 (sync) D x)\nwb_wait_for_completion+0x1/0x2"
        );
    }

    #[test]
    fn counts_wait_reasons_most_common_first() {
        let (dir, procfs) = fake(&[
            (
                20,
                20,
                "sync",
                'D',
                "[<0>] wb_wait_for_completion+0x1/0x2\n",
            ),
            (10, 10, "dd", 'D', WRITER_STACK),
            (10, 12, "dd worker", 'D', WRITER_STACK),
            (30, 30, "gone", 'D', ""),
        ]);
        let tasks = procfs.tasks_in_d_state();
        assert_eq!(tasks.len(), 4);
        assert_eq!(
            wait_reasons(&tasks),
            "rwsem_down_write_slowpath 2\n? 1\nwb_wait_for_completion 1"
        );
        // An exited task's files are gone.
        fs::remove_dir_all(dir.path().join("20")).unwrap();
        assert_eq!(wait_reasons(&tasks), "? 2\nrwsem_down_write_slowpath 2");
        assert_eq!(wait_reasons(&[]), "");
    }

    #[test]
    fn bounds_the_tasks_read_and_the_text() {
        let (_dir, procfs) = fake(&[
            (10, 10, "a", 'D', WRITER_STACK),
            (11, 11, "b", 'D', WRITER_STACK),
            (12, 12, "c", 'D', WRITER_STACK),
        ]);
        let dump = procfs.blocked(2);
        assert_eq!((dump.tasks, dump.omitted), (3, 1));
        assert!(dump.stacks.starts_with("2 tasks: 10 (a), 11 (b)\n"));
        assert_eq!(procfs.blocked(0).stacks, "");

        // About 40 KiB each once the prefixes are gone: one fits, not both.
        let huge = "[<0>] f\n".repeat(MAX_BLOCKED_BYTES * 5 / 16);
        let (_dir, procfs) = fake(&[
            (10, 10, "a", 'D', &huge),
            (11, 11, "b", 'D', "[<0>] g\n"),
            (12, 12, "c", 'D', &format!("{huge}[<0>] h\n")),
        ]);
        let dump = procfs.blocked(32);
        assert!(dump.stacks.len() <= MAX_BLOCKED_BYTES);
        assert_eq!((dump.tasks, dump.omitted), (3, 1));
        assert!(dump.stacks.contains("1 task: 11 (b)\ng"));
    }
}
