//! The tax inside an amount paid. What a customer pays for credits includes GST: the taxable
//! value and the tax are derived from it, in whole paise, so that the parts always add up to
//! the amount exactly. Within the seller's state the tax is CGST and SGST at half the rate each;
//! to another state it is IGST.

/// A GST rate in basis points (18 % is 1,800).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GstRate(pub i64);

/// Where the supply goes, relative to the seller's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Supply {
    IntraState,
    InterState,
}

/// An amount paid, split into its taxable value and its taxes (paise).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TaxSplit {
    pub taxable: i64,
    pub cgst: i64,
    pub sgst: i64,
    pub igst: i64,
}

impl TaxSplit {
    /// Splits `paid` paise (tax included) at `rate`. The taxable value is rounded to the
    /// nearest paisa (half up); the tax is the rest, so nothing is lost; CGST takes the odd
    /// paisa's lower half and SGST the rest.
    pub fn of(paid: i64, rate: GstRate, supply: Supply) -> TaxSplit {
        let paid = paid.max(0);
        let denominator = 10_000 + rate.0.max(0);
        // Round half up in integers: (2 · paid · 10,000 + denominator) / (2 · denominator).
        let taxable = ((2 * i128::from(paid) * 10_000 + i128::from(denominator))
            / (2 * i128::from(denominator))) as i64;
        let tax = paid - taxable;
        match supply {
            Supply::InterState => TaxSplit {
                taxable,
                cgst: 0,
                sgst: 0,
                igst: tax,
            },
            Supply::IntraState => {
                let cgst = tax / 2;
                TaxSplit {
                    taxable,
                    cgst,
                    sgst: tax - cgst,
                    igst: 0,
                }
            }
        }
    }

    pub fn total(&self) -> i64 {
        self.taxable + self.cgst + self.sgst + self.igst
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EIGHTEEN: GstRate = GstRate(1_800);

    #[test]
    fn a_round_amount_splits_as_an_accountant_would() {
        // ₹118 at 18 %: ₹100 taxable, ₹18 tax.
        assert_eq!(
            TaxSplit::of(11_800, EIGHTEEN, Supply::InterState),
            TaxSplit {
                taxable: 10_000,
                cgst: 0,
                sgst: 0,
                igst: 1_800
            }
        );
        assert_eq!(
            TaxSplit::of(11_800, EIGHTEEN, Supply::IntraState),
            TaxSplit {
                taxable: 10_000,
                cgst: 900,
                sgst: 900,
                igst: 0
            }
        );
        // ₹100: ₹84.75 taxable (84.7457… rounded), ₹15.25 tax, 7.62 + 7.63.
        assert_eq!(
            TaxSplit::of(10_000, EIGHTEEN, Supply::IntraState),
            TaxSplit {
                taxable: 8_475,
                cgst: 762,
                sgst: 763,
                igst: 0
            }
        );
    }

    #[test]
    fn the_parts_always_add_up_to_the_amount() {
        // ₹100 to ₹5,00,000 with awkward paise, both kinds of supply: a sweep of every paisa in
        // the first rupees, then a stride through the rest.
        let amounts = (10_000..12_000).chain((12_000..=50_000_000).step_by(9_973));
        for paid in amounts {
            for supply in [Supply::IntraState, Supply::InterState] {
                let split = TaxSplit::of(paid, EIGHTEEN, supply);
                assert_eq!(split.total(), paid, "{paid} {supply:?}");
                assert!(split.taxable > 0 && split.cgst >= 0 && split.sgst >= split.cgst);
                assert!((split.sgst - split.cgst) <= 1);
                // The tax is 18 % of the taxable value to within half a paisa's rounding.
                let tax = split.cgst + split.sgst + split.igst;
                assert!(
                    (tax * 10_000 - split.taxable * 1_800).abs() <= 10_000,
                    "{paid}"
                );
            }
        }
    }

    proptest::proptest! {
        /// Any amount from ₹100 to ₹5,00,000, any rate up to 28 %, either supply: the parts add
        /// up to the amount exactly, and the tax is the rate of the taxable value to within a
        /// paisa.
        #[test]
        fn any_amount_splits_into_parts_that_add_up(
            paid in 10_000_i64..=50_000_000,
            rate in 0_i64..=2_800,
            inter_state in proptest::bool::ANY,
        ) {
            let supply = if inter_state { Supply::InterState } else { Supply::IntraState };
            let split = TaxSplit::of(paid, GstRate(rate), supply);
            proptest::prop_assert_eq!(split.total(), paid);
            proptest::prop_assert!(split.taxable > 0);
            let tax = split.cgst + split.sgst + split.igst;
            proptest::prop_assert!((tax * 10_000 - split.taxable * rate).abs() <= 10_000);
            if inter_state {
                proptest::prop_assert_eq!((split.cgst, split.sgst), (0, 0));
            } else {
                proptest::prop_assert_eq!(split.igst, 0);
                proptest::prop_assert!((split.sgst - split.cgst).abs() <= 1);
            }
        }
    }
}
