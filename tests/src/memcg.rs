//! Throwaway memory cgroups for tests that need a real OOM kill: a cgroup with a small limit and
//! no swap in whichever hierarchy has the memory controller (v1 or v2), a child process that
//! touches more anonymous memory than that, and cleanup (kill what is left, remove the
//! directory) whatever the test's outcome.

use std::ffi::CString;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};

/// Bound on waiting for a cgroup's tasks to die and its directory to go.
const CLEANUP: Duration = Duration::from_secs(10);
const POLL: Duration = Duration::from_millis(20);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CgroupVersion {
    V1,
    V2,
}

/// A memory cgroup at the top of the memory hierarchy. Dropping it kills every task left in it
/// and removes it.
pub struct MemoryCgroup {
    dir: PathBuf,
    path: String,
    version: CgroupVersion,
    /// Ancestors this guard created (outermost first), removed after the cgroup.
    parents: Vec<PathBuf>,
}

impl MemoryCgroup {
    /// Creates `/huatuo-test-<pid>-<tag>` limited to `limit` bytes of memory and no swap; `tag`
    /// keeps cgroups of one test process apart.
    pub fn create(tag: &str, limit: u64) -> anyhow::Result<Self> {
        Self::create_at(&format!("/huatuo-test-{}-{tag}", std::process::id()), limit)
    }

    /// Creates the cgroup at `path` (relative to the hierarchy's mount, e.g. named the way a
    /// container runtime names its cgroups), with the ancestors that do not exist yet.
    pub fn create_at(path: &str, limit: u64) -> anyhow::Result<Self> {
        let (root, version) = memory_hierarchy()?;
        let dir = root.join(path.trim_start_matches('/'));
        let mut parents = Vec::new();
        for ancestor in dir.ancestors().skip(1).take_while(|a| *a != root) {
            if !ancestor.exists() {
                parents.insert(0, ancestor.to_path_buf());
            }
        }
        for parent in &parents {
            std::fs::create_dir(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        if let Err(e) = std::fs::create_dir(&dir) {
            for parent in parents.iter().rev() {
                let _ = std::fs::remove_dir(parent);
            }
            return Err(e).with_context(|| format!("creating {}", dir.display()));
        }
        // From here on the guard owns the directories, so a failure below still removes them.
        let path = path.to_string();
        let cgroup = Self {
            dir,
            path,
            version,
            parents,
        };
        let limit = limit.to_string();
        match version {
            CgroupVersion::V1 => {
                cgroup.write("memory.limit_in_bytes", &limit)?;
                // memory+swap may not go below memory, hence after it; absent without swap
                // accounting, where there is nothing to limit.
                if cgroup.dir.join("memory.memsw.limit_in_bytes").exists() {
                    cgroup.write("memory.memsw.limit_in_bytes", &limit)?;
                }
            }
            CgroupVersion::V2 => {
                cgroup.write("memory.max", &limit)?;
                if cgroup.dir.join("memory.swap.max").exists() {
                    cgroup.write("memory.swap.max", "0")?;
                }
            }
        }
        Ok(cgroup)
    }

    /// Path relative to the hierarchy's mount, as `/proc/<pid>/cgroup` and the agent show it.
    pub fn path(&self) -> &str {
        &self.path
    }

    pub fn version(&self) -> CgroupVersion {
        self.version
    }

    /// The kernel's id for the cgroup: its directory's inode.
    pub fn id(&self) -> anyhow::Result<u64> {
        Ok(std::fs::metadata(&self.dir)?.ino())
    }

    /// Forks a child that moves itself into this cgroup, sets its `oom_score_adj`, touches
    /// `bytes` of anonymous memory page by page, and exits 0 if it was not killed first.
    pub fn spawn_hog(&self, bytes: usize, oom_score_adj: i32) -> anyhow::Result<Hog> {
        let procs = c_path(&self.dir.join("cgroup.procs"))?;
        let adj_path = CString::new("/proc/self/oom_score_adj")?;
        let adj = oom_score_adj.to_string();
        // SAFETY: the child only makes async-signal-safe calls (prctl, open, write, close, mmap,
        // _exit) on memory prepared before the fork; it never returns into Rust code.
        let pid = unsafe { libc::fork() };
        if pid < 0 {
            return Err(std::io::Error::last_os_error()).context("fork");
        }
        if pid == 0 {
            // SAFETY: see above.
            unsafe { hog(&procs, &adj_path, adj.as_bytes(), bytes) }
        }
        Ok(Hog { pid, status: None })
    }

    fn write(&self, file: &str, value: &str) -> anyhow::Result<()> {
        let path = self.dir.join(file);
        std::fs::write(&path, value)
            .with_context(|| format!("writing {value} to {}", path.display()))
    }

    fn pids(&self) -> Vec<libc::pid_t> {
        std::fs::read_to_string(self.dir.join("cgroup.procs"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect()
    }
}

impl Drop for MemoryCgroup {
    fn drop(&mut self) {
        let deadline = Instant::now() + CLEANUP;
        loop {
            let pids = self.pids();
            if pids.is_empty() {
                break;
            }
            for pid in pids {
                // SAFETY: kill has no memory-safety preconditions.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
            if Instant::now() >= deadline {
                eprintln!("{}: tasks still running; leaving it", self.dir.display());
                return;
            }
            std::thread::sleep(POLL);
        }
        // The last task may still be on its way out: rmdir fails with EBUSY until it is.
        while let Err(e) = std::fs::remove_dir(&self.dir) {
            if Instant::now() >= deadline {
                eprintln!("cannot remove {}: {e}", self.dir.display());
                return;
            }
            std::thread::sleep(POLL);
        }
        for parent in self.parents.iter().rev() {
            if let Err(e) = std::fs::remove_dir(parent) {
                eprintln!("cannot remove {}: {e}", parent.display());
            }
        }
    }
}

/// The child started by [`MemoryCgroup::spawn_hog`]. Dropping it kills and reaps it.
pub struct Hog {
    pid: libc::pid_t,
    status: Option<libc::c_int>,
}

impl Hog {
    pub fn pid(&self) -> u32 {
        self.pid as u32
    }

    /// Waits up to `timeout` for the child to die of a signal and returns the signal; an error
    /// if it exits by itself (it ran without hitting the limit) or is still running.
    pub fn wait_killed(&mut self, timeout: Duration) -> anyhow::Result<libc::c_int> {
        let deadline = Instant::now() + timeout;
        let status = loop {
            if let Some(status) = self.try_wait()? {
                break status;
            }
            if Instant::now() >= deadline {
                bail!("hog {} still running after {timeout:?}", self.pid);
            }
            std::thread::sleep(POLL);
        };
        if libc::WIFSIGNALED(status) {
            return Ok(libc::WTERMSIG(status));
        }
        bail!(
            "hog {} was not killed: it exited with status {}",
            self.pid,
            libc::WEXITSTATUS(status)
        )
    }

    fn try_wait(&mut self) -> anyhow::Result<Option<libc::c_int>> {
        if self.status.is_none() {
            let mut status = 0;
            // SAFETY: status is a valid out-pointer; the pid is our unreaped child.
            let reaped = unsafe { libc::waitpid(self.pid, &mut status, libc::WNOHANG) };
            if reaped < 0 {
                return Err(std::io::Error::last_os_error()).context("waitpid");
            }
            if reaped == self.pid {
                self.status = Some(status);
            }
        }
        Ok(self.status)
    }
}

impl Drop for Hog {
    fn drop(&mut self) {
        if self.status.is_none() {
            // SAFETY: the pid is our child and not reaped yet, so it cannot have been reused.
            unsafe { libc::kill(self.pid, libc::SIGKILL) };
            if let Err(e) = self.wait_killed(CLEANUP) {
                eprintln!("{e}");
            }
        }
    }
}

/// The forked child's whole life. Exit codes say which step failed.
///
/// # Safety
/// Only to be called in a freshly forked child: it never returns.
unsafe fn hog(procs: &CString, adj_path: &CString, adj: &[u8], bytes: usize) -> ! {
    let write_file = |path: &CString, value: &[u8]| {
        let fd = libc::open(path.as_ptr(), libc::O_WRONLY);
        let ok =
            fd >= 0 && libc::write(fd, value.as_ptr().cast(), value.len()) == value.len() as isize;
        libc::close(fd);
        ok
    };
    // Die with the test rather than linger if it is killed before the OOM killer acts.
    libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
    // "0" moves the writing process itself.
    if !write_file(procs, b"0") {
        libc::_exit(101);
    }
    if !write_file(adj_path, adj) {
        libc::_exit(102);
    }
    let memory = libc::mmap(
        std::ptr::null_mut(),
        bytes,
        libc::PROT_READ | libc::PROT_WRITE,
        libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
        -1,
        0,
    );
    if memory == libc::MAP_FAILED {
        libc::_exit(103);
    }
    // Pages are only charged once written.
    let base = memory.cast::<u8>();
    for offset in (0..bytes).step_by(4096) {
        std::ptr::write_volatile(base.add(offset), 1);
    }
    libc::_exit(0)
}

/// The memory controller's mount: the v1 `memory` hierarchy, else the unified one when it lets
/// children use the controller.
fn memory_hierarchy() -> anyhow::Result<(PathBuf, CgroupVersion)> {
    let mounts = std::fs::read_to_string("/proc/self/mounts").context("reading mounts")?;
    let mut unified = None;
    for line in mounts.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [_, dir, fstype, options, ..] = fields[..] else {
            continue;
        };
        match fstype {
            "cgroup" if options.split(',').any(|o| o == "memory") => {
                return Ok((dir.into(), CgroupVersion::V1));
            }
            "cgroup2" if unified.is_none() => unified = Some(PathBuf::from(dir)),
            _ => {}
        }
    }
    let Some(root) = unified else {
        bail!("no cgroup hierarchy is mounted");
    };
    let enabled = std::fs::read_to_string(root.join("cgroup.subtree_control")).unwrap_or_default();
    if !enabled.split_whitespace().any(|c| c == "memory") {
        bail!(
            "the memory controller is neither mounted as cgroup v1 nor enabled in {}",
            root.display()
        );
    }
    Ok((root, CgroupVersion::V2))
}

fn c_path(path: &Path) -> anyhow::Result<CString> {
    use std::os::unix::ffi::OsStrExt;
    Ok(CString::new(path.as_os_str().as_bytes())?)
}
