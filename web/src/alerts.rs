//! Low-balance alerts: when a balance falls below the account's threshold, one alert is recorded
//! (shown on the Dashboard) and one email queued in the outbox, in one transaction; no more until
//! the balance has been back at or above the threshold.

use crate::{
    db::{col, exec, now_micros},
    error::AppResult,
    state::AppState,
};

/// The account's threshold (created with the configured default on first use).
pub async fn threshold(state: &AppState, user_id: i64) -> AppResult<i64> {
    state
        .db
        .exec(
            "INSERT INTO web_alert_settings (user_id, threshold, armed) VALUES (?, ?, 1) ON CONFLICT (user_id) DO NOTHING",
            vec![user_id.into(), state.settings.usage.default_alert_threshold.into()],
        )
        .await?;
    let row = state
        .db
        .one(
            "SELECT threshold FROM web_alert_settings WHERE user_id = ?",
            vec![user_id.into()],
        )
        .await?;
    Ok(row
        .map(|r| col::<i64>(&r, "threshold"))
        .transpose()?
        .unwrap_or(0))
}

pub async fn set_threshold(
    state: &AppState,
    user_id: i64,
    value: i64,
    available: i64,
) -> AppResult<()> {
    threshold(state, user_id).await?;
    state
        .db
        .exec(
            "UPDATE web_alert_settings SET threshold = ?, armed = ? WHERE user_id = ?",
            vec![
                value.into(),
                i64::from(available >= value).into(),
                user_id.into(),
            ],
        )
        .await?;
    Ok(())
}

/// An account's low-balance alert level, and whether crossing it would fire (an alert fires once
/// per crossing, then waits until the balance is back at or above the level).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AlertSetting {
    pub threshold: i64,
    pub armed: bool,
}

/// Call after anything that changed a balance, with the balance now available. Reads only,
/// unless the threshold is crossed (the hot path of charging stays free of extra writes).
pub async fn after_balance_change(
    state: &AppState,
    user_id: i64,
    email: &str,
    available: i64,
) -> AppResult<()> {
    let row = state
        .db
        .one(
            "SELECT threshold, armed FROM web_alert_settings WHERE user_id = ?",
            vec![user_id.into()],
        )
        .await?;
    let setting = row
        .map(|r| -> AppResult<AlertSetting> {
            Ok(AlertSetting {
                threshold: col(&r, "threshold")?,
                armed: col::<i64>(&r, "armed")? == 1,
            })
        })
        .transpose()?;
    after_balance_change_with(state, user_id, email, available, setting).await
}

/// [`after_balance_change`] with the setting already read (`None`: the account has none yet).
pub async fn after_balance_change_with(
    state: &AppState,
    user_id: i64,
    email: &str,
    available: i64,
    setting: Option<AlertSetting>,
) -> AppResult<()> {
    let (threshold, armed) = match setting {
        Some(s) => (s.threshold, s.armed),
        None => (threshold(state, user_id).await?, true),
    };
    if threshold == 0 {
        return Ok(());
    }
    if available >= threshold {
        if !armed {
            rearm(state, user_id, available).await?;
        }
        return Ok(());
    }
    if !armed {
        return Ok(());
    }
    let backend = state.db.backend;
    // Disarming is the claim: of concurrent requests that cross the threshold, one fires. The
    // claim, the alert and its email commit together (retried whole on a transient failure).
    state
        .ledger
        .transact(|tx| {
            Box::pin(async move {
                let txn = tx.connection();
                let fired = exec(
                    txn,
                    backend,
                    "UPDATE web_alert_settings SET armed = 0 WHERE user_id = ? AND armed = 1 AND threshold > ?",
                    vec![user_id.into(), available.into()],
                )
                .await?;
                if fired == 1 {
                    let now = now_micros();
                    exec(
                        txn,
                        backend,
                        "INSERT INTO web_alerts (user_id, threshold, balance, created_at) VALUES (?, ?, ?, ?)",
                        vec![
                            user_id.into(),
                            threshold.into(),
                            available.into(),
                            now.into(),
                        ],
                    )
                    .await?;
                    exec(
                        txn,
                        backend,
                        "INSERT INTO web_outbox (kind, recipient, subject, body, created_at) VALUES ('low_balance', ?, ?, ?, ?)",
                        vec![
                            email.into(),
                            "Your Kalp Studio credits are running low".into(),
                            format!(
                                "Your balance is {available} credits, below your alert level of {threshold}. Top up from Billing to keep your emails and SMS going."
                            )
                            .into(),
                            now.into(),
                        ],
                    )
                    .await?;
                }
                AppResult::Ok(())
            })
        })
        .await
}

/// After credits arrive: re-arm the alert once the balance is back at or above the threshold.
pub async fn rearm(state: &AppState, user_id: i64, available: i64) -> AppResult<()> {
    state
        .db
        .exec(REARM, vec![user_id.into(), available.into()])
        .await?;
    Ok(())
}

/// [`rearm`], in the caller's transaction.
pub async fn rearm_in(
    conn: &sea_orm::DatabaseTransaction,
    backend: sea_orm::DbBackend,
    user_id: i64,
    available: i64,
) -> AppResult<()> {
    crate::db::exec(conn, backend, REARM, vec![user_id.into(), available.into()]).await?;
    Ok(())
}

const REARM: &str =
    "UPDATE web_alert_settings SET armed = 1 WHERE user_id = ? AND armed = 0 AND threshold <= ?";

/// The newest alert, if the balance is still below the threshold.
pub async fn active(state: &AppState, user_id: i64) -> AppResult<Option<(i64, i64)>> {
    let row = state
        .db
        .one(
            "SELECT a.threshold, a.balance FROM web_alerts a JOIN web_alert_settings s ON s.user_id = a.user_id \
             WHERE a.user_id = ? AND s.armed = 0 ORDER BY a.id DESC LIMIT 1",
            vec![user_id.into()],
        )
        .await?;
    Ok(match row {
        Some(r) => Some((col(&r, "threshold")?, col(&r, "balance")?)),
        None => None,
    })
}
