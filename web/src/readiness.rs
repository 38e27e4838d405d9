//! Whether this instance can serve (`/readyz`), as opposed to merely being alive (`/healthz`):
//! the database answers and has every migration this binary knows, the charge batcher and the
//! background workers are running, and the instance is not shutting down. A load balancer takes
//! an instance out of rotation while `/readyz` fails.

use std::sync::{
    Arc,
    atomic::{AtomicBool, AtomicI64, Ordering},
};

use serde::Serialize;

use crate::store;

/// The background workers, each of which beats at the start of every round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Worker {
    Webhooks,
    Housekeeping,
    Reconciliation,
    Emails,
}

impl Worker {
    fn name(self) -> &'static str {
        match self {
            Worker::Webhooks => "webhook inbox",
            Worker::Housekeeping => "housekeeping",
            Worker::Reconciliation => "reconciliation",
            Worker::Emails => "email sender",
        }
    }
}

/// What readiness is made of that the instance itself knows (the rest is asked of the database).
#[derive(Debug, Default)]
pub struct Readiness {
    draining: AtomicBool,
    /// Unix seconds of each worker's last beat; 0: not started; -1: not wanted (turned off).
    beats: [AtomicI64; 4],
    /// How long each worker may go without a beat and still count as running.
    allowances: [AtomicI64; 4],
}

fn index(worker: Worker) -> usize {
    match worker {
        Worker::Webhooks => 0,
        Worker::Housekeeping => 1,
        Worker::Reconciliation => 2,
        Worker::Emails => 3,
    }
}

fn now_secs() -> i64 {
    chrono::Utc::now().timestamp()
}

impl Readiness {
    pub fn new() -> Arc<Readiness> {
        Arc::new(Readiness::default())
    }

    /// A worker is starting, and may take up to `allowance_secs` between rounds.
    pub fn expect(&self, worker: Worker, allowance_secs: i64) {
        self.allowances[index(worker)].store(allowance_secs, Ordering::Relaxed);
        self.beat(worker);
    }

    /// A worker that is turned off by configuration.
    pub fn not_wanted(&self, worker: Worker) {
        self.beats[index(worker)].store(-1, Ordering::Relaxed);
    }

    pub fn beat(&self, worker: Worker) {
        self.beats[index(worker)].store(now_secs(), Ordering::Relaxed);
    }

    /// Shutdown has begun: refuse to be ready from now on.
    pub fn drain(&self) {
        self.draining.store(true, Ordering::Relaxed);
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Relaxed)
    }

    fn stalled_workers(&self) -> Vec<&'static str> {
        let now = now_secs();
        [
            Worker::Webhooks,
            Worker::Housekeeping,
            Worker::Reconciliation,
        ]
        .into_iter()
        .filter(|w| {
            let beat = self.beats[index(*w)].load(Ordering::Relaxed);
            let allowance = self.allowances[index(*w)].load(Ordering::Relaxed);
            beat == 0 || (beat > 0 && now - beat > allowance)
        })
        .map(Worker::name)
        .collect()
    }
}

/// `/readyz`'s answer.
#[derive(Debug, Serialize)]
pub struct ReadinessReport {
    pub ready: bool,
    /// What is wrong, in plain words; empty when ready.
    pub problems: Vec<String>,
}

/// Checks everything: what `readiness` knows, the database (on `reads`), and the group-commit
/// queues found stopped (`state::Shared::stopped_queues`, by name).
pub async fn check(
    readiness: &Readiness,
    reads: &store::Reads,
    stopped_queues: &[&str],
) -> ReadinessReport {
    let mut problems = Vec::new();
    if readiness.is_draining() {
        problems.push("shutting down".to_string());
    }
    match store::ping(reads).await {
        Err(e) => problems.push(format!("the database does not answer: {e}")),
        Ok(()) => match store::migrations::missing(reads).await {
            Ok(missing) if missing.is_empty() => {}
            Ok(missing) => problems.push(format!("migrations not applied: {}", missing.join(", "))),
            Err(e) => problems.push(format!("cannot read the applied migrations: {e}")),
        },
    }
    for queue in stopped_queues {
        problems.push(format!("the {queue} is not running"));
    }
    for worker in readiness.stalled_workers() {
        problems.push(format!("the {worker} worker is not running"));
    }
    ReadinessReport {
        ready: problems.is_empty(),
        problems,
    }
}
