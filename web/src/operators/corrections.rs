//! Promotional credits and manual adjustments, each one ledger transfer recorded with the
//! operator's action in one transaction.

use chrono::{DateTime, Duration, NaiveDate, Utc};
use ledger::{CreditKind, Credits, IdempotencyKey, LedgerError, LotSource};

use crate::{
    emails::content::{self, EmailContent},
    india::{IST, ist_midnight},
    operators::{ActionOutcome, Reason},
    services::{ServiceError, ServiceResult, Services},
    store::{
        alerts,
        operator_actions::{self, NewOperatorAction},
        outbox,
        users::User,
    },
};

/// When promotional credits expire: never, in N days, or at the end of a date (IST).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PromoExpiry(pub Option<DateTime<Utc>>);

impl PromoExpiry {
    /// `""` (never), `"30"` (in 30 days) or `"2026-12-29"` (the end of that day in India).
    pub fn parse(typed: &str, now: DateTime<Utc>) -> Result<PromoExpiry, String> {
        let typed = typed.trim();
        if typed.is_empty() {
            return Ok(PromoExpiry(None));
        }
        if let Ok(days) = typed.parse::<i64>() {
            if !(1..=3650).contains(&days) {
                return Err("Give between 1 and 3,650 days, or a date.".into());
            }
            return Ok(PromoExpiry(Some(now + Duration::days(days))));
        }
        let date = NaiveDate::parse_from_str(typed, "%Y-%m-%d")
            .map_err(|_| "Give a number of days, or a date like 2026-12-29.".to_string())?;
        // The end of that day in India: the last microsecond before the next day's midnight.
        let end = date
            .succ_opt()
            .and_then(ist_midnight)
            .map(|midnight| midnight - Duration::microseconds(1))
            .ok_or_else(|| "That date is out of range.".to_string())?;
        if end <= now {
            return Err("That date has passed: give one in the future.".into());
        }
        if end > now + Duration::days(3650) {
            return Err("Give a date within ten years.".into());
        }
        Ok(PromoExpiry(Some(end)))
    }
}

/// A number of credits typed by an operator.
pub fn parse_credits(typed: &str) -> Result<Credits, String> {
    let digits: String = typed.trim().chars().filter(|c| *c != ',').collect();
    let n: i64 = digits
        .parse()
        .map_err(|_| "Give a whole number of credits, like 500.".to_string())?;
    if n <= 0 {
        return Err("Give a number of credits above zero.".into());
    }
    if n > 100_000_000 {
        return Err("At most 10,00,00,000 credits at a time.".into());
    }
    Credits::new(n).map_err(|e| e.to_string())
}

/// Which way an adjustment goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdjustmentDirection {
    Credit,
    Debit,
}

/// What an operator asked for, with who asked and the form it came from.
pub struct OperatorRequest<'a> {
    pub operator_id: i64,
    pub customer: &'a User,
    pub key: &'a str,
    pub reason: &'a Reason,
}

/// Grants promotional credits (never paid out, spent before paid credits of the same expiry).
pub async fn grant_promotional(
    services: &Services,
    request: &OperatorRequest<'_>,
    credits: Credits,
    expiry: PromoExpiry,
) -> ServiceResult<ActionOutcome> {
    let memo = match expiry.0 {
        Some(at) => format!(
            "Promotional credits from Kalp Studio, expire on {}",
            at.with_timezone(&IST).format("%d %b %Y")
        ),
        None => "Promotional credits from Kalp Studio".to_string(),
    };
    let detail = format!(
        "granted {} promotional credits{}",
        credits,
        expiry
            .0
            .map(|at| format!(", expiring {}", at.format("%Y-%m-%d %H:%M UTC")))
            .unwrap_or_default()
    );
    let expires_on = expiry
        .0
        .map(|at| at.with_timezone(&IST).format("%d %b %Y").to_string());
    let email = content::promotional_credits_granted(
        services.settings.public_url(),
        credits.get(),
        expires_on.as_deref(),
    )
    .map_err(|e| ServiceError::Invariant(format!("an email could not be written: {e}")))?;
    record_and_move(
        services,
        request,
        "grant",
        &detail,
        Some(&email),
        |action| {
            Movement::Credit(ledger::Credit {
                wallet: request.customer.wallet,
                amount: credits,
                kind: CreditKind::Grant,
                key: action,
                reference: None,
                memo: Some(memo.clone()),
                expires_at: expiry.0,
            })
        },
    )
    .await
}

/// Credits or debits a wallet by hand. A debit never takes the balance below zero: refused
/// with how much could be taken.
pub async fn adjust(
    services: &Services,
    request: &OperatorRequest<'_>,
    credits: Credits,
    direction: AdjustmentDirection,
) -> ServiceResult<ActionOutcome> {
    let memo = Some("Adjustment by Kalp Studio".to_string());
    match direction {
        AdjustmentDirection::Credit => {
            let detail = format!("adjusted +{credits} credits");
            record_and_move(services, request, "adjust_credit", &detail, None, |key| {
                Movement::Credit(ledger::Credit {
                    wallet: request.customer.wallet,
                    amount: credits,
                    kind: CreditKind::Adjustment(LotSource::Paid),
                    key,
                    reference: None,
                    memo: memo.clone(),
                    expires_at: None,
                })
            })
            .await
        }
        AdjustmentDirection::Debit => {
            let detail = format!("adjusted −{credits} credits");
            record_and_move(services, request, "adjust_debit", &detail, None, |key| {
                Movement::Debit(ledger::Debit {
                    wallet: request.customer.wallet,
                    amount: credits,
                    kind: ledger::DebitKind::Adjustment,
                    key,
                    reference: None,
                    memo: memo.clone(),
                })
            })
            .await
        }
    }
}

enum Movement {
    Credit(ledger::Credit),
    Debit(ledger::Debit),
}

/// Records the action and makes its transfer in one transaction, with the email that tells the
/// customer; the transfer's key is the action's, so it too happens once.
async fn record_and_move(
    services: &Services,
    request: &OperatorRequest<'_>,
    action: &str,
    detail: &str,
    email: Option<&EmailContent>,
    movement: impl Fn(IdempotencyKey) -> Movement + Sync,
) -> ServiceResult<ActionOutcome> {
    let customer = request.customer;
    let movement = &movement;
    let result = services
        .ledger
        .transact(|tx| {
            Box::pin(async move {
                let recorded = operator_actions::record(
                    tx,
                    NewOperatorAction {
                        key: request.key,
                        operator_id: request.operator_id,
                        customer_id: Some(customer.id),
                        action,
                        detail,
                        reason: request.reason.as_str(),
                    },
                )
                .await?;
                let Some(action_id) = recorded else {
                    return Ok(ActionOutcome::AlreadyDone);
                };
                let key = IdempotencyKey::new(format!("operator:{action_id}"))?;
                let (receipt, direction) = match movement(key) {
                    Movement::Credit(credit) => (
                        tx.credit(&credit).await?,
                        if credit.kind == CreditKind::Grant {
                            "granted"
                        } else {
                            "adjusted_in"
                        },
                    ),
                    Movement::Debit(debit) => (tx.debit(&debit).await?, "adjusted_out"),
                };
                crate::telemetry::credits(direction, receipt.transfer.amount);
                operator_actions::caused(tx, action_id, Some(receipt.transfer.id.0), None).await?;
                if let Some(email) = email {
                    outbox::enqueue(tx, email.to(&customer.email, None, None)).await?;
                }
                let balance = tx.balance(customer.wallet).await?;
                alerts::rearm_at_or_above(tx, customer.id, balance.available).await?;
                Ok(ActionOutcome::Done(format!(
                    "Done: {detail}. Balance now {} credits.",
                    crate::billing::amount::group_credits(balance.available)
                )))
            })
        })
        .await;
    match result {
        Err(ServiceError::Ledger(LedgerError::InsufficientCredits { available, .. })) => {
            Ok(ActionOutcome::Refused(format!(
                "Not enough credits: at most {} can be taken now.",
                crate::billing::amount::group_credits(available)
            )))
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn an_expiry_is_never_days_or_the_end_of_a_date_in_india() {
        let now = at("2026-11-29T10:00:00Z");
        assert_eq!(PromoExpiry::parse("", now), Ok(PromoExpiry(None)));
        assert_eq!(
            PromoExpiry::parse("30", now),
            Ok(PromoExpiry(Some(at("2026-12-29T10:00:00Z"))))
        );
        assert_eq!(
            PromoExpiry::parse("2026-12-29", now),
            Ok(PromoExpiry(Some(at("2026-12-29T18:29:59.999999Z"))))
        );
        assert!(PromoExpiry::parse("0", now).is_err());
        assert!(PromoExpiry::parse("2026-11-01", now).is_err());
        assert!(PromoExpiry::parse("29/12/2026", now).is_err());
        assert!(PromoExpiry::parse("2046-01-01", now).is_err());
    }

    #[test]
    fn credits_are_whole_positive_and_bounded() {
        assert_eq!(parse_credits("1,000").map(Credits::get), Ok(1000));
        assert!(parse_credits("0").is_err());
        assert!(parse_credits("-5").is_err());
        assert!(parse_credits("1.5").is_err());
        assert!(parse_credits("999999999999").is_err());
    }
}
