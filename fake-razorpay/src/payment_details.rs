//! What a payment request says about the payment: its method, the details Razorpay reports for
//! it (card, bank, wallet, UPI, acquirer data), and whether the bank says yes.

use chrono::Datelike;
use razorpay::{
    Paise,
    wire::{AcquirerData, Card, PaymentMethod, Upi},
};

use crate::{
    errors::GatewayError,
    ids,
    methods::{self, Failure, MethodOutcome, PayRequest},
};

/// UPI merchant payments are limited to ₹1,00,000 each (Razorpay's transaction limits for UPI).
pub const UPI_LIMIT: Paise = Paise(10_000_000);

/// What the customer's prefill told checkout.
#[derive(Debug, Clone, Default)]
pub struct Prefill {
    pub email: Option<String>,
    pub contact: Option<String>,
}

pub(crate) struct Details {
    pub(crate) card: Option<Card>,
    pub(crate) bank: Option<String>,
    pub(crate) wallet: Option<String>,
    pub(crate) vpa: Option<String>,
    pub(crate) upi: Option<Upi>,
    pub(crate) acquirer: AcquirerData,
}

/// This month, for card expiry checks.
pub fn current_year_month() -> (u32, u32) {
    let today = chrono::Utc::now().date_naive();
    (today.year().unsigned_abs(), today.month())
}

/// Checks a payment request and says what kind of payment it makes and whether it succeeds.
pub(crate) fn describe(
    request: &PayRequest,
    amount: Paise,
) -> Result<(PaymentMethod, Details, Result<(), Failure>), GatewayError> {
    let none = || Details {
        card: None,
        bank: None,
        wallet: None,
        vpa: None,
        upi: None,
        acquirer: AcquirerData::default(),
    };
    let rrn = || format!("{:012}", ids::below(1_000_000_000_000));
    Ok(match request {
        PayRequest::Upi { vpa, qr } => {
            if amount > UPI_LIMIT {
                return Err(GatewayError::bad_request(
                    "UPI payments are limited to ₹1,00,000 per transaction. Choose another method.",
                )
                .field("method"));
            }
            let vpa = match (vpa, qr) {
                (_, true) => "qr.payer@okaxis".to_string(),
                (Some(v), false) => v.trim().to_string(),
                (None, false) => {
                    return Err(GatewayError::bad_request("Enter your UPI ID.").field("vpa"));
                }
            };
            if !methods::vpa_ok(&vpa) {
                let mut e = GatewayError::bad_request(
                    "Invalid VPA. Please enter a valid Virtual Payment Address",
                )
                .field("vpa");
                e.reason = "invalid_vpa";
                return Err(e);
            }
            let result = methods::upi_result(&vpa);
            let mut details = none();
            details.upi = Some(Upi {
                payer_account_type: Some("bank_account".into()),
                vpa: Some(vpa.clone()),
                flow: Some(if *qr { "intent" } else { "collect" }.into()),
            });
            details.vpa = Some(vpa);
            if result.is_ok() {
                let id = rrn();
                details.acquirer.rrn = Some(id.clone());
                details.acquirer.upi_transaction_id = Some(format!("npci_{id}"));
            }
            (PaymentMethod::Upi, details, result)
        }
        PayRequest::Card {
            number,
            expiry,
            cvv,
            name,
            otp,
        } => {
            let card = methods::check_card(number, expiry, cvv, name, current_year_month())
                .map_err(|m| GatewayError::bad_request(m).field("card[number]"))?;
            let result = methods::card_result(&card, otp);
            let mut details = none();
            details.card = Some(Card {
                id: Some(ids::new_id("card")),
                name: Some(name.trim().to_string()),
                last4: Some(card.last4.clone()),
                network: Some(card.network.into()),
                card_type: Some("credit".into()),
                issuer: None,
                international: false,
                emi: false,
                sub_type: Some("consumer".into()),
                token_iin: None,
            });
            if result.is_ok() {
                details.acquirer.auth_code = Some(format!("{:06}", ids::below(1_000_000)));
            }
            (PaymentMethod::Card, details, result)
        }
        PayRequest::Netbanking { bank, outcome } => {
            if methods::bank_name(bank).is_none() {
                return Err(
                    GatewayError::bad_request("The selected bank is invalid.").field("bank")
                );
            }
            let mut details = none();
            details.bank = Some(bank.clone());
            let result = match outcome {
                MethodOutcome::Success => {
                    details.acquirer.bank_transaction_id = Some(rrn());
                    Ok(())
                }
                MethodOutcome::Failure => Err(methods::BANK_FAILURE),
            };
            (PaymentMethod::Netbanking, details, result)
        }
        PayRequest::Wallet { wallet, outcome } => {
            if methods::wallet_name(wallet).is_none() {
                return Err(
                    GatewayError::bad_request("The selected wallet is invalid.").field("wallet")
                );
            }
            let mut details = none();
            details.wallet = Some(wallet.clone());
            let result = match outcome {
                MethodOutcome::Success => {
                    details.acquirer.transaction_id = Some(rrn());
                    Ok(())
                }
                MethodOutcome::Failure => Err(methods::WALLET_FAILURE),
            };
            (PaymentMethod::Wallet, details, result)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_month_is_a_real_month() {
        let (year, month) = current_year_month();
        assert!((2024..2200).contains(&year) && (1..=12).contains(&month));
    }
}
