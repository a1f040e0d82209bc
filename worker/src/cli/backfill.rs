//! `worker backfill`.

use anyhow::Context as _;
use shared::config::Settings;

use crate::{
    Worker,
    backfill::{BackfillArgs, backfill},
};

/// Runs `worker backfill`.
pub async fn run(
    settings: &Settings,
    args: BackfillArgs,
    out: &mut impl std::io::Write,
) -> anyhow::Result<()> {
    let w = Worker::connect(settings).await.context("connecting")?;
    let report = backfill(&w, &args).await?;
    writeln!(out, "{}", serde_json::to_string_pretty(&report)?)?;
    Ok(())
}
