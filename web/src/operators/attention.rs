//! Needs attention: everything a person must decide, in one list. Flagged top-ups, refunds whose
//! credits were already spent (a shortfall), duplicate payments we could not refund, refunds of
//! unused credits Razorpay has not answered, customers' refund requests, and emails the sender
//! gave up on.

use crate::{
    services::{ServiceResult, Services},
    store::{
        audit_runs::{self, AuditRun},
        credit_refunds::{self, CreditRefund},
        operator_actions,
        outbox::{self, QueuedEmail},
        payments::{self, UncreditedPayment},
        refund_requests::{self, RefundRequest},
        refunds::{self, RefundRecord},
        topups::{self, Topup},
    },
};

pub struct NeedsAttention {
    pub flagged: Vec<Topup>,
    pub shortfalls: Vec<RefundRecord>,
    pub unrefunded_duplicates: Vec<UncreditedPayment>,
    pub unsent_refunds: Vec<CreditRefund>,
    pub refund_requests: Vec<RefundRequest>,
    pub parked_emails: Vec<QueuedEmail>,
    /// The latest audit's differences (captured payments never credited, refunds not taken
    /// back, …), until the audit runs again.
    pub audit: Option<AuditRun>,
}

impl NeedsAttention {
    pub fn is_empty(&self) -> bool {
        self.flagged.is_empty()
            && self.shortfalls.is_empty()
            && self.unrefunded_duplicates.is_empty()
            && self.unsent_refunds.is_empty()
            && self.refund_requests.is_empty()
            && self.parked_emails.is_empty()
            && self.audit.as_ref().is_none_or(|a| a.differences.is_empty())
    }
}

/// The key of acknowledging a refund's shortfall.
pub fn shortfall_key(refund_id: &str) -> String {
    format!("resolve:shortfall:{refund_id}")
}

pub async fn gather(services: &Services) -> ServiceResult<NeedsAttention> {
    let reads = &services.reads;
    let mut shortfalls = Vec::new();
    for record in refunds::with_shortfall(reads).await? {
        if !operator_actions::exists(reads, &shortfall_key(&record.refund_id)).await? {
            shortfalls.push(record);
        }
    }
    Ok(NeedsAttention {
        flagged: topups::flagged(reads).await?,
        shortfalls,
        unrefunded_duplicates: payments::refunds_due(reads, 100)
            .await?
            .into_iter()
            .filter(|p| p.refund_attempts > 0)
            .collect(),
        unsent_refunds: credit_refunds::planned(reads, 100).await?,
        refund_requests: refund_requests::all_open(reads).await?,
        parked_emails: outbox::parked(reads, 100).await?,
        audit: audit_runs::latest(reads).await?,
    })
}

/// An operator has seen a refund's shortfall (credits already spent when it came) and accepts it.
pub async fn acknowledge_shortfall(
    services: &Services,
    operator_id: i64,
    refund_id: &str,
    reason: &crate::operators::Reason,
) -> ServiceResult<crate::operators::ActionOutcome> {
    use crate::operators::ActionOutcome;
    let Some(record) = refunds::find(&services.reads, refund_id).await? else {
        return Ok(ActionOutcome::Refused("No such refund.".into()));
    };
    if record.shortfall <= 0 {
        return Ok(ActionOutcome::Refused(
            "This refund has no shortfall.".into(),
        ));
    }
    let customer = topups::find(&services.reads, record.topup_id)
        .await?
        .map(|t| t.user_id);
    let detail = format!(
        "accepted a shortfall of {} credits on refund {} (top-up #{})",
        record.shortfall, record.refund_id, record.topup_id
    );
    let (key, detail, record) = (shortfall_key(refund_id), detail.as_str(), &record);
    let key = key.as_str();
    services
        .ledger
        .transact(|tx| {
            Box::pin(async move {
                let recorded = operator_actions::record(
                    tx,
                    operator_actions::NewOperatorAction {
                        key,
                        operator_id,
                        customer_id: customer,
                        action: "accept_shortfall",
                        detail,
                        reason: reason.as_str(),
                    },
                )
                .await?;
                Ok(match recorded {
                    Some(_) => {
                        ActionOutcome::Done(format!("Shortfall on {} accepted.", record.refund_id))
                    }
                    None => ActionOutcome::AlreadyDone,
                })
            })
        })
        .await
}
