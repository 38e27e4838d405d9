//! Payment methods and Razorpay's test identities: which inputs succeed, which fail and why.

use serde::Deserialize;

/// How a customer pays, as the checkout pages or `/_fake/orders/{id}/pay` describe it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "method", rename_all = "snake_case")]
pub enum PayRequest {
    Upi {
        #[serde(default)]
        vpa: Option<String>,
        /// Paid by scanning the QR code instead of entering a UPI id.
        #[serde(default)]
        qr: bool,
    },
    Card {
        number: String,
        #[serde(default = "default_expiry")]
        expiry: String,
        #[serde(default = "default_cvv")]
        cvv: String,
        #[serde(default = "default_name")]
        name: String,
        otp: String,
    },
    Netbanking {
        bank: String,
        #[serde(default)]
        outcome: MethodOutcome,
    },
    Wallet {
        wallet: String,
        #[serde(default)]
        outcome: MethodOutcome,
    },
}

fn default_expiry() -> String {
    "12/34".into()
}
fn default_cvv() -> String {
    "123".into()
}
fn default_name() -> String {
    "Test Customer".into()
}

/// The button pressed on a mock bank or wallet page.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MethodOutcome {
    #[default]
    Success,
    Failure,
}

/// Why an attempt failed, in Razorpay's error vocabulary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub code: &'static str,
    pub description: &'static str,
    pub source: &'static str,
    pub step: &'static str,
    pub reason: &'static str,
}

pub const BANKS: &[(&str, &str)] = &[
    ("HDFC", "HDFC Bank"),
    ("ICIC", "ICICI Bank"),
    ("SBIN", "State Bank of India"),
    ("UTIB", "Axis Bank"),
    ("KKBK", "Kotak Mahindra Bank"),
    ("YESB", "Yes Bank"),
];

pub const WALLETS: &[(&str, &str)] = &[
    ("payzapp", "PayZapp"),
    ("freecharge", "Freecharge"),
    ("mobikwik", "MobiKwik"),
    ("olamoney", "Ola Money"),
    ("airtelmoney", "Airtel Payments Bank"),
    ("jiomoney", "JioMoney"),
];

pub fn bank_name(code: &str) -> Option<&'static str> {
    BANKS.iter().find(|(c, _)| *c == code).map(|(_, n)| *n)
}

pub fn wallet_name(code: &str) -> Option<&'static str> {
    WALLETS.iter().find(|(c, _)| *c == code).map(|(_, n)| *n)
}

pub const UPI_FAILURE: Failure = Failure {
    code: "BAD_REQUEST_ERROR",
    description: "Payment was unsuccessful due to a temporary issue. If amount got deducted, it will be refunded within 5-7 working days.",
    source: "gateway",
    step: "payment_response",
    reason: "payment_failed",
};

pub const BANK_FAILURE: Failure = Failure {
    code: "BAD_REQUEST_ERROR",
    description: "Payment failed because the transaction was declined by your bank.",
    source: "bank",
    step: "payment_authorization",
    reason: "payment_failed",
};

pub const WALLET_FAILURE: Failure = Failure {
    code: "BAD_REQUEST_ERROR",
    description: "Payment failed because the transaction was declined by your wallet provider.",
    source: "issuer",
    step: "payment_authorization",
    reason: "payment_failed",
};

pub const OTP_FAILURE: Failure = Failure {
    code: "BAD_REQUEST_ERROR",
    description: "Payment failed because the OTP entered was incorrect.",
    source: "customer",
    step: "payment_authentication",
    reason: "incorrect_otp",
};

/// Razorpay's error-scenario test cards and what they fail with.
fn card_failure(number: &str) -> Option<Failure> {
    let f = |code, description, source, step, reason| {
        Some(Failure {
            code,
            description,
            source,
            step,
            reason,
        })
    };
    match number {
        "4100280000090000" | "5305620000060000" => f(
            "BAD_REQUEST_ERROR",
            "Payment was not completed on time.",
            "customer",
            "payment_authentication",
            "payment_timed_out",
        ),
        "4100280000080001" | "5305620000050001" => f(
            "BAD_REQUEST_ERROR",
            "Payment failed due to insufficient balance in the account.",
            "issuer_bank",
            "payment_authorization",
            "insufficient_funds",
        ),
        "4100280000070002" | "5305620000040002" => f(
            "BAD_REQUEST_ERROR",
            "Payment was cancelled by the customer.",
            "customer",
            "payment_authentication",
            "payment_cancelled",
        ),
        "4100280000060003" | "4100280000050004" | "4100280000040005" | "5305620000030003"
        | "5305620000020004" | "5305620000010005" => f(
            "BAD_REQUEST_ERROR",
            "Payment failed because the card was declined by the bank.",
            "issuer_bank",
            "payment_authorization",
            "card_declined",
        ),
        "4100280000030006" | "5305620000000006" => f(
            "BAD_REQUEST_ERROR",
            "Payment failed because the card is not enabled for online payments.",
            "issuer_bank",
            "payment_authorization",
            "card_disabled_for_online_payments",
        ),
        "4100280000010008" | "5305620000080008" => f(
            "BAD_REQUEST_ERROR",
            "Payment failed because the card number is invalid.",
            "customer",
            "payment_initiation",
            "card_number_invalid",
        ),
        "4100280000020007" | "5305620000090007" => f(
            "GATEWAY_ERROR",
            "Payment processing failed due to error at bank or wallet gateway.",
            "gateway",
            "payment_authorization",
            "gateway_technical_error",
        ),
        "4100280000000009" | "5305620000070009" => f(
            "GATEWAY_ERROR",
            "Payment failed because authentication with the bank was not successful.",
            "gateway",
            "payment_authentication",
            "authentication_failed",
        ),
        _ => None,
    }
}

/// Card details people type, checked as Razorpay's checkout checks them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardInput {
    pub number: String,
    pub network: &'static str,
    pub last4: String,
}

pub fn digits_only(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .collect()
}

pub fn luhn_ok(number: &str) -> bool {
    let mut sum = 0;
    for (i, c) in number.chars().rev().enumerate() {
        let Some(mut d) = c.to_digit(10) else {
            return false;
        };
        if i % 2 == 1 {
            d *= 2;
            if d > 9 {
                d -= 9;
            }
        }
        sum += d;
    }
    sum % 10 == 0
}

fn network(number: &str) -> &'static str {
    match number.as_bytes().first() {
        Some(b'4') => "Visa",
        Some(b'5') => "MasterCard",
        Some(b'6') => "RuPay",
        Some(b'3') if number.starts_with("34") || number.starts_with("37") => "American Express",
        Some(b'3') => "Diners Club",
        _ => "Unknown",
    }
}

/// Validates card details; `now` is (year, month) for the expiry check.
pub fn check_card(
    number: &str,
    expiry: &str,
    cvv: &str,
    name: &str,
    now: (u32, u32),
) -> Result<CardInput, String> {
    let number = digits_only(number);
    if number.len() < 12 || number.len() > 19 || !number.chars().all(|c| c.is_ascii_digit()) {
        return Err("Enter a valid card number.".into());
    }
    if !luhn_ok(&number) {
        return Err("The card number is invalid. Check it and try again.".into());
    }
    let (month, year) = parse_expiry(expiry).ok_or("Enter the expiry as MM/YY.")?;
    if (year, month) < now {
        return Err("The card has expired.".into());
    }
    let cvv_len = if network(&number) == "American Express" {
        4
    } else {
        3
    };
    if cvv.len() != cvv_len || !cvv.chars().all(|c| c.is_ascii_digit()) {
        return Err(format!("Enter the {cvv_len}-digit CVV."));
    }
    if name.trim().is_empty() || name.len() > 100 {
        return Err("Enter the name on the card.".into());
    }
    let last4 = number[number.len() - 4..].to_string();
    Ok(CardInput {
        network: network(&number),
        number,
        last4,
    })
}

fn parse_expiry(expiry: &str) -> Option<(u32, u32)> {
    let (m, y) = expiry.trim().split_once('/')?;
    let month: u32 = m.trim().parse().ok()?;
    let year: u32 = y.trim().parse().ok()?;
    let year = if year < 100 { 2000 + year } else { year };
    ((1..=12).contains(&month) && (2000..=2100).contains(&year)).then_some((month, year))
}

/// 4 to 10 digits succeed; anything shorter fails, as on Razorpay's mock OTP page.
pub fn otp_ok(otp: &str) -> bool {
    let otp = otp.trim();
    (4..=10).contains(&otp.len()) && otp.chars().all(|c| c.is_ascii_digit())
}

/// The outcome of a card payment with these details and this OTP.
pub fn card_result(card: &CardInput, otp: &str) -> Result<(), Failure> {
    if !otp_ok(otp) {
        return Err(OTP_FAILURE);
    }
    match card_failure(&card.number) {
        Some(failure) => Err(failure),
        None => Ok(()),
    }
}

/// A UPI id as real ones look: `handle@provider`.
pub fn vpa_ok(vpa: &str) -> bool {
    let Some((handle, provider)) = vpa.split_once('@') else {
        return false;
    };
    (2..=256).contains(&handle.len())
        && handle
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
        && (2..=64).contains(&provider.len())
        && provider.chars().all(|c| c.is_ascii_alphabetic())
}

pub fn upi_result(vpa: &str) -> Result<(), Failure> {
    if vpa.eq_ignore_ascii_case("failure@razorpay") {
        Err(UPI_FAILURE)
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: (u32, u32) = (2026, 11);

    #[test]
    fn test_cards_validate_and_fail_as_documented() {
        let card = check_card("4100 2800 0000 1007", "12/30", "123", "A", NOW).expect("valid");
        assert_eq!((card.network, card.last4.as_str()), ("Visa", "1007"));
        assert_eq!(card_result(&card, "123456"), Ok(()));
        assert_eq!(
            card_result(&card, "123").map_err(|f| f.reason),
            Err("incorrect_otp")
        );
        let declined = check_card("4100280000060003", "12/30", "123", "A", NOW).expect("valid");
        assert_eq!(
            card_result(&declined, "1234").map_err(|f| f.reason),
            Err("card_declined")
        );
        assert!(
            check_card("4100280000001008", "12/30", "123", "A", NOW).is_err(),
            "Luhn"
        );
        assert!(
            check_card("4100280000001007", "10/26", "123", "A", NOW).is_err(),
            "expired"
        );
        assert!(
            check_card("4100280000001007", "13/30", "123", "A", NOW).is_err(),
            "month"
        );
        assert!(
            check_card("4100280000001007", "12/30", "12", "A", NOW).is_err(),
            "cvv"
        );
        assert!(
            check_card("340256000401007", "12/30", "1234", "A", NOW).is_ok(),
            "amex cvv"
        );
        assert!(
            check_card("4100280000001007", "12/30", "123", " ", NOW).is_err(),
            "name"
        );
    }

    #[test]
    fn otps_of_four_to_ten_digits_succeed() {
        for ok in ["1234", "123456", "1234567890"] {
            assert!(otp_ok(ok), "{ok}");
        }
        for bad in ["", "123", "12345678901", "12a4", "    "] {
            assert!(!otp_ok(bad), "{bad}");
        }
    }

    #[test]
    fn upi_ids_are_validated_like_real_ones() {
        assert!(vpa_ok("success@razorpay") && vpa_ok("gaurav.kumar@okhdfcbank"));
        for bad in ["", "nobody", "@razorpay", "a@b", "x y@upi", "a@razor_pay"] {
            assert!(!vpa_ok(bad), "{bad}");
        }
        assert_eq!(upi_result("failure@razorpay"), Err(UPI_FAILURE));
        assert_eq!(upi_result("success@razorpay"), Ok(()));
    }
}
