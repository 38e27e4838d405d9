//! Voucher numbers: consecutive within a financial year (April to March, in India's time),
//! at most 16 characters (CGST Rules, rule 46(b)): `KS/26-27/000123`.

use chrono::{DateTime, Datelike, Utc};

use crate::india::IST;

/// The longest voucher number the rules allow.
pub const MAX_LEN: usize = 16;

/// A financial year, by the calendar year it starts in (2026 is April 2026 to March 2027).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FinancialYear(pub i32);

impl FinancialYear {
    /// The financial year of an instant, in India's time.
    pub fn of(at: DateTime<Utc>) -> FinancialYear {
        let local = at.with_timezone(&IST);
        FinancialYear(if local.month() >= 4 {
            local.year()
        } else {
            local.year() - 1
        })
    }

    /// `26-27`.
    pub fn label(self) -> String {
        format!(
            "{:02}-{:02}",
            self.0.rem_euclid(100),
            (self.0 + 1).rem_euclid(100)
        )
    }
}

/// `PREFIX/26-27/000123`; refused when it would be longer than the rules allow.
pub fn voucher_number(prefix: &str, year: FinancialYear, sequence: u64) -> Result<String, String> {
    let number = format!("{prefix}/{}/{sequence:06}", year.label());
    if number.len() > MAX_LEN {
        return Err(format!(
            "{number} is longer than {MAX_LEN} characters: use a prefix of at most {} characters",
            MAX_LEN.saturating_sub(number.len() - prefix.len())
        ));
    }
    Ok(number)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn the_financial_year_turns_at_midnight_on_the_first_of_april_in_india() {
        // 31 March 23:59 IST is 18:29 UTC; 1 April 00:00 IST is 31 March 18:30 UTC.
        assert_eq!(
            FinancialYear::of(at("2027-03-31T18:29:59Z")),
            FinancialYear(2026)
        );
        assert_eq!(
            FinancialYear::of(at("2027-03-31T18:30:00Z")),
            FinancialYear(2027)
        );
        assert_eq!(FinancialYear(2026).label(), "26-27");
        assert_eq!(FinancialYear(2099).label(), "99-00");
    }

    #[test]
    fn numbers_fit_in_sixteen_characters() {
        assert_eq!(
            voucher_number("KS", FinancialYear(2026), 123).as_deref(),
            Ok("KS/26-27/000123")
        );
        assert_eq!(
            voucher_number("KSR", FinancialYear(2026), 999_999).map(|n| n.len()),
            Ok(16)
        );
        assert!(voucher_number("KSTD", FinancialYear(2026), 1).is_err());
        assert!(voucher_number("KSR", FinancialYear(2026), 1_000_000).is_err());
    }
}
