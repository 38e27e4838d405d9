//! The benchmark's durable baseline (docs/benchmarks.md), served by `benchmark`: the same group
//! commit as a charge, but a batch appends one row per request to a one-table database
//! (`store::durable_appends`) instead of debiting the ledger. It is the ceiling for any durable
//! charge on this machine that day, so `api.charges` is reported as a share of it. Off unless
//! `benchmark.durable_baseline_url` is set (production refuses it).

use std::time::Duration;

use crate::{
    configuration::Settings,
    group_commit::{BatchCommitter, GroupCommit},
    store::{durable_appends::DurableAppends, now_micros},
};

/// What a batch of the baseline commits: one row per request, one transaction.
pub struct AppendBatches {
    appends: DurableAppends,
}

/// A batch that failed: every request of it is told.
#[derive(Debug, Clone, Copy)]
pub struct AppendFailed;

impl BatchCommitter for AppendBatches {
    type Job = i64;
    type Answer = Result<(), AppendFailed>;

    async fn commit(&self, user_ids: Vec<i64>) -> Vec<Self::Answer> {
        let outcome = match self.appends.append(&user_ids, now_micros()).await {
            Ok(()) => Ok(()),
            Err(e) => {
                tracing::error!(error = %e, "a batch of the durable baseline failed");
                Err(AppendFailed)
            }
        };
        vec![outcome; user_ids.len()]
    }
}

pub type DurableBaseline = GroupCommit<AppendBatches>;

/// Opens the baseline's database and starts its batches, with the charges' window and batch
/// size, if the settings name one.
pub async fn start(settings: &Settings) -> anyhow::Result<Option<DurableBaseline>> {
    let url = &settings.benchmark.durable_baseline_url;
    if url.is_empty() {
        return Ok(None);
    }
    let appends =
        DurableAppends::open(url, settings.benchmark.durable_baseline_schema.as_deref()).await?;
    Ok(Some(GroupCommit::start(
        AppendBatches { appends },
        "durable-baseline",
        Duration::from_micros(settings.usage.batch_window_micros),
        settings.usage.batch_max,
    )))
}
