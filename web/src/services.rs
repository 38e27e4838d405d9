//! What the app's work needs, whoever does it (a request, a worker, a command): the ledger (and
//! through it the store), Razorpay, and the settings. Commands build only this; the HTTP app adds
//! its own parts around it (`state::AppState`).

use std::sync::Arc;

use crate::{
    configuration::Settings,
    store::{Reads, StoreError},
};

#[derive(Clone)]
pub struct Services {
    pub ledger: ledger::Ledger,
    /// Reads on the ledger's read connections; writes go through `ledger.transact`.
    pub reads: Reads,
    pub razorpay: razorpay::Client,
    pub settings: Arc<Settings>,
}

impl Services {
    /// Opens the database (the ledger applies its migrations, then the store's are applied) and
    /// builds the Razorpay client.
    pub async fn connect(settings: Settings) -> anyhow::Result<Services> {
        let ledger = open_ledger(&settings).await?;
        let mut client = razorpay::ClientConfig::new(
            settings.razorpay.base_url.clone(),
            settings.razorpay.key_id.clone(),
            settings.razorpay.key_secret.clone(),
        );
        client.request_timeout = std::time::Duration::from_secs(15);
        Ok(Services {
            reads: ledger.reads(),
            ledger,
            razorpay: razorpay::Client::new(client)?,
            settings: Arc::new(settings),
        })
    }
}

/// The ledger, with the store's migrations applied beside its own.
pub async fn open_ledger(settings: &Settings) -> anyhow::Result<ledger::Ledger> {
    let mut config = ledger::ConnectConfig::new(settings.database.url.clone());
    config.pg_schema = settings.database.schema.clone().filter(|s| !s.is_empty());
    let ledger = ledger::Ledger::connect(&config).await.map_err(|e| {
        anyhow::anyhow!(
            "database {}: {e}",
            ledger::redact_url(&settings.database.url)
        )
    })?;
    crate::store::migrations::apply(&ledger).await?;
    Ok(ledger)
}

/// Work on money failed: in the store, the ledger, at Razorpay, or an invariant broke.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Ledger(#[from] ledger::LedgerError),
    #[error("Razorpay: {0}")]
    Razorpay(#[from] razorpay::Error),
    /// Something that must never happen did; nothing was committed.
    #[error("{0}")]
    Invariant(String),
}

pub type ServiceResult<T> = Result<T, ServiceError>;

/// Lets [`ledger::Ledger::transact`] run a body again after a transient database failure.
impl ledger::Retryable for ServiceError {
    fn is_transient(&self) -> bool {
        match self {
            ServiceError::Store(e) => e.is_transient(),
            ServiceError::Ledger(e) => e.is_transient(),
            _ => false,
        }
    }
}

impl From<sea_orm::DbErr> for ServiceError {
    fn from(e: sea_orm::DbErr) -> Self {
        ServiceError::Store(e.into())
    }
}
