//! The quick start's child processes (sandbox, ingest, worker, …) and how
//! they stop: whatever ends the quick start ends them too.
//!
//! - SIGTERM, SIGINT (Ctrl-C) or SIGHUP: [`termination`] returns, and
//!   [`Children::stop_all`] stops each child gracefully (SIGTERM, then
//!   SIGKILL after a grace period).
//! - An error or a panic: dropping [`Children`] kills them (SIGKILL).
//! - SIGKILL, or any death without clean-up: each child was started through
//!   a trampoline (the quick start's own executable with [`CHILD_FLAG`])
//!   that asks the kernel for SIGTERM when its parent dies
//!   (`PR_SET_PDEATHSIG`), then executes the child program in its place.

use std::{
    ffi::OsString,
    os::unix::process::CommandExt as _,
    path::{Path, PathBuf},
    process::Stdio,
    time::Duration,
};

use anyhow::Context as _;
use rustix::process::{Signal, getppid, set_parent_process_death_signal};
use tokio::{
    process::{Child, Command},
    signal::unix::{SignalKind, signal},
};

use crate::process::stop_gracefully;

/// First argument of the trampoline: `<exe> --quickstart-child <parent pid> <program> <args…>`.
pub const CHILD_FLAG: &str = "--quickstart-child";

/// Children started by this process, each logging to `<logs>/<name>.log`.
pub struct Children {
    logs: PathBuf,
    trampoline: PathBuf,
    running: Vec<(String, Child)>,
}

impl Children {
    /// No children yet; `trampoline` is the executable whose `main` calls
    /// [`exec_child_if_asked`] first (normally the current one).
    pub fn new(logs: &Path, trampoline: &Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(logs).with_context(|| format!("creating {}", logs.display()))?;
        Ok(Self {
            logs: logs.to_owned(),
            trampoline: trampoline.to_owned(),
            running: Vec::new(),
        })
    }

    /// Starts `program` with `args` and `env` as a child that dies with
    /// this process. Must be called from a thread that lives as long as
    /// the process (e.g. the main thread of a current-thread runtime): the
    /// kernel signals a child when the thread that started it ends.
    pub fn spawn(
        &mut self,
        name: &str,
        program: &Path,
        args: &[&str],
        env: &[(&str, String)],
    ) -> anyhow::Result<u32> {
        let log_path = self.logs.join(format!("{name}.log"));
        let log = std::fs::File::create(&log_path)
            .with_context(|| format!("creating {}", log_path.display()))?;
        let child = Command::new(&self.trampoline)
            .arg(CHILD_FLAG)
            .arg(std::process::id().to_string())
            .arg(program)
            .args(args)
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdout(log.try_clone()?)
            .stderr(log)
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", program.display()))?;
        let pid = child.id().context("a child just started has an id")?;
        self.running.push((name.to_owned(), child));
        Ok(pid)
    }

    /// The children's process ids.
    pub fn pids(&self) -> Vec<u32> {
        self.running.iter().filter_map(|(_, c)| c.id()).collect()
    }

    /// Stops every child: SIGTERM to all, then each gets `grace` to exit
    /// before SIGKILL. Newest first (the worker before ingest before the
    /// sandbox).
    pub async fn stop_all(&mut self, grace: Duration) {
        for (_, child) in self.running.iter().rev() {
            if let Some(pid) = child.id() {
                crate::process::signal(pid, Signal::TERM);
            }
        }
        while let Some((name, mut child)) = self.running.pop() {
            if !stop_gracefully(&mut child, grace).await.unwrap_or(false) {
                eprintln!("== {name} did not stop cleanly");
            }
        }
    }
}

/// Waits for SIGTERM, SIGINT or SIGHUP; returns the signal's name.
pub async fn termination() -> anyhow::Result<&'static str> {
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut hup = signal(SignalKind::hangup())?;
    Ok(tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
        _ = hup.recv() => "SIGHUP",
    })
}

/// The trampoline: when this process was started with [`CHILD_FLAG`],
/// arranges SIGTERM on the parent's death and replaces itself with the
/// program named after the flag; returns only on failure (the error).
/// Otherwise returns `None` at once. Call it first thing in `main`.
pub fn exec_child_if_asked() -> Option<anyhow::Error> {
    let mut args = std::env::args_os().skip(1);
    if args.next().is_none_or(|a| a != CHILD_FLAG) {
        return None;
    }
    let parent: Option<i32> = args
        .next()
        .and_then(|p| p.into_string().ok())
        .and_then(|p| p.parse().ok());
    let Some(program) = args.next() else {
        return Some(anyhow::anyhow!("{CHILD_FLAG}: no program"));
    };
    let rest: Vec<OsString> = args.collect();
    if let Err(e) = set_parent_process_death_signal(Some(Signal::TERM)) {
        return Some(anyhow::anyhow!("PR_SET_PDEATHSIG: {e}"));
    }
    // The parent may have died before the request took effect.
    if getppid().map(|p| p.as_raw_nonzero().get()) != parent {
        return Some(anyhow::anyhow!("the quick start is gone"));
    }
    let err = std::process::Command::new(&program).args(rest).exec();
    Some(anyhow::Error::from(err).context(format!("executing {}", program.to_string_lossy())))
}
