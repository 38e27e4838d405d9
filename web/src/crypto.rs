//! Random tokens and hashes: session tokens, CSRF tokens and API keys are 32 random bytes from
//! the operating system; only their SHA-256 is ever stored.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The operating system had no randomness to give.
#[derive(Debug, thiserror::Error)]
#[error("no randomness: {0}")]
pub struct NoRandomness(String);

/// 32 random bytes as hex, from the operating system's CSPRNG.
pub fn random_token() -> Result<String, NoRandomness> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| NoRandomness(e.to_string()))?;
    Ok(hex(&bytes))
}

pub fn sha256_hex(value: &str) -> String {
    hex(&Sha256::digest(value.as_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    // The `hex` crate, into a buffer of the right size: a string per byte (`format!`), and then
    // `hex::encode`'s char by char, were a visible share of each API request's CPU, which hashes
    // its key here (perf: docs/benchmarks.md).
    let mut digits = vec![0u8; bytes.len() * 2];
    match hex::encode_to_slice(bytes, &mut digits) {
        Ok(()) => String::from_utf8(digits).unwrap_or_else(|_| hex::encode(bytes)),
        Err(_) => hex::encode(bytes),
    }
}

/// Compares secrets without revealing, through timing, how much of them matched.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_64_hex_characters_and_differ() {
        let (a, b) = (random_token(), random_token());
        let (Ok(a), Ok(b)) = (a, b) else {
            panic!("the operating system gave no randomness");
        };
        assert_eq!(a.len(), 64);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }

    #[test]
    fn a_hash_is_sha256_in_lowercase_hex() {
        // FIPS 180-2's example: stored key hashes must not change with the encoder.
        assert_eq!(
            sha256_hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn secrets_compare_equal_only_when_equal() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
    }
}
