//! What operators do to money: resolve what Needs attention, grant promotional credits, adjust
//! balances, and refund unused paid credits. Every action carries a written reason and is
//! recorded (`store::operator_actions`) in the transaction that does it, under a key that makes
//! it happen once: the form's own token (a double click), or the item it resolves (two
//! operators at once).

pub mod attention;
pub mod corrections;
pub mod flagged;
pub mod parked_emails;
pub mod refund_sending;
pub mod unused_credits;

/// Why an operator did something, as they wrote it: required, at most 500 characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reason(String);

impl Reason {
    pub fn parse(typed: &str) -> Result<Reason, String> {
        let reason = typed.trim();
        if reason.is_empty() {
            return Err("Write a reason: it is kept with the action.".into());
        }
        if reason.chars().count() > 500 {
            return Err("Keep the reason under 500 characters.".into());
        }
        if reason
            .chars()
            .any(|c| c.is_control() && c != '\n' && c != '\r')
        {
            return Err("The reason has characters that cannot be kept.".into());
        }
        Ok(Reason(reason.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What an operator's action came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ActionOutcome {
    /// Done now; the message says what happened.
    Done(String),
    /// Done before (a double click, or another operator): nothing more was done.
    AlreadyDone,
    /// Refused; nothing changed. The message says why, and what would work.
    Refused(String),
}

/// The key of an action started from a form: the form's one-time token.
pub fn form_action_key(token: &str) -> Option<String> {
    let valid = (16..=64).contains(&token.len()) && token.chars().all(|c| c.is_ascii_hexdigit());
    valid.then(|| format!("form:{token}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reason_is_required_and_kept_trimmed() {
        assert!(Reason::parse("  ").is_err());
        assert!(Reason::parse(&"x".repeat(501)).is_err());
        assert!(Reason::parse("a\u{0}b").is_err());
        assert_eq!(
            Reason::parse("  goodwill for outage  ").map(|r| r.as_str().to_string()),
            Ok("goodwill for outage".to_string())
        );
    }

    #[test]
    fn a_form_key_is_a_token_of_hex() {
        assert_eq!(
            form_action_key("0123456789abcdef").as_deref(),
            Some("form:0123456789abcdef")
        );
        assert_eq!(form_action_key("short"), None);
        assert_eq!(form_action_key("zzzzzzzzzzzzzzzzzz"), None);
    }
}
