//! Accounts: an email address parsed once, and a new account with its wallet.

use crate::{
    passwords::{HashingError, PasswordHashing},
    services::{ServiceError, Services},
    store::users,
};

/// A plausible email address: trimmed, lower-cased, one `@`, a dot in the domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailAddress(String);

impl EmailAddress {
    /// Every refusal is a sentence for the person who typed it.
    pub fn parse(raw: &str) -> Result<EmailAddress, &'static str> {
        let email = raw.trim().to_lowercase();
        if email.is_empty() {
            return Err("Enter your email address.");
        }
        let valid = email.len() <= 254
            && !email.chars().any(|c| c.is_whitespace() || c.is_control())
            && email.split('@').count() == 2
            && email.split_once('@').is_some_and(|(user, domain)| {
                !user.is_empty()
                    && domain.contains('.')
                    && !domain.starts_with('.')
                    && !domain.ends_with('.')
            });
        if valid {
            Ok(EmailAddress(email))
        } else {
            Err("Enter an email address like name@example.com.")
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Creating an account failed.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error(transparent)]
    Hashing(#[from] HashingError),
    #[error(transparent)]
    Service(#[from] ServiceError),
}

/// Creates an account with its wallet; `None` when the email is taken.
pub async fn create_account(
    services: &Services,
    passwords: &PasswordHashing,
    email: &EmailAddress,
    password: &str,
) -> Result<Option<i64>, AccountError> {
    let hash = passwords.hash(password).await?;
    // The wallet is keyed by email (stable and unique), so a retried sign-up reuses it.
    let wallet = services
        .ledger
        .open_wallet(&format!("user:{}", email.as_str()))
        .await
        .map_err(ServiceError::from)?;
    let (email, hash) = (email.as_str(), hash.as_str());
    Ok(services
        .ledger
        .transact(|tx| Box::pin(async move { users::create(tx, email, hash, wallet).await }))
        .await
        .map_err(ServiceError::from)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_normalised_and_checked() {
        assert_eq!(
            EmailAddress::parse("  Asha@Example.COM ").map(|e| e.as_str().to_string()),
            Ok("asha@example.com".into())
        );
        for bad in [
            "",
            "asha",
            "asha@",
            "@example.com",
            "a@b",
            "a b@example.com",
            "a@@example.com",
            "a@example.",
        ] {
            assert!(EmailAddress::parse(bad).is_err(), "{bad}");
        }
    }
}
