//! Group commit: charges that queue up while the previous batch commits are applied in one
//! database transaction — the ledger debits (whose unique keys find retries), the answers stored
//! for those retries, and the new answers, one fsync for all of them — and each request still
//! gets its own answer. Durable throughput is then not capped at one commit per request.

use std::{collections::BTreeSet, time::Duration};

use ledger::{Balance, Debit, Ledger, LedgerError, LedgerResult, Receipt};
use tokio::sync::{mpsc, oneshot};

use crate::store::{
    alerts::{self, AlertSetting},
    charge_answers::{self, NewAnswer},
    now_micros,
};

/// Renders a charge's answer from the transfer and the balance after it. `Fn`, not `FnOnce`: a
/// batch that meets a transient failure runs again, and renders again.
pub type RenderAnswer = Box<dyn Fn(&Receipt, &Balance) -> String + Send + Sync>;

type Reply = oneshot::Sender<LedgerResult<Answer>>;

/// What a charge request comes to.
pub enum Answer {
    /// Charged now (or, at the ledger, a replay of the same charge).
    Charged(Charged),
    /// The answer stored for this idempotency key the first time.
    Stored { status: u16, body: String },
    /// The idempotency key was used for a different request.
    KeyReused,
}

/// How to remember a charge's answer, found again through the debit's idempotency key.
pub struct Record {
    pub user_id: i64,
    pub request_hash: String,
    pub answer: RenderAnswer,
}

/// What a charge produced: the transfer, the balance after it, the answer stored, and the
/// account's low-balance alert setting as the same transaction saw it (read once per batch).
pub struct Charged {
    pub receipt: Receipt,
    pub balance: Balance,
    pub answer: Option<String>,
    pub alert: Option<AlertSetting>,
}

struct ChargeJob {
    debit: Debit,
    record: Option<Record>,
    reply: Reply,
}

#[derive(Clone)]
pub struct Charger {
    jobs: mpsc::Sender<ChargeJob>,
}

impl Charger {
    pub fn start(ledger: Ledger, window: Duration, max: usize) -> Charger {
        let (jobs, mut rx) = mpsc::channel::<ChargeJob>(max.max(1) * 8);
        // The batches run on a thread and runtime of their own: the single writer connection
        // goes back to its pool through a task spawned on the current runtime, and on the busy
        // request runtime that task waited behind HTTP work, every batch.
        let worker = async move {
            while let Some(first) = rx.recv().await {
                // Everything already queued joins at once. Then, while requests keep arriving
                // (each within `QUIET` of the last), the batch waits for them, up to `window`:
                // without that, a small batch formed from the first arrivals after a big one
                // pays a whole commit for a few charges (big and tiny batches alternated).
                let mut batch = vec![first];
                let deadline = tokio::time::Instant::now() + window;
                while batch.len() < max {
                    match rx.try_recv() {
                        Ok(job) => batch.push(job),
                        Err(_) => {
                            let quiet = (tokio::time::Instant::now() + QUIET).min(deadline);
                            match tokio::time::timeout_at(quiet, rx.recv()).await {
                                Ok(Some(job)) => batch.push(job),
                                _ => break,
                            }
                        }
                    }
                }
                run_batch(&ledger, batch).await;
            }
        };
        let started = std::thread::Builder::new()
            .name("kalp-charger".into())
            .spawn(move || {
                match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(runtime) => runtime.block_on(worker),
                    Err(e) => tracing::error!(error = %e, "the charge batcher could not start"),
                }
            });
        if let Err(e) = started {
            tracing::error!(error = %e, "the charge batcher thread could not start");
        }
        Charger { jobs }
    }

    /// False once the batches' thread has stopped (it never stops while the app runs).
    pub fn is_running(&self) -> bool {
        !self.jobs.is_closed()
    }

    pub async fn charge(&self, debit: Debit, record: Option<Record>) -> LedgerResult<Answer> {
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send(ChargeJob {
                debit,
                record,
                reply,
            })
            .await
            .map_err(|_| LedgerError::InvalidRequest("the charge queue stopped".into()))?;
        answer.await.map_err(|_| {
            LedgerError::InvalidRequest("the charge queue dropped the request".into())
        })?
    }
}

/// A batch stops gathering once no charge has arrived for this long.
const QUIET: Duration = Duration::from_micros(150);

/// One transaction for the whole batch; a refused item is answered and the others go on. A
/// storage failure rolls everything back and every request of the batch is told (each may retry
/// with its idempotency key).
async fn run_batch(ledger: &Ledger, batch: Vec<ChargeJob>) {
    let (replies, work): (Vec<Reply>, Vec<(Debit, Option<Record>)>) = batch
        .into_iter()
        .map(|job| (job.reply, (job.debit, job.record)))
        .unzip();
    let size = replies.len();
    let started = std::time::Instant::now();
    let result = apply(ledger, work).await;
    metrics::histogram!("kalp_charge_batch_size").record(size as f64);
    metrics::histogram!("kalp_charge_commit_seconds").record(started.elapsed().as_secs_f64());
    match result {
        Ok(answers) => {
            for answer in &answers {
                let result = match answer {
                    Ok(Answer::Charged(charged)) if !charged.receipt.replayed => {
                        crate::telemetry::credits("debited", charged.receipt.transfer.amount);
                        "charged"
                    }
                    Ok(_) => "replayed",
                    Err(LedgerError::InsufficientCredits { .. }) => "refused",
                    Err(_) => "failed",
                };
                metrics::counter!("kalp_charges_total", "result" => result).increment(1);
            }
            for (reply, answer) in replies.into_iter().zip(answers) {
                let _ = reply.send(answer);
            }
        }
        Err(e) => {
            metrics::counter!("kalp_charges_total", "result" => "failed").increment(size as u64);
            tracing::error!(error = %e, "a batch of charges failed; none was committed");
            for reply in replies {
                let _ = reply.send(Err(e.clone()));
            }
        }
    }
}

async fn apply(
    ledger: &Ledger,
    work: Vec<(Debit, Option<Record>)>,
) -> LedgerResult<Vec<LedgerResult<Answer>>> {
    let (debits, records): (Vec<Debit>, Vec<Option<Record>>) = work.into_iter().unzip();
    let (debits, records) = (&debits, &records);
    // One transaction for the batch, run again from the start if it meets a transient failure
    // (a deadlock, BUSY): nothing of a failed run was committed, so nothing is charged twice.
    ledger
        .transact(|tx| {
            Box::pin(async move {
                // The debits first, set-based. The ledger's unique keys find retries as replays
                // in the same lookup, so stored answers are read only for those: no statement
                // for them in a batch of new charges.
                let decided = tx.debit_many(debits).await?;
                let replayed: Vec<i64> = decided
                    .iter()
                    .filter_map(|result| match result {
                        Ok((receipt, _)) if receipt.replayed => Some(receipt.transfer.id.0),
                        _ => None,
                    })
                    .collect();
                let stored = charge_answers::for_transfers(tx, &replayed).await?;
                let users: Vec<i64> = records
                    .iter()
                    .flatten()
                    .map(|r| r.user_id)
                    .collect::<BTreeSet<i64>>()
                    .into_iter()
                    .collect();
                let settings = alerts::settings_of(tx, &users).await?;
                let mut new_answers = Vec::new();
                let mut answers = Vec::with_capacity(decided.len());
                for (record, result) in records.iter().zip(decided) {
                    let (receipt, balance) = match result {
                        Ok(charged) => charged,
                        Err(e) => {
                            answers.push(Err(e));
                            continue;
                        }
                    };
                    if let (Some(record), Some(earlier)) =
                        (record, stored.get(&receipt.transfer.id.0))
                    {
                        // A retry: the original answer, if it is the same request.
                        answers.push(Ok(if earlier.request_hash == record.request_hash {
                            Answer::Stored {
                                status: u16::try_from(earlier.status).unwrap_or(201),
                                body: earlier.response.clone(),
                            }
                        } else {
                            Answer::KeyReused
                        }));
                        continue;
                    }
                    let alert = record
                        .as_ref()
                        .and_then(|r| settings.get(&r.user_id).copied());
                    let answer = record.as_ref().map(|record| {
                        let text = (record.answer)(&receipt, &balance);
                        new_answers.push(NewAnswer {
                            transfer_id: receipt.transfer.id.0,
                            user_id: record.user_id,
                            request_hash: record.request_hash.clone(),
                            response: text.clone(),
                        });
                        text
                    });
                    answers.push(Ok(Answer::Charged(Charged {
                        receipt,
                        balance,
                        answer,
                        alert,
                    })));
                }
                charge_answers::store(tx, new_answers, now_micros()).await?;
                Ok(answers)
            })
        })
        .await
}
