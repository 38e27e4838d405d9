//! A typed client for the parts of Razorpay's API the Kalp Credits top-up needs.
//!
//! - [`wire`]: serde types for what Razorpay sends and accepts (tolerant where Razorpay is
//!   inconsistent: `notes` as `[]`, `error_code` as `""`, numbers where strings are documented).
//! - [`Client`]: reqwest over rustls, Basic auth, timeouts, and retries only where they are safe.
//! - [`signature`]: checkout and webhook signatures, verified in constant time.
//! - [`Paise`]: money as integer paise; rupee strings parse into it without floats.
//!
//! No database and no web framework here: the web app and fake-razorpay both build on it.

mod client;
mod error;
mod money;
mod retry;
mod secret;
pub mod signature;
pub mod wire;

pub use client::{Client, ClientConfig};
pub use error::{Error, Refusal};
pub use money::{AmountError, Paise};
pub use retry::RetryPolicy;
pub use secret::Secret;
pub use signature::{SignatureError, WebhookSecrets};
