//! Emails the sender gave up on (refused for good, or failing `email.max_attempts` times) wait
//! for an operator, who sends one again once the cause is fixed (a bad address corrected, the
//! SMTP server back): it becomes due at once with a fresh count of attempts.

use crate::{
    operators::{ActionOutcome, Reason},
    services::{ServiceResult, Services},
    store::{operator_actions, outbox, users},
};

/// Sends a parked email again, once per parking (the key names the moment it was parked).
pub async fn send_again(
    services: &Services,
    operator_id: i64,
    outbox_id: i64,
    reason: &Reason,
) -> ServiceResult<ActionOutcome> {
    let Some(email) = outbox::find(&services.reads, outbox_id)
        .await?
        .filter(|e| e.parked_at.is_some() && e.sent_at.is_none())
    else {
        return Ok(ActionOutcome::AlreadyDone);
    };
    let customer = users::by_email(&services.reads, &email.recipient)
        .await?
        .map(|u| u.id);
    let key = format!(
        "resend-email:{}:{}",
        email.id,
        email.parked_at.unwrap_or_default()
    );
    let detail = format!(
        "sent again the email “{}” to {} (parked after {} attempts: {})",
        email.subject,
        email.recipient,
        email.attempts,
        email.last_error.as_deref().unwrap_or("no error recorded")
    );
    let (key, detail) = (key.as_str(), detail.as_str());
    services
        .ledger
        .transact(|tx| {
            Box::pin(async move {
                // Unparking first: if someone else did it, nothing is written.
                if !outbox::unpark(tx, outbox_id).await? {
                    return Ok(ActionOutcome::AlreadyDone);
                }
                let recorded = operator_actions::record(
                    tx,
                    operator_actions::NewOperatorAction {
                        key,
                        operator_id,
                        customer_id: customer,
                        action: "resend_email",
                        detail,
                        reason: reason.as_str(),
                    },
                )
                .await?;
                if recorded.is_none() {
                    return Ok(ActionOutcome::AlreadyDone);
                }
                Ok(ActionOutcome::Done(
                    "The email is due again; the sender takes it within seconds.".into(),
                ))
            })
        })
        .await
}
