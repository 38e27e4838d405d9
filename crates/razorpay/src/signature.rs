//! Razorpay's signatures: HMAC-SHA256, lowercase hex, compared in constant time.
//!
//! - Checkout: `hex(HMAC(key_secret, order_id + "|" + payment_id))`, with the order id *we*
//!   stored, never the one the browser sent back.
//! - Webhooks: `hex(HMAC(webhook_secret, raw body bytes))`: the exact bytes received, never
//!   re-serialised JSON.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::secret::Secret;

type HmacSha256 = Hmac<Sha256>;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the signature is missing")]
    Missing,
    #[error("the signature is not 64 hexadecimal characters")]
    Malformed,
    #[error("the signature does not match")]
    Mismatch,
}

fn mac(key: &Secret, parts: &[&[u8]]) -> HmacSha256 {
    // HMAC takes keys of any length, so this cannot fail; an empty key still yields a MAC that
    // no real signature matches.
    let mut mac = match HmacSha256::new_from_slice(key.expose().as_bytes()) {
        Ok(mac) => mac,
        Err(_) => unreachable_key(),
    };
    for part in parts {
        mac.update(part);
    }
    mac
}

#[cold]
fn unreachable_key() -> HmacSha256 {
    // HMAC accepts every key length; keep a total function without panicking.
    let mut mac = <HmacSha256 as KeyInit>::new(&Default::default());
    mac.update(b"\0invalid key\0");
    mac
}

/// Decodes 64 hex characters (either case) into 32 bytes; anything else is malformed.
fn from_hex(text: &str) -> Result<[u8; 32], SignatureError> {
    let text = text.trim();
    if text.is_empty() {
        return Err(SignatureError::Missing);
    }
    let mut out = [0u8; 32];
    // The `hex` crate refuses any length but 64 here, and any character that is not hex.
    hex::decode_to_slice(text, &mut out).map_err(|_| SignatureError::Malformed)?;
    Ok(out)
}

fn verify(mac: HmacSha256, signature: &str) -> Result<(), SignatureError> {
    let expected = from_hex(signature)?;
    mac.verify_slice(&expected)
        .map_err(|_| SignatureError::Mismatch)
}

/// The signature Checkout gives the browser for a successful payment.
pub fn payment_signature(order_id: &str, payment_id: &str, key_secret: &Secret) -> String {
    let mac = mac(
        key_secret,
        &[order_id.as_bytes(), b"|", payment_id.as_bytes()],
    );
    hex::encode(mac.finalize().into_bytes())
}

/// Checks a checkout callback. `order_id` must be the one stored with the top-up.
pub fn verify_payment_signature(
    order_id: &str,
    payment_id: &str,
    signature: &str,
    key_secret: &Secret,
) -> Result<(), SignatureError> {
    verify(
        mac(
            key_secret,
            &[order_id.as_bytes(), b"|", payment_id.as_bytes()],
        ),
        signature,
    )
}

/// The `X-Razorpay-Signature` of a webhook body.
pub fn webhook_signature(body: &[u8], webhook_secret: &Secret) -> String {
    hex::encode(mac(webhook_secret, &[body]).finalize().into_bytes())
}

/// The webhook secret, and the one before it while a rotation is under way (Razorpay keeps
/// signing retries of older events with the old secret).
#[derive(Debug, Clone)]
pub struct WebhookSecrets {
    pub current: Secret,
    pub previous: Option<Secret>,
}

/// Which secret a webhook was signed with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignedWith {
    Current,
    Previous,
}

/// Checks `X-Razorpay-Signature` over the exact bytes received.
pub fn verify_webhook_signature(
    body: &[u8],
    signature: &str,
    secrets: &WebhookSecrets,
) -> Result<SignedWith, SignatureError> {
    match verify(mac(&secrets.current, &[body]), signature) {
        Ok(()) => Ok(SignedWith::Current),
        Err(SignatureError::Mismatch) => match &secrets.previous {
            Some(previous) if !previous.is_empty() => {
                verify(mac(previous, &[body]), signature).map(|()| SignedWith::Previous)
            }
            _ => Err(SignatureError::Mismatch),
        },
        Err(other) => Err(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn published_checkout_vectors() {
        // razorpay-python's test, and the example in Razorpay's docs.
        assert_eq!(
            payment_signature(
                "fake_order_id",
                "fake_payment_id",
                &Secret::new("key_secret")
            ),
            "b2335e3b0801106b84a7faff035df56ecffde06918c9ddd1f0fafbb37a51cc89"
        );
        let secret = Secret::new("EnLs21M47BllR3X8PSFtjtbd");
        let signature = "0d4e745a1838664ad6c9c9902212a32d627d68e917290b0ad5f08ff4561bc50f";
        assert_eq!(
            verify_payment_signature(
                "order_IEIaMR65cu6nz3",
                "pay_IH4NVgf4Dreq1l",
                signature,
                &secret
            ),
            Ok(())
        );
        // Uppercase hex is the same signature.
        assert_eq!(
            verify_payment_signature(
                "order_IEIaMR65cu6nz3",
                "pay_IH4NVgf4Dreq1l",
                &signature.to_uppercase(),
                &secret
            ),
            Ok(())
        );
        // The classic bug: payment id first.
        assert_eq!(
            verify_payment_signature(
                "pay_IH4NVgf4Dreq1l",
                "order_IEIaMR65cu6nz3",
                signature,
                &secret
            ),
            Err(SignatureError::Mismatch)
        );
        // The subscription vector signs another message: it must not verify as a payment.
        let subscription = "601f383334975c714c91a7d97dd723eb56520318355863dcf3821c0d07a17693";
        assert_eq!(
            verify_payment_signature(
                "order_IEIaMR65cu6nz3",
                "pay_IH4NVgf4Dreq1l",
                subscription,
                &secret
            ),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn malformed_signatures_are_invalid_not_panics() {
        let secret = Secret::new("s");
        for (bad, error) in [
            ("", SignatureError::Missing),
            ("   ", SignatureError::Missing),
            ("abc", SignatureError::Malformed),
            (&"z".repeat(64), SignatureError::Malformed),
            (&"é".repeat(32), SignatureError::Malformed),
            (&"0".repeat(66), SignatureError::Malformed),
            (&"0".repeat(64), SignatureError::Mismatch),
        ] {
            assert_eq!(
                verify_payment_signature("o", "p", bad, &secret),
                Err(error),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn webhooks_verify_with_the_current_or_previous_secret() {
        let body = br#"{"event":"payment.captured"}"#;
        let old = Secret::new("old-secret");
        let new = Secret::new("new-secret");
        let signed_old = webhook_signature(body, &old);
        let secrets = WebhookSecrets {
            current: new.clone(),
            previous: Some(old),
        };
        assert_eq!(
            verify_webhook_signature(body, &signed_old, &secrets),
            Ok(SignedWith::Previous)
        );
        let signed_new = webhook_signature(body, &new);
        assert_eq!(
            verify_webhook_signature(body, &signed_new, &secrets),
            Ok(SignedWith::Current)
        );
        let only_new = WebhookSecrets {
            current: new,
            previous: None,
        };
        assert_eq!(
            verify_webhook_signature(body, &signed_old, &only_new),
            Err(SignatureError::Mismatch)
        );
        // One byte more and it no longer matches.
        assert_eq!(
            verify_webhook_signature(br#"{"event":"payment.captured"} "#, &signed_new, &secrets),
            Err(SignatureError::Mismatch)
        );
    }

    proptest::proptest! {
        #[test]
        fn any_signature_text_is_answered_without_panic(sig in "\\PC{0,80}") {
            let secrets = WebhookSecrets { current: Secret::new("k"), previous: None };
            let _ = verify_webhook_signature(b"{}", &sig, &secrets);
        }
    }
}
