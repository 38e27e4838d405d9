//! One customer's visit to the hosted checkout, kept by the fake between its pages.

use razorpay::Paise;

use crate::{callbacks::CallbackFields, payment_details::Prefill};

/// One customer's visit to the checkout, from the merchant's form post to the result.
#[derive(Debug, Clone)]
pub(crate) struct CheckoutSession {
    pub id: String,
    pub order_id: String,
    pub amount: Paise,
    pub merchant: String,
    pub description: Option<String>,
    pub prefill: Prefill,
    pub callback_url: String,
    pub cancel_url: Option<String>,
    /// Card details waiting for their OTP.
    pub card: Option<CardDraft>,
    pub otp_failures: u32,
    /// The last attempt's result, shown again if the page is revisited.
    pub result: Option<Option<CallbackFields>>,
    /// A payment of this visit still waiting for its bank.
    pub pending_payment: Option<String>,
}

#[derive(Debug, Clone)]
pub(crate) struct CardDraft {
    pub(crate) number: String,
    pub(crate) expiry: String,
    pub(crate) cvv: String,
    pub(crate) name: String,
    pub(crate) last4: String,
}
