//! A customer's billing profile as typed on Billing, parsed once: legal name, address, state
//! (the place of supply) and an optional GSTIN, whose state must be the one chosen.

use crate::gst::gstin::{Gstin, state_name};

/// What the form said, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileInput {
    pub legal_name: String,
    pub address: String,
    pub state_code: u32,
    pub gstin: Option<Gstin>,
}

impl ProfileInput {
    /// Every refusal is a sentence for the person who typed it.
    pub fn parse(
        legal_name: &str,
        address: &str,
        state: &str,
        gstin: &str,
    ) -> Result<ProfileInput, String> {
        let legal_name = legal_name.trim();
        if legal_name.is_empty() {
            return Err("Enter the legal name to print on your GST documents.".into());
        }
        if legal_name.chars().count() > 200 {
            return Err("Keep the legal name under 200 characters.".into());
        }
        let address = address.trim();
        if address.is_empty() {
            return Err("Enter the billing address.".into());
        }
        if address.chars().count() > 500 {
            return Err("Keep the address under 500 characters.".into());
        }
        if legal_name
            .chars()
            .chain(address.chars())
            .any(|c| c.is_control() && c != '\n' && c != '\r')
        {
            return Err("The name or address has characters that cannot be printed.".into());
        }
        let state_code: u32 = state
            .trim()
            .parse()
            .ok()
            .filter(|code| state_name(*code).is_some())
            .ok_or("Choose your state: it is the place of supply.")?;
        let gstin = match gstin.trim() {
            "" => None,
            typed => Some(Gstin::parse(typed)?),
        };
        if let Some(g) = &gstin
            && g.state_code() != state_code
        {
            return Err(format!(
                "This GSTIN is registered in {} ({:02}); choose that state, or the GSTIN of your registration in {}.",
                state_name(g.state_code()).unwrap_or("another state"),
                g.state_code(),
                state_name(state_code).unwrap_or("the state you chose")
            ));
        }
        Ok(ProfileInput {
            legal_name: legal_name.to_string(),
            address: address.to_string(),
            state_code,
            gstin,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_profile_is_checked_field_by_field() {
        let good = ProfileInput::parse(
            " Asha Traders ",
            "12 MG Road, Bengaluru",
            "29",
            "29AAGCB7383J1Z4",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(good.legal_name, "Asha Traders");
        assert_eq!(good.state_code, 29);
        assert!(
            ProfileInput::parse("Asha", "Somewhere", "27", "").is_ok_and(|p| p.gstin.is_none())
        );
        for (name, address, state, gstin, says) in [
            ("", "x", "27", "", "legal name"),
            ("Asha", "", "27", "", "address"),
            ("Asha", "x", "99", "", "Choose your state"),
            (
                "Asha",
                "x",
                "27",
                "29AAGCB7383J1Z4",
                "registered in Karnataka (29)",
            ),
            ("Asha", "x", "29", "29AAGCB7383J1Z5", "does not match"),
        ] {
            let refused = ProfileInput::parse(name, address, state, gstin).expect_err(says);
            assert!(refused.contains(says), "{says}: {refused}");
        }
    }
}
