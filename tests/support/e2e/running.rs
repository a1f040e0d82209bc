//! A worker running in the test's process, and waiting for a condition.

use std::time::{Duration, Instant};

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::WorkerEnv;

/// `worker::run_with` on a task of its own.
pub struct Running {
    /// Fires the graceful shutdown.
    pub shutdown: CancellationToken,
    /// Ends when the worker has stopped.
    pub task: JoinHandle<anyhow::Result<()>>,
}

impl Running {
    /// Stops it gracefully and waits (at most 15 s).
    pub async fn stop(self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(15), self.task).await???;
        Ok(())
    }
}

/// Runs the environment's worker with `settings` until stopped.
pub fn spawn_worker(env: &WorkerEnv, settings: shared::config::Settings) -> Running {
    let shutdown = CancellationToken::new();
    let (w, token) = (env.worker.clone(), shutdown.clone());
    let task = tokio::spawn(async move { worker::run_with(w, &settings, token).await });
    Running { shutdown, task }
}

/// Waits until `check` holds, or fails after `timeout`.
pub async fn eventually<F, Fut>(timeout: Duration, what: &str, mut check: F) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<bool>>,
{
    let start = Instant::now();
    while start.elapsed() < timeout {
        if check().await? {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    anyhow::bail!("timed out waiting for {what}")
}
