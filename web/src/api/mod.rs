//! The usage API for Kalp Studio's sending services: `Authorization: Bearer <key>`, JSON in and
//! out, one error shape with a stable `code` (`error::ApiError`).
//!
//! Imports go downward: the handlers (`account`, `charges`, `reservations`) use `caller`,
//! `requests`, `error` and `pricing`; `charges` commits through `batcher`, and the benchmark's
//! `durable_baseline` (served by `benchmark`) through the same `crate::group_commit` with a
//! batch of its own. None writes SQL.

pub mod account;
pub mod batcher;
pub mod benchmark;
pub mod caller;
pub mod charges;
pub mod durable_baseline;
pub mod error;
pub mod key_cache;
pub mod pricing;
pub mod rate_limits;
pub mod requests;
pub mod reservations;
