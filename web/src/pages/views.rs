//! What every page shares: the signed-in layout, the error page, and the formatting rules
//! (Indian grouping, India Standard Time, reasons in our own words).

use askama::Template;
use axum::{
    http::StatusCode,
    response::{Html, IntoResponse, Response},
};
use chrono::{DateTime, Utc};

use crate::store::topups::Topup;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nav {
    Dashboard,
    Billing,
    History,
    ApiKeys,
    Account,
}

/// What every signed-in page shares: who is signed in, where they are, the form token.
pub struct Layout {
    pub email: String,
    pub nav: Nav,
    pub csrf: String,
    pub title: String,
}

impl Layout {
    pub fn new(email: &str, nav: Nav, csrf: &str, title: &str) -> Layout {
        Layout {
            email: email.to_string(),
            nav,
            csrf: csrf.to_string(),
            title: title.to_string(),
        }
    }

    pub fn is(&self, nav: Nav) -> bool {
        self.nav == nav
    }
}

/// Pages show times in India's: one definition of it (`india`).
pub use crate::india::{IST, ist_midnight};

pub fn format_time(t: DateTime<Utc>) -> String {
    // The format parsed once, not once per line: a CSV export formats half a million times.
    static ITEMS: std::sync::LazyLock<Vec<chrono::format::Item<'static>>> =
        std::sync::LazyLock::new(|| {
            chrono::format::StrftimeItems::new("%d %b %Y, %H:%M").collect()
        });
    t.with_timezone(&IST)
        .format_with_items(ITEMS.iter())
        .to_string()
}

/// A time kept in Unix microseconds, as pages show it.
pub fn format_micros(micros: i64) -> String {
    format_time(DateTime::from_timestamp_micros(micros).unwrap_or_default())
}

/// 1234567 → "12,34,567" (Indian grouping, as the amounts are).
pub fn format_credits(n: i64) -> String {
    crate::billing::amount::group_credits(n)
}

/// A CSV field: always quoted, with spreadsheet formulas neutralised.
pub fn csv_field(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 3);
    push_csv_field(&mut out, value);
    out
}

/// [`csv_field`], written onto the end of `out` (a CSV export writes its lines without a string
/// per field).
pub fn push_csv_field(out: &mut String, value: &str) {
    out.push('"');
    if value.starts_with(['=', '+', '-', '@']) {
        out.push('\'');
    }
    for (i, part) in value.split('"').enumerate() {
        if i > 0 {
            out.push_str("\"\"");
        }
        out.push_str(part);
    }
    out.push('"');
}

/// A movement of credits with its sign: "+1,000" or "−250".
pub fn signed_credits(amount: i64) -> String {
    format!(
        "{}{}",
        if amount >= 0 { "+" } else { "−" },
        format_credits(amount.abs())
    )
}

/// A top-up as the pages show it.
pub struct TopupRow {
    pub id: i64,
    pub date: String,
    pub amount: String,
    pub credits: String,
    pub method: String,
    pub status: &'static str,
    pub status_class: &'static str,
}

impl TopupRow {
    pub fn of(t: &Topup) -> TopupRow {
        TopupRow {
            id: t.id,
            date: format_time(t.created_at),
            amount: t.amount.display_inr(),
            credits: format_credits(t.credits),
            method: t.method_label(),
            status: t.status.label(),
            status_class: t.status.as_str(),
        }
    }
}

/// Razorpay's failure reason codes in our own words. Only a code is ever stored, and only these
/// words are ever shown: a failure's description could have come from anyone.
pub fn plain_reason(code: Option<&str>) -> &'static str {
    match code.unwrap_or_default() {
        "incorrect_otp" => "The OTP you entered was incorrect.",
        "card_declined" => "Your bank declined the card.",
        "insufficient_funds" | "insufficient_fund" => "Your account did not have enough balance.",
        "payment_cancelled" => "The payment was cancelled.",
        "payment_timed_out" => "Your bank did not confirm the payment in time.",
        "authentication_failed" => "Your bank could not confirm the payment.",
        "card_disabled_for_online_payments" => "This card is not enabled for online payments.",
        "card_number_invalid" => "The card number is invalid.",
        "gateway_technical_error" | "bank_technical_error" => {
            "The bank's systems had a problem. No money was taken; try again."
        }
        "invalid_vpa" => "The UPI ID is not valid.",
        "payment_returned" => {
            "Razorpay returned this payment to you before it completed. No credits were added."
        }
        "order_refused" => "Razorpay could not start this payment. Nothing was charged.",
        "order_unavailable" => "We could not reach Razorpay. Nothing was charged.",
        _ => "The payment did not go through.",
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    title: &'a str,
    message: &'a str,
}

/// The error page, with its status.
pub fn error_page(status: StatusCode, title: &str, message: &str) -> Response {
    let page = ErrorPage { title, message };
    match page.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(_) => (status, message.to_string()).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credits_use_indian_grouping() {
        assert_eq!(format_credits(1_234_567), "12,34,567");
        assert_eq!(format_credits(0), "0");
    }

    #[test]
    fn times_are_shown_in_india_standard_time() {
        let t = DateTime::from_timestamp(0, 0).unwrap_or_default();
        assert_eq!(format_time(t), "01 Jan 1970, 05:30");
    }
}
