//! GST vouchers as printable pages, for their owner only (another account's are "not found"):
//! a top-up's receipt voucher (`/billing/topups/{id}/receipt`) and any voucher by id
//! (`/billing/vouchers/{id}`, the refund vouchers).

use askama::Template;
use axum::{
    extract::{Path, State},
    response::{Html, IntoResponse, Response},
};
use razorpay::Paise;

use crate::{
    gst::{gstin::state_name, words::rupees_in_words},
    pages::{
        error::{PageError, PageResult},
        session::CurrentUser,
        views::format_time,
    },
    state::AppState,
    store::{topups, vouchers},
};

#[derive(Template)]
#[template(path = "voucher.html")]
struct VoucherPage {
    /// "Receipt Voucher" or "Refund Voucher".
    title: &'static str,
    /// A refund voucher's receipt voucher.
    against: Option<String>,
    number: String,
    date: String,
    seller_name: String,
    seller_address: String,
    seller_gstin: String,
    buyer_name: String,
    buyer_address: String,
    buyer_gstin: String,
    place_of_supply: String,
    sac: String,
    amount: String,
    taxable: String,
    /// (label, amount) of each tax that applies.
    taxes: Vec<(String, String)>,
    in_words: String,
    payment_id: String,
    topup_id: i64,
}

fn rupees(paise: i64) -> String {
    // A voucher shows every amount with its paise.
    let text = Paise(paise).display_inr();
    if text.contains('.') {
        text
    } else {
        format!("{text}.00")
    }
}

/// 1800 basis points → "18%"; 625 → "6.25%" (integers only).
fn percent(bps: i64) -> String {
    match (bps / 100, bps % 100) {
        (whole, 0) => format!("{whole}%"),
        (whole, part) if part % 10 == 0 => format!("{whole}.{}%", part / 10),
        (whole, part) => format!("{whole}.{part:02}%"),
    }
}

/// Half a rate, as CGST and SGST each are: 1800 → "9%"; 1250 → "6.25%".
fn percent_of_half(bps: i64) -> String {
    if bps % 2 == 0 {
        percent(bps / 2)
    } else {
        format!("{}.5", percent(bps / 2).trim_end_matches('%')) + "%"
    }
}

pub async fn receipt_page(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    user: CurrentUser,
) -> PageResult<Response> {
    let topup = topups::find_owned(&state.reads, id, user.id)
        .await?
        .ok_or(PageError::NotFound)?;
    let voucher = vouchers::receipt_of_topup(&state.reads, topup.id)
        .await?
        .ok_or(PageError::NotFound)?;
    render(&state, voucher).await
}

pub async fn voucher_page(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    user: CurrentUser,
) -> PageResult<Response> {
    let voucher = vouchers::find(&state.reads, id)
        .await?
        .filter(|v| v.user_id == user.id)
        .ok_or(PageError::NotFound)?;
    render(&state, voucher).await
}

async fn render(state: &AppState, voucher: vouchers::Voucher) -> PageResult<Response> {
    let against = match voucher.receipt_voucher_id {
        Some(id) => vouchers::find(&state.reads, id).await?.map(|r| r.number),
        None => None,
    };
    let mut taxes = Vec::new();
    if voucher.igst_paise > 0 || (voucher.cgst_paise == 0 && voucher.sgst_paise == 0) {
        taxes.push((
            format!("IGST @ {}", percent(voucher.rate_bps)),
            rupees(voucher.igst_paise),
        ));
    } else {
        let half = percent_of_half(voucher.rate_bps);
        taxes.push((format!("CGST @ {half}"), rupees(voucher.cgst_paise)));
        taxes.push((format!("SGST @ {half}"), rupees(voucher.sgst_paise)));
    }
    let place = u32::try_from(voucher.place_of_supply).unwrap_or(0);
    let page = VoucherPage {
        title: match voucher.kind {
            vouchers::VoucherKind::Receipt => "Receipt Voucher",
            vouchers::VoucherKind::Refund => "Refund Voucher",
        },
        against,
        number: voucher.number,
        date: format_time(voucher.issued_at),
        seller_name: voucher.seller_name,
        seller_address: voucher.seller_address,
        seller_gstin: voucher.seller_gstin,
        buyer_name: voucher.buyer_name,
        buyer_address: voucher.buyer_address,
        buyer_gstin: voucher
            .buyer_gstin
            .unwrap_or_else(|| "Unregistered".to_string()),
        place_of_supply: format!(
            "{} ({place:02})",
            state_name(place).unwrap_or("Unknown state")
        ),
        sac: voucher.sac,
        amount: rupees(voucher.amount_paise),
        taxable: rupees(voucher.taxable_paise),
        taxes,
        in_words: rupees_in_words(voucher.amount_paise),
        payment_id: voucher.payment_id,
        topup_id: voucher.topup_id,
    };
    Ok(Html(page.render()?).into_response())
}
