//! Ids as Razorpay makes them: a prefix, an underscore, 14 base62 characters.

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// A random number from the operating system (ids must differ; shares need spread).
fn next() -> u64 {
    // Only if the OS had no randomness to give: the clock still makes ids differ.
    getrandom::u64().unwrap_or_else(|_| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1)
    })
}

/// 14 base62 characters.
pub fn token() -> String {
    let mut out = String::with_capacity(14);
    let mut bits = next();
    for i in 0..14 {
        if i == 7 {
            bits = next();
        }
        out.push(BASE62[(bits % 62) as usize] as char);
        bits /= 62;
    }
    out
}

pub fn new_id(prefix: &str) -> String {
    format!("{prefix}_{}", token())
}

/// True for `<prefix>_` followed by 14 base62 characters.
pub fn is_valid(id: &str, prefix: &str) -> bool {
    id.strip_prefix(prefix)
        .and_then(|rest| rest.strip_prefix('_'))
        .is_some_and(|t| t.len() == 14 && t.bytes().all(|b| b.is_ascii_alphanumeric()))
}

/// A random number below `n`, for fault shares.
pub fn below(n: u64) -> u64 {
    if n == 0 { 0 } else { next() % n }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_have_razorpays_shape_and_differ() {
        let a = new_id("order");
        let b = new_id("order");
        assert!(is_valid(&a, "order"), "{a}");
        assert_ne!(a, b);
        assert_eq!(token().len(), 14);
        assert!(!is_valid("order_short", "order"));
        assert!(!is_valid("pay_29QQoUBi66xm2f", "order"));
    }
}
