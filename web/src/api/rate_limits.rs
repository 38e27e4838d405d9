//! The API's rate limits, with `governor` (GCRA; the check and the count are one atomic step):
//! per API key (`usage.rate_per_sec`, burst `usage.rate_burst`), and, before any database lookup,
//! per client address for keys this instance does not know. Every API answer carries
//! `RateLimit-Limit`, `RateLimit-Remaining` and `RateLimit-Reset` (the IETF draft's names) for the
//! limit that applied to it.

use std::{
    net::IpAddr,
    num::NonZeroU32,
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{
    extract::Request,
    http::{HeaderName, HeaderValue},
    middleware::Next,
    response::Response,
};
use governor::{
    Quota, RateLimiter,
    clock::{Clock, DefaultClock},
    middleware::StateInformationMiddleware,
    state::keyed::DefaultKeyedStateStore,
};

use crate::configuration::{SecuritySettings, UsageSettings};

type KeyedLimiter<K> =
    RateLimiter<K, DefaultKeyedStateStore<K>, DefaultClock, StateInformationMiddleware>;

/// Where a request stands with the limit that applied to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateState {
    pub limit: u32,
    pub remaining: u32,
    /// Seconds until the limit is full again.
    pub reset: u64,
}

pub struct ApiRateLimits {
    per_key: KeyedLimiter<i64>,
    per_key_quota: Quota,
    unknown_keys: KeyedLimiter<IpAddr>,
    unknown_keys_quota: Quota,
    clock: DefaultClock,
}

fn non_zero(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n.max(1)).unwrap_or(NonZeroU32::MIN)
}

impl ApiRateLimits {
    pub fn new(usage: &UsageSettings, security: &SecuritySettings) -> ApiRateLimits {
        let per_key_quota = Quota::per_second(non_zero(usage.rate_per_sec))
            .allow_burst(non_zero(usage.rate_burst.max(usage.rate_per_sec)));
        let unknown_keys_quota =
            Quota::per_minute(non_zero(security.unknown_api_keys_per_address_per_minute));
        ApiRateLimits {
            per_key: RateLimiter::keyed(per_key_quota)
                .with_middleware::<StateInformationMiddleware>(),
            per_key_quota,
            unknown_keys: RateLimiter::keyed(unknown_keys_quota)
                .with_middleware::<StateInformationMiddleware>(),
            unknown_keys_quota,
            clock: DefaultClock::default(),
        }
    }

    /// One request with a verified key.
    pub fn key(&self, key_id: i64) -> Result<RateState, (RateState, Duration)> {
        check(&self.per_key, &self.per_key_quota, &key_id, &self.clock)
    }

    /// One lookup of a key this instance does not know, from this address.
    pub fn unknown_key(&self, ip: IpAddr) -> Result<RateState, (RateState, Duration)> {
        check(
            &self.unknown_keys,
            &self.unknown_keys_quota,
            &ip,
            &self.clock,
        )
    }

    /// Forgets keys and addresses back to a full limit (the housekeeping task calls this).
    pub fn forget_idle(&self) {
        self.per_key.retain_recent();
        self.unknown_keys.retain_recent();
        self.per_key.shrink_to_fit();
        self.unknown_keys.shrink_to_fit();
    }
}

fn check<K: Clone + std::hash::Hash + Eq>(
    limiter: &KeyedLimiter<K>,
    quota: &Quota,
    key: &K,
    clock: &DefaultClock,
) -> Result<RateState, (RateState, Duration)> {
    let limit = quota.burst_size().get();
    let per_cell = quota.replenish_interval();
    match limiter.check_key(key) {
        Ok(snapshot) => {
            let remaining = snapshot.remaining_burst_capacity();
            Ok(RateState {
                limit,
                remaining,
                reset: (per_cell * (limit - remaining)).as_secs_f64().ceil() as u64,
            })
        }
        Err(not_until) => {
            let wait = not_until.wait_time_from(clock.now());
            Err((
                RateState {
                    limit,
                    remaining: 0,
                    reset: (per_cell * limit).as_secs_f64().ceil() as u64,
                },
                wait,
            ))
        }
    }
}

/// Where the API's extractor leaves the rate state of a request, for [`rate_limit_headers`].
#[derive(Clone, Default)]
pub struct RateSlot(Arc<Mutex<Option<RateState>>>);

impl RateSlot {
    pub fn set(&self, state: RateState) {
        if let Ok(mut slot) = self.0.lock() {
            *slot = Some(state);
        }
    }
}

/// Adds `RateLimit-*` headers to every answer under `/api/` whose limit was checked.
pub async fn rate_limit_headers(mut request: Request, next: Next) -> Response {
    let slot = RateSlot::default();
    request.extensions_mut().insert(slot.clone());
    let mut response = next.run(request).await;
    let state = slot.0.lock().ok().and_then(|s| *s);
    if let Some(state) = state {
        let headers = response.headers_mut();
        for (name, value) in [
            ("ratelimit-limit", state.limit as u64),
            ("ratelimit-remaining", state.remaining as u64),
            ("ratelimit-reset", state.reset),
        ] {
            headers.insert(HeaderName::from_static(name), HeaderValue::from(value));
        }
    }
    response
}
