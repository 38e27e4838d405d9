//! An amount in words, in Indian numbering, as a voucher states it: "Rupees One Lakh Twenty
//! Thousand Only", "Rupees Ninety Nine and Fifty Paise Only".

const ONES: [&str; 20] = [
    "Zero",
    "One",
    "Two",
    "Three",
    "Four",
    "Five",
    "Six",
    "Seven",
    "Eight",
    "Nine",
    "Ten",
    "Eleven",
    "Twelve",
    "Thirteen",
    "Fourteen",
    "Fifteen",
    "Sixteen",
    "Seventeen",
    "Eighteen",
    "Nineteen",
];
const TENS: [&str; 10] = [
    "", "", "Twenty", "Thirty", "Forty", "Fifty", "Sixty", "Seventy", "Eighty", "Ninety",
];

/// Below one hundred.
fn small(n: u64) -> String {
    match n {
        0..=19 => ONES[n as usize].to_string(),
        _ if n.is_multiple_of(10) => TENS[(n / 10) as usize].to_string(),
        _ => format!("{} {}", TENS[(n / 10) as usize], ONES[(n % 10) as usize]),
    }
}

/// A whole number in Indian numbering (crore, lakh, thousand, hundred).
fn number(n: u64) -> String {
    if n == 0 {
        return "Zero".into();
    }
    let mut parts = Vec::new();
    let crores = n / 10_000_000;
    if crores > 0 {
        parts.push(format!("{} Crore", number(crores)));
    }
    let rest = n % 10_000_000;
    for (unit, size) in [("Lakh", 100_000), ("Thousand", 1_000), ("Hundred", 100)] {
        let count = (rest / size) % if size == 100 { 10 } else { 100 };
        if count > 0 {
            parts.push(format!("{} {unit}", small(count)));
        }
    }
    if !rest.is_multiple_of(100) {
        parts.push(small(rest % 100));
    }
    parts.join(" ")
}

/// `paise` in words.
pub fn rupees_in_words(paise: i64) -> String {
    let paise = paise.unsigned_abs();
    let (rupees, rest) = (paise / 100, paise % 100);
    match (rupees, rest) {
        (r, 0) => format!("Rupees {} Only", number(r)),
        (0, p) => format!("{} Paise Only", small(p)),
        (r, p) => format!("Rupees {} and {} Paise Only", number(r), small(p)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_are_written_in_indian_numbering() {
        for (paise, words) in [
            (12_000_000, "Rupees One Lakh Twenty Thousand Only"),
            (10_000, "Rupees One Hundred Only"),
            (9_950, "Rupees Ninety Nine and Fifty Paise Only"),
            (50_000_000, "Rupees Five Lakh Only"),
            (
                123_456_789,
                "Rupees Twelve Lakh Thirty Four Thousand Five Hundred Sixty Seven and Eighty Nine Paise Only",
            ),
            (1_000_000_000, "Rupees One Crore Only"),
            (25, "Twenty Five Paise Only"),
            (0, "Rupees Zero Only"),
            (10_100, "Rupees One Hundred One Only"),
        ] {
            assert_eq!(rupees_in_words(paise), words, "{paise}");
        }
    }
}
