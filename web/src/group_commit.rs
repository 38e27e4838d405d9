//! Group commit, whatever a batch commits: requests that queue up while the previous batch
//! commits are handed to a [`BatchCommitter`] together, one transaction and one fsync for all of
//! them, and each request still gets its own answer. Durable throughput is then not capped at
//! one commit per request. The charges use it (`api::batcher`), and so does the benchmark's
//! durable baseline (`api::durable_baseline`), so the two figures differ only by what a batch
//! does; so does the storing of Razorpay's webhooks (`webhooks::intake`).

use std::{future::Future, time::Duration};

use tokio::sync::{mpsc, oneshot};

/// What one batch does: one answer per job, in the jobs' order.
pub trait BatchCommitter: Send + 'static {
    type Job: Send + 'static;
    type Answer: Send + 'static;

    /// Commits the batch. The future runs on the batches' own thread, so it need not be `Send`.
    fn commit(&self, jobs: Vec<Self::Job>) -> impl Future<Output = Vec<Self::Answer>>;
}

/// The batches' thread stopped (it never stops while the app runs) or dropped a request.
#[derive(Debug, thiserror::Error)]
#[error("the {0} queue stopped")]
pub struct QueueStopped(&'static str);

type Queued<C> = (
    <C as BatchCommitter>::Job,
    oneshot::Sender<<C as BatchCommitter>::Answer>,
);

pub struct GroupCommit<C: BatchCommitter> {
    jobs: mpsc::Sender<Queued<C>>,
    name: &'static str,
}

impl<C: BatchCommitter> Clone for GroupCommit<C> {
    fn clone(&self) -> Self {
        GroupCommit {
            jobs: self.jobs.clone(),
            name: self.name,
        }
    }
}

/// A batch stops gathering once no request has arrived for this long.
const QUIET: Duration = Duration::from_micros(150);

impl<C: BatchCommitter> GroupCommit<C> {
    /// Starts the batches' thread. A batch takes at most `max` jobs and gathers for at most
    /// `window`.
    pub fn start(committer: C, name: &'static str, window: Duration, max: usize) -> Self {
        let (jobs, rx) = mpsc::channel::<Queued<C>>(max.max(1) * 8);
        // The batches run on a thread and runtime of their own: the single writer connection
        // goes back to its pool through a task spawned on the current runtime, and on the busy
        // request runtime that task waited behind HTTP work, every batch.
        let started = std::thread::Builder::new()
            .name(format!("kalp-{name}"))
            .spawn(move || {
                match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(runtime) => runtime.block_on(gather_and_commit(committer, rx, window, max)),
                    Err(e) => tracing::error!(error = %e, name, "a batcher could not start"),
                }
            });
        if let Err(e) = started {
            tracing::error!(error = %e, name, "a batcher's thread could not start");
        }
        GroupCommit { jobs, name }
    }

    /// False once the batches' thread has stopped.
    pub fn is_running(&self) -> bool {
        !self.jobs.is_closed()
    }

    /// Queues `job` for the next batch and waits for its answer.
    pub async fn submit(&self, job: C::Job) -> Result<C::Answer, QueueStopped> {
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send((job, reply))
            .await
            .map_err(|_| QueueStopped(self.name))?;
        answer.await.map_err(|_| QueueStopped(self.name))
    }
}

async fn gather_and_commit<C: BatchCommitter>(
    committer: C,
    mut rx: mpsc::Receiver<Queued<C>>,
    window: Duration,
    max: usize,
) {
    while let Some(first) = rx.recv().await {
        // Everything already queued joins at once. Then, while requests keep arriving (each
        // within `QUIET` of the last), the batch waits for them, up to `window`: without that,
        // a small batch formed from the first arrivals after a big one pays a whole commit for
        // a few requests (big and tiny batches alternated).
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
        let (jobs, replies): (Vec<C::Job>, Vec<oneshot::Sender<C::Answer>>) =
            batch.into_iter().unzip();
        let answers = committer.commit(jobs).await;
        // A committer that answered fewer jobs than it was given drops the rest's replies: those
        // requests are told the queue dropped them, never left waiting.
        for (reply, answer) in replies.into_iter().zip(answers) {
            let _ = reply.send(answer);
        }
    }
}
