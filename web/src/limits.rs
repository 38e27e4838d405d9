//! Limits on what one client, or one account's guessers, may ask of us.
//!
//! - Per client address, in memory (`governor`, GCRA: the check and the count are one atomic
//!   step): password requests (log-in, sign-up) and requests with API keys we do not know. These
//!   guard this instance's CPU and database; with N instances an address gets N times the rate,
//!   which is fine for that purpose (each instance's hashing is bounded on its own).
//! - Per account, in the database (one `INSERT … ON CONFLICT DO UPDATE … RETURNING` statement,
//!   atomic on both databases and shared by every instance): log-in attempts for (account,
//!   address), strictly, and for the account alone, loosely, so that a stranger guessing from
//!   elsewhere does not lock the owner out. Attempts are counted before the password is checked,
//!   so forty guesses at once get five checks, not forty.

use std::{net::IpAddr, num::NonZeroU32, time::Duration};

use crate::{
    configuration::SecuritySettings,
    store::{StoreResult, auth_attempts, now_micros},
};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

/// The in-memory limits per address.
pub struct AddressLimits {
    passwords: DefaultKeyedRateLimiter<IpAddr>,
}

fn per_minute(n: u32) -> Quota {
    Quota::per_minute(NonZeroU32::new(n.max(1)).unwrap_or(NonZeroU32::MIN))
}

impl AddressLimits {
    pub fn new(settings: &SecuritySettings) -> AddressLimits {
        AddressLimits {
            passwords: RateLimiter::keyed(per_minute(
                settings.password_requests_per_address_per_minute,
            )),
        }
    }

    /// One password request (log-in, sign-up) from this address; the wait when over the limit.
    pub fn password_request(&self, ip: IpAddr) -> Result<(), Duration> {
        check(&self.passwords, ip)
    }

    /// Forgets addresses whose limits are back to full (the housekeeping task calls this), so
    /// memory stays flat however many addresses come and go.
    pub fn forget_idle(&self) {
        self.passwords.retain_recent();
        self.passwords.shrink_to_fit();
    }
}

fn check(limiter: &DefaultKeyedRateLimiter<IpAddr>, ip: IpAddr) -> Result<(), Duration> {
    limiter.check_key(&ip).map_err(|not_until| {
        not_until
            .wait_time_from(governor::clock::Clock::now(
                &governor::clock::DefaultClock::default(),
            ))
            .max(Duration::from_secs(1))
    })
}

/// A log-in refused before its password was checked, and when to try again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogInRefused {
    pub message: String,
    pub retry_after_secs: u64,
}

/// Counts one log-in attempt for `email` from `ip`, for the account and address and for the
/// account alone; refuses when either is over its limit (without checking the password).
pub async fn log_in_attempt(
    ledger: &ledger::Ledger,
    settings: &SecuritySettings,
    email: &str,
    ip: IpAddr,
) -> StoreResult<Result<(), LogInRefused>> {
    let window = settings.attempt_window_secs as i64 * 1_000_000;
    let minutes = settings.attempt_window_secs.div_ceil(60);
    let (pair_key, account_key) = (pair_key(email, ip), format!("account:{email}"));
    let (pair_limit, account_limit) = (
        i64::from(settings.attempts_per_account_and_address),
        i64::from(settings.attempts_per_account),
    );
    // Two counts, each one statement that commits by itself (no transaction needed around
    // them: each is atomic, and the second only counts once the first allowed it).
    let count = |key: String| async move {
        let (key, now) = (&key, now_micros());
        ledger
            .autocommit(|writer| {
                Box::pin(async move { auth_attempts::count(writer, key, now, window).await })
            })
            .await
    };
    let refused = if count(pair_key).await? > pair_limit {
        Some("Too many attempts to log in to this account from here.")
    } else if count(account_key).await? > account_limit {
        Some("Too many attempts to log in to this account.")
    } else {
        None
    };
    Ok(match refused {
        Some(what) => Err(LogInRefused {
            message: format!("{what} Wait {minutes} minutes and try again."),
            retry_after_secs: settings.attempt_window_secs,
        }),
        None => Ok(()),
    })
}

fn pair_key(email: &str, ip: IpAddr) -> String {
    format!("pair:{email}|{ip}")
}

/// A successful log-in clears its (account, address) count.
pub async fn logged_in(ledger: &ledger::Ledger, email: &str, ip: IpAddr) -> StoreResult<()> {
    let key = &pair_key(email, ip);
    ledger
        .autocommit(|writer| Box::pin(async move { auth_attempts::clear(writer, key).await }))
        .await
}
