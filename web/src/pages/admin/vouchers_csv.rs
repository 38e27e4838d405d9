//! `/admin/vouchers.csv?month=2026-12`: a month's GST vouchers for the accountant, one row per
//! voucher with its tax split (months in India's time). Amounts are rupees with two decimals,
//! written from integer paise.

use axum::{
    extract::{Query, State},
    http::{HeaderValue, header},
    response::{IntoResponse, Response},
};
use chrono::NaiveDate;
use serde::Deserialize;

use crate::{
    pages::{
        admin::SignedInOperator,
        error::{PageError, PageResult},
        views::{csv_field, format_time, ist_midnight},
    },
    state::AppState,
    store::vouchers::{self, VoucherKind},
};

#[derive(Deserialize)]
pub struct MonthQuery {
    #[serde(default)]
    month: String,
}

/// Paise as rupees with two decimals: 8475 → "84.75".
fn rupees(paise: i64) -> String {
    let sign = if paise < 0 { "-" } else { "" };
    let paise = paise.unsigned_abs();
    format!("{sign}{}.{:02}", paise / 100, paise % 100)
}

pub async fn vouchers_csv(
    State(state): State<AppState>,
    SignedInOperator(_operator): SignedInOperator,
    Query(query): Query<MonthQuery>,
) -> PageResult<Response> {
    let first = NaiveDate::parse_from_str(&format!("{}-01", query.month.trim()), "%Y-%m-%d")
        .map_err(|_| PageError::BadRequest("Give the month as YYYY-MM, like 2026-12.".into()))?;
    let next = first
        .checked_add_months(chrono::Months::new(1))
        .ok_or_else(|| PageError::BadRequest("That month is out of range.".into()))?;
    let (from, to) = match (ist_midnight(first), ist_midnight(next)) {
        (Some(from), Some(to)) => (from.timestamp_micros(), to.timestamp_micros()),
        _ => return Err(PageError::BadRequest("That month is out of range.".into())),
    };
    let issued = vouchers::issued_between(&state.reads, from, to).await?;
    let numbers: std::collections::HashMap<i64, String> =
        issued.iter().map(|v| (v.id, v.number.clone())).collect();
    let mut out = String::from(
        "voucher,kind,date,against_receipt,recipient,recipient_gstin,place_of_supply,sac,amount,taxable_value,cgst,sgst,igst,rate_percent,razorpay_payment_id,razorpay_refund_id\n",
    );
    for v in &issued {
        let against = match v.receipt_voucher_id {
            Some(id) => match numbers.get(&id) {
                Some(number) => number.clone(),
                None => vouchers::find(&state.reads, id)
                    .await?
                    .map(|r| r.number)
                    .unwrap_or_default(),
            },
            None => String::new(),
        };
        let text = [
            v.number.clone(),
            match v.kind {
                VoucherKind::Receipt => "receipt".to_string(),
                VoucherKind::Refund => "refund".to_string(),
            },
            format_time(v.issued_at),
            against,
            v.buyer_name.clone(),
            v.buyer_gstin.clone().unwrap_or_default(),
            format!("{:02}", v.place_of_supply),
            v.sac.clone(),
        ];
        let amounts = [
            rupees(v.amount_paise),
            rupees(v.taxable_paise),
            rupees(v.cgst_paise),
            rupees(v.sgst_paise),
            rupees(v.igst_paise),
            rupees(v.rate_bps),
        ];
        let ids = [
            v.payment_id.clone(),
            v.refund_id.clone().unwrap_or_default(),
        ];
        let line: Vec<String> = text
            .iter()
            .map(|f| csv_field(f))
            .chain(amounts)
            .chain(ids.iter().map(|f| csv_field(f)))
            .collect();
        out.push_str(&line.join(","));
        out.push('\n');
    }
    let mut response = out.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    if let Ok(value) = HeaderValue::from_str(&format!(
        "attachment; filename=\"gst-vouchers-{}.csv\"",
        first.format("%Y-%m")
    )) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    Ok(response)
}
