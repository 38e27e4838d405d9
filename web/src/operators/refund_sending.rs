//! Sending refunds of unused credits to Razorpay, after `unused_credits` planned them and took
//! their credits back: the same key and body every time, Razorpay's answer linked to its plan
//! (`take_back::link_planned`), the credits returned when Razorpay refuses, and plans Razorpay
//! has not answered sent again by reconciliation (`send_planned`).

use razorpay::{
    Paise,
    wire::{CreateRefund, Notes},
};

use crate::{
    billing::{crediting, take_back},
    services::{ServiceError, ServiceResult, Services},
    store::{
        credit_refunds::{self, CreditRefund, CreditRefundStatus},
        topups,
    },
};

/// What sending a planned refund came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendOutcome {
    /// Razorpay's refund, linked.
    Sent(String),
    /// Razorpay could not be reached or answered with a fault: reconciliation sends it again.
    TryAgain,
    /// Razorpay refused it: the credits came back.
    Refused,
}

/// Sends one planned refund to Razorpay (the same key and body every time) and links its answer.
pub async fn send(services: &Services, key: &str) -> ServiceResult<SendOutcome> {
    let Some(plan) = credit_refunds::find(&services.reads, key).await? else {
        return Ok(SendOutcome::Refused);
    };
    match (plan.status, &plan.refund_id) {
        (CreditRefundStatus::Planned, _) => {}
        (_, Some(refund_id)) => return Ok(SendOutcome::Sent(refund_id.clone())),
        (_, None) => return Ok(SendOutcome::Refused),
    }
    let request = CreateRefund {
        amount: Some(Paise(plan.amount_paise)),
        notes: Notes::new()
            .with(credit_refunds::NOTE_KEY, plan.key.clone())
            .with("reason", "unused credits"),
        ..CreateRefund::default()
    };
    let wallet = crediting::wallet_of(services, plan.user_id).await?;
    match services
        .razorpay
        .refund_payment(&plan.payment_id, &request, Some(&plan.key))
        .await
    {
        Ok(refund) => {
            let (plan, refund_ref, settings) = (&plan, &refund, &services.settings);
            services
                .ledger
                .transact(|tx| {
                    Box::pin(async move {
                        let topup = topups::lock(tx, plan.topup_id).await?;
                        // A webhook may have linked it first.
                        match credit_refunds::find(tx, &plan.key).await? {
                            Some(now) if now.status == CreditRefundStatus::Planned => {
                                take_back::link_planned(
                                    tx, settings, wallet, &topup, refund_ref, &now,
                                )
                                .await
                            }
                            _ => Ok(()),
                        }
                    })
                })
                .await?;
            tracing::info!(
                refund = refund.id,
                payment = plan.payment_id,
                credits = plan.credits,
                "refund of unused credits created"
            );
            Ok(SendOutcome::Sent(refund.id))
        }
        Err(razorpay::Error::BadRequest(refusal)) | Err(razorpay::Error::NotFound(refusal)) => {
            tracing::warn!(
                payment = plan.payment_id,
                reason = refusal.description,
                "Razorpay refused a refund of unused credits; returning its credits"
            );
            give_back(services, &plan, &refusal.description).await?;
            Ok(SendOutcome::Refused)
        }
        Err(e) => {
            tracing::warn!(payment = plan.payment_id, error = %e, "could not send a refund of unused credits yet");
            let (key, error) = (plan.key.as_str(), e.to_string());
            let error = error.as_str();
            services
                .ledger
                .autocommit(|writer| {
                    Box::pin(
                        async move { credit_refunds::attempt_failed(writer, key, error).await },
                    )
                })
                .await?;
            Ok(SendOutcome::TryAgain)
        }
    }
}

/// Razorpay refused a planned refund: its credits come back, once.
async fn give_back(services: &Services, plan: &CreditRefund, why: &str) -> ServiceResult<()> {
    let wallet = crediting::wallet_of(services, plan.user_id).await?;
    services
        .ledger
        .transact(|tx| {
            Box::pin(async move {
                let Some(now) = credit_refunds::find(tx, &plan.key).await? else {
                    return Ok(());
                };
                if now.status != CreditRefundStatus::Planned {
                    return Ok(());
                }
                let receipt = tx
                    .credit(&ledger::Credit {
                        wallet,
                        amount: ledger::Credits::new(now.credits)?,
                        kind: ledger::CreditKind::Purchase,
                        key: ledger::IdempotencyKey::new(format!("unused-returned:{}", now.key))?,
                        reference: Some(now.payment_id.clone()),
                        memo: Some(format!(
                            "Refund not made: credits returned (top-up #{})",
                            now.topup_id
                        )),
                        expires_at: None,
                    })
                    .await?;
                credit_refunds::returned(tx, &now.key, receipt.transfer.id.0).await?;
                credit_refunds::attempt_failed(tx, &now.key, why).await?;
                Ok::<_, ServiceError>(())
            })
        })
        .await
}

/// Sends again the planned refunds Razorpay has not answered (reconciliation calls this).
pub async fn send_planned(services: &Services) -> ServiceResult<usize> {
    let mut sent = 0;
    for plan in credit_refunds::planned(&services.reads, 50).await? {
        if matches!(send(services, &plan.key).await?, SendOutcome::Sent(_)) {
            sent += 1;
        }
    }
    Ok(sent)
}
