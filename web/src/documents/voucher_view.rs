//! A voucher as it is shown: every amount in rupees with its paise, the tax lines that apply,
//! the amount in words and the place of supply by name. The page, the PDF and the emails all
//! show these same words, so they are made once here.

use razorpay::Paise;

use crate::{
    gst::{gstin::state_name, words::rupees_in_words},
    india::IST,
    store::{
        StoreResult,
        vouchers::{self, Voucher, VoucherKind},
    },
};

/// What a receipt or refund voucher says, ready to print.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VoucherView {
    pub id: i64,
    /// "Receipt Voucher" or "Refund Voucher".
    pub title: &'static str,
    /// The law it is issued under, in one sentence.
    pub legal_basis: String,
    /// A refund voucher's receipt voucher.
    pub against: Option<String>,
    pub number: String,
    pub date: String,
    pub seller_name: String,
    pub seller_address: String,
    pub seller_gstin: String,
    pub buyer_name: String,
    pub buyer_address: String,
    pub buyer_gstin: String,
    pub place_of_supply: String,
    pub sac: String,
    pub description: &'static str,
    pub taxable: String,
    /// (label, amount) of each tax that applies.
    pub taxes: Vec<(String, String)>,
    /// "Amount received" or "Amount refunded".
    pub total_label: &'static str,
    pub amount: String,
    pub in_words: String,
    pub payment_id: String,
    pub refund_id: Option<String>,
    pub topup_id: i64,
}

/// ₹ with Indian grouping and always two places of paise, as a voucher shows every amount.
pub fn voucher_rupees(paise: i64) -> String {
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

/// Half a rate, as CGST and SGST each are: 1800 → "9%"; 1250 → "6.25%"; 1801 → "9.005%".
fn percent_of_half(bps: i64) -> String {
    // Half a basis point is five thousandths of a percent: count in those.
    let thousandths = bps * 5;
    let (whole, part) = (thousandths / 1000, thousandths % 1000);
    if part == 0 {
        format!("{whole}%")
    } else {
        let digits = format!("{part:03}");
        format!("{whole}.{}%", digits.trim_end_matches('0'))
    }
}

impl VoucherView {
    /// A voucher as shown, reading the number of the receipt voucher a refund voucher is
    /// against (the page, the PDF and the email attachment all show it).
    pub async fn load<C: sea_orm::ConnectionTrait>(
        conn: &C,
        voucher: Voucher,
    ) -> StoreResult<VoucherView> {
        let against = match voucher.receipt_voucher_id {
            Some(id) => vouchers::find(conn, id).await?.map(|r| r.number),
            None => None,
        };
        Ok(VoucherView::of(voucher, against))
    }

    /// `against` is the number of a refund voucher's receipt voucher.
    pub fn of(voucher: Voucher, against: Option<String>) -> VoucherView {
        let mut taxes = Vec::new();
        if voucher.igst_paise > 0 || (voucher.cgst_paise == 0 && voucher.sgst_paise == 0) {
            taxes.push((
                format!("IGST @ {}", percent(voucher.rate_bps)),
                voucher_rupees(voucher.igst_paise),
            ));
        } else {
            let half = percent_of_half(voucher.rate_bps);
            taxes.push((format!("CGST @ {half}"), voucher_rupees(voucher.cgst_paise)));
            taxes.push((format!("SGST @ {half}"), voucher_rupees(voucher.sgst_paise)));
        }
        let place = u32::try_from(voucher.place_of_supply).unwrap_or(0);
        let refund = voucher.kind == VoucherKind::Refund;
        let legal_basis = match (&against, refund) {
            (Some(receipt), true) => format!(
                "Issued under section 31(3)(e) of the CGST Act, 2017, and rule 51 of the CGST \
                 Rules: an advance refunded, against receipt voucher {receipt}."
            ),
            _ => "Issued under section 31(3)(d) of the CGST Act, 2017, and rule 50 of the CGST \
                  Rules: an advance received for services."
                .to_string(),
        };
        VoucherView {
            id: voucher.id,
            title: if refund {
                "Refund Voucher"
            } else {
                "Receipt Voucher"
            },
            legal_basis,
            against: if refund { against } else { None },
            number: voucher.number,
            date: voucher
                .issued_at
                .with_timezone(&IST)
                .format("%d %b %Y")
                .to_string(),
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
            description: "Prepaid credits for Kalp Studio's Email and SMS services (advance)",
            taxable: voucher_rupees(voucher.taxable_paise),
            taxes,
            total_label: if refund {
                "Amount refunded"
            } else {
                "Amount received"
            },
            amount: voucher_rupees(voucher.amount_paise),
            in_words: rupees_in_words(voucher.amount_paise),
            payment_id: voucher.payment_id,
            refund_id: voucher.refund_id,
            topup_id: voucher.topup_id,
        }
    }

    /// The file name a download suggests: the number with its slashes made safe.
    pub fn file_name(&self) -> String {
        let safe: String = self
            .number
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        format!("{}-{safe}.pdf", self.title.replace(' ', "-"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn half_rates_print_exactly() {
        assert_eq!(percent_of_half(1800), "9%");
        assert_eq!(percent_of_half(1250), "6.25%");
        assert_eq!(percent_of_half(500), "2.5%");
        assert_eq!(percent_of_half(1801), "9.005%");
        assert_eq!(percent(625), "6.25%");
    }

    #[test]
    fn voucher_amounts_always_show_paise() {
        assert_eq!(voucher_rupees(12_000_000), "₹1,20,000.00");
        assert_eq!(voucher_rupees(10_001), "₹100.01");
    }
}
