//! Ingest and workers as child processes of the fault suite (the real
//! `ingest` and `worker run` executables), so a kill is a real SIGKILL of
//! a real process.

use std::{
    path::{Path, PathBuf},
    process::Stdio,
    time::Duration,
};

use rustix::process::Signal;
use tokio::process::{Child, Command};

use crate::process::signal;

/// What a child process is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// `ingest`.
    Ingest,
    /// `worker run`.
    Worker,
}

/// A supervised child: restarted when it dies (as systemd or Kubernetes would).
pub struct Proc {
    role: Role,
    exe: PathBuf,
    env: Vec<(String, String)>,
    log: PathBuf,
    child: Option<Child>,
    /// Times it was started.
    pub starts: u32,
}

impl Proc {
    /// Starts a child with `env` (the `CONNECTOR_*` settings), logging to `log`.
    /// `exe` is a copy of the role's executable (a rebuild during the run
    /// must not change or remove what restarts run).
    pub fn spawn(
        role: Role,
        exe: &Path,
        env: Vec<(String, String)>,
        log: &Path,
    ) -> anyhow::Result<Self> {
        let mut p = Self {
            role,
            exe: exe.to_owned(),
            env,
            log: log.to_owned(),
            child: None,
            starts: 0,
        };
        p.start()?;
        Ok(p)
    }

    fn start(&mut self) -> anyhow::Result<()> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)?;
        let args: &[&str] = match self.role {
            Role::Ingest => &[],
            Role::Worker => &["run"],
        };
        let child = Command::new(&self.exe)
            .args(args)
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true)
            .spawn()?;
        self.child = Some(child);
        self.starts += 1;
        Ok(())
    }

    /// SIGKILL, no warning; returns once the process is gone.
    pub async fn kill(&mut self) -> anyhow::Result<()> {
        if let Some(mut c) = self.child.take() {
            c.start_kill()?;
            c.wait().await?;
        }
        Ok(())
    }

    /// Asks for a graceful stop (SIGTERM) and waits up to `grace`.
    pub async fn stop(&mut self, grace: Duration) -> anyhow::Result<bool> {
        wait_stopped(self.begin_stop(), grace).await
    }

    /// Asks for a graceful stop (SIGTERM) and hands the process over for
    /// [`wait_stopped`]; the supervisor may start a successor meanwhile.
    pub fn begin_stop(&mut self) -> Option<Child> {
        let c = self.child.take()?;
        if let Some(pid) = c.id() {
            signal(pid, Signal::TERM);
        }
        Some(c)
    }

    /// Starts it again when it is not running (killed, stopped or exited,
    /// e.g. because the database was down at start-up). True when restarted.
    pub fn ensure_running(&mut self) -> anyhow::Result<bool> {
        let alive = match self.child.as_mut() {
            Some(c) => c.try_wait()?.is_none(),
            None => false,
        };
        if !alive {
            self.child = None;
            self.start()?;
        }
        Ok(!alive)
    }
}

/// Waits up to `grace` for a process asked to stop; true when it exited 0
/// in time (it is killed otherwise).
pub async fn wait_stopped(child: Option<Child>, grace: Duration) -> anyhow::Result<bool> {
    let Some(mut c) = child else {
        return Ok(true);
    };
    match tokio::time::timeout(grace, c.wait()).await {
        Ok(status) => Ok(status?.success()),
        Err(_) => {
            c.start_kill()?;
            c.wait().await?;
            Ok(false)
        }
    }
}
