use serde::{Deserialize, Serialize};

use super::{lenient, notes::Notes};
use crate::money::Paise;

/// An order: what the customer is asked to pay, created before checkout.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Order {
    pub id: String,
    #[serde(default = "order_entity")]
    pub entity: String,
    pub amount: Paise,
    #[serde(default)]
    pub amount_paid: Paise,
    #[serde(default)]
    pub amount_due: Paise,
    pub currency: String,
    #[serde(default, deserialize_with = "lenient::string_or_number")]
    pub receipt: Option<String>,
    #[serde(default)]
    pub offer_id: Option<String>,
    pub status: OrderStatus,
    #[serde(default)]
    pub attempts: u32,
    #[serde(default)]
    pub notes: Notes,
    pub created_at: i64,
}

fn order_entity() -> String {
    "order".into()
}

/// created → attempted (first payment attempt) → paid (a payment captured). Stays paid after a
/// refund.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    Created,
    Attempted,
    Paid,
}
