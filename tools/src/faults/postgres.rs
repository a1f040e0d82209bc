//! A private PostgreSQL for the fault suite: `initdb` + `pg_ctl` on a free
//! port under the run's folder, crashed and restarted at will.

use std::{
    path::{Path, PathBuf},
    process::Stdio,
    time::Duration,
};

use anyhow::{Context as _, bail};
use tokio::process::Command;

use crate::process::free_port;

/// A PostgreSQL cluster of our own (`initdb` + `pg_ctl`).
pub struct PrivatePostgres {
    dir: PathBuf,
    /// The port.
    pub port: u16,
    bin: PathBuf,
    /// Run the tools as `postgres` (initdb refuses root).
    as_postgres: bool,
    max_connections: u32,
}

impl PrivatePostgres {
    /// Creates a cluster under `dir` and starts it (`max_connections`
    /// 200).
    pub async fn start(dir: &Path) -> anyhow::Result<Self> {
        Self::start_with(dir, 200).await
    }

    /// [`PrivatePostgres::start`] with this `max_connections`.
    pub async fn start_with(dir: &Path, max_connections: u32) -> anyhow::Result<Self> {
        let bin = find_pg_bin().context(
            "no PostgreSQL server binaries (initdb, pg_ctl) under /usr/lib/postgresql/*/bin",
        )?;
        let me = Self {
            dir: dir.join("postgres"),
            port: free_port()?,
            bin,
            as_postgres: is_root(),
            max_connections,
        };
        std::fs::create_dir_all(&me.dir)?;
        if me.as_postgres {
            let ok = std::process::Command::new("chown")
                .args(["-R", "postgres"])
                .arg(dir)
                .status()?
                .success();
            if !ok {
                bail!("cannot hand {} to the postgres user", dir.display());
            }
        }
        let data = me.dir.join("data");
        me.tool(
            "initdb",
            &[
                "-D",
                &data.to_string_lossy(),
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
            ],
        )
        .await?;
        me.pg_ctl_start().await?;
        Ok(me)
    }

    /// The server URL without a database.
    pub fn server_url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}", self.port)
    }

    async fn tool(&self, name: &str, args: &[&str]) -> anyhow::Result<()> {
        let path = self.bin.join(name);
        let mut cmd = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&path);
            c
        } else {
            Command::new(&path)
        };
        let out = cmd.args(args).stdin(Stdio::null()).output().await?;
        if !out.status.success() {
            bail!(
                "{name} failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(())
    }

    async fn pg_ctl_start(&self) -> anyhow::Result<()> {
        let data = self.dir.join("data").to_string_lossy().into_owned();
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c max_connections={}",
            self.port,
            self.dir.display(),
            self.max_connections
        );
        let log = self.dir.join("server.log").to_string_lossy().into_owned();
        self.tool(
            "pg_ctl",
            &["-D", &data, "-o", &opts, "-l", &log, "-w", "start"],
        )
        .await
    }

    /// Crashes the server (`pg_ctl stop -m immediate`: no checkpoint, crash
    /// recovery at the next start), waits `down_for`, starts it again.
    pub async fn crash_and_restart(&self, down_for: Duration) -> anyhow::Result<()> {
        let data = self.dir.join("data").to_string_lossy().into_owned();
        self.tool("pg_ctl", &["-D", &data, "-m", "immediate", "-w", "stop"])
            .await?;
        tokio::time::sleep(down_for).await;
        self.pg_ctl_start().await
    }

    /// Stops the server.
    pub async fn stop(&self) -> anyhow::Result<()> {
        let data = self.dir.join("data").to_string_lossy().into_owned();
        self.tool("pg_ctl", &["-D", &data, "-m", "fast", "-w", "stop"])
            .await
    }
}

fn is_root() -> bool {
    std::process::Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

fn find_pg_bin() -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|p| p.join("pg_ctl").exists())
        .collect();
    dirs.sort();
    dirs.pop()
}

impl Drop for PrivatePostgres {
    /// A run that ends early (an error) leaves no server behind.
    fn drop(&mut self) {
        let data = self.dir.join("data");
        if !data.join("postmaster.pid").exists() {
            return;
        }
        let pg_ctl = self.bin.join("pg_ctl");
        let mut cmd = if self.as_postgres {
            let mut c = std::process::Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&pg_ctl);
            c
        } else {
            std::process::Command::new(&pg_ctl)
        };
        let _ = cmd
            .arg("-D")
            .arg(&data)
            .args(["-m", "immediate", "-w", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}
