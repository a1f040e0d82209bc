//! CPU time per process during a scenario, from `/proc/<pid>/stat`
//! (`utime` + `stime`), so that a benchmark can print CPU milliseconds per
//! conversion of each part: the worker(s), PostgreSQL, RabbitMQ, ingest,
//! the sandbox and the driver.
//!
//! - PostgreSQL (`cpu_ms_per_conv_postgres`): the backends of the
//!   scenario's own database (their process title names it: the worker's,
//!   ingest's and the benchmark's connections, and autovacuum on it) and
//!   the server's shared writers (WAL writer, checkpointer, background
//!   writer). A backend of that database that exits during the scenario
//!   loses its share (the pools keep theirs open). The whole server —
//!   every `postgres` process, plus the postmaster's `cutime`/`cstime`
//!   for the children it reaped — is `cpu_ms_per_conv_postgres_server`:
//!   the server is shared by the machine, so that one also counts what
//!   other clients (other databases) made it do meanwhile (noise).
//! - RabbitMQ: the Erlang VM (`beam.smp`) and its helpers.
//! - The sandbox runs in the benchmark's own process, on a runtime of its
//!   own whose threads are named [`SANDBOX_THREAD`]: its share is the CPU
//!   of those threads; the driver's is the rest of the process.

use std::sync::OnceLock;

/// Name of the sandbox runtime's threads.
pub const SANDBOX_THREAD: &str = "sandbox-rt";

/// Clock ticks per second of `/proc/<pid>/stat` (`USER_HZ`: 100 on Linux
/// whatever the kernel's own tick rate).
const TICKS_PER_S: f64 = 100.0;

/// The runtime the sandbox runs on (tasks spawned while it is entered go
/// there), so that its CPU can be told from the driver's.
pub fn sandbox_runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name(SANDBOX_THREAD)
            .enable_all()
            .build()
            .unwrap_or_else(|e| panic!("the sandbox runtime could not start: {e}"))
    })
}

/// Runs `f` with the sandbox runtime entered (the fake HubSpot's webhook
/// dispatch tasks it spawns run there).
pub fn on_sandbox<T>(f: impl FnOnce() -> T) -> T {
    let _guard = sandbox_runtime().enter();
    f()
}

/// CPU ticks of each part at one moment.
#[derive(Debug, Clone, Copy, Default)]
pub struct CpuTicks {
    /// The worker processes.
    pub worker: u64,
    /// PostgreSQL: the scenario database's backends and the shared writers.
    pub postgres: u64,
    /// Every PostgreSQL process, and the children its postmaster reaped.
    pub postgres_server: u64,
    /// The broker.
    pub rabbitmq: u64,
    /// Ingest.
    pub ingest: u64,
    /// The sandbox's threads in this process.
    pub sandbox: u64,
    /// The rest of this process.
    pub driver: u64,
}

/// The processes of a scenario whose CPU is read.
#[derive(Debug, Clone, Default)]
pub struct CpuProbe {
    /// Worker process ids.
    pub workers: Vec<u32>,
    /// Ingest's process id.
    pub ingest: Option<u32>,
    /// The scenario's database (its backends' process titles name it).
    pub database: Option<String>,
}

impl CpuProbe {
    /// Reads every part's CPU now.
    pub fn read(&self) -> CpuTicks {
        let (postgres, postgres_server, rabbitmq) = services(self.database.as_deref());
        let (sandbox, driver) = own_split();
        CpuTicks {
            worker: self.workers.iter().map(|p| own(*p).unwrap_or(0)).sum(),
            postgres,
            postgres_server,
            rabbitmq,
            ingest: self.ingest.and_then(own).unwrap_or(0),
            sandbox,
            driver,
        }
    }
}

/// CPU milliseconds per conversion of each part between two readings.
#[derive(Debug, Clone, Copy, Default)]
pub struct CpuPerConversion {
    /// Worker(s).
    pub worker: f64,
    /// PostgreSQL: the scenario database's backends and the shared writers.
    pub postgres: f64,
    /// The whole PostgreSQL server (other databases' work too).
    pub postgres_server: f64,
    /// RabbitMQ.
    pub rabbitmq: f64,
    /// Ingest.
    pub ingest: f64,
    /// The sandbox (fake HubSpot and impact.com).
    pub sandbox: f64,
    /// The benchmark's driver.
    pub driver: f64,
}

impl CpuPerConversion {
    /// From `before` to `after`, over `conversions`.
    pub fn between(before: CpuTicks, after: CpuTicks, conversions: u64) -> Self {
        let n = conversions.max(1) as f64;
        let ms = |a: u64, b: u64| b.saturating_sub(a) as f64 * 1000.0 / TICKS_PER_S / n;
        Self {
            worker: ms(before.worker, after.worker),
            postgres: ms(before.postgres, after.postgres),
            postgres_server: ms(before.postgres_server, after.postgres_server),
            rabbitmq: ms(before.rabbitmq, after.rabbitmq),
            ingest: ms(before.ingest, after.ingest),
            sandbox: ms(before.sandbox, after.sandbox),
            driver: ms(before.driver, after.driver),
        }
    }

    /// The pipeline's own: worker + PostgreSQL + RabbitMQ + ingest.
    pub fn pipeline(&self) -> f64 {
        self.worker + self.postgres + self.rabbitmq + self.ingest
    }

    /// The `cpu_ms_per_conv_*=` keys.
    pub fn keys(&self) -> String {
        format!(
            "cpu_ms_per_conv_worker={:.3} cpu_ms_per_conv_postgres={:.3} cpu_ms_per_conv_rabbitmq={:.3} cpu_ms_per_conv_ingest={:.3} cpu_ms_per_conv_sandbox={:.3} cpu_ms_per_conv_driver={:.3} cpu_ms_per_conv_pipeline={:.3} cpu_ms_per_conv_postgres_server={:.3}",
            self.worker,
            self.postgres,
            self.rabbitmq,
            self.ingest,
            self.sandbox,
            self.driver,
            self.pipeline(),
            self.postgres_server
        )
    }
}

/// `(comm, ppid, utime + stime, cutime + cstime)` of a `stat` text.
fn parse_stat(text: &str) -> Option<(&str, u32, u64, u64)> {
    // The name is in parentheses and may hold spaces: split at the last ')'.
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let comm = &text[open + 1..close];
    let rest: Vec<&str> = text[close + 1..].split_whitespace().collect();
    // rest[0] is field 3 (state): field n is rest[n - 3].
    let num = |n: usize| rest.get(n - 3).and_then(|v| v.parse::<u64>().ok());
    let ppid = u32::try_from(num(4)?).ok()?;
    Some((comm, ppid, num(14)? + num(15)?, num(16)? + num(17)?))
}

/// A process's own CPU ticks.
fn own(pid: u32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(&text).map(|(_, _, t, _)| t)
}

/// PostgreSQL's ticks (the database `database`'s backends and the shared
/// writers; the whole server) and RabbitMQ's.
fn services(database: Option<&str>) -> (u64, u64, u64) {
    let mut procs = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(text) = std::fs::read_to_string(e.path().join("stat")) else {
            continue;
        };
        if let Some((comm, ppid, t, children)) = parse_stat(&text) {
            procs.push((pid, comm.to_owned(), ppid, t, children));
        }
    }
    let is_pg = |c: &str| c == "postgres" || c == "postmaster";
    let pg_pids: std::collections::HashSet<u32> =
        procs.iter().filter(|p| is_pg(&p.1)).map(|p| p.0).collect();
    let (mut ours, mut server, mut rabbitmq) = (0, 0, 0);
    for (pid, comm, ppid, t, children) in &procs {
        if is_pg(comm) {
            server += t;
            if !pg_pids.contains(ppid) {
                // The postmaster: its reaped backends too.
                server += children;
            }
            let title = std::fs::read(format!("/proc/{pid}/cmdline"))
                .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
                .unwrap_or_default();
            if counts_for(&title, database) {
                ours += t;
            }
        } else if comm == "beam.smp" || comm == "erl_child_setup" || comm == "inet_gethost" {
            rabbitmq += t;
        }
    }
    (ours, server, rabbitmq)
}

/// Whether a PostgreSQL process (by its title, e.g. `postgres: postgres
/// worker_ab12 127.0.0.1(5040) idle`) counts for `database`: its backends
/// and autovacuum workers, and the shared writers.
fn counts_for(title: &str, database: Option<&str>) -> bool {
    const WRITERS: [&str; 3] = ["walwriter", "checkpointer", "background writer"];
    if WRITERS.iter().any(|w| title.contains(w)) {
        return true;
    }
    database.is_some_and(|db| title.split_whitespace().any(|word| word == db))
}

/// This process's ticks: the sandbox's threads, and the rest.
fn own_split() -> (u64, u64) {
    let total = own(std::process::id()).unwrap_or(0);
    let mut sandbox = 0;
    for e in std::fs::read_dir("/proc/self/task")
        .into_iter()
        .flatten()
        .flatten()
    {
        let Ok(text) = std::fs::read_to_string(e.path().join("stat")) else {
            continue;
        };
        if let Some((comm, _, t, _)) = parse_stat(&text)
            && comm.starts_with(SANDBOX_THREAD)
        {
            sandbox += t;
        }
    }
    (sandbox, total.saturating_sub(sandbox))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stat_line_gives_the_name_the_parent_and_the_ticks() {
        let line = "4242 (my (odd) name) S 17 4242 4242 0 -1 4194304 100 0 0 0 \
                    250 50 7 3 20 0 1 0 100 0 0";
        assert_eq!(parse_stat(line), Some(("my (odd) name", 17, 300, 10)));
    }

    #[test]
    fn a_postgres_process_counts_when_it_serves_the_database_or_writes_for_all() {
        let db = Some("worker_ab12");
        assert!(counts_for(
            "postgres: postgres worker_ab12 127.0.0.1(5040) idle",
            db
        ));
        assert!(counts_for("postgres: autovacuum worker worker_ab12", db));
        assert!(counts_for("postgres: walwriter ", db));
        assert!(!counts_for(
            "postgres: postgres worker_ab123 127.0.0.1(5040) idle",
            db
        ));
        assert!(!counts_for("postgres: autovacuum launcher ", db));
        assert!(!counts_for("postgres: postgres test [local] idle", None));
    }

    #[test]
    fn this_process_is_read_and_its_sandbox_threads_apart() {
        let (sandbox_before, _) = own_split();
        // Spins on a sandbox thread until its CPU shows (5 ticks: 50 ms),
        // however loaded the machine.
        let spin = sandbox_runtime().spawn(async move {
            let start = std::time::Instant::now();
            while own_split().0 < sandbox_before + 5
                && start.elapsed() < std::time::Duration::from_secs(30)
            {
                std::hint::black_box(own_split());
            }
        });
        sandbox_runtime()
            .block_on(spin)
            .unwrap_or_else(|e| panic!("{e}"));
        let (sandbox, _driver) = own_split();
        assert!(
            sandbox >= sandbox_before + 5,
            "{sandbox_before} → {sandbox}"
        );
        let per = CpuPerConversion::between(
            CpuTicks::default(),
            CpuTicks {
                worker: 100,
                postgres: 50,
                ..CpuTicks::default()
            },
            1000,
        );
        assert!((per.worker - 1.0).abs() < 1e-9 && (per.pipeline() - 1.5).abs() < 1e-9);
        assert!(per.keys().contains("cpu_ms_per_conv_pipeline=1.500"));
    }
}
