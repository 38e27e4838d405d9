//! How the fake starts (keys, webhook target, merchant) and the faults it can inject, switchable
//! while running (`POST /_fake/faults`).

use std::time::Duration;

use razorpay::Secret;
use serde::{Deserialize, Serialize};

/// How the fake starts. The defaults match the web app's development configuration.
#[derive(Debug, Clone)]
pub struct FakeSettings {
    pub key_id: String,
    pub key_secret: Secret,
    pub webhook_url: Option<String>,
    pub webhook_secret: Secret,
    /// The first retry waits this long; each later one twice the one before.
    pub webhook_backoff: Duration,
    /// Attempts per delivery before giving up (Razorpay keeps trying for 24 hours).
    pub webhook_max_attempts: u32,
    pub account_id: String,
    /// The merchant name shown when checkout gets none.
    pub merchant_name: String,
}

pub const DEV_KEY_ID: &str = "rzp_test_KalpDevKey0001";
pub const DEV_KEY_SECRET: &str = "kalp_dev_key_secret_not_for_production";
pub const DEV_WEBHOOK_SECRET: &str = "kalp_dev_webhook_secret";

impl Default for FakeSettings {
    fn default() -> Self {
        FakeSettings {
            key_id: DEV_KEY_ID.into(),
            key_secret: Secret::new(DEV_KEY_SECRET),
            webhook_url: None,
            webhook_secret: Secret::new(DEV_WEBHOOK_SECRET),
            webhook_backoff: Duration::from_secs(2),
            webhook_max_attempts: 16,
            account_id: "acc_KalpFake000001".into(),
            merchant_name: "Kalp Studio".into(),
        }
    }
}

/// Failures to inject, switchable while running (`POST /_fake/faults`) and at start.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Faults {
    /// Extra deliveries of every webhook (same event id).
    pub webhook_duplicates: u32,
    /// Wait this long before the first delivery attempt.
    pub webhook_delay_ms: u64,
    /// Deliver a payment's events in reverse order (order.paid before payment.captured…).
    pub webhook_reorder: bool,
    /// Deliver webhooks before answering the browser (the callback comes after them).
    pub webhooks_before_callback: bool,
    /// The first N attempts of every delivery fail without reaching the receiver.
    pub webhook_fail_first: u32,
    /// Share (0–100) of `/v1` API calls answered with a 500.
    pub api_error_percent: u8,
    /// Share (0–100) of `/v1` API calls that hang for `api_timeout_ms` first.
    pub api_timeout_percent: u8,
    pub api_timeout_ms: u64,
    /// Successful payments are reported failed, then authorised later (late authorisation).
    pub late_authorization: bool,
    /// When late authorisation happens on its own; 0 waits for
    /// `POST /_fake/payments/{id}/authorize`.
    pub late_authorization_delay_ms: u64,
    /// The customer closes the tab: payments go through but the callback never comes.
    pub close_tab: bool,
    /// Payments stop at `authorized`; the fake never captures them itself.
    pub manual_capture: bool,
    /// An authorised payment nobody captured within this long is refunded, as Razorpay does
    /// after its capture window (0: never, within the fake's lifetime).
    pub capture_window_ms: u64,
    /// Payments stay `created` this long before the bank answers (UPI collect waiting for
    /// approval, a bank that has not answered); 0: answered at once.
    pub pending_ms: u64,
    /// What the bank says once `pending_ms` is over.
    pub pending_outcome: PendingOutcome,
    /// What becomes of refunds, which are always answered `pending` first.
    pub refund_outcome: RefundOutcome,
    /// How long a refund stays pending before `refund_outcome` (processed or failed).
    pub refund_delay_ms: u64,
    /// A failed attempt posts its `error[...]` fields to `callback_url`; when false the customer
    /// stays on the checkout, which offers to try again.
    pub failure_callback: bool,
}

/// The bank's answer to a payment left pending.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PendingOutcome {
    /// What the attempt would have given at once (success or the method's failure).
    #[default]
    Complete,
    /// No answer: the payment fails with `payment_timed_out`.
    Timeout,
}

/// What a refund becomes after `refund_delay_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefundOutcome {
    #[default]
    Processed,
    /// Stays pending until `POST /_fake/refunds/{id}/process`.
    Pending,
    /// Fails, with a `refund.failed` webhook.
    Failed,
}

impl Default for Faults {
    fn default() -> Self {
        Faults {
            webhook_duplicates: 0,
            webhook_delay_ms: 0,
            webhook_reorder: false,
            webhooks_before_callback: false,
            webhook_fail_first: 0,
            api_error_percent: 0,
            api_timeout_percent: 0,
            api_timeout_ms: 30_000,
            late_authorization: false,
            late_authorization_delay_ms: 0,
            close_tab: false,
            manual_capture: false,
            capture_window_ms: 0,
            pending_ms: 0,
            pending_outcome: PendingOutcome::Complete,
            refund_outcome: RefundOutcome::Processed,
            refund_delay_ms: 0,
            failure_callback: true,
        }
    }
}
