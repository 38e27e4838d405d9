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

use std::{
    net::{IpAddr, Ipv4Addr, SocketAddr},
    num::NonZeroU32,
    time::Duration,
};

use axum::{
    extract::{ConnectInfo, FromRequestParts},
    http::request::Parts,
};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use sea_orm::DbErr;

use crate::{
    configuration::{SecuritySettings, Settings},
    db::{Db, col, now_micros},
    error::AppError,
    state::AppState,
};

/// The client's address: the connection's, or the first address of the configured proxy header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIp(pub IpAddr);

impl ClientIp {
    pub fn of(parts: &Parts, settings: &Settings) -> ClientIp {
        let header = settings.server.client_ip_header.trim();
        if !header.is_empty()
            && let Some(ip) = parts
                .headers
                .get(header)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.split(',').next())
                .and_then(|v| v.trim().parse::<IpAddr>().ok())
        {
            return ClientIp(ip);
        }
        ClientIp(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0.ip()),
        )
    }
}

impl FromRequestParts<AppState> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        Ok(ClientIp::of(parts, &state.settings))
    }
}

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

/// Counts one log-in attempt for `email` from `ip`, for the account and address and for the
/// account alone; refuses when either is over its limit (without checking the password).
pub async fn log_in_attempt(
    db: &Db,
    settings: &SecuritySettings,
    email: &str,
    ip: IpAddr,
) -> Result<(), AppError> {
    let window = settings.attempt_window_secs as i64 * 1_000_000;
    let minutes = settings.attempt_window_secs.div_ceil(60);
    let pair = count_attempt(db, &format!("pair:{email}|{ip}"), window).await?;
    if pair > i64::from(settings.attempts_per_account_and_address) {
        return Err(AppError::TooManyRequests {
            message: format!(
                "Too many attempts to log in to this account from here. Wait {minutes} minutes and try again."
            ),
            retry_after: settings.attempt_window_secs,
        });
    }
    let account = count_attempt(db, &format!("account:{email}"), window).await?;
    if account > i64::from(settings.attempts_per_account) {
        return Err(AppError::TooManyRequests {
            message: format!(
                "Too many attempts to log in to this account. Wait {minutes} minutes and try again."
            ),
            retry_after: settings.attempt_window_secs,
        });
    }
    Ok(())
}

/// A successful log-in clears its (account, address) count.
pub async fn logged_in(db: &Db, email: &str, ip: IpAddr) -> Result<(), DbErr> {
    db.exec(
        "DELETE FROM web_auth_attempts WHERE key = ?",
        vec![format!("pair:{email}|{ip}").into()],
    )
    .await?;
    Ok(())
}

/// Adds one attempt to `key`'s window (a new window when the old one is over) and returns the
/// count, in one statement.
async fn count_attempt(db: &Db, key: &str, window_micros: i64) -> Result<i64, DbErr> {
    let now = now_micros();
    let expired = now - window_micros;
    let row = db
        .write_returning(
            "INSERT INTO web_auth_attempts (key, window_start, attempts) VALUES (?, ?, 1) \
             ON CONFLICT (key) DO UPDATE SET \
               attempts = CASE WHEN web_auth_attempts.window_start <= ? THEN 1 ELSE web_auth_attempts.attempts + 1 END, \
               window_start = CASE WHEN web_auth_attempts.window_start <= ? THEN ? ELSE web_auth_attempts.window_start END \
             RETURNING attempts",
            vec![
                key.into(),
                now.into(),
                expired.into(),
                expired.into(),
                now.into(),
            ],
        )
        .await?;
    match row.first() {
        Some(row) => col(row, "attempts"),
        None => Err(DbErr::Custom("the attempt was not counted".into())),
    }
}
