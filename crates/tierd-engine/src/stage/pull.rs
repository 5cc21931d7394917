//! The pull stage: the connector's pages, through a bounded channel, cut into work items of
//! `[pipeline] batch_size` accounts and handed to the sink; and, for incremental jobs, the
//! accounts with new signals since the last successful run, restored from the store.

use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use futures_util::StreamExt as _;
use tierd_connectors::connector::Watermark;
use tierd_core::codec;

use crate::context::RunCtx;
use crate::shutdown::ShutdownSignal;
use crate::sink::Sink;
use crate::timings::Stage;
use crate::work::{Shared, WorkAccount};
use crate::{pilot, stage, Progress};

/// What the pull stage saw.
pub(crate) struct Pulled {
    /// Records the connector could not read.
    pub(crate) quarantined: u64,
    /// Stopped on request before the end.
    pub(crate) stopped: bool,
    /// Ids pulled (incremental jobs only: they decide what the push stage looks at).
    pub(crate) ids: HashSet<String>,
    /// Where the next incremental run starts.
    pub(crate) watermark: Option<Watermark>,
}

/// Pulls since `since`, handing work items to `sink` while its consumers process them.
pub(crate) async fn pull<S: Sink>(
    ctx: &RunCtx<'_>,
    sink: &S,
    since: Option<Watermark>,
    track_ids: bool,
    shared: &Shared,
    shutdown: &ShutdownSignal,
    progress: Option<&dyn Progress>,
) -> anyhow::Result<Pulled> {
    let p = ctx.p;
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<WorkAccount>>(p.settings.pipeline.channel_pages);
    let mut ids: HashSet<String> = HashSet::new();
    let read = async {
        let mut stream = p.connector.pull(since);
        let mut quarantined = 0u64;
        let mut stopped = false;
        // The last page's watermark is the one to store; no page means nothing new.
        let mut watermark = since;
        let mut reading = Duration::ZERO;
        loop {
            let started = Instant::now();
            let Some(page) = stream.next().await else {
                reading += started.elapsed();
                break;
            };
            if *shutdown.borrow() {
                stopped = true;
                break;
            }
            let page = page.map_err(|e| {
                p.metrics.error("pull");
                anyhow::Error::new(e).context("pull accounts from the CRM")
            })?;
            watermark = page.watermark.or(watermark);
            quarantined += page.quarantined.len() as u64;
            for q in &page.quarantined {
                tracing::warn!(record = %q, "record quarantined");
            }
            let mut batch: Vec<WorkAccount> = page.accounts.iter().map(WorkAccount::from_crm).collect();
            if let Some(spec) = ctx.pilot {
                batch
                    .retain(|a| pilot::includes(spec, &a.id, &codec::decode(&ctx.scorer.schema, &a.facts).0));
            }
            // Waiting for the workers to take the batch is theirs, not the pull's.
            reading += started.elapsed();
            if tx.send(batch).await.is_err() {
                break;
            }
        }
        drop(tx);
        ctx.time(Stage::Pull, reading, Duration::ZERO);
        anyhow::Ok((quarantined, stopped, watermark))
    };
    let cut = async {
        let size = p.settings.pipeline.batch_size.max(1);
        let mut buffer: Vec<WorkAccount> = Vec::new();
        while let Some(accounts) = rx.recv().await {
            if track_ids {
                ids.extend(accounts.iter().map(|a| a.id.clone()));
            }
            buffer.extend(accounts);
            while buffer.len() >= size {
                let rest = buffer.split_off(size);
                let batch = std::mem::replace(&mut buffer, rest);
                hand_over(ctx, sink, batch, shared, progress).await?;
            }
        }
        if !buffer.is_empty() {
            hand_over(ctx, sink, buffer, shared, progress).await?;
        }
        anyhow::Ok(())
    };
    let producer = async {
        let (read, cut) = tokio::join!(read, cut);
        shared.local.close();
        shared.pull_done.store(true, Ordering::SeqCst);
        shared.enqueued.notify_waiters();
        let read = read?;
        cut?;
        anyhow::Ok(read)
    };
    let (produced, consumed) = tokio::join!(producer, sink.consume(ctx, shared));
    let (quarantined, stopped, watermark) = match (produced, consumed) {
        (Ok(v), Ok(())) => v,
        (Err(e), _) | (_, Err(e)) => return Err(e),
    };
    Ok(Pulled {
        quarantined,
        stopped,
        ids,
        watermark,
    })
}

async fn hand_over<S: Sink>(
    ctx: &RunCtx<'_>,
    sink: &S,
    batch: Vec<WorkAccount>,
    shared: &Shared,
    progress: Option<&dyn Progress>,
) -> anyhow::Result<()> {
    if batch.is_empty() {
        return Ok(());
    }
    if let Some(pr) = progress {
        pr.advance(batch.len() as u64);
    }
    sink.hand_over(ctx, batch, shared).await
}

/// Incremental jobs: the accounts with signals since `since` that the pull did not bring,
/// processed again from their stored own facts.
pub(crate) async fn restore_signalled<S: Sink>(
    ctx: &RunCtx<'_>,
    sink: &S,
    since: tierd_store::Timestamp,
    pulled: &HashSet<String>,
    shared: &Shared,
) -> anyhow::Result<()> {
    let p = ctx.p;
    let signalled = p.store.accounts_with_signals_since(since).await?;
    let restore: Vec<String> = signalled.into_iter().filter(|id| !pulled.contains(id)).collect();
    for chunk in restore.chunks(p.settings.pipeline.batch_size.max(1)) {
        let states = p.store.accounts(chunk).await?;
        let mut batch: Vec<WorkAccount> = states
            .values()
            .map(|s| WorkAccount::from_state(s, &ctx.scorer.schema, |src| ctx.is_own_source(src)))
            .collect();
        batch.sort_by(|a, b| a.id.cmp(&b.id));
        let counts = stage::process(ctx, sink, batch).await?;
        shared.merge(&counts);
    }
    Ok(())
}
