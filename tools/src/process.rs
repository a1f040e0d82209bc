//! Child processes: free ports, signals and graceful stops.

use std::time::Duration;

use rustix::process::{Pid, Signal, kill_process, kill_process_group};
use tokio::process::Child;

/// A free TCP port on loopback, for a child process to bind.
pub fn free_port() -> anyhow::Result<u16> {
    free_port_run(1)
}

/// A run of `n` free TCP ports on loopback (checked by binding each, then
/// released), below the kernel's ephemeral range (32768 and up on Linux):
/// a port from that range can be taken as the local port of any outgoing
/// connection, to PostgreSQL or RabbitMQ say, between this check and the
/// moment a child binds it — as once happened to quickstart's console in
/// a test.
pub fn free_port_run(n: u16) -> anyhow::Result<u16> {
    use std::hash::{BuildHasher, RandomState};
    let random = RandomState::new();
    for attempt in 0..1000_u32 {
        let base = 20_000 + (random.hash_one(attempt) % 12_000) as u16;
        if (0..n).all(|i| std::net::TcpListener::bind(("127.0.0.1", base + i)).is_ok()) {
            return Ok(base);
        }
    }
    anyhow::bail!("no run of {n} free ports between 20000 and 32000")
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
