//! Request bodies. Each serialises only the fields Razorpay accepts; an absent option is left out
//! rather than sent as null, because Razorpay rejects fields it does not expect.

use serde::Serialize;

use super::notes::Notes;
use crate::money::Paise;

/// `POST /v1/orders`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CreateOrder {
    pub amount: Paise,
    pub currency: String,
    /// Our own reference (at most 40 characters).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub receipt: Option<String>,
    #[serde(skip_serializing_if = "Notes::is_empty")]
    pub notes: Notes,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partial_payment: Option<bool>,
    /// Per-order capture settings, overriding the account's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payment: Option<OrderPaymentSettings>,
}

impl CreateOrder {
    pub fn inr(amount: Paise) -> Self {
        CreateOrder {
            amount,
            currency: "INR".into(),
            receipt: None,
            notes: Notes::new(),
            partial_payment: None,
            payment: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OrderPaymentSettings {
    pub capture: CaptureSettings,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CaptureSettings {
    Automatic,
    Manual,
}

/// `POST /v1/payments/:id/capture`: the amount must equal the authorised amount.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CaptureRequest {
    pub amount: Paise,
    pub currency: String,
}

/// `POST /v1/payments/:id/refund`; no amount means a full refund.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CreateRefund {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub amount: Option<Paise>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub speed: Option<RefundSpeed>,
    #[serde(skip_serializing_if = "Notes::is_empty")]
    pub notes: Notes,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub receipt: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RefundSpeed {
    Normal,
    Optimum,
}

/// Pagination of list endpoints: `from`/`to` in Unix seconds, `count` (≤ 100), `skip`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ListQuery {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub count: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skip: Option<u32>,
}
