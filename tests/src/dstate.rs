//! Tasks really blocked in state D (TASK_UNINTERRUPTIBLE), for tests of the hung-task tracer and
//! of anything else that watches blocked tasks.
//!
//! The kernel's hung-task detector ignores killable sleeps, so a task waiting on a slow FUSE
//! request is not enough: it sleeps interruptibly (then killably) on the request. What does sleep
//! uninterruptibly is a second writer to the same file: the first holds the inode's rwsem for the
//! whole FUSE WRITE, and the second waits for it in `down_write`.
//!
//! The FUSE file system is served by this process itself, speaking the `/dev/fuse` protocol for
//! the handful of requests a write needs, with one file, `stall`, whose WRITEs go unanswered
//! until [`DStateTasks`] is dropped. Needs root (to mount). [`HungTaskDetector`] makes the
//! kernel report such a task within seconds.

use anyhow::{bail, Context as _};
use std::ffi::CString;
use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long setup waits for each step (a writer to block, the other to reach state D).
const STEP_TIMEOUT: Duration = Duration::from_secs(10);
/// How long teardown waits for the writers to finish once released.
const RELEASE_TIMEOUT: Duration = Duration::from_secs(5);
/// How often the server thread checks whether it should stop.
const POLL_INTERVAL_MS: libc::c_int = 100;

const FILE_NAME: &str = "stall";
const ROOT_NODE: u64 = 1;
const FILE_NODE: u64 = 2;

// Opcodes and sizes from <linux/fuse.h> (protocol 7.x).
const FUSE_LOOKUP: u32 = 1;
const FUSE_FORGET: u32 = 2;
const FUSE_GETATTR: u32 = 3;
const FUSE_SETATTR: u32 = 4;
const FUSE_OPEN: u32 = 14;
const FUSE_READ: u32 = 15;
const FUSE_WRITE: u32 = 16;
const FUSE_RELEASE: u32 = 18;
const FUSE_FSYNC: u32 = 20;
const FUSE_FLUSH: u32 = 25;
const FUSE_INIT: u32 = 26;
const FUSE_INTERRUPT: u32 = 36;
const FUSE_BATCH_FORGET: u32 = 42;
const FOPEN_KEEP_CACHE: u32 = 1 << 1;
const IN_HEADER_LEN: usize = 40;
/// Minor version we speak: every structure below has its 7.31 size.
const MINOR_VERSION: u32 = 31;
const MAX_WRITE: u32 = 64 * 1024;
/// The kernel refuses reads into buffers smaller than a maximal WRITE plus headers.
const READ_BUFFER: usize = MAX_WRITE as usize + 8192;

/// Writer 1 stuck in a FUSE WRITE holding the inode lock, and writer 2 in state D waiting for it.
/// Dropping it releases the stall, waits for both writers and unmounts, also on a panic.
pub struct DStateTasks {
    fuse: Option<FuseServer>,
    writers: Vec<Writer>,
    blocked_tid: u32,
    file: PathBuf,
}

struct Writer {
    done: Receiver<()>,
    /// Joined only once `done` says it finished, so teardown never waits unboundedly.
    handle: Option<JoinHandle<()>>,
}

impl DStateTasks {
    /// Mounts the file system and starts both writers; returns once writer 2 is in state D.
    pub fn start() -> anyhow::Result<Self> {
        let fuse = FuseServer::mount()?;
        let file = fuse.mountpoint().join(FILE_NAME);
        let mut tasks = Self {
            fuse: Some(fuse),
            writers: Vec::new(),
            blocked_tid: 0,
            file,
        };
        let first = tasks.spawn_writer("dstate-writer1")?;
        tasks
            .server()
            .wait_for_stalled_write(STEP_TIMEOUT)
            .context("writer 1 never reached the FUSE WRITE")?;
        let second = tasks.spawn_writer("dstate-writer2")?;
        wait_for_state_d(second, STEP_TIMEOUT)?;
        tasks.blocked_tid = second;
        eprintln!("dstate: writer 1 tid {first} in FUSE WRITE, writer 2 tid {second} in state D");
        Ok(tasks)
    }

    /// Thread id of writer 2, the task in state D (its process is this test process).
    pub fn blocked_tid(&self) -> u32 {
        self.blocked_tid
    }

    /// Process id of the writers: this process.
    pub fn pid(&self) -> u32 {
        std::process::id()
    }

    /// The file both writers write to.
    pub fn file(&self) -> &Path {
        &self.file
    }

    fn server(&self) -> &FuseServer {
        self.fuse.as_ref().expect("mounted until drop")
    }

    /// A thread that writes one byte to the stalled file; returns its tid once it is about to.
    fn spawn_writer(&mut self, name: &str) -> anyhow::Result<u32> {
        let (tid_tx, tid_rx) = mpsc::channel();
        let (done_tx, done_rx) = mpsc::channel();
        let path = self.file.clone();
        let handle = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || {
                // SAFETY: gettid has no preconditions.
                let _ = tid_tx.send(unsafe { libc::gettid() } as u32);
                // Errors are expected at teardown if the connection is aborted instead.
                if let Ok(mut f) = OpenOptions::new().write(true).open(&path) {
                    let _ = f.write_all(b"x");
                }
                let _ = done_tx.send(());
            })?;
        self.writers.push(Writer {
            done: done_rx,
            handle: Some(handle),
        });
        tid_rx
            .recv_timeout(STEP_TIMEOUT)
            .context("writer thread did not start")
    }

    /// Waits for every writer, at most `timeout` in all; true when all finished.
    fn join_writers(&mut self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut all = true;
        for writer in &mut self.writers {
            if writer.handle.is_none() {
                continue;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if writer.done.recv_timeout(left).is_ok() {
                if let Some(handle) = writer.handle.take() {
                    let _ = handle.join();
                }
            } else {
                all = false;
            }
        }
        all
    }
}

impl Drop for DStateTasks {
    fn drop(&mut self) {
        if let Some(fuse) = &self.fuse {
            fuse.release();
        }
        let finished = self.join_writers(RELEASE_TIMEOUT);
        // Closing /dev/fuse aborts the connection: any request still pending fails, which frees
        // a writer the release did not.
        drop(self.fuse.take());
        if !finished && !self.join_writers(RELEASE_TIMEOUT) {
            eprintln!("dstate: a writer is still blocked after the connection was aborted");
        }
    }
}

/// The kernel's hung-task detector made quick for a test: `kernel.hung_task_timeout_secs`
/// lowered, `hung_task_warnings` replenished (at 0 the detector still reports through its
/// tracepoint but stops logging, which hides what a failing test needs). Restores both when
/// dropped, also on a panic.
pub struct HungTaskDetector {
    saved: Vec<(&'static str, String)>,
}

impl HungTaskDetector {
    const TIMEOUT: &'static str = "/proc/sys/kernel/hung_task_timeout_secs";
    const WARNINGS: &'static str = "/proc/sys/kernel/hung_task_warnings";
    const PANIC: &'static str = "/proc/sys/kernel/hung_task_panic";

    /// Refuses on a host set to panic on a hung task, which the test would bring down.
    pub fn with_timeout(secs: u32) -> anyhow::Result<Self> {
        let panic = std::fs::read_to_string(Self::PANIC).unwrap_or_default();
        if panic.trim() != "0" && !panic.is_empty() {
            bail!(
                "kernel.hung_task_panic is {}: a hung task would panic this host",
                panic.trim()
            );
        }
        let mut detector = Self { saved: Vec::new() };
        for (path, value) in [
            (Self::TIMEOUT, secs.to_string()),
            (Self::WARNINGS, "10".into()),
        ] {
            let old = std::fs::read_to_string(path)
                .with_context(|| format!("{path} (kernel without CONFIG_DETECT_HUNG_TASK?)"))?;
            std::fs::write(path, value).with_context(|| format!("setting {path}"))?;
            detector.saved.push((path, old.trim().to_owned()));
        }
        Ok(detector)
    }
}

impl Drop for HungTaskDetector {
    fn drop(&mut self) {
        for (path, value) in self.saved.iter().rev() {
            if let Err(e) = std::fs::write(path, value) {
                eprintln!("dstate: restoring {path} to {value}: {e}");
            }
        }
    }
}

/// Returns once `/proc/self/task/<tid>/stat` says state D.
fn wait_for_state_d(tid: u32, timeout: Duration) -> anyhow::Result<()> {
    let path = format!("/proc/self/task/{tid}/stat");
    let deadline = Instant::now() + timeout;
    loop {
        let stat = std::fs::read_to_string(&path).unwrap_or_default();
        let state = stat
            .rfind(')')
            .and_then(|i| stat[i + 1..].trim_start().chars().next());
        if state == Some('D') {
            return Ok(());
        }
        if Instant::now() >= deadline {
            bail!("writer 2 (tid {tid}) not in state D after {timeout:?}: {stat}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The mounted file system and the thread answering its requests.
struct FuseServer {
    state: Arc<Shared>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    mountpoint: PathBuf,
    /// Removed after the unmount.
    _dir: tempfile::TempDir,
}

struct Shared {
    dev: OwnedFd,
    stalled: Mutex<Stall>,
    changed: Condvar,
}

struct Stall {
    active: bool,
    /// (unique, size) of WRITEs held back while `active`.
    pending: Vec<(u64, u32)>,
}

impl FuseServer {
    fn mount() -> anyhow::Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("huatuo-dstate-")
            .tempdir()?;
        let mountpoint = dir.path().to_path_buf();
        let dev = File::options()
            .read(true)
            .write(true)
            .open("/dev/fuse")
            .context("opening /dev/fuse (module fuse loaded? root?)")?;
        let dev = OwnedFd::from(dev);
        let options = CString::new(format!(
            "fd={},rootmode=40000,user_id=0,group_id=0,allow_other",
            dev.as_raw_fd()
        ))?;
        let target = CString::new(mountpoint.as_os_str().as_bytes())?;
        // SAFETY: valid NUL-terminated strings that outlive the call.
        let rc = unsafe {
            libc::mount(
                c"huatuo-dstate".as_ptr(),
                target.as_ptr(),
                c"fuse.huatuo-dstate".as_ptr(),
                libc::MS_NOSUID | libc::MS_NODEV,
                options.as_ptr().cast(),
            )
        };
        if rc != 0 {
            bail!(
                "mounting FUSE at {}: {}",
                mountpoint.display(),
                std::io::Error::last_os_error()
            );
        }
        let state = Arc::new(Shared {
            dev,
            stalled: Mutex::new(Stall {
                active: true,
                pending: Vec::new(),
            }),
            changed: Condvar::new(),
        });
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (state, stop) = (state.clone(), stop.clone());
            std::thread::Builder::new()
                .name("dstate-fuse".into())
                .spawn(move || serve(&state, &stop))?
        };
        Ok(Self {
            state,
            stop,
            thread: Some(thread),
            mountpoint,
            _dir: dir,
        })
    }

    fn mountpoint(&self) -> &Path {
        &self.mountpoint
    }

    fn wait_for_stalled_write(&self, timeout: Duration) -> anyhow::Result<()> {
        let guard = self.state.lock();
        let (guard, result) = self
            .state
            .changed
            .wait_timeout_while(guard, timeout, |s| s.pending.is_empty())
            .unwrap_or_else(|e| e.into_inner());
        drop(guard);
        if result.timed_out() {
            bail!("no WRITE within {timeout:?}");
        }
        Ok(())
    }

    /// Answers the held WRITEs and lets later ones through.
    fn release(&self) {
        let pending = {
            let mut stall = self.state.lock();
            stall.active = false;
            std::mem::take(&mut stall.pending)
        };
        for (unique, size) in pending {
            self.state.reply_write(unique, size);
        }
    }
}

impl Drop for FuseServer {
    fn drop(&mut self) {
        self.release();
        let target = CString::new(self.mountpoint.as_os_str().as_bytes()).expect("no NUL");
        // Lazy: a writer may still have the file open.
        // SAFETY: valid NUL-terminated path.
        if unsafe { libc::umount2(target.as_ptr(), libc::MNT_DETACH) } != 0 {
            eprintln!(
                "dstate: unmounting {}: {}",
                self.mountpoint.display(),
                std::io::Error::last_os_error()
            );
        }
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        // The last reference to `dev` goes with `state` (the thread's is gone): the kernel then
        // aborts the connection.
    }
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Stall> {
        self.stalled.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn reply(&self, unique: u64, error: i32, payload: &[u8]) {
        let len = 16 + payload.len();
        let mut out = Vec::with_capacity(len);
        out.extend_from_slice(&(len as u32).to_ne_bytes());
        out.extend_from_slice(&(-error).to_ne_bytes());
        out.extend_from_slice(&unique.to_ne_bytes());
        out.extend_from_slice(payload);
        // SAFETY: writes `out` (initialized, `len` bytes) to our open device fd. A failure means
        // the request was interrupted or the connection aborted; either way nobody waits for it.
        unsafe { libc::write(self.dev.as_raw_fd(), out.as_ptr().cast(), out.len()) };
    }

    fn reply_write(&self, unique: u64, size: u32) {
        let mut out = Vec::with_capacity(8);
        out.extend_from_slice(&size.to_ne_bytes());
        out.extend_from_slice(&0u32.to_ne_bytes());
        self.reply(unique, 0, &out);
    }
}

/// The request loop: one request per read, answered at once except for stalled WRITEs.
fn serve(state: &Shared, stop: &AtomicBool) {
    let mut buf = vec![0u8; READ_BUFFER];
    let fd = state.dev.as_raw_fd();
    while !stop.load(Ordering::SeqCst) {
        let mut pfd = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        if unsafe { libc::poll(&mut pfd, 1, POLL_INTERVAL_MS) } <= 0 {
            continue;
        }
        // SAFETY: reads at most buf.len() bytes into buf.
        let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        if n < 0 {
            match std::io::Error::last_os_error().raw_os_error() {
                // Interrupted, or a request withdrawn before we read it.
                Some(libc::EINTR | libc::EAGAIN | libc::ENOENT) => continue,
                // Unmounted and gone.
                _ => return,
            }
        }
        let request = &buf[..n as usize];
        if request.len() >= IN_HEADER_LEN {
            handle(state, request);
        }
    }
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    b.get(at..at + 4)
        .map_or(0, |s| u32::from_ne_bytes(s.try_into().expect("4 bytes")))
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    b.get(at..at + 8)
        .map_or(0, |s| u64::from_ne_bytes(s.try_into().expect("8 bytes")))
}

fn handle(state: &Shared, request: &[u8]) {
    let opcode = u32_at(request, 4);
    let unique = u64_at(request, 8);
    let node = u64_at(request, 16);
    let body = &request[IN_HEADER_LEN..];
    match opcode {
        // No reply is expected to these.
        FUSE_FORGET | FUSE_BATCH_FORGET | FUSE_INTERRUPT => {}
        FUSE_INIT => state.reply(unique, 0, &init_out(u32_at(body, 8))),
        FUSE_LOOKUP => {
            let name = body.split(|&b| b == 0).next().unwrap_or_default();
            if node == ROOT_NODE && name == FILE_NAME.as_bytes() {
                state.reply(unique, 0, &entry_out(FILE_NODE));
            } else {
                state.reply(unique, libc::ENOENT, &[]);
            }
        }
        FUSE_GETATTR | FUSE_SETATTR => match node {
            ROOT_NODE | FILE_NODE => state.reply(unique, 0, &attr_out(node)),
            _ => state.reply(unique, libc::ENOENT, &[]),
        },
        FUSE_OPEN => state.reply(unique, 0, &open_out()),
        // An empty file: every read is at its end.
        FUSE_READ => state.reply(unique, 0, &[]),
        FUSE_WRITE => {
            let size = u32_at(body, 16);
            let mut stall = state.lock();
            if stall.active {
                stall.pending.push((unique, size));
                state.changed.notify_all();
            } else {
                drop(stall);
                state.reply_write(unique, size);
            }
        }
        FUSE_FLUSH | FUSE_RELEASE | FUSE_FSYNC => state.reply(unique, 0, &[]),
        _ => state.reply(unique, libc::ENOSYS, &[]),
    }
}

fn init_out(max_readahead: u32) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    for v in [7u32, MINOR_VERSION, max_readahead, 0] {
        out.extend_from_slice(&v.to_ne_bytes());
    }
    out.extend_from_slice(&16u16.to_ne_bytes()); // max_background
    out.extend_from_slice(&12u16.to_ne_bytes()); // congestion_threshold
    out.extend_from_slice(&MAX_WRITE.to_ne_bytes());
    out.extend_from_slice(&1u32.to_ne_bytes()); // time_gran
    out.resize(64, 0); // max_pages, map_alignment, flags2, max_stack_depth, unused
    out
}

/// `struct fuse_open_out`: file handle 0, and the page cache kept. Without KEEP_CACHE the second
/// open would invalidate the cache and wait on the page writer 1 has locked, in `open` rather
/// than on the inode lock. No DIRECT_IO either: the page-cache write path holds the inode lock
/// across the WRITE request.
fn open_out() -> Vec<u8> {
    let mut out = vec![0; 16];
    out[8..12].copy_from_slice(&FOPEN_KEEP_CACHE.to_ne_bytes());
    out
}

/// `struct fuse_attr` of the root directory or the file.
fn attr(node: u64) -> Vec<u8> {
    let mode = if node == ROOT_NODE {
        libc::S_IFDIR | 0o755
    } else {
        libc::S_IFREG | 0o666
    };
    let mut out = Vec::with_capacity(88);
    out.extend_from_slice(&node.to_ne_bytes()); // ino
    out.resize(48 + 12, 0); // size, blocks, [amc]time, [amc]timensec
    out.extend_from_slice(&mode.to_ne_bytes());
    out.extend_from_slice(&1u32.to_ne_bytes()); // nlink
    out.resize(88, 0); // uid, gid, rdev, blksize, flags
    out
}

/// `struct fuse_entry_out`, valid for an hour: the file never changes.
fn entry_out(node: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(128);
    for v in [node, 0, 3600, 3600] {
        out.extend_from_slice(&v.to_ne_bytes());
    }
    out.extend_from_slice(&[0; 8]);
    out.extend_from_slice(&attr(node));
    out
}

/// `struct fuse_attr_out`.
fn attr_out(node: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(104);
    out.extend_from_slice(&3600u64.to_ne_bytes());
    out.extend_from_slice(&[0; 8]);
    out.extend_from_slice(&attr(node));
    out
}
