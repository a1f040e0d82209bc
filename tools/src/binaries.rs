//! The connector's own executables (`worker`, `ingest`, `sandbox`, …) that
//! the tools run as child processes: found beside the tool's executable, in
//! the same profile folder of the same target folder. Under `cargo run` or
//! `cargo test` (the `CARGO` variable is set) they are built first with the
//! tool's profile, which is a no-op when they are up to date; otherwise they
//! must already be there.

use std::{
    ffi::OsString,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context as _, bail};

/// Set to `1` to skip the build and take the executables as they are.
pub const NO_BUILD_ENV: &str = "CONNECTOR_TOOLS_NO_BUILD";

/// The executables a tool may run, each the binary of the package of the
/// same name. All of them are built together, whichever a tool needs: one
/// cargo command, one resolution of features, so that one tool's build is
/// never undone by another's.
pub const EXECUTABLES: &[&str] = &["worker", "ingest", "console", "sandbox"];

/// The folder holding the executables.
#[derive(Debug, Clone)]
pub struct Binaries {
    dir: PathBuf,
}

impl Binaries {
    /// The executables `names`, built first with all of [`EXECUTABLES`]
    /// when run through cargo.
    pub fn ensure(names: &[&str]) -> anyhow::Result<Self> {
        let exe = std::env::current_exe().context("locating the running executable")?;
        let dir = profile_dir(&exe)?;
        let me = Self { dir };
        let skip = std::env::var(NO_BUILD_ENV).is_ok_and(|v| v == "1");
        match std::env::var_os("CARGO") {
            Some(cargo) if !skip => {
                let mut all = EXECUTABLES.to_vec();
                all.extend(names.iter().filter(|n| !EXECUTABLES.contains(n)));
                me.build(&cargo, &all)?;
            }
            _ => {}
        }
        for name in names {
            if !me.path(name).is_file() {
                bail!(
                    "{} not found beside {}: build it first with `cargo build {} {}` \
                     (running the tool with `cargo run` builds it)",
                    name,
                    exe.display(),
                    profile_flag(&me.profile()).join(" "),
                    names
                        .iter()
                        .map(|n| format!("-p {n} --bin {n}"))
                        .collect::<Vec<_>>()
                        .join(" ")
                );
            }
        }
        Ok(me)
    }

    /// The path of executable `name`.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// The folder (e.g. `target/release`).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Cargo's name of the profile the folder belongs to.
    pub fn profile(&self) -> String {
        profile_of(&self.dir)
    }

    fn build(&self, cargo: &OsString, names: &[&str]) -> anyhow::Result<()> {
        let mut cmd = Command::new(cargo);
        cmd.arg("build").args(profile_flag(&self.profile()));
        for name in names {
            cmd.args(["-p", name, "--bin", name]);
        }
        if let Some(manifest) = workspace_manifest() {
            cmd.arg("--manifest-path").arg(manifest);
        }
        // The executables go where this one is, whatever target folder the
        // outer cargo was told about (flag or environment).
        if let Some(target) = self
            .dir
            .parent()
            .filter(|t| t.join("CACHEDIR.TAG").exists())
        {
            cmd.arg("--target-dir").arg(target);
        }
        eprintln!("building {} ({} profile)", names.join(", "), self.profile());
        let status = cmd
            .status()
            .with_context(|| format!("running {}", Path::new(cargo).display()))?;
        if !status.success() {
            bail!("building {} failed ({status})", names.join(", "));
        }
        Ok(())
    }
}

/// The profile folder of an executable: its own folder, or the parent of
/// `deps/` for test executables.
fn profile_dir(exe: &Path) -> anyhow::Result<PathBuf> {
    let dir = exe.parent().context("the executable has a folder")?;
    Ok(match dir.file_name() {
        Some(n) if n == "deps" || n == "examples" => dir.parent().unwrap_or(dir).to_owned(),
        _ => dir.to_owned(),
    })
}

/// `target/debug` holds the `dev` profile; other folders are named after theirs.
fn profile_of(dir: &Path) -> String {
    match dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") | None => "dev".to_owned(),
        Some(other) => other.to_owned(),
    }
}

fn profile_flag(profile: &str) -> Vec<String> {
    match profile {
        "dev" => Vec::new(),
        "release" => vec!["--release".to_owned()],
        other => vec!["--profile".to_owned(), other.to_owned()],
    }
}

/// The workspace's `Cargo.toml`: above the package's folder (cargo sets
/// `CARGO_MANIFEST_DIR` for `cargo run` and `cargo test`), or where this
/// crate was built from.
fn workspace_manifest() -> Option<PathBuf> {
    let package = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    package
        .ancestors()
        .map(|d| d.join("Cargo.toml"))
        .filter(|m| m.is_file())
        .find(|m| {
            std::fs::read_to_string(m).is_ok_and(|t| t.lines().any(|l| l.trim() == "[workspace]"))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profiles_follow_the_folder_names() {
        assert_eq!(profile_of(Path::new("/t/debug")), "dev");
        assert_eq!(profile_of(Path::new("/t/release")), "release");
        assert_eq!(profile_of(Path::new("/t/quickstart")), "quickstart");
        assert!(profile_flag("dev").is_empty());
        assert_eq!(profile_flag("release"), ["--release"]);
        assert_eq!(profile_flag("quickstart"), ["--profile", "quickstart"]);
    }

    #[test]
    fn test_executables_use_the_profile_folder() -> anyhow::Result<()> {
        assert_eq!(
            profile_dir(Path::new("/t/debug/deps/x-123"))?,
            Path::new("/t/debug")
        );
        assert_eq!(
            profile_dir(Path::new("/t/release/bench"))?,
            Path::new("/t/release")
        );
        Ok(())
    }

    #[test]
    fn the_workspace_manifest_is_found() {
        let m = workspace_manifest().expect("inside the workspace");
        assert!(m.parent().expect("folder").join("tools").is_dir());
    }
}
