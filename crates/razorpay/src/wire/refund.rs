use serde::{Deserialize, Serialize};

use super::{lenient, notes::Notes, payment::AcquirerData};
use crate::money::Paise;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Refund {
    pub id: String,
    #[serde(default = "refund_entity")]
    pub entity: String,
    pub amount: Paise,
    pub currency: String,
    pub payment_id: String,
    #[serde(default)]
    pub notes: Notes,
    #[serde(default, deserialize_with = "lenient::string_or_number")]
    pub receipt: Option<String>,
    #[serde(default)]
    pub acquirer_data: Option<AcquirerData>,
    pub created_at: i64,
    #[serde(default)]
    pub batch_id: Option<String>,
    pub status: RefundState,
    #[serde(default)]
    pub speed_processed: Option<String>,
    #[serde(default)]
    pub speed_requested: Option<String>,
}

fn refund_entity() -> String {
    "refund".into()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefundState {
    Pending,
    Processed,
    Failed,
}
