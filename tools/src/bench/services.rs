//! Memory of the services a benchmark uses but does not start (RabbitMQ,
//! PostgreSQL), read from `/proc`.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use shared::config::Settings;

/// Memory of the services a benchmark uses but does not start (RabbitMQ,
/// PostgreSQL), sampled from `/proc` on a thread of its own:
/// their processes outlive the run, so their own high-water marks would not
/// be the run's. The services are the processes listening on the settings'
/// AMQP and PostgreSQL ports (and, for PostgreSQL, that postmaster's
/// children: one backend per connection, and its helpers). Finding them
/// needs the right to read their `/proc/<pid>/fd` (root, or the services'
/// own user); otherwise the readings are `None`.
pub struct ServiceRss {
    stop: Arc<AtomicBool>,
    sampler: Option<std::thread::JoinHandle<ServiceReadings>>,
    done: Option<ServiceReadings>,
}

/// Memory in KiB; `None`: the process was not found or not readable.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ServicePeaks {
    /// RabbitMQ: the resident set of the broker's Erlang VM.
    pub rabbitmq_kb: Option<u64>,
    /// PostgreSQL: the proportional set size (`Pss`: shared pages divided
    /// among the processes sharing them) of the postmaster and each of its
    /// children, summed.
    pub postgres_kb: Option<u64>,
}

/// The first reading (the services at rest, or holding what earlier runs
/// left them) and the highest.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ServiceReadings {
    /// When sampling started.
    pub start: ServicePeaks,
    /// The highest of each.
    pub peak: ServicePeaks,
}

impl ServiceRss {
    /// Starts sampling the broker listening on `amqp_port` and the
    /// PostgreSQL server listening on `pg_port`.
    pub fn start(amqp_port: u16, pg_port: u16) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let sampler = std::thread::spawn(move || {
            let (broker, postmaster) = (listener_pid(amqp_port), listener_pid(pg_port));
            let start = sample_services(broker, postmaster);
            let mut peak = start;
            // PostgreSQL's PSS walks every backend's page tables (~20 ms a
            // reading with a worker's 48 connections): read every 5 s and
            // once more at the end, when its connections hold the most;
            // RabbitMQ's resident set every 250 ms.
            for tick in 1u64.. {
                let last = flag.load(Ordering::Relaxed);
                if last || tick % 20 == 0 {
                    peak.postgres_kb = peak.postgres_kb.max(postgres_pss_kb(postmaster));
                }
                peak.rabbitmq_kb = peak.rabbitmq_kb.max(rabbitmq_rss_kb(broker));
                if last {
                    break;
                }
                std::thread::sleep(Duration::from_millis(250));
            }
            ServiceReadings { start, peak }
        });
        Self {
            stop,
            sampler: Some(sampler),
            done: None,
        }
    }

    /// For these settings' broker and database.
    pub fn for_settings(settings: &Settings) -> Self {
        let (amqp, pg) = service_ports(settings);
        Self::start(amqp, pg)
    }

    /// The readings; sampling stops at the first call.
    pub fn finish(&mut self) -> ServiceReadings {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.sampler.take() {
            self.done = Some(t.join().unwrap_or_default());
        }
        self.done.unwrap_or_default()
    }
}

impl Drop for ServiceRss {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// The settings' AMQP and PostgreSQL ports.
pub fn service_ports(settings: &Settings) -> (u16, u16) {
    let port = |url: &str, default: u16| {
        reqwest::Url::parse(url)
            .ok()
            .and_then(|u| u.port())
            .unwrap_or(default)
    };
    (
        port(&settings.amqp_url, 5672),
        port(&settings.database_url, 5432),
    )
}

/// The process listening on TCP `port` (any address), from
/// `/proc/net/tcp{,6}` and the processes' open sockets.
pub fn listener_pid(port: u16) -> Option<u32> {
    let hex_port = format!(":{port:04X}");
    let mut inodes = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let cols: Vec<&str> = line.split_whitespace().collect();
            // local_address, state (0A: LISTEN), inode.
            if cols.len() > 9 && cols[1].ends_with(&hex_port) && cols[3] == "0A" {
                inodes.push(format!("socket:[{}]", cols[9]));
            }
        }
    }
    if inodes.is_empty() {
        return None;
    }
    for (pid, _) in processes() {
        let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            if let Ok(target) = std::fs::read_link(fd.path())
                && inodes.iter().any(|i| target.as_os_str() == i.as_str())
            {
                return Some(pid);
            }
        }
    }
    None
}

/// Every process's id and `status` text.
fn processes() -> impl Iterator<Item = (u32, String)> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let pid: u32 = e.file_name().to_str()?.parse().ok()?;
            let status = std::fs::read_to_string(e.path().join("status")).ok()?;
            Some((pid, status))
        })
}

/// A `Key:   123 kB` line's number.
pub(crate) fn field_kb(text: &str, key: &str) -> Option<u64> {
    text.lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
}

/// One reading of the broker's and the PostgreSQL server's memory.
pub fn sample_services(broker: Option<u32>, postmaster: Option<u32>) -> ServicePeaks {
    ServicePeaks {
        rabbitmq_kb: rabbitmq_rss_kb(broker),
        postgres_kb: postgres_pss_kb(postmaster),
    }
}

/// The broker's resident set.
fn rabbitmq_rss_kb(broker: Option<u32>) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{}/status", broker?)).ok()?;
    field_kb(&status, "VmRSS:")
}

/// A process's resident set size now (VmRSS), in KiB; 0 when unknown.
pub fn rss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| field_kb(&s, "VmRSS:"))
        .unwrap_or(0)
}

/// The summed PSS of the postmaster and its children.
fn postgres_pss_kb(postmaster: Option<u32>) -> Option<u64> {
    let pm = postmaster?;
    let mut total: Option<u64> = None;
    for (pid, status) in processes() {
        if pid != pm && field_kb(&status, "PPid:") != Some(u64::from(pm)) {
            continue;
        }
        let pss = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup"))
            .ok()
            .and_then(|r| field_kb(&r, "Pss:"));
        if let Some(kb) = pss {
            *total.get_or_insert(0) += kb;
        }
    }
    total
}

#[cfg(test)]
mod service_tests {
    use super::*;

    #[test]
    fn the_broker_and_the_database_of_this_machine_are_found_and_measured() {
        // CI and every session's machine run both (`.ci/run` starts them).
        let (amqp, pg) = service_ports(&crate::support::test_settings());
        let (broker, postmaster) = (listener_pid(amqp), listener_pid(pg));
        if std::fs::read_dir("/proc/1/fd").is_err() {
            // Not root: other users' sockets cannot be matched to processes.
            eprintln!("not permitted to read other processes' fds: skipped");
            return;
        }
        assert!(broker.is_some() && postmaster.is_some());
        let now = sample_services(broker, postmaster);
        assert!(now.rabbitmq_kb.is_some_and(|kb| kb > 10 * 1024), "{now:?}");
        assert!(now.postgres_kb.is_some_and(|kb| kb > 1024), "{now:?}");
        assert_eq!(listener_pid(1), None, "nothing listens on port 1");
        let mut rss = ServiceRss::start(amqp, pg);
        let first = rss.finish();
        assert!(first.peak.rabbitmq_kb >= first.start.rabbitmq_kb);
        assert!(first.start.postgres_kb.is_some());
        assert_eq!(rss.finish(), first, "finish can be called again");
    }
}
