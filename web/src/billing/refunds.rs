//! Refunds of payments on our orders, as Razorpay reports them (a signed webhook's refund
//! re-fetched from Razorpay, or reconciliation's own reading), each applied once
//! (`take_back`). A refund of a payment we have not credited yet settles that payment first:
//! the credit and the take-back then commit together (`crediting`).

use razorpay::wire::Refund;

use crate::{
    billing::{crediting, take_back},
    services::{ServiceResult, Services},
    store::{payments, topups},
};

/// Applies a refund as Razorpay reports it now. Refunds of payments that are not on our orders
/// are left alone.
pub async fn apply_refund(services: &Services, refund: &Refund) -> ServiceResult<()> {
    let reads = &services.reads;
    let topup = match topups::find_by_payment(reads, &refund.payment_id).await? {
        Some(topup) => Some(topup),
        None => match payments::find(reads, &refund.payment_id).await? {
            Some(payment) => topups::find(reads, payment.topup_id).await?,
            None => None,
        },
    };
    let topup = match topup {
        Some(topup) => topup,
        None => {
            // A payment we have not credited (or seen) yet: Razorpay says what it is. When it is
            // on one of our orders, settling it applies its refunds, this one included, in the
            // transaction that credits it.
            let payment = services.razorpay.fetch_payment(&refund.payment_id).await?;
            let Some(order_id) = payment.order_id.as_deref() else {
                return Ok(());
            };
            let Some(topup) = topups::find_by_order(reads, order_id).await? else {
                tracing::info!(refund = refund.id, "a refund of a payment that is not ours");
                return Ok(());
            };
            crediting::apply_payment(services, &topup, &payment).await?;
            topup
        }
    };
    let wallet = crediting::wallet_of(services, topup.user_id).await?;
    let topup_id = topup.id;
    let settings = &services.settings;
    services
        .ledger
        .transact(|tx| {
            Box::pin(async move {
                take_back::apply_in(tx, settings, wallet, topup_id, refund, false).await
            })
        })
        .await
}
