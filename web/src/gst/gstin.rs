//! A GSTIN, parsed once: 15 characters, a state code, a PAN, an entity number, `Z`, and a
//! check character (base-36, weights 1 and 2 alternating, as the GST network computes it).

use std::fmt;

const ALPHABET: &[u8; 36] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";

/// A valid GSTIN (upper case).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gstin(String);

impl Gstin {
    /// Reads a GSTIN as typed (spaces around it and lower case are forgiven); every refusal is a
    /// sentence for the person who typed it.
    pub fn parse(typed: &str) -> Result<Gstin, String> {
        let gstin = typed.trim().to_ascii_uppercase();
        if gstin.len() != 15 || !gstin.bytes().all(|b| ALPHABET.contains(&b)) {
            return Err("A GSTIN is 15 letters and digits, like 27AAPFU0939F1ZV.".to_string());
        }
        let bytes = gstin.as_bytes();
        let state: u32 = gstin[..2]
            .parse()
            .map_err(|_| "A GSTIN starts with the two digits of a state code.".to_string())?;
        if state_name(state).is_none() {
            return Err(format!("{state:02} is not a GST state code."));
        }
        let pan_ok = bytes[2..7].iter().all(u8::is_ascii_uppercase)
            && bytes[7..11].iter().all(u8::is_ascii_digit)
            && bytes[11].is_ascii_uppercase();
        if !pan_ok {
            return Err(
                "Characters 3 to 12 of a GSTIN are a PAN: five letters, four digits, a letter."
                    .to_string(),
            );
        }
        if bytes[12] == b'0' {
            return Err("The 13th character of a GSTIN is 1–9 or a letter.".to_string());
        }
        if bytes[13] != b'Z' {
            return Err("The 14th character of a GSTIN is Z.".to_string());
        }
        if check_character(&bytes[..14]) != Some(bytes[14]) {
            return Err(
                "This GSTIN's last character does not match the rest: check it for a typo."
                    .to_string(),
            );
        }
        Ok(Gstin(gstin))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The state code: the place of supply of a registered customer.
    pub fn state_code(&self) -> u32 {
        self.0[..2].parse().unwrap_or(0)
    }
}

impl fmt::Display for Gstin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The check character of the first 14 characters.
fn check_character(first: &[u8]) -> Option<u8> {
    let mut sum = 0;
    for (i, c) in first.iter().enumerate() {
        let value = ALPHABET.iter().position(|a| a == c)?;
        let product = value * if i % 2 == 0 { 1 } else { 2 };
        sum += product / 36 + product % 36;
    }
    Some(ALPHABET[(36 - sum % 36) % 36])
}

/// GST state and union-territory codes.
pub fn state_name(code: u32) -> Option<&'static str> {
    Some(match code {
        1 => "Jammu and Kashmir",
        2 => "Himachal Pradesh",
        3 => "Punjab",
        4 => "Chandigarh",
        5 => "Uttarakhand",
        6 => "Haryana",
        7 => "Delhi",
        8 => "Rajasthan",
        9 => "Uttar Pradesh",
        10 => "Bihar",
        11 => "Sikkim",
        12 => "Arunachal Pradesh",
        13 => "Nagaland",
        14 => "Manipur",
        15 => "Mizoram",
        16 => "Tripura",
        17 => "Meghalaya",
        18 => "Assam",
        19 => "West Bengal",
        20 => "Jharkhand",
        21 => "Odisha",
        22 => "Chhattisgarh",
        23 => "Madhya Pradesh",
        24 => "Gujarat",
        26 => "Dadra and Nagar Haveli and Daman and Diu",
        27 => "Maharashtra",
        28 => "Andhra Pradesh (before 2014)",
        29 => "Karnataka",
        30 => "Goa",
        31 => "Lakshadweep",
        32 => "Kerala",
        33 => "Tamil Nadu",
        34 => "Puducherry",
        35 => "Andaman and Nicobar Islands",
        36 => "Telangana",
        37 => "Andhra Pradesh",
        38 => "Ladakh",
        97 => "Other Territory",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two published GSTINs check the algorithm; the third was made with it.
    #[test]
    fn good_gstins_are_read_with_their_state() {
        for (typed, state) in [
            ("27AAPFU0939F1ZV", 27),
            (" 29aagcb7383j1z4 ", 29),
            ("07AAACH7409R1Z3", 7),
        ] {
            let gstin = Gstin::parse(typed).unwrap_or_else(|e| panic!("{typed}: {e}"));
            assert_eq!(gstin.state_code(), state);
            assert_eq!(gstin.as_str(), typed.trim().to_ascii_uppercase());
        }
    }

    #[test]
    fn bad_gstins_are_refused_with_the_reason() {
        for (typed, says) in [
            ("27AAPFU0939F1ZW", "does not match"),
            ("27AAPFU0939F1ZA", "does not match"),
            ("40AAPFU0939F1ZV", "not a GST state code"),
            ("99AAPFU0939F1ZV", "not a GST state code"),
            ("27AAPFU0939F1Z", "15 letters and digits"),
            ("27AAPFU-939F1ZV", "15 letters and digits"),
            ("27AAPF10939F1ZV", "PAN"),
            ("27AAPFU0939F1YV", "14th character"),
            ("", "15 letters and digits"),
        ] {
            let refused = Gstin::parse(typed).expect_err(typed);
            assert!(refused.contains(says), "{typed}: {refused}");
        }
    }
}
