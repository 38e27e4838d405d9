//! Money as integer paise. Never a float: ₹299.35 is 29935 paise, and rupee strings typed by
//! people are parsed digit by digit.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};

/// An amount in paise (1/100 of a rupee), as Razorpay's APIs carry it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize)]
#[serde(transparent)]
pub struct Paise(pub i64);

/// The longest amount text accepted; anything longer is not an amount someone meant to type.
const MAX_INPUT_LEN: usize = 32;

/// Why a rupee amount could not be read. Each message is written for the person who typed it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AmountError {
    #[error("Enter an amount.")]
    Empty,
    #[error("The amount is too long.")]
    TooLong,
    #[error("The amount can't be negative.")]
    Negative,
    #[error("Enter the amount as plain digits, like 1000 (no exponents).")]
    Exponent,
    #[error("Use at most two digits after the decimal point.")]
    TooManyDecimals,
    #[error("Check the commas: write 1,000 or 1,00,000.")]
    BadGrouping,
    #[error("The amount is too large.")]
    TooLarge,
    #[error("Enter the amount in rupees using digits, like 1000 or 1,000.50.")]
    NotANumber,
}

impl Paise {
    pub fn get(self) -> i64 {
        self.0
    }

    /// Reads a rupee amount as people type it: `1000`, `1,000.50`, `1,00,000`, `₹ 1000`,
    /// `Rs. 1000`, `INR 1000`. At most two decimals; no signs, exponents or other characters.
    pub fn parse_rupees(input: &str) -> Result<Paise, AmountError> {
        let text = input.trim();
        if text.is_empty() {
            return Err(AmountError::Empty);
        }
        if text.len() > MAX_INPUT_LEN {
            return Err(AmountError::TooLong);
        }
        let text = strip_currency(text).trim_start();
        if text.is_empty() {
            return Err(AmountError::Empty);
        }
        if text.starts_with('-') || text.starts_with('\u{2212}') {
            return Err(AmountError::Negative);
        }
        if looks_like_exponent(text) {
            return Err(AmountError::Exponent);
        }
        let (whole, fraction) = match text.split_once('.') {
            Some((w, f)) => (w, Some(f)),
            None => (text, None),
        };
        if whole.is_empty() || !whole.chars().all(|c| c.is_ascii_digit() || c == ',') {
            return Err(AmountError::NotANumber);
        }
        let rupees = parse_grouped(whole)?;
        let paise = match fraction {
            None => 0,
            Some(f) if f.is_empty() || !f.chars().all(|c| c.is_ascii_digit()) => {
                return Err(AmountError::NotANumber);
            }
            Some(f) if f.len() > 2 => return Err(AmountError::TooManyDecimals),
            Some(f) => {
                let digits: i64 = f.parse().map_err(|_| AmountError::NotANumber)?;
                if f.len() == 1 { digits * 10 } else { digits }
            }
        };
        rupees
            .checked_mul(100)
            .and_then(|p| p.checked_add(paise))
            .map(Paise)
            .ok_or(AmountError::TooLarge)
    }

    /// Formats as rupees with Indian digit grouping: `₹1,00,000.50`, `₹100`.
    pub fn display_inr(self) -> String {
        let negative = self.0 < 0;
        let abs = self.0.unsigned_abs();
        let (rupees, paise) = (abs / 100, abs % 100);
        let digits = rupees.to_string();
        let mut grouped = String::new();
        let len = digits.len();
        for (i, c) in digits.chars().enumerate() {
            let from_end = len - i;
            if i > 0 && (from_end == 3 || (from_end > 3 && (from_end - 3) % 2 == 0)) {
                grouped.push(',');
            }
            grouped.push(c);
        }
        let sign = if negative { "-" } else { "" };
        if paise == 0 {
            format!("{sign}₹{grouped}")
        } else {
            format!("{sign}₹{grouped}.{paise:02}")
        }
    }
}

impl fmt::Display for Paise {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.display_inr())
    }
}

/// `1e5`, `2.5E+3`: scientific notation, which people paste from spreadsheets.
fn looks_like_exponent(text: &str) -> bool {
    let Some((mantissa, exponent)) = text.split_once(['e', 'E']) else {
        return false;
    };
    let exponent = exponent.trim_start_matches(['+', '-']);
    !mantissa.is_empty()
        && mantissa
            .chars()
            .all(|c| c.is_ascii_digit() || c == '.' || c == ',')
        && !exponent.is_empty()
        && exponent.chars().all(|c| c.is_ascii_digit())
}

fn strip_currency(text: &str) -> &str {
    for prefix in ["₹", "INR", "Rs.", "Rs", "rs.", "rs"] {
        if let Some(rest) = text.strip_prefix(prefix) {
            return rest;
        }
    }
    text
}

/// Digits with optional commas, grouped the Indian way (1,00,000) or the Western way (100,000).
fn parse_grouped(whole: &str) -> Result<i64, AmountError> {
    if whole.contains(',') {
        let groups: Vec<&str> = whole.split(',').collect();
        let (first, rest) = groups.split_first().ok_or(AmountError::BadGrouping)?;
        let last = rest.last().ok_or(AmountError::BadGrouping)?;
        let first_ok = (1..=3).contains(&first.len());
        let last_ok = last.len() == 3;
        let middle = &rest[..rest.len() - 1];
        let indian = middle.iter().all(|g| g.len() == 2) && first.len() <= 2;
        let western = middle.iter().all(|g| g.len() == 3);
        if !first_ok || !last_ok || !(indian || western) {
            return Err(AmountError::BadGrouping);
        }
    }
    let digits: String = whole.chars().filter(|c| *c != ',').collect();
    if digits.is_empty() {
        return Err(AmountError::NotANumber);
    }
    digits.parse::<i64>().map_err(|_| AmountError::TooLarge)
}

impl<'de> Deserialize<'de> for Paise {
    /// An integer, or an integer in a string (Razorpay's SDK fixtures send `"amount":"100"`).
    /// A float is refused, as Razorpay refuses it.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Int(i64),
            Text(String),
        }
        match Raw::deserialize(deserializer)? {
            Raw::Int(n) => Ok(Paise(n)),
            Raw::Text(s) => s
                .parse::<i64>()
                .map(Paise)
                .map_err(|_| serde::de::Error::custom(format!("{s:?} is not an amount in paise"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_people_type_is_accepted() {
        for (input, paise) in [
            ("1000", 100_000),
            ("1,000.50", 100_050),
            ("₹ 1000", 100_000),
            ("₹1000", 100_000),
            ("Rs. 250", 25_000),
            ("INR 100", 10_000),
            ("  500  ", 50_000),
            ("1,00,000", 10_000_000),
            ("100,000", 10_000_000),
            ("5,00,000.00", 50_000_000),
            ("99.9", 9_990),
            ("0.01", 1),
            ("0", 0),
            ("007", 700),
        ] {
            assert_eq!(Paise::parse_rupees(input), Ok(Paise(paise)), "{input:?}");
        }
    }

    #[test]
    fn anything_else_gets_a_clear_reason() {
        use AmountError::*;
        for (input, error) in [
            ("", Empty),
            ("   ", Empty),
            ("₹", Empty),
            ("-100", Negative),
            ("1e5", Exponent),
            ("1E3", Exponent),
            ("2.5e-3", Exponent),
            ("<script>alert(1)</script>", NotANumber),
            ("10.555", TooManyDecimals),
            ("ten", NotANumber),
            ("100abc", NotANumber),
            ("+100", NotANumber),
            ("1.2.3", NotANumber),
            ("100.", NotANumber),
            (".5", NotANumber),
            ("0x10", NotANumber),
            ("1,0,0", BadGrouping),
            (",100", BadGrouping),
            ("100,", BadGrouping),
            ("1,,000", BadGrouping),
            ("12,34", BadGrouping),
            ("NaN", NotANumber),
            ("Infinity", NotANumber),
            ("99999999999999999999", TooLarge),
            ("92233720368547759", TooLarge),
            (&"9".repeat(40), TooLong),
        ] {
            assert_eq!(Paise::parse_rupees(input), Err(error.clone()), "{input:?}");
            assert!(!error.to_string().is_empty());
        }
    }

    #[test]
    fn rupees_display_with_indian_grouping() {
        assert_eq!(Paise(100_050).display_inr(), "₹1,000.50");
        assert_eq!(Paise(10_000_000).display_inr(), "₹1,00,000");
        assert_eq!(Paise(50_000_000).display_inr(), "₹5,00,000");
        assert_eq!(Paise(1).display_inr(), "₹0.01");
        assert_eq!(Paise(12_345_678_900).display_inr(), "₹12,34,56,789");
    }

    #[test]
    fn amounts_deserialise_from_integers_and_integer_strings_only() {
        assert_eq!(serde_json::from_str::<Paise>("100").ok(), Some(Paise(100)));
        assert_eq!(
            serde_json::from_str::<Paise>("\"100\"").ok(),
            Some(Paise(100))
        );
        assert!(serde_json::from_str::<Paise>("100.5").is_err());
        assert!(serde_json::from_str::<Paise>("\"1e2\"").is_err());
    }

    proptest::proptest! {
        #[test]
        fn formatting_then_parsing_gives_the_same_paise(p in 0i64..1_000_000_000_000) {
            let shown = Paise(p).display_inr();
            proptest::prop_assert_eq!(Paise::parse_rupees(&shown), Ok(Paise(p)));
        }

        #[test]
        fn parsing_never_panics(s in "\\PC{0,40}") {
            let _ = Paise::parse_rupees(&s);
        }
    }
}
