//! What a batch of charges commits (through `group_commit`): in one database transaction, the
//! ledger debits (whose unique keys find retries), the answers stored for those retries, and the
//! new answers, one fsync for all of them; each request still gets its own answer.

use std::{collections::BTreeSet, time::Duration};

use ledger::{Balance, Debit, Ledger, LedgerError, LedgerResult, Receipt};

use crate::group_commit::{BatchCommitter, GroupCommit};
use crate::store::{
    alerts::{self, AlertSetting},
    charge_answers::{self, NewAnswer},
    now_micros,
};

/// Renders a charge's answer from the transfer and the balance after it. `Fn`, not `FnOnce`: a
/// batch that meets a transient failure runs again, and renders again.
pub type RenderAnswer = Box<dyn Fn(&Receipt, &Balance) -> String + Send + Sync>;

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

/// The charges' batches: debits, stored answers and alert settings, one transaction each.
pub struct ChargeBatches {
    ledger: Ledger,
}

impl BatchCommitter for ChargeBatches {
    type Job = (Debit, Option<Record>);
    type Answer = LedgerResult<Answer>;

    async fn commit(&self, jobs: Vec<Self::Job>) -> Vec<Self::Answer> {
        run_batch(&self.ledger, jobs).await
    }
}

#[derive(Clone)]
pub struct Charger {
    batches: GroupCommit<ChargeBatches>,
}

impl Charger {
    pub fn start(ledger: Ledger, window: Duration, max: usize) -> Charger {
        Charger {
            batches: GroupCommit::start(ChargeBatches { ledger }, "charger", window, max),
        }
    }

    /// False once the batches' thread has stopped (it never stops while the app runs).
    pub fn is_running(&self) -> bool {
        self.batches.is_running()
    }

    pub async fn charge(&self, debit: Debit, record: Option<Record>) -> LedgerResult<Answer> {
        self.batches
            .submit((debit, record))
            .await
            .map_err(|e| LedgerError::InvalidRequest(e.to_string()))?
    }
}

/// One transaction for the whole batch; a refused item is answered and the others go on. A
/// storage failure rolls everything back and every request of the batch is told (each may retry
/// with its idempotency key).
async fn run_batch(
    ledger: &Ledger,
    work: Vec<(Debit, Option<Record>)>,
) -> Vec<LedgerResult<Answer>> {
    let size = work.len();
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
            answers
        }
        Err(e) => {
            metrics::counter!("kalp_charges_total", "result" => "failed").increment(size as u64);
            tracing::error!(error = %e, "a batch of charges failed; none was committed");
            (0..size).map(|_| Err(e.clone())).collect()
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
