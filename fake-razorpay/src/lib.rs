//! fake-razorpay: a server that behaves like Razorpay for everything Kalp Credits touches — the
//! REST API under `/v1`, the hosted checkout with UPI, card + OTP, netbanking and wallet, signed
//! webhooks — plus a control API under `/_fake/` to drive payments and switch faults on.
//!
//! Run it with `cargo run -p fake-razorpay`, or start it inside a test with [`spawn`].

mod api;
mod callbacks;
mod checkout;
mod control;
mod deliveries;
mod errors;
mod fake;
mod gateway;
mod ids;
pub mod methods;
mod payment_details;
mod server;
mod sessions;
mod settings;
mod validation;
mod webhooks;

pub use callbacks::CallbackFields;
pub use deliveries::{AttemptLog, Delivery, DeliveryStatus};
pub use errors::GatewayError;
pub use fake::{Fake, PayOverrides, PayResult};
pub use server::{RunningFake, router, serve_on, spawn};
pub use settings::{
    DEV_KEY_ID, DEV_KEY_SECRET, DEV_WEBHOOK_SECRET, FakeSettings, Faults, PendingOutcome,
    RefundOutcome,
};
