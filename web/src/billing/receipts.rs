//! Receipt vouchers (CGST Rules, rule 50): one for every credited top-up, and refund vouchers
//! (rule 51): one for every refund of it once Razorpay has processed it. Each is issued inside the
//! transaction that records it, so a top-up is never credited without its voucher and a number
//! is never taken for a credit that rolled back. The amount paid includes GST; the voucher
//! shows the taxable value and the tax (`gst::tax`), the parties as they are at that moment,
//! the place of supply, the SAC and the payment. The email that sends each voucher (as PDF) is
//! written to the outbox in the same transaction.

use crate::{
    configuration::Settings,
    emails::content,
    gst::{
        tax::{GstRate, Supply, TaxSplit},
        voucher_number::{FinancialYear, voucher_number},
    },
    services::{ServiceError, ServiceResult},
    store::{
        Tx, outbox,
        topups::Topup,
        users,
        vouchers::{self, NewVoucher, VoucherKind},
    },
};

/// Issues the receipt voucher of a top-up credited by `payment_id`, once; returns its number.
pub async fn issue_receipt_in(
    tx: &Tx<'_>,
    settings: &Settings,
    topup: &Topup,
    payment_id: &str,
) -> ServiceResult<String> {
    let gst = &settings.gst;
    if let Some(existing) = vouchers::receipt_of_topup(tx, topup.id).await? {
        return Ok(existing.number);
    }
    let profile = vouchers::profile_of(tx, topup.user_id).await?;
    let account = users::by_id(tx, topup.user_id)
        .await?
        .ok_or_else(|| ServiceError::Invariant(format!("top-up {} has no account", topup.id)))?;
    // A customer without a profile is unregistered and gave no address: the place of supply is
    // the seller's own state.
    let place_of_supply = profile
        .as_ref()
        .map_or(gst.seller_state_code, |p| p.state_code);
    let supply = if place_of_supply == gst.seller_state_code {
        Supply::IntraState
    } else {
        Supply::InterState
    };
    let split = TaxSplit::of(topup.amount.0, GstRate(gst.rate_bps), supply);
    let year = FinancialYear::of(chrono::Utc::now());
    let sequence = vouchers::next_sequence(tx, VoucherKind::Receipt, year.0).await?;
    let sequence_number = u64::try_from(sequence).unwrap_or(0);
    let number = voucher_number(&gst.receipt_prefix, year, sequence_number)
        .map_err(ServiceError::Invariant)?;
    let (buyer_name, buyer_address, buyer_gstin) = match &profile {
        Some(p) => (
            p.legal_name.as_str(),
            p.address.as_str(),
            p.gstin.as_deref(),
        ),
        None => (account.email.as_str(), "Not provided", None),
    };
    let voucher_id = vouchers::issue(
        tx,
        NewVoucher {
            kind: VoucherKind::Receipt,
            number: &number,
            financial_year: year.0,
            sequence,
            topup_id: topup.id,
            user_id: topup.user_id,
            payment_id,
            refund_id: None,
            receipt_voucher_id: None,
            amount_paise: topup.amount.0,
            taxable_paise: split.taxable,
            cgst_paise: split.cgst,
            sgst_paise: split.sgst,
            igst_paise: split.igst,
            rate_bps: gst.rate_bps,
            place_of_supply,
            sac: &gst.sac,
            seller_name: &gst.seller_legal_name,
            seller_address: &gst.seller_address,
            seller_gstin: &gst.seller_gstin,
            buyer_name,
            buyer_address,
            buyer_gstin,
        },
    )
    .await?;
    let email = content::receipt(
        settings.public_url(),
        &topup.amount.display_inr(),
        topup.credits,
        topup.id,
        &number,
    )
    .map_err(rendering)?;
    outbox::enqueue(
        tx,
        email.to(
            &account.email,
            Some(voucher_id),
            Some(format!("receipt:{}", topup.id)),
        ),
    )
    .await?;
    Ok(number)
}

fn rendering(e: askama::Error) -> ServiceError {
    ServiceError::Invariant(format!("an email could not be written: {e}"))
}

/// Tells the customer a refund was processed, with its refund voucher when there is one; once
/// per refund.
async fn refund_email_in(
    tx: &Tx<'_>,
    settings: &Settings,
    topup: &Topup,
    refund_id: &str,
    amount_paise: i64,
    voucher: Option<(i64, &str)>,
) -> ServiceResult<()> {
    let account = users::by_id(tx, topup.user_id)
        .await?
        .ok_or_else(|| ServiceError::Invariant(format!("top-up {} has no account", topup.id)))?;
    let email = content::refund_processed(
        settings.public_url(),
        &razorpay::Paise(amount_paise).display_inr(),
        topup.id,
        voucher.map(|(_, number)| number),
    )
    .map_err(rendering)?;
    outbox::enqueue(
        tx,
        email.to(
            &account.email,
            voucher.map(|(id, _)| id),
            Some(format!("refund:{refund_id}")),
        ),
    )
    .await?;
    Ok(())
}

/// Issues the refund voucher of a processed refund of the payment that credited `topup`, once,
/// against its receipt voucher, with the receipt's parties, rate and place of supply. A top-up
/// credited before receipt vouchers existed has none to refund against: nothing is issued.
pub async fn issue_refund_in(
    tx: &Tx<'_>,
    settings: &Settings,
    topup: &Topup,
    refund_id: &str,
    amount_paise: i64,
) -> ServiceResult<Option<String>> {
    let gst = &settings.gst;
    if let Some(existing) = vouchers::of_refund(tx, refund_id).await? {
        return Ok(Some(existing.number));
    }
    let Some(receipt) = vouchers::receipt_of_topup(tx, topup.id).await? else {
        tracing::warn!(
            refund = refund_id,
            topup = topup.id,
            "no receipt voucher to refund against"
        );
        refund_email_in(tx, settings, topup, refund_id, amount_paise, None).await?;
        return Ok(None);
    };
    let place_of_supply = u32::try_from(receipt.place_of_supply).unwrap_or(0);
    let supply = if receipt.igst_paise > 0 {
        Supply::InterState
    } else {
        Supply::IntraState
    };
    let split = TaxSplit::of(amount_paise, GstRate(receipt.rate_bps), supply);
    let year = FinancialYear::of(chrono::Utc::now());
    let sequence = vouchers::next_sequence(tx, VoucherKind::Refund, year.0).await?;
    let number = voucher_number(
        &gst.refund_prefix,
        year,
        u64::try_from(sequence).unwrap_or(0),
    )
    .map_err(ServiceError::Invariant)?;
    let voucher_id = vouchers::issue(
        tx,
        NewVoucher {
            kind: VoucherKind::Refund,
            number: &number,
            financial_year: year.0,
            sequence,
            topup_id: topup.id,
            user_id: topup.user_id,
            payment_id: &receipt.payment_id,
            refund_id: Some(refund_id),
            receipt_voucher_id: Some(receipt.id),
            amount_paise,
            taxable_paise: split.taxable,
            cgst_paise: split.cgst,
            sgst_paise: split.sgst,
            igst_paise: split.igst,
            rate_bps: receipt.rate_bps,
            place_of_supply,
            sac: &receipt.sac,
            seller_name: &receipt.seller_name,
            seller_address: &receipt.seller_address,
            seller_gstin: &receipt.seller_gstin,
            buyer_name: &receipt.buyer_name,
            buyer_address: &receipt.buyer_address,
            buyer_gstin: receipt.buyer_gstin.as_deref(),
        },
    )
    .await?;
    refund_email_in(
        tx,
        settings,
        topup,
        refund_id,
        amount_paise,
        Some((voucher_id, &number)),
    )
    .await?;
    Ok(Some(number))
}
