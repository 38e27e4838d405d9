//! API keys verified in the last few seconds (by hash), so a busy key is not looked up on every
//! request. Revoking a key forgets it here at once; another instance of the app notices within
//! `ttl`. Only hits of verified keys are kept: an unknown key is looked up every time.

use std::{collections::HashMap, sync::Mutex, time::Instant};

/// The account an API key belongs to.
#[derive(Debug, Clone)]
pub struct ApiCaller {
    pub user_id: i64,
    pub key_id: i64,
    pub email: String,
    pub wallet: ledger::AccountId,
}

pub struct KeyCache {
    ttl: std::time::Duration,
    entries: Mutex<HashMap<String, (ApiCaller, Instant)>>,
}

/// Beyond this many cached keys, expired entries are dropped (and all, if none had expired).
const KEY_CACHE_MAX: usize = 10_000;

impl KeyCache {
    pub fn new(ttl: std::time::Duration) -> KeyCache {
        KeyCache {
            ttl,
            entries: Mutex::new(HashMap::new()),
        }
    }

    pub fn get(&self, hash: &str) -> Option<ApiCaller> {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries
            .get(hash)
            .filter(|(_, at)| at.elapsed() < self.ttl)
            .map(|(caller, _)| caller.clone())
    }

    pub fn put(&self, hash: String, caller: ApiCaller) {
        if self.ttl.is_zero() {
            return;
        }
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= KEY_CACHE_MAX {
            entries.retain(|_, (_, at)| at.elapsed() < self.ttl);
            if entries.len() >= KEY_CACHE_MAX {
                entries.clear();
            }
        }
        entries.insert(hash, (caller, Instant::now()));
    }

    /// Forgets a key (when it is revoked).
    pub fn forget(&self, key_id: i64) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries.retain(|_, (caller, _)| caller.key_id != key_id);
    }
}
