//! Starts every enabled, supported tracer and restarts a failed one after its back-off. Each
//! tracer runs in its own task, so a failure or a panic stays inside it.

use super::{RunError, StatusBoard, Tracer, TracerContext, TracerState};
use crate::kernel::KernelEnv;
use crate::telemetry::Telemetry;
use huatuo_config::Config;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

pub struct Supervisor {
    pub board: StatusBoard,
    cancel: CancellationToken,
    tasks: JoinSet<()>,
}

impl Supervisor {
    pub fn start(
        tracers: Vec<Arc<dyn Tracer>>,
        config: Arc<Config>,
        kernel: Arc<KernelEnv>,
        telemetry: Arc<Telemetry>,
    ) -> Self {
        let board = StatusBoard::default();
        let cancel = CancellationToken::new();
        let mut tasks = JoinSet::new();
        for tracer in tracers {
            let name = tracer.name();
            let state = if !tracer.enabled(&config) {
                TracerState::Disabled
            } else if let Err(reason) = tracer.probe(&kernel) {
                tracing::warn!(tracer = name, %reason, "tracer unsupported on this host");
                TracerState::Unsupported(reason.0)
            } else {
                TracerState::Stopped
            };
            let runnable = state == TracerState::Stopped;
            let stats = board.add(name, tracer.kind(), state);
            if !runnable {
                continue;
            }
            tracer.register_metrics(&telemetry);
            let ctx = TracerContext {
                config: config.clone(),
                kernel: kernel.clone(),
                telemetry: telemetry.clone(),
                stats,
                cancel: cancel.child_token(),
            };
            tasks.spawn(supervise(tracer, ctx, board.clone()));
        }
        board.register_metrics(&telemetry);
        Self {
            board,
            cancel,
            tasks,
        }
    }

    /// Asks every tracer to stop and waits for them (detaching their programs), at most `deadline`.
    pub async fn shutdown(mut self, deadline: Duration) {
        self.cancel.cancel();
        let all_done = async { while self.tasks.join_next().await.is_some() {} };
        if tokio::time::timeout(deadline, all_done).await.is_err() {
            tracing::warn!(?deadline, "tracers did not stop in time; aborting them");
            self.tasks.abort_all();
        }
    }
}

async fn supervise(tracer: Arc<dyn Tracer>, ctx: TracerContext, board: StatusBoard) {
    let name = tracer.name();
    let backoff = tracer.restart_backoff(&ctx.config);
    loop {
        board.set_state(name, TracerState::Running);
        tracing::info!(tracer = name, "tracer started");
        // A separate task turns a panic into an error instead of tearing down the supervisor.
        let outcome = tokio::spawn(tracer.clone().run(ctx.clone())).await;
        let failure = match outcome {
            Ok(Ok(())) if ctx.cancel.is_cancelled() => {
                board.set_state(name, TracerState::Stopped);
                tracing::info!(tracer = name, "tracer stopped");
                return;
            }
            Ok(Ok(())) => "exited without being asked to stop".to_string(),
            Ok(Err(RunError::Unsupported(reason))) => {
                tracing::warn!(tracer = name, %reason, "tracer unsupported on this host");
                board.set_state(name, TracerState::Unsupported(reason.0));
                return;
            }
            Ok(Err(RunError::Failed(e))) => format!("{e:#}"),
            Err(join_error) => format!("panicked: {join_error}"),
        };
        tracing::error!(tracer = name, error = %failure, ?backoff, "tracer failed; restarting after back-off");
        board.set_state(name, TracerState::Restarting(failure));
        tokio::select! {
            _ = ctx.cancel.cancelled() => {
                board.set_state(name, TracerState::Stopped);
                return;
            }
            _ = tokio::time::sleep(backoff) => {}
        }
        board.count_restart(name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framework::{TracerKind, Unsupported};
    use futures::future::BoxFuture;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[derive(Clone, Copy, PartialEq)]
    enum Behaviour {
        Healthy,
        Fails,
        Panics,
        UnsupportedAtRun,
        UnsupportedAtProbe,
        Disabled,
    }

    struct Fake {
        name: &'static str,
        behaviour: Behaviour,
        runs: Arc<AtomicU32>,
    }

    impl Tracer for Fake {
        fn name(&self) -> &'static str {
            self.name
        }
        fn kind(&self) -> TracerKind {
            TracerKind::Event
        }
        fn enabled(&self, _: &Config) -> bool {
            self.behaviour != Behaviour::Disabled
        }
        fn restart_backoff(&self, _: &Config) -> Duration {
            Duration::from_millis(20)
        }
        fn probe(&self, _: &KernelEnv) -> Result<(), Unsupported> {
            match self.behaviour {
                Behaviour::UnsupportedAtProbe => Err(Unsupported("missing tracepoint x:y".into())),
                _ => Ok(()),
            }
        }
        fn run(self: Arc<Self>, ctx: TracerContext) -> BoxFuture<'static, Result<(), RunError>> {
            self.runs.fetch_add(1, Ordering::SeqCst);
            let behaviour = self.behaviour;
            Box::pin(async move {
                match behaviour {
                    Behaviour::Fails => Err(RunError::Failed(anyhow::anyhow!("attach failed"))),
                    Behaviour::Panics => panic!("decoder bug"),
                    Behaviour::UnsupportedAtRun => {
                        Err(RunError::Unsupported(Unsupported("no BTF".into())))
                    }
                    _ => {
                        ctx.cancel.cancelled().await;
                        Ok(())
                    }
                }
            })
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn one_failing_tracer_never_stops_the_others() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config::default();
        config.exporters.file.directory = dir.path().to_path_buf();
        let providers = huatuo_exporters::build_providers(
            &config.exporters,
            opentelemetry_sdk::Resource::builder_empty().build(),
        )
        .unwrap();
        let attribution = crate::attribution::Attributor::new(&config.attribution, None);
        let telemetry = Arc::new(Telemetry::new(&providers, attribution));
        let behaviours = [
            ("healthy", Behaviour::Healthy),
            ("fails", Behaviour::Fails),
            ("panics", Behaviour::Panics),
            ("unsupported_run", Behaviour::UnsupportedAtRun),
            ("unsupported_probe", Behaviour::UnsupportedAtProbe),
            ("disabled", Behaviour::Disabled),
        ];
        let runs: Vec<Arc<AtomicU32>> = behaviours.iter().map(|_| Arc::default()).collect();
        let tracers: Vec<Arc<dyn Tracer>> = behaviours
            .iter()
            .zip(&runs)
            .map(|(&(name, behaviour), runs)| {
                Arc::new(Fake {
                    name,
                    behaviour,
                    runs: runs.clone(),
                }) as Arc<dyn Tracer>
            })
            .collect();
        let supervisor = Supervisor::start(
            tracers,
            Arc::new(config),
            Arc::new(KernelEnv::detect()),
            telemetry,
        );
        // Bounded wait until both failing tracers have been restarted at least twice.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while runs[1..3].iter().any(|r| r.load(Ordering::SeqCst) < 3) {
            assert!(
                tokio::time::Instant::now() < deadline,
                "failing tracers were not restarted"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }

        let board = supervisor.board.clone();
        assert_eq!(board.state("healthy"), Some(TracerState::Running));
        assert_eq!(
            runs[0].load(Ordering::SeqCst),
            1,
            "a healthy tracer is started once"
        );
        for (name, runs) in [("fails", &runs[1]), ("panics", &runs[2])] {
            assert!(
                runs.load(Ordering::SeqCst) >= 3,
                "{name} restarted after its back-off"
            );
            assert!(matches!(
                board.state(name),
                Some(TracerState::Restarting(_)) | Some(TracerState::Running)
            ));
        }
        assert_eq!(
            board.state("unsupported_run"),
            Some(TracerState::Unsupported("no BTF".into()))
        );
        assert_eq!(
            runs[3].load(Ordering::SeqCst),
            1,
            "unsupported is not retried"
        );
        assert_eq!(
            board.state("unsupported_probe"),
            Some(TracerState::Unsupported("missing tracepoint x:y".into()))
        );
        assert_eq!(runs[4].load(Ordering::SeqCst), 0, "never started");
        assert_eq!(board.state("disabled"), Some(TracerState::Disabled));
        assert_eq!(runs[5].load(Ordering::SeqCst), 0);

        supervisor.shutdown(Duration::from_secs(5)).await;
        assert_eq!(board.state("healthy"), Some(TracerState::Stopped));
        providers.shutdown(Duration::from_secs(5)).unwrap();
    }
}
