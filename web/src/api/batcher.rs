//! Group commit: charges that arrive within a few milliseconds (or up to a batch size) are
//! applied in one database transaction — the ledger debits and the stored answers for their
//! idempotency keys together, one fsync for all of them — and each request still gets its own
//! answer. Durable throughput is then not capped at one commit per request.

use std::time::Duration;

use ledger::{Balance, Debit, Ledger, LedgerError, LedgerResult, Op, Outcome, Receipt};
use sea_orm::DbBackend;
use tokio::sync::{mpsc, oneshot};

use crate::db::{exec, now_micros};

/// Renders a charge's answer from the transfer and the balance after it.
pub type RenderAnswer = Box<dyn FnOnce(&Receipt, &Balance) -> String + Send>;

type Reply = oneshot::Sender<LedgerResult<Charged>>;

/// How to remember a charge's answer under the caller's idempotency key.
pub struct Record {
    pub user_id: i64,
    pub key: String,
    pub request_hash: String,
    pub answer: RenderAnswer,
}

/// What a charge produced: the transfer, the balance after it, and the answer stored.
pub struct Charged {
    pub receipt: Receipt,
    pub balance: Balance,
    pub answer: Option<String>,
}

struct Job {
    debit: Debit,
    record: Option<Record>,
    reply: Reply,
}

#[derive(Clone)]
pub struct Charger {
    jobs: mpsc::Sender<Job>,
}

impl Charger {
    pub fn start(ledger: Ledger, backend: DbBackend, window: Duration, max: usize) -> Charger {
        let (jobs, mut rx) = mpsc::channel::<Job>(max.max(1) * 8);
        tokio::spawn(async move {
            while let Some(first) = rx.recv().await {
                let mut batch = vec![first];
                let deadline = tokio::time::Instant::now() + window;
                while batch.len() < max {
                    match tokio::time::timeout_at(deadline, rx.recv()).await {
                        Ok(Some(job)) => batch.push(job),
                        _ => break,
                    }
                }
                run_batch(&ledger, backend, batch).await;
            }
        });
        Charger { jobs }
    }

    pub async fn charge(&self, debit: Debit, record: Option<Record>) -> LedgerResult<Charged> {
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send(Job {
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

/// One transaction for the whole batch; a refused item is answered and the others go on. A
/// storage failure rolls everything back and every request of the batch is told (each may retry
/// with its idempotency key).
async fn run_batch(ledger: &Ledger, backend: DbBackend, batch: Vec<Job>) {
    let mut results: Vec<(
        oneshot::Sender<LedgerResult<Charged>>,
        LedgerResult<Charged>,
    )> = Vec::new();
    let outcome: LedgerResult<()> = async {
        let tx = ledger.begin().await?;
        for job in batch {
            let result = match tx.apply(&Op::Debit(job.debit.clone())).await {
                Ok(Outcome::Transfer(receipt)) => {
                    let balance = tx.balance(job.debit.wallet).await?;
                    let answer = match job.record {
                        Some(record) => {
                            let text = (record.answer)(&receipt, &balance);
                            exec(
                                tx.connection(),
                                backend,
                                "INSERT INTO web_charges (user_id, idempotency_key, request_hash, status, response, created_at) \
                                 VALUES (?, ?, ?, 201, ?, ?) ON CONFLICT (user_id, idempotency_key) DO NOTHING",
                                vec![record.user_id.into(), record.key.into(), record.request_hash.into(), text.clone().into(), now_micros().into()],
                            )
                            .await?;
                            Some(text)
                        }
                        None => None,
                    };
                    Ok(Charged { receipt, balance, answer })
                }
                Ok(Outcome::Reservation(_)) => Err(LedgerError::Inconsistent("a debit answered with a reservation".into())),
                Err(e @ (LedgerError::Storage(_) | LedgerError::Inconsistent(_))) => return Err(e),
                Err(refusal) => Err(refusal),
            };
            results.push((job.reply, result));
        }
        tx.commit().await
    }
    .await;
    match outcome {
        Ok(()) => {
            for (reply, result) in results {
                let _ = reply.send(result);
            }
        }
        Err(e) => {
            tracing::error!(error = %e, "a batch of charges failed; none was committed");
            for (reply, _) in results {
                let _ = reply.send(Err(e.clone()));
            }
        }
    }
}
