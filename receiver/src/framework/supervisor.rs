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
        let outcome = tokio::spawn(tracer.run(ctx.clone())).await;
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
