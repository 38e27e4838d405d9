//! What a send costs, from the price table in configuration: email per message; SMS per
//! 160-character segment by destination country (from the E.164 calling code), with a default.

use serde::{Deserialize, Serialize};

use crate::configuration::PriceSettings;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Service {
    Email,
    Sms,
}

impl Service {
    pub fn debit_kind(self) -> ledger::DebitKind {
        match self {
            Service::Email => ledger::DebitKind::UsageEmail,
            Service::Sms => ledger::DebitKind::UsageSms,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Service::Email => "email",
            Service::Sms => "sms",
        }
    }

    /// The price of one message (one segment for SMS) with no destination known.
    pub fn unit_price(self, prices: &PriceSettings) -> i64 {
        match self {
            Service::Email => prices.email_credits,
            Service::Sms => prices.sms_segment_credits,
        }
    }
}

/// Calling codes of the countries the price table may name (longest prefix wins).
const CALLING_CODES: &[(&str, &str)] = &[
    ("971", "AE"),
    ("966", "SA"),
    ("880", "BD"),
    ("977", "NP"),
    ("94", "LK"),
    ("91", "IN"),
    ("65", "SG"),
    ("61", "AU"),
    ("49", "DE"),
    ("44", "GB"),
    ("33", "FR"),
    ("1", "US"),
];

/// The ISO country of an E.164 number (`+919876543210` → `IN`).
pub fn country_of(number: &str) -> Option<&'static str> {
    let digits = number.strip_prefix('+')?;
    let mut best: Option<(&str, &str)> = None;
    for (code, country) in CALLING_CODES {
        if digits.starts_with(code) && best.is_none_or(|(b, _)| code.len() > b.len()) {
            best = Some((code, country));
        }
    }
    best.map(|(_, country)| country)
}

pub fn sms_segment_price(prices: &PriceSettings, destination: &str) -> i64 {
    country_of(destination)
        .and_then(|c| prices.sms_countries.get(c).copied())
        .unwrap_or(prices.sms_segment_credits)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn countries_come_from_the_calling_code() {
        assert_eq!(country_of("+919876543210"), Some("IN"));
        assert_eq!(country_of("+14155550100"), Some("US"));
        assert_eq!(country_of("+971501234567"), Some("AE"));
        assert_eq!(country_of("919876543210"), None);
        assert_eq!(country_of("+999"), None);
    }
}
