//! `huatuo-otel run`: the agent's lifetime, from providers to graceful shutdown.

use crate::attribution::Attributor;
use crate::cli::EXIT_RUNTIME;
use crate::framework::Supervisor;
use crate::kernel::KernelEnv;
use crate::telemetry::{self, Telemetry};
use huatuo_config::Config;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

pub fn run(config: Config) -> ExitCode {
    // tonic exporters and the SDK's blocking shutdown need a multi-thread runtime with at least
    // two workers (a single worker can deadlock on flush).
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("huatuo-otel")
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("huatuo-otel: cannot start the async runtime: {e}");
            return ExitCode::from(EXIT_RUNTIME);
        }
    };
    match runtime.block_on(run_agent(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("huatuo-otel: {e:#}");
            ExitCode::from(EXIT_RUNTIME)
        }
    }
}

async fn run_agent(config: Config) -> anyhow::Result<()> {
    let kernel =
        Arc::new(KernelEnv::detect().with_roots(crate::kernel::Roots::from_config(&config.agent)));
    if kernel.version().is_some_and(|v| v < (5, 11)) {
        raise_memlock_limit();
    }
    let resource = telemetry::resource(&config, &kernel.release);
    let providers = huatuo_exporters::build_providers(&config.exporters, resource)?;
    telemetry::init_logging(&config, Some(&providers))?;
    providers.log_startup();
    let deadline = Duration::from_secs(config.agent.shutdown_timeout_secs);
    tracing::info!(
        version = env!("CARGO_PKG_VERSION"),
        kernel = %kernel.release,
        file = config.exporters.file.enabled.then(|| config.exporters.file.directory.display().to_string()),
        otlp = config.exporters.otlp.enabled.then_some(config.exporters.otlp.endpoint.as_str()),
        prometheus = providers.prometheus.as_ref().map(|p| p.address().to_string()),
        "huatuo-otel starting"
    );

    // Held until the agent returns; the kernel releases it on any exit.
    let _bpf_stats = crate::bpf_stats::enable(config.agent.bpf_stats);
    let background = CancellationToken::new();
    let attribution = Attributor::start(&config.attribution, background.clone())
        .with_procfs(&config.agent.procfs_prefix);
    let telemetry = Arc::new(Telemetry::new(&providers, attribution));
    let config = Arc::new(config);
    let supervisor = Supervisor::start(crate::tracers::all(), config, kernel, telemetry);

    let signal = wait_for_signal().await?;
    tracing::info!(
        signal,
        "shutting down: detaching programs and flushing exporters"
    );
    supervisor.shutdown(deadline).await;
    background.cancel();
    providers.shutdown(deadline)?;
    Ok(())
}

async fn wait_for_signal() -> anyhow::Result<&'static str> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    })
}

/// Kernels before 5.11 charge BPF maps to RLIMIT_MEMLOCK (newer ones use memory cgroups);
/// failing to raise it is only a warning, as small maps may still fit.
fn raise_memlock_limit() {
    let unlimited = libc::rlimit {
        rlim_cur: libc::RLIM_INFINITY,
        rlim_max: libc::RLIM_INFINITY,
    };
    // SAFETY: setrlimit reads a valid rlimit struct.
    if unsafe { libc::setrlimit(libc::RLIMIT_MEMLOCK, &unlimited) } != 0 {
        eprintln!(
            "huatuo-otel: warning: cannot raise RLIMIT_MEMLOCK ({}); BPF maps may fail to load on kernels before 5.11",
            std::io::Error::last_os_error()
        );
    }
}
