//! Child processes: free ports, signals and graceful stops.

use std::time::Duration;

use rustix::process::{Pid, Signal, kill_process, kill_process_group};
use tokio::process::Child;

/// A free TCP port on loopback (bound, then released).
pub fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// Sends `signal` to process `pid`; false when there is no such process.
pub fn signal(pid: u32, signal: Signal) -> bool {
    to_pid(pid).is_some_and(|p| kill_process(p, signal).is_ok())
}

/// Sends `signal` to every process of group `pgid`.
pub fn signal_group(pgid: u32, signal: Signal) -> bool {
    to_pid(pgid).is_some_and(|p| kill_process_group(p, signal).is_ok())
}

fn to_pid(pid: u32) -> Option<Pid> {
    Pid::from_raw(i32::try_from(pid).ok()?)
}

/// SIGTERM (what the connector's executables stop gracefully on), then
/// waits up to `grace`; SIGKILL after that. True when it exited 0 in time.
pub async fn stop_gracefully(child: &mut Child, grace: Duration) -> anyhow::Result<bool> {
    if let Some(pid) = child.id() {
        signal(pid, Signal::TERM);
    }
    match tokio::time::timeout(grace, child.wait()).await {
        Ok(status) => Ok(status?.success()),
        Err(_) => {
            child.start_kill()?;
            child.wait().await?;
            Ok(false)
        }
    }
}
