//! The reduced fault suite (CI): the `fault-suite` binary with `--reduced`
//! — 40 s of load on two portals while workers are SIGKILLed, a private
//! RabbitMQ restarts, a private PostgreSQL crashes, impact.com fails and
//! HubSpot answers 429 and delivers duplicates out of order — must end with
//! nothing lost and nothing doubled.

use std::process::Command;

#[test]
fn nothing_is_lost_or_doubled_under_faults() {
    let out = Command::new(env!("CARGO_BIN_EXE_fault-suite"))
        .args(["--reduced", "--seed", "11"])
        .output()
        .expect("the fault-suite binary runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let result = |key: &str| {
        stdout
            .lines()
            .find_map(|l| l.strip_prefix(&format!("RESULT {key}=")))
            .and_then(|v| v.parse::<u64>().ok())
    };
    assert!(
        out.status.success(),
        "fault suite failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    assert_eq!(result("lost"), Some(0), "{stdout}");
    assert_eq!(result("duplicates"), Some(0), "{stdout}");
    assert_eq!(result("unexpected"), Some(0), "{stdout}");
    let expected = result("conversions_expected").unwrap_or(0);
    assert!(expected > 100, "the load was real: {stdout}");
    assert_eq!(result("delivered"), Some(expected), "{stdout}");
    // The faults did happen.
    assert!(result("sigkills").unwrap_or(0) >= 3, "{stdout}");
    assert_eq!(result("rabbitmq_restarts"), Some(1), "{stdout}");
    assert_eq!(result("postgres_crashes"), Some(1), "{stdout}");
    assert!(result("faulted_posts").unwrap_or(0) > 0, "{stdout}");
    assert!(stdout.contains("RESULT verdict=pass"), "{stdout}");
}
