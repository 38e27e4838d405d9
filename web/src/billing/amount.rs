//! The amount someone types into Add Credits, parsed once into a top-up amount that is within the
//! configured limits and buys a whole number of credits.

use razorpay::{AmountError, Paise};

use crate::configuration::BillingSettings;

/// An amount that may be paid: within the limits, a whole number of credits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TopupAmount {
    pub paise: Paise,
    pub credits: i64,
    /// The rate the credits were worked out at; the top-up keeps it.
    pub paise_per_credit: i64,
}

impl TopupAmount {
    /// Reads what was typed (`1000`, `1,000.50`, `₹ 1000`); every refusal is a sentence for the
    /// person who typed it.
    pub fn parse(input: &str, billing: &BillingSettings) -> Result<TopupAmount, String> {
        let paise = Paise::parse_rupees(input).map_err(|e| match e {
            AmountError::Empty => "Enter the amount you want to add.".to_string(),
            other => other.to_string(),
        })?;
        Self::from_paise(paise, billing)
    }

    pub fn from_paise(paise: Paise, billing: &BillingSettings) -> Result<TopupAmount, String> {
        let (min, max) = (
            Paise(billing.min_topup_paise),
            Paise(billing.max_topup_paise),
        );
        if paise.0 <= 0 {
            return Err("The amount must be more than zero.".into());
        }
        if paise < min {
            return Err(format!("The minimum top-up is {min}."));
        }
        if paise > max {
            return Err(format!("The maximum top-up is {max}."));
        }
        if paise.0 % billing.paise_per_credit != 0 {
            return Err(format!(
                "Credits are sold in steps of {} (one credit). Round the amount to a multiple of it.",
                Paise(billing.paise_per_credit)
            ));
        }
        Ok(TopupAmount {
            paise,
            credits: paise.0 / billing.paise_per_credit,
            paise_per_credit: billing.paise_per_credit,
        })
    }
}

/// 1234567 → "12,34,567": a number of credits with Indian grouping, as rupee amounts are
/// written.
pub fn group_credits(n: i64) -> String {
    Paise(n.saturating_mul(100))
        .display_inr()
        .replacen('₹', "", 1)
}

impl TopupAmount {
    /// The credits it buys, as people read them.
    pub fn credits_display(&self) -> String {
        group_credits(self.credits)
    }
}

/// What ₹1 buys, for the Billing page ("₹1 = 10 credits").
pub fn credits_per_rupee(billing: &BillingSettings) -> String {
    let per_rupee_times_100 = 100 * 100 / billing.paise_per_credit;
    if per_rupee_times_100 % 100 == 0 {
        format!("{}", per_rupee_times_100 / 100)
    } else {
        format!(
            "{}.{:02}",
            per_rupee_times_100 / 100,
            per_rupee_times_100 % 100
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn billing() -> BillingSettings {
        BillingSettings {
            merchant_name: "Kalp Studio".into(),
            paise_per_credit: 10,
            min_topup_paise: 10_000,
            max_topup_paise: 50_000_000,
        }
    }

    #[test]
    fn amounts_people_type_become_whole_credits() {
        let b = billing();
        for (input, paise, credits) in [
            ("1000", 100_000, 10_000),
            ("1,000.50", 100_050, 10_005),
            ("₹ 1000", 100_000, 10_000),
            ("100", 10_000, 1_000),
            ("5,00,000", 50_000_000, 5_000_000),
            ("250.10", 25_010, 2_501),
        ] {
            assert_eq!(
                TopupAmount::parse(input, &b),
                Ok(TopupAmount {
                    paise: Paise(paise),
                    credits,
                    paise_per_credit: 10,
                }),
                "{input}"
            );
        }
    }

    #[test]
    fn every_bad_amount_has_a_message() {
        let b = billing();
        for (input, contains) in [
            ("", "Enter the amount"),
            ("0", "more than zero"),
            ("-100", "negative"),
            ("abc", "digits"),
            ("1e5", "exponents"),
            ("100.555", "two digits"),
            ("99.99", "minimum top-up is ₹100"),
            ("500001", "maximum top-up is ₹5,00,000"),
            ("100.05", "steps of ₹0.10"),
            (&"9".repeat(60), "too long"),
        ] {
            let err = TopupAmount::parse(input, &b).expect_err(input);
            assert!(err.contains(contains), "{input}: {err}");
        }
    }

    #[test]
    fn the_rate_is_shown_per_rupee() {
        assert_eq!(credits_per_rupee(&billing()), "10");
        let odd = BillingSettings {
            paise_per_credit: 3,
            ..billing()
        };
        assert_eq!(credits_per_rupee(&odd), "33.33");
    }
}
