//! `web preload-scale`: an app database with years of data, for `cargo xtask bench --scale`
//! (issue 21). The ledger preloads its own tables set-based (`ledger::ScaleShape::ISSUE_21`);
//! this adds what the app keeps beside them: a customer who owns the wallet with 500,000
//! transfers, and top-ups still waiting for their payment, each with a real order at Razorpay
//! (the fake, in the benchmark), for one reconciliation pass to check.
//!
//! It only ever adds rows, into an app with no customers yet, and refuses production.

use futures_util::{StreamExt, stream};

use crate::{
    accounts::EmailAddress,
    billing::{amount::TopupAmount, checkout::start_topup},
    configuration::Environment,
    passwords::PasswordHashing,
    services::{ServiceError, ServiceResult, Services},
    store::users,
};

/// What was preloaded.
#[derive(Debug)]
pub struct ScalePreloadReport {
    pub wallet: ledger::AccountId,
    pub user_id: i64,
    pub pending_topups: usize,
}

/// How many orders are created at Razorpay at once: enough to keep the fake busy, few enough
/// that real Razorpay would not see a burst.
const ORDERS_AT_ONCE: usize = 16;

/// Preloads the ledger, gives its largest wallet to a new customer `email`, and starts `pending`
/// top-ups of ₹100 for that customer that nobody pays.
pub async fn preload(
    services: &Services,
    email: &EmailAddress,
    password: &str,
    pending: usize,
) -> ServiceResult<ScalePreloadReport> {
    if services.settings.environment == Environment::Production {
        return Err(ServiceError::Invariant(
            "preload-scale writes benchmark data: not in production".into(),
        ));
    }
    let preloaded = services
        .ledger
        .preload_scale(ledger::ScaleShape::ISSUE_21)
        .await?;
    let hash = PasswordHashing::new(1, 1)
        .hash(password)
        .await
        .map_err(|e| ServiceError::Invariant(e.to_string()))?;
    let (address, hash, wallet) = (email.as_str(), hash.as_str(), preloaded.big_wallet);
    let user_id = services
        .ledger
        .transact(|tx| Box::pin(async move { users::create(tx, address, hash, wallet).await }))
        .await?
        .ok_or_else(|| ServiceError::Invariant(format!("{address} already has an account")))?;
    let amount =
        TopupAmount::parse("100", &services.settings.billing).map_err(ServiceError::Invariant)?;
    // The first alone: a Razorpay that can't be reached (the fake not started) stops the command
    // here, with its address, instead of failing 10,000 times over minutes of retries.
    if pending > 0 {
        let why = match start_topup(services, user_id, address, &amount).await {
            Ok(Ok(_)) => None,
            Ok(Err(refused)) => Some(refused.0),
            Err(e) => Some(e.to_string()),
        };
        if let Some(why) = why {
            return Err(ServiceError::Invariant(format!(
                "the first top-up could not be started ({why}): is Razorpay at {} running?",
                services.settings.razorpay.base_url
            )));
        }
    }
    let started: Vec<bool> = stream::iter(1..pending)
        .map(|_| async {
            matches!(
                start_topup(services, user_id, address, &amount).await,
                Ok(Ok(_))
            )
        })
        .buffer_unordered(ORDERS_AT_ONCE)
        .collect()
        .await;
    let pending_topups = started.iter().filter(|ok| **ok).count() + usize::from(pending > 0);
    if pending_topups < pending {
        return Err(ServiceError::Invariant(format!(
            "only {pending_topups} of {pending} top-ups could be started"
        )));
    }
    Ok(ScalePreloadReport {
        wallet,
        user_id,
        pending_topups,
    })
}
