//! Group commit: charges that arrive within a few milliseconds (or up to a batch size) are
//! applied in one ledger transaction — one fsync for all of them — and each request still gets
//! its own answer. Durable throughput is then not capped at one commit per request.

use std::time::Duration;

use ledger::{Debit, Ledger, LedgerError, LedgerResult, Op, Outcome, Receipt};
use tokio::sync::{mpsc, oneshot};

struct Job {
    op: Op,
    reply: oneshot::Sender<LedgerResult<Outcome>>,
}

#[derive(Clone)]
pub struct Charger {
    jobs: mpsc::Sender<Job>,
}

impl Charger {
    pub fn start(ledger: Ledger, window: Duration, max: usize) -> Charger {
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
                let ops: Vec<Op> = batch.iter().map(|j| j.op.clone()).collect();
                match ledger.submit(&ops).await {
                    Ok(results) => {
                        for (job, result) in batch.into_iter().zip(results) {
                            let _ = job.reply.send(result);
                        }
                    }
                    Err(e) => {
                        for job in batch {
                            let _ = job.reply.send(Err(e.clone()));
                        }
                    }
                }
            }
        });
        Charger { jobs }
    }

    pub async fn debit(&self, debit: Debit) -> LedgerResult<Receipt> {
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send(Job {
                op: Op::Debit(debit),
                reply,
            })
            .await
            .map_err(|_| LedgerError::InvalidRequest("the charge queue stopped".into()))?;
        match answer.await {
            Ok(Ok(Outcome::Transfer(receipt))) => Ok(receipt),
            Ok(Ok(Outcome::Reservation(_))) => Err(LedgerError::Inconsistent(
                "a debit answered with a reservation".into(),
            )),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(LedgerError::InvalidRequest(
                "the charge queue dropped the request".into(),
            )),
        }
    }
}
