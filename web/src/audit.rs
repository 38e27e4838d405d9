//! The audit (`web audit`): the ledger's own invariants, then money against Razorpay. Every
//! payment and refund Razorpay lists for a time range is checked against our ledger and records;
//! any difference names the payment and the top-up, and makes `web audit` exit non-zero.
//!
//! A captured payment that never credited is also handed to an operator: its top-up is flagged,
//! and so is in Needs attention with its actions.
//!
//! Per payment that credited a top-up, credits given − credits taken back must equal what the
//! top-up bought − the refunded share of it (from Razorpay's own refunded amount, at the
//! top-up's rate) + the recorded shortfall (credits already spent when a refund came).

use std::collections::HashMap;

use ledger::TransferKind;
use razorpay::wire::{ListQuery, Payment, PaymentStatus, Refund, RefundState};

use crate::{
    services::{ServiceResult, Services},
    store::{
        audit_runs, credit_refunds, operator_actions, payments, refunds, topup_moves,
        topups::{self, Topup, TopupStatus},
    },
};

pub struct AuditOutcome {
    pub ledger: ledger::AuditReport,
    pub payments_checked: usize,
    pub refunds_checked: usize,
    /// Money that does not add up, or is owed and not handled: each names the payment and the
    /// top-up.
    pub differences: Vec<String>,
    /// Things an operator should know that are not errors of ours.
    pub notes: Vec<String>,
    /// What operators did, by kind of action, and what grants and adjustments moved.
    pub operator_summary: Vec<String>,
}

impl AuditOutcome {
    pub fn is_clean(&self) -> bool {
        self.ledger.is_clean() && self.differences.is_empty()
    }
}

/// Razorpay's list endpoints give at most this many per page.
const PAGE: u32 = 100;

/// Runs the audit over the last `days` days and records its differences, which Needs attention
/// shows until the next run (`web audit` and `/admin/audit`).
pub async fn run_and_record(services: &Services, days: i64) -> ServiceResult<AuditOutcome> {
    let to = chrono::Utc::now().timestamp();
    let outcome = run(services, to - days * 86_400, to + 60).await?;
    let (clean, differences) = (outcome.is_clean(), &outcome.differences);
    let mut found = differences.clone();
    if !outcome.ledger.is_clean() {
        found.insert(
            0,
            format!("the ledger's own invariants: {}", outcome.ledger),
        );
    }
    let found = &found;
    let now = crate::store::now_micros();
    services
        .ledger
        .autocommit(|w| {
            Box::pin(async move { audit_runs::record(w, now, days, clean, found).await })
        })
        .await?;
    Ok(outcome)
}

/// `from`/`to` are Unix seconds.
pub async fn run(services: &Services, from: i64, to: i64) -> ServiceResult<AuditOutcome> {
    let ledger = services.ledger.audit().await?;
    let mut audit = AuditOutcome {
        ledger,
        payments_checked: 0,
        refunds_checked: 0,
        differences: Vec::new(),
        notes: Vec::new(),
        operator_summary: operator_summary(services).await?,
    };
    let payments: Vec<Payment> = list_all(
        |query| async move { Ok(services.razorpay.list_payments(&query).await?.items) },
        from,
        to,
    )
    .await?;
    let refund_list: Vec<Refund> = list_all(
        |query| async move { Ok(services.razorpay.list_refunds(&query).await?.items) },
        from,
        to,
    )
    .await?;
    let mut topup_of_payment: HashMap<String, Topup> = HashMap::new();
    for payment in &payments {
        let Some(topup) = payment_topup(services, payment, &mut audit).await? else {
            continue;
        };
        audit.payments_checked += 1;
        check_payment(services, payment, &topup, &mut audit).await?;
        topup_of_payment.insert(payment.id.clone(), topup);
    }
    for refund in &refund_list {
        let topup = match topup_of_payment.get(&refund.payment_id) {
            Some(topup) => Some(topup.clone()),
            None => topup_of_refund(services, refund).await?,
        };
        let Some(topup) = topup else { continue };
        audit.refunds_checked += 1;
        check_refund(services, refund, &topup, &mut audit).await?;
    }
    let listed: std::collections::HashSet<&str> = payments.iter().map(|p| p.id.as_str()).collect();
    for topup in topups::paid_between(&services.reads, from * 1_000_000, to * 1_000_000).await? {
        if let Some(payment) = &topup.payment_id
            && !listed.contains(payment.as_str())
        {
            audit.notes.push(format!(
                "top-up #{} is paid with {payment}, which Razorpay's payment list did not show (lists can lag)",
                topup.id
            ));
        }
    }
    for topup in topups::flagged(&services.reads).await? {
        audit.differences.push(format!(
            "top-up #{} (order {}) is flagged and not resolved: {}",
            topup.id,
            topup.order_id.as_deref().unwrap_or("none"),
            topup.flag_reason.as_deref().unwrap_or("no reason recorded")
        ));
    }
    for record in refunds::with_shortfall(&services.reads).await? {
        audit.notes.push(format!(
            "refund {} of payment {} (top-up #{}): {} credits could not be taken back (already spent)",
            record.refund_id, record.payment_id, record.topup_id, record.shortfall
        ));
    }
    Ok(audit)
}

/// Operator actions by kind, and the credits grants and adjustments moved, from the ledger's own
/// system accounts (so they can be checked against the actions).
async fn operator_summary(services: &Services) -> ServiceResult<Vec<String>> {
    let mut lines = Vec::new();
    let actions = operator_actions::count_by_action(&services.reads).await?;
    lines.push(if actions.is_empty() {
        "operator actions: none".to_string()
    } else {
        format!(
            "operator actions: {}",
            actions
                .iter()
                .map(|(action, n)| format!("{action} {n}"))
                .collect::<Vec<_>>()
                .join(", ")
        )
    });
    let granted = -services
        .ledger
        .system_balance(ledger::SystemAccount::PromotionalGrants)
        .await?;
    let adjusted = -services
        .ledger
        .system_balance(ledger::SystemAccount::ManualAdjustments)
        .await?;
    lines.push(format!(
        "promotional credits granted (net of expiry and use: see the ledger): {granted}; manual adjustments, net to wallets: {adjusted}"
    ));
    Ok(lines)
}

/// Every item of a Razorpay list created in `[from, to]`, page by page.
async fn list_all<T, F, Fut>(mut page: F, from: i64, to: i64) -> ServiceResult<Vec<T>>
where
    F: FnMut(ListQuery) -> Fut,
    Fut: std::future::Future<Output = Result<Vec<T>, razorpay::Error>>,
{
    let mut all = Vec::new();
    let mut skip = 0;
    loop {
        let query = ListQuery {
            from: Some(from),
            to: Some(to),
            count: Some(PAGE),
            skip: Some(skip),
        };
        let items = page(query).await?;
        let n = items.len();
        all.extend(items);
        if n < PAGE as usize {
            return Ok(all);
        }
        skip += PAGE;
    }
}

fn is_captured(payment: &Payment) -> bool {
    payment.status == PaymentStatus::Captured
        || (payment.status == PaymentStatus::Refunded && payment.captured)
}

/// The top-up of a payment's order, when the order is ours.
async fn payment_topup(
    services: &Services,
    payment: &Payment,
    audit: &mut AuditOutcome,
) -> ServiceResult<Option<Topup>> {
    let Some(order_id) = payment.order_id.as_deref() else {
        if is_captured(payment) {
            audit
                .notes
                .push(format!("captured payment {} has no order", payment.id));
        }
        return Ok(None);
    };
    let topup = topups::find_by_order(&services.reads, order_id).await?;
    if topup.is_none() && is_captured(payment) {
        audit.notes.push(format!(
            "captured payment {} (order {order_id}) is not a top-up of ours",
            payment.id
        ));
    }
    Ok(topup)
}

/// Credits given and taken back for a payment, from the ledger.
async fn ledger_sums(services: &Services, payment_id: &str) -> ServiceResult<(i64, i64)> {
    let mut given = 0;
    let mut taken = 0;
    for t in services.ledger.transfers_by_reference(payment_id).await? {
        match t.kind {
            TransferKind::Purchase => given += t.amount,
            TransferKind::RefundReversal => taken += t.amount,
            _ => {}
        }
    }
    Ok((given, taken))
}

async fn check_payment(
    services: &Services,
    payment: &Payment,
    topup: &Topup,
    audit: &mut AuditOutcome,
) -> ServiceResult<()> {
    let (given, mut taken) = ledger_sums(services, &payment.id).await?;
    let name = format!("payment {} (top-up #{})", payment.id, topup.id);
    // Refunds of unused credits whose credits are taken back and which Razorpay has not
    // answered yet: in flight, not a difference (reconciliation sends them again).
    let in_flight = credit_refunds::in_flight_credits(&services.reads, &payment.id).await?;
    if in_flight > 0 {
        taken -= in_flight;
        audit.notes.push(format!(
            "{name}: a refund of {in_flight} unused credits is waiting for Razorpay's answer"
        ));
    }
    if topup.credited_by(&payment.id) {
        if !is_captured(payment) {
            audit.differences.push(format!(
                "{name} credited the top-up, but Razorpay says it is {:?}, not captured",
                payment.status
            ));
        }
        let owed = topup.credits_owed_for(payment.amount_refunded.0);
        if topup.refunded_paise != payment.amount_refunded.0 {
            audit.differences.push(format!(
                "{name}: Razorpay refunded {} of it, our records apply {}",
                payment.amount_refunded,
                razorpay::Paise(topup.refunded_paise)
            ));
        }
        let expected = topup.credits - owed + topup.refund_shortfall;
        if given - taken != expected {
            audit.differences.push(format!(
                "{name}: credits given {given} − taken back {taken} = {}, but {} bought − {owed} refunded + {} shortfall = {expected}",
                given - taken,
                topup.credits,
                topup.refund_shortfall
            ));
        }
        // Credits returned for failed refunds are given again: net of them, what the ledger took
        // back must be what the top-up records.
        let returned = given - topup.credits;
        if topup.refund_taken != taken - returned {
            audit.differences.push(format!(
                "{name}: the ledger took back {} credits net, the top-up records {}",
                taken - returned,
                topup.refund_taken
            ));
        }
        return Ok(());
    }
    if given != 0 || taken != 0 {
        audit.differences.push(format!(
            "{name} did not credit the top-up, yet the ledger moved {given} credits in and {taken} out for it"
        ));
    }
    if !is_captured(payment) {
        if payment.status == PaymentStatus::Authorized {
            audit
                .notes
                .push(format!("{name} is authorised and not captured yet"));
        }
        return Ok(());
    }
    if topup.status == TopupStatus::Flagged && topup.resolution.is_some() {
        audit.notes.push(format!(
            "{name}: captured {}, not credited; an operator resolved the top-up ({})",
            payment.amount,
            topup.resolution.map(|r| r.as_str()).unwrap_or_default()
        ));
        return Ok(());
    }
    if topup.status != TopupStatus::Paid {
        audit.differences.push(format!(
            "{name}: Razorpay captured {}, which was never credited",
            payment.amount
        ));
        if topup.status != TopupStatus::Flagged {
            // Handed to an operator: flagged, it is in Needs attention with its facts and its
            // actions (credit as promised, refund, dismiss). The audit stays failing until then.
            let reason = format!(
                "the audit found payment {} captured ({}) and never credited",
                payment.id, payment.amount
            );
            let (id, reason, payment_id) = (topup.id, reason.as_str(), payment.id.as_str());
            services
                .ledger
                .autocommit(|w| {
                    Box::pin(
                        async move { topup_moves::flag(w, id, reason, Some(payment_id)).await },
                    )
                })
                .await?;
        }
        return Ok(());
    }
    let recorded = payments::find(&services.reads, &payment.id).await?;
    let refunded_in_full = payment.amount_refunded >= payment.amount;
    match recorded {
        _ if refunded_in_full => {}
        Some(duplicate) if duplicate.refund_id.is_some() => audit.notes.push(format!(
            "{name}: a duplicate payment, its refund is under way"
        )),
        _ => audit.differences.push(format!(
            "{name}: a second captured payment ({}) on a paid top-up, neither credited nor refunded",
            payment.amount
        )),
    }
    Ok(())
}

/// The top-up of a refunded payment that was not in the payment list (an older payment).
async fn topup_of_refund(services: &Services, refund: &Refund) -> ServiceResult<Option<Topup>> {
    if let Some(topup) = topups::find_by_payment(&services.reads, &refund.payment_id).await? {
        return Ok(Some(topup));
    }
    match payments::find(&services.reads, &refund.payment_id).await? {
        Some(payment) => Ok(topups::find(&services.reads, payment.topup_id).await?),
        None => Ok(None),
    }
}

async fn check_refund(
    services: &Services,
    refund: &Refund,
    topup: &Topup,
    audit: &mut AuditOutcome,
) -> ServiceResult<()> {
    let credited = topup.credited_by(&refund.payment_id);
    let record = refunds::find(&services.reads, &refund.id).await?;
    let name = format!(
        "refund {} of payment {} (top-up #{})",
        refund.id, refund.payment_id, topup.id
    );
    match (&record, refund.status) {
        (None, RefundState::Failed) => {}
        (None, _) if credited => audit
            .differences
            .push(format!("{name} ({}) was never taken back", refund.amount)),
        (None, _) => audit.notes.push(format!("{name} is not recorded yet")),
        (Some(r), RefundState::Failed) if r.status != RefundState::Failed => {
            audit.differences.push(format!(
                "{name} failed at Razorpay, but we still treat it as {}{}",
                r.status_label().to_lowercase(),
                if credited {
                    " (its credits were not returned)"
                } else {
                    ""
                }
            ));
        }
        (Some(r), status) if r.status == RefundState::Failed && status != RefundState::Failed => {
            audit.differences.push(format!(
                "{name} is {status:?} at Razorpay, but we recorded it failed and returned its credits"
            ));
        }
        _ => {}
    }
    Ok(())
}
