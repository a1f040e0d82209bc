//! However the quick start ends, its children (sandbox, ingest, console,
//! worker) end with it: on SIGTERM it stops them itself; on SIGKILL, which it
//! cannot see, the kernel signals them (they were started with
//! `PR_SET_PDEATHSIG`). Runs the real `quickstart` executable against this
//! machine's PostgreSQL and RabbitMQ.

use std::{
    io::{BufRead, BufReader},
    process::{Command, Stdio},
    sync::mpsc,
    time::{Duration, Instant},
};

use rustix::process::Signal;

/// Starts quickstart, waits until its four children run, sends `signal`,
/// and checks that every child is gone.
fn children_end_with_quickstart(signal: Signal, database: &str) {
    let port = tools::process::free_port_run(4).expect("four free ports");
    let portal = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/demo-portal.json");
    let mut qs = Command::new(env!("CARGO_BIN_EXE_quickstart"))
        .args(["--port", &port.to_string(), "--database", database])
        .args(["--portal", portal])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("quickstart starts");
    let pid = qs.id();
    let stdout = qs.stdout.take().expect("piped");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            println!("quickstart: {line}");
            let _ = tx.send(line);
        }
    });
    // The first run may build the children's executables.
    let deadline = Instant::now() + Duration::from_secs(1200);
    loop {
        let line = rx
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .expect("quickstart reaches the website line");
        if line.contains("the connector website:") {
            break;
        }
    }
    let children = children_of(pid);
    let names: Vec<String> = children.iter().map(|c| comm(*c)).collect();
    assert!(
        children.len() >= 4,
        "sandbox, ingest, console and worker: {names:?}"
    );

    rustix::process::kill_process(to_pid(pid), signal).expect("signal sent");
    let exited = wait_exit(&mut qs, Duration::from_secs(60));
    assert!(exited, "quickstart exits on {signal:?}");

    let deadline = Instant::now() + Duration::from_secs(60);
    let mut alive: Vec<u32> = children.clone();
    while !alive.is_empty() && Instant::now() < deadline {
        alive.retain(|c| running(*c));
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        alive.is_empty(),
        "children still running after {signal:?}: {:?}",
        alive.iter().map(|c| comm(*c)).collect::<Vec<_>>()
    );
    cleanup(pid, database);
}

#[test]
fn sigterm_stops_sandbox_ingest_and_worker() {
    children_end_with_quickstart(Signal::TERM, "quickstart_sigterm_test");
}

#[test]
fn sigkill_leaves_no_child_behind() {
    children_end_with_quickstart(Signal::KILL, "quickstart_sigkill_test");
}

fn to_pid(pid: u32) -> rustix::process::Pid {
    rustix::process::Pid::from_raw(i32::try_from(pid).expect("a pid")).expect("not zero")
}

/// The direct children of `pid`.
fn children_of(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    for task in std::fs::read_dir(format!("/proc/{pid}/task"))
        .expect("quickstart runs")
        .flatten()
    {
        let list = std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
        out.extend(
            list.split_whitespace()
                .filter_map(|p| p.parse::<u32>().ok()),
        );
    }
    out
}

fn comm(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .map(|c| c.trim().to_owned())
        .unwrap_or_else(|_| format!("{pid} (gone)"))
}

/// Alive and not a zombie waiting to be reaped.
fn running(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        // "pid (comm) S ...": the state follows the last ')'.
        stat.rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X")
    })
}

fn wait_exit(child: &mut std::process::Child, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if child.try_wait().expect("waitable").is_some() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    false
}

/// The demo's queues and database (a SIGKILLed quick start leaves them).
fn cleanup(pid: u32, database: &str) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let mut settings = tools::support::test_settings();
        settings.queue_prefix = format!("demo{pid}.");
        let _ = tools::support::drop_topology(&settings).await;
        use sqlx::Connection as _;
        if let Ok(mut conn) =
            sqlx::PgConnection::connect("postgres://postgres@127.0.0.1:5432/postgres").await
        {
            let drop = format!("DROP DATABASE IF EXISTS {database} WITH (FORCE)");
            let _ = sqlx::query(sqlx::AssertSqlSafe(drop))
                .execute(&mut conn)
                .await;
        }
    });
}
