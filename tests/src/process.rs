//! Spawning the real agent binary from tests, and the root/BPF precondition check.

use std::ffi::{OsStr, OsString};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};

/// Overrides where the agent binary is looked for.
pub const BIN_ENV: &str = "HUATUO_OTEL_BIN";
/// Set to `1` to skip tests that need root and BPF (they say so and pass).
pub const SKIP_BPF_ENV: &str = "HUATUO_SKIP_BPF_TESTS";
/// The agent's OTLP spool directory (`exporters.otlp.spool.directory`).
pub const SPOOL_DIR_ENV: &str = "HUATUO_EXPORTERS__OTLP__SPOOL__DIRECTORY";
pub const BIN_NAME: &str = "huatuo-otel";

/// How long a test waits for a tracer to attach. Each BPF object's load parses the kernel's BTF
/// (about a second in a debug build on a busy 2-vCPU VM) and loads run one after another, so an
/// agent with every tracer enabled needs tens of seconds before the last one attaches.
pub const AGENT_STARTUP: Duration = Duration::from_secs(120);
/// The agent reads `HUATUO_*` as configuration and rejects unknown keys, so the test
/// environment's own `HUATUO_*` variables must not leak into it.
const CONFIG_ENV_PREFIX: &str = "HUATUO_";
/// Bounded wait for a SIGTERMed agent before SIGKILL, when a guard is dropped.
const DROP_GRACE: Duration = Duration::from_secs(10);
const EXIT_POLL: Duration = Duration::from_millis(20);
/// Output included in error messages and panic reports.
const OUTPUT_TAIL_BYTES: usize = 8 * 1024;

/// The `huatuo-otel` binary: `$HUATUO_OTEL_BIN`, else the one cargo built next to this test.
pub fn agent_binary() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe().context("locating the running test binary")?;
    locate_binary(std::env::var_os(BIN_ENV), &exe)
}

fn locate_binary(env_override: Option<OsString>, current_exe: &Path) -> anyhow::Result<PathBuf> {
    if let Some(path) = env_override.filter(|p| !p.is_empty()) {
        let path = PathBuf::from(path);
        if !path.is_file() {
            bail!("{BIN_ENV}={} does not name a file", path.display());
        }
        return Ok(path);
    }
    // Test binaries live in target/<profile>/deps (examples and benches one level down too);
    // cargo puts workspace binaries in target/<profile>.
    let mut dir = current_exe
        .parent()
        .with_context(|| format!("{} has no parent directory", current_exe.display()))?;
    if matches!(
        dir.file_name().and_then(OsStr::to_str),
        Some("deps" | "examples")
    ) {
        dir = dir.parent().unwrap_or(dir);
    }
    let path = dir.join(BIN_NAME);
    if !path.is_file() {
        let profile = dir.file_name().and_then(OsStr::to_str).unwrap_or("?");
        let release = if profile == "release" {
            " --release"
        } else {
            ""
        };
        bail!(
            "the agent binary {} does not exist: run `cargo build -p {BIN_NAME}{release}` first \
             (the same profile as the tests), or set {BIN_ENV} to its path",
            path.display()
        );
    }
    Ok(path)
}

/// Whether to run a test that needs root and BPF. `false` only when explicitly skipped with
/// `HUATUO_SKIP_BPF_TESTS=1`; the caller then prints why and returns.
///
/// # Panics
/// When not root, or when the kernel refuses BPF: a run that cannot test the agent must fail,
/// not pass by skipping unseen.
pub fn require_root_and_bpf() -> bool {
    let skip = std::env::var(SKIP_BPF_ENV).ok();
    // SAFETY: geteuid has no preconditions and cannot fail.
    let euid = unsafe { libc::geteuid() };
    match bpf_decision(skip.as_deref(), euid) {
        Decision::Skip => false,
        Decision::NotRoot(msg) => panic!("{msg}"),
        Decision::Run => {
            if let Err(e) = probe_bpf() {
                panic!(
                    "this test needs BPF, but the kernel refused to create a BPF map: {e}. \
                     Run with CAP_BPF/CAP_SYS_ADMIN outside a seccomp filter that blocks bpf(2), \
                     or set {SKIP_BPF_ENV}=1 to skip BPF tests explicitly"
                );
            }
            true
        }
    }
}

#[derive(Debug, PartialEq)]
enum Decision {
    Skip,
    NotRoot(String),
    Run,
}

fn bpf_decision(skip: Option<&str>, euid: u32) -> Decision {
    if skip == Some("1") {
        return Decision::Skip;
    }
    if euid != 0 {
        return Decision::NotRoot(format!(
            "this test loads BPF programs and must run as root (euid is {euid}): \
             run it with sudo, or set {SKIP_BPF_ENV}=1 to skip BPF tests explicitly"
        ));
    }
    Decision::Run
}

/// Creates and closes a one-entry array map: the cheapest bpf(2) call that shows whether
/// capabilities, seccomp and `kernel.unprivileged_bpf_disabled` let us use BPF at all.
fn probe_bpf() -> std::io::Result<()> {
    const BPF_MAP_CREATE: libc::c_long = 0;
    const BPF_MAP_TYPE_ARRAY: u32 = 2;
    // map_type, key_size, value_size, max_entries; the rest of bpf_attr must be zero.
    let mut attr = [0u32; 32];
    attr[..4].copy_from_slice(&[BPF_MAP_TYPE_ARRAY, 4, 4, 1]);
    // SAFETY: attr is a valid, zero-padded bpf_attr of the size we pass; the kernel only reads it.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_MAP_CREATE,
            attr.as_ptr(),
            std::mem::size_of_val(&attr),
        )
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: fd was just returned to us by the kernel and is owned by nobody else.
    unsafe { libc::close(fd as libc::c_int) };
    Ok(())
}

/// How to start the agent (or, for tests of this crate, any program).
#[derive(Clone, Debug)]
pub struct AgentCommand {
    program: PathBuf,
    args: Vec<OsString>,
    envs: Vec<(OsString, Option<OsString>)>,
    current_dir: Option<PathBuf>,
    drop_grace: Duration,
}

impl AgentCommand {
    /// The `huatuo-otel` binary, see [`agent_binary`].
    pub fn agent() -> anyhow::Result<Self> {
        Ok(Self::new(agent_binary()?))
    }

    /// `huatuo-otel run` exporting metrics every second and logs every 200 ms, so tests wait
    /// seconds, not minutes; with plain log lines, so a tracer's own "attached" line can be told
    /// from other tracers' by its target.
    pub fn run_fast() -> anyhow::Result<Self> {
        Ok(Self::agent()?
            .arg("run")
            .env("HUATUO_EXPORTERS__METRICS_INTERVAL_SECS", "1")
            .env("HUATUO_EXPORTERS__BATCH_INTERVAL_MS", "200")
            .env("NO_COLOR", "1"))
    }

    /// [`AgentCommand::run_fast`] exporting only over OTLP to `endpoint`.
    pub fn otlp_only(endpoint: &str) -> anyhow::Result<Self> {
        Ok(Self::run_fast()?
            .args(["--otlp-endpoint", endpoint])
            .env("HUATUO_EXPORTERS__FILE__ENABLED", "false"))
    }

    pub fn new(program: impl Into<PathBuf>) -> Self {
        Self {
            program: program.into(),
            args: Vec::new(),
            envs: Vec::new(),
            current_dir: None,
            drop_grace: DROP_GRACE,
        }
    }

    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Self {
        self.args.push(arg.as_ref().to_owned());
        self
    }

    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    /// Set for the child. Inherited `HUATUO_*` variables are removed; ones set here are kept.
    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Self {
        self.envs
            .push((key.as_ref().to_owned(), Some(value.as_ref().to_owned())));
        self
    }

    pub fn env_remove(mut self, key: impl AsRef<OsStr>) -> Self {
        self.envs.push((key.as_ref().to_owned(), None));
        self
    }

    pub fn current_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.current_dir = Some(dir.into());
        self
    }

    /// Disables every tracer of the agent's configuration except `enabled`.
    pub fn only_tracers(mut self, enabled: &[&str]) -> Self {
        let sections = serde_json::to_value(huatuo_config::TracersConfig::default())
            .expect("the tracers' configuration serializes");
        for tracer in sections.as_object().into_iter().flat_map(|s| s.keys()) {
            if !enabled.contains(&tracer.as_str()) {
                self = self.args(["--disable-tracer", tracer]);
            }
        }
        self
    }

    /// How long dropping the guard waits after SIGTERM before SIGKILL (default 10 s).
    pub fn drop_grace(mut self, grace: Duration) -> Self {
        self.drop_grace = grace;
        self
    }

    /// Spawns the agent and waits until `tracer` has attached its programs: only then does the
    /// kernel report what a test provokes. Waits up to [`AGENT_STARTUP`].
    pub async fn start_tracer(self, tracer: &str) -> anyhow::Result<AgentProcess> {
        let mut agent = self.spawn()?;
        agent
            .wait_for_stderr(&format!("tracers::{tracer}: attached"), AGENT_STARTUP)
            .await?;
        Ok(agent)
    }

    /// Starts the program with stdout and stderr captured to files in a temporary directory.
    ///
    /// The child gets SIGKILL if the spawning thread dies (PR_SET_PDEATHSIG), so an aborted
    /// test run does not leave a root agent with BPF programs attached. Spawn from the test's own
    /// thread or a runtime worker, not from a short-lived `spawn_blocking` thread.
    pub fn spawn(self) -> anyhow::Result<AgentProcess> {
        let output_dir = tempfile::Builder::new()
            .prefix("huatuo-otel-agent-")
            .tempdir()
            .context("creating a directory for the agent's output")?;
        let stdout_path = output_dir.path().join("stdout.log");
        let stderr_path = output_dir.path().join("stderr.log");
        let create = |p: &Path| {
            std::fs::File::create(p).with_context(|| format!("creating {}", p.display()))
        };
        let mut cmd = Command::new(&self.program);
        cmd.args(&self.args)
            .stdin(Stdio::null())
            .stdout(create(&stdout_path)?)
            .stderr(create(&stderr_path)?);
        for key in inherited_config_vars(std::env::vars_os()) {
            cmd.env_remove(key);
        }
        // The default spool directory is shared by the whole host: each agent gets its own unless
        // the test chose one (say, to keep it across a restart).
        if !self.envs.iter().any(|(key, _)| key == SPOOL_DIR_ENV) {
            cmd.env(SPOOL_DIR_ENV, output_dir.path().join("spool"));
        }
        for (key, value) in &self.envs {
            match value {
                Some(v) => cmd.env(key, v),
                None => cmd.env_remove(key),
            };
        }
        if let Some(dir) = &self.current_dir {
            cmd.current_dir(dir);
        }
        // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
        unsafe {
            cmd.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd
            .spawn()
            .with_context(|| format!("spawning {}", self.program.display()))?;
        Ok(AgentProcess {
            child,
            program: self.program,
            status: None,
            drop_grace: self.drop_grace,
            stdout_path,
            stderr_path,
            _output_dir: output_dir,
        })
    }
}

/// A running agent. Dropping it stops the process: SIGTERM, a bounded wait, then SIGKILL.
/// If the test is panicking, the drop also prints the agent's stderr tail.
pub struct AgentProcess {
    child: Child,
    program: PathBuf,
    status: Option<ExitStatus>,
    drop_grace: Duration,
    stdout_path: PathBuf,
    stderr_path: PathBuf,
    _output_dir: tempfile::TempDir,
}

impl AgentProcess {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends `signal` (e.g. `libc::SIGHUP`). An error if the process has been reaped.
    pub fn signal(&mut self, signal: libc::c_int) -> anyhow::Result<()> {
        if let Some(status) = self.try_status()? {
            bail!(
                "cannot signal {}: it already exited ({status})",
                self.program.display()
            );
        }
        let pid = libc::pid_t::try_from(self.pid()).context("pid out of range")?;
        // SAFETY: kill has no memory-safety preconditions; the child is not reaped yet, so the
        // pid cannot have been reused.
        if unsafe { libc::kill(pid, signal) } != 0 {
            return Err(std::io::Error::last_os_error())
                .with_context(|| format!("sending signal {signal} to pid {pid}"));
        }
        Ok(())
    }

    /// The exit status if the process has exited, without waiting.
    pub fn try_status(&mut self) -> anyhow::Result<Option<ExitStatus>> {
        if self.status.is_none() {
            self.status = self
                .child
                .try_wait()
                .context("checking the agent's status")?;
        }
        Ok(self.status)
    }

    /// Waits for the process to exit by itself. On timeout it is left running (the guard still
    /// stops it on drop) and the error carries its stderr tail.
    pub async fn wait_exit(&mut self, timeout: Duration) -> anyhow::Result<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.try_status()? {
                return Ok(status);
            }
            if Instant::now() >= deadline {
                bail!(
                    "{} (pid {}) did not exit within {timeout:?}; stderr tail:\n{}",
                    self.program.display(),
                    self.pid(),
                    tail(&self.stderr())
                );
            }
            tokio::time::sleep(EXIT_POLL).await;
        }
    }

    /// SIGTERM, then wait for a graceful exit; after `timeout`, SIGKILL and an error, since an
    /// agent that ignores SIGTERM is a bug worth failing on.
    pub async fn terminate(&mut self, timeout: Duration) -> anyhow::Result<ExitStatus> {
        if let Some(status) = self.try_status()? {
            return Ok(status);
        }
        self.signal(libc::SIGTERM)?;
        match self.wait_exit(timeout).await {
            Ok(status) => Ok(status),
            Err(e) => {
                self.kill();
                Err(e.context("SIGTERM did not stop the agent; it was killed"))
            }
        }
    }

    /// [`AgentProcess::terminate`], panicking with the agent's stderr unless it exits with success.
    pub async fn terminate_cleanly(&mut self, timeout: Duration) {
        let status = self.terminate(timeout).await.unwrap();
        assert!(status.success(), "agent exit {status:?}\n{}", self.stderr());
    }

    /// Waits until stderr contains `needle`, e.g. a startup message. Fails early if the process
    /// exits first.
    pub async fn wait_for_stderr(&mut self, needle: &str, timeout: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            if self.stderr().contains(needle) {
                return Ok(());
            }
            if let Some(status) = self.try_status()? {
                // The process may have written the line just before exiting.
                if self.stderr().contains(needle) {
                    return Ok(());
                }
                bail!(
                    "{} exited ({status}) before printing {needle:?}; stderr tail:\n{}",
                    self.program.display(),
                    tail(&self.stderr())
                );
            }
            if Instant::now() >= deadline {
                bail!(
                    "{} did not print {needle:?} within {timeout:?}; stderr tail:\n{}",
                    self.program.display(),
                    tail(&self.stderr())
                );
            }
            tokio::time::sleep(EXIT_POLL).await;
        }
    }

    /// Everything the process wrote to stderr so far.
    pub fn stderr(&self) -> String {
        read_lossy(&self.stderr_path)
    }

    pub fn stdout(&self) -> String {
        read_lossy(&self.stdout_path)
    }

    fn kill(&mut self) {
        if self.status.is_none() {
            let _ = self.child.kill();
            self.status = self.child.wait().ok();
        }
    }

    /// Blocking counterpart of `terminate` for `Drop`, which cannot await.
    fn stop_blocking(&mut self) {
        if matches!(self.try_status(), Ok(Some(_))) || self.signal(libc::SIGTERM).is_err() {
            self.kill();
            return;
        }
        let deadline = Instant::now() + self.drop_grace;
        while Instant::now() < deadline {
            if matches!(self.try_status(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(EXIT_POLL);
        }
        self.kill();
    }
}

impl Drop for AgentProcess {
    fn drop(&mut self) {
        self.stop_blocking();
        if std::thread::panicking() {
            eprintln!(
                "--- {} (pid {}) stderr tail ---\n{}\n--- end of agent stderr ---",
                self.program.display(),
                self.child.id(),
                tail(&self.stderr())
            );
        }
    }
}

fn inherited_config_vars(vars: impl Iterator<Item = (OsString, OsString)>) -> Vec<OsString> {
    vars.map(|(key, _)| key)
        .filter(|key| key.to_string_lossy().starts_with(CONFIG_ENV_PREFIX))
        .collect()
}

fn read_lossy(path: &Path) -> String {
    std::fs::read(path)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}

fn tail(text: &str) -> &str {
    if text.len() <= OUTPUT_TAIL_BYTES {
        return text;
    }
    let mut start = text.len() - OUTPUT_TAIL_BYTES;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    &text[start..]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_is_found_next_to_the_deps_directory() {
        let target = tempfile::tempdir().unwrap();
        let profile = target.path().join("debug");
        std::fs::create_dir_all(profile.join("deps")).unwrap();
        let exe = profile.join("deps").join("e2e-0123abcd");

        let err = locate_binary(None, &exe).unwrap_err().to_string();
        assert!(err.contains("cargo build -p huatuo-otel"), "{err}");
        assert!(!err.contains("--release"), "{err}");
        assert!(err.contains(BIN_ENV), "{err}");

        std::fs::write(profile.join(BIN_NAME), b"").unwrap();
        assert_eq!(locate_binary(None, &exe).unwrap(), profile.join(BIN_NAME));
        // An empty override is treated as unset.
        assert_eq!(
            locate_binary(Some(OsString::new()), &exe).unwrap(),
            profile.join(BIN_NAME)
        );
    }

    #[test]
    fn release_profile_hint_and_env_override() {
        let target = tempfile::tempdir().unwrap();
        let exe = target.path().join("release").join("deps").join("t");
        let err = locate_binary(None, &exe).unwrap_err().to_string();
        assert!(
            err.contains("cargo build -p huatuo-otel --release"),
            "{err}"
        );

        let custom = target.path().join("agent");
        std::fs::write(&custom, b"").unwrap();
        assert_eq!(
            locate_binary(Some(custom.clone().into()), &exe).unwrap(),
            custom
        );
        let err = locate_binary(Some(target.path().join("missing").into()), &exe)
            .unwrap_err()
            .to_string();
        assert!(err.contains("does not name a file"), "{err}");
    }

    #[test]
    fn bpf_requirement_skips_only_when_asked_and_never_silently() {
        assert_eq!(bpf_decision(Some("1"), 1000), Decision::Skip);
        assert_eq!(bpf_decision(Some("1"), 0), Decision::Skip);
        assert_eq!(bpf_decision(Some("0"), 0), Decision::Run);
        assert_eq!(bpf_decision(None, 0), Decision::Run);
        match bpf_decision(None, 1000) {
            Decision::NotRoot(msg) => {
                assert!(msg.contains("root") && msg.contains(SKIP_BPF_ENV), "{msg}")
            }
            other => panic!("expected NotRoot, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn captures_output_and_exit_status() {
        let mut p = AgentCommand::new("/bin/sh")
            .args([
                "-c",
                "echo out; echo err >&2; echo \"$HUATUO_X-$KEEP\" >&2; exit 3",
            ])
            .env("HUATUO_X", "set-explicitly")
            .env("KEEP", "kept")
            .spawn()
            .unwrap();
        let status = p.wait_exit(Duration::from_secs(10)).await.unwrap();
        assert_eq!(status.code(), Some(3));
        assert_eq!(p.stdout(), "out\n");
        assert_eq!(p.stderr(), "err\nset-explicitly-kept\n");
    }

    #[test]
    fn inherited_huatuo_variables_are_removed() {
        // Pure over a given environment: mutating our own would race with parallel tests.
        let vars = [
            ("HUATUO_SKIP_BPF_TESTS", "1"),
            ("HUATUO_OTEL_BIN", "/x"),
            ("PATH", "/bin"),
            ("XHUATUO_", "y"),
        ]
        .map(|(k, v)| (OsString::from(k), OsString::from(v)));
        assert_eq!(
            inherited_config_vars(vars.into_iter()),
            ["HUATUO_SKIP_BPF_TESTS", "HUATUO_OTEL_BIN"]
        );
    }

    #[tokio::test]
    async fn wait_for_stderr_and_terminate() {
        let mut p = AgentCommand::new("/bin/sh")
            .args([
                "-c",
                "trap 'echo bye >&2; exit 0' TERM; echo ready >&2; while :; do sleep 0.05; done",
            ])
            .spawn()
            .unwrap();
        p.wait_for_stderr("ready", Duration::from_secs(10))
            .await
            .unwrap();
        let err = p
            .wait_exit(Duration::from_millis(100))
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("did not exit") && err.contains("ready"),
            "{err}"
        );
        let status = p.terminate(Duration::from_secs(10)).await.unwrap();
        assert!(status.success(), "{status}");
        assert!(p.stderr().contains("bye"));
        assert!(
            p.signal(libc::SIGTERM).is_err(),
            "signalling a reaped process must fail"
        );
    }

    #[test]
    fn drop_kills_a_process_that_ignores_sigterm() {
        let p = AgentCommand::new("/bin/sh")
            .args([
                "-c",
                "trap '' TERM; echo up >&2; while :; do sleep 0.05; done",
            ])
            .drop_grace(Duration::from_millis(300))
            .spawn()
            .unwrap();
        let pid = p.pid() as libc::pid_t;
        let started = Instant::now();
        while !p.stderr().contains("up") {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "child never started"
            );
            std::thread::sleep(EXIT_POLL);
        }
        drop(p);
        assert!(started.elapsed() < Duration::from_secs(15));
        // SAFETY: signal 0 only checks for existence; the child was reaped by drop.
        let alive = unsafe { libc::kill(pid, 0) } == 0;
        assert!(!alive, "pid {pid} survived the guard");
    }

    #[tokio::test]
    async fn early_exit_is_reported_by_wait_for_stderr() {
        let mut p = AgentCommand::new("/bin/sh")
            .args(["-c", "echo 'config error: bad key' >&2; exit 2"])
            .spawn()
            .unwrap();
        let err = p
            .wait_for_stderr("started", Duration::from_secs(10))
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("exited") && err.contains("bad key"), "{err}");
    }
}
