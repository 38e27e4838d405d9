use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::{lenient, notes::Notes};
use crate::money::Paise;

/// A payment attempt on an order. Everything but the identity, amount, status and time may be
/// missing or null.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Payment {
    pub id: String,
    #[serde(default = "payment_entity")]
    pub entity: String,
    pub amount: Paise,
    pub currency: String,
    pub status: PaymentStatus,
    #[serde(default)]
    pub order_id: Option<String>,
    #[serde(default)]
    pub invoice_id: Option<String>,
    #[serde(default, deserialize_with = "lenient::flag")]
    pub international: bool,
    pub method: PaymentMethod,
    #[serde(default)]
    pub amount_refunded: Paise,
    #[serde(default)]
    pub refund_status: Option<RefundStatus>,
    #[serde(default, deserialize_with = "lenient::flag")]
    pub captured: bool,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub card_id: Option<String>,
    #[serde(default)]
    pub card: Option<Card>,
    #[serde(default)]
    pub bank: Option<String>,
    #[serde(default)]
    pub wallet: Option<String>,
    #[serde(default)]
    pub vpa: Option<String>,
    #[serde(default)]
    pub upi: Option<Upi>,
    #[serde(default, deserialize_with = "lenient::string_or_number")]
    pub email: Option<String>,
    #[serde(default, deserialize_with = "lenient::string_or_number")]
    pub contact: Option<String>,
    #[serde(default)]
    pub customer_id: Option<String>,
    #[serde(default)]
    pub token_id: Option<String>,
    #[serde(default)]
    pub notes: Notes,
    /// Null until captured; includes GST.
    #[serde(default)]
    pub fee: Option<Paise>,
    /// The GST part of `fee`; null until captured.
    #[serde(default)]
    pub tax: Option<Paise>,
    #[serde(default, deserialize_with = "lenient::non_empty_string")]
    pub error_code: Option<String>,
    #[serde(default, deserialize_with = "lenient::non_empty_string")]
    pub error_description: Option<String>,
    #[serde(default, deserialize_with = "lenient::non_empty_string")]
    pub error_source: Option<String>,
    #[serde(default, deserialize_with = "lenient::non_empty_string")]
    pub error_step: Option<String>,
    #[serde(default, deserialize_with = "lenient::non_empty_string")]
    pub error_reason: Option<String>,
    #[serde(default, deserialize_with = "acquirer_or_default")]
    pub acquirer_data: AcquirerData,
    pub created_at: i64,
}

fn payment_entity() -> String {
    "payment".into()
}

fn acquirer_or_default<'de, D: Deserializer<'de>>(d: D) -> Result<AcquirerData, D::Error> {
    Ok(Option::<AcquirerData>::deserialize(d)?.unwrap_or_default())
}

/// created → authorized → captured (→ refunded), or failed. `failed` is not always final: a late
/// authorisation moves a failed payment to authorized days later.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentStatus {
    Created,
    Authorized,
    Captured,
    Refunded,
    Failed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefundStatus {
    Partial,
    Full,
}

/// How the customer paid. Methods beyond the five this app offers are kept by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PaymentMethod {
    Card,
    Netbanking,
    Wallet,
    Emi,
    Upi,
    Other(String),
}

impl PaymentMethod {
    pub fn as_str(&self) -> &str {
        match self {
            PaymentMethod::Card => "card",
            PaymentMethod::Netbanking => "netbanking",
            PaymentMethod::Wallet => "wallet",
            PaymentMethod::Emi => "emi",
            PaymentMethod::Upi => "upi",
            PaymentMethod::Other(name) => name,
        }
    }

    pub fn parse(s: &str) -> PaymentMethod {
        match s {
            "card" => PaymentMethod::Card,
            "netbanking" => PaymentMethod::Netbanking,
            "wallet" => PaymentMethod::Wallet,
            "emi" => PaymentMethod::Emi,
            "upi" => PaymentMethod::Upi,
            other => PaymentMethod::Other(other.to_string()),
        }
    }

    /// The name people know it by.
    pub fn label(&self) -> &str {
        match self {
            PaymentMethod::Card => "Card",
            PaymentMethod::Netbanking => "Netbanking",
            PaymentMethod::Wallet => "Wallet",
            PaymentMethod::Emi => "EMI",
            PaymentMethod::Upi => "UPI",
            PaymentMethod::Other(name) => name,
        }
    }
}

impl Serialize for PaymentMethod {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for PaymentMethod {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(PaymentMethod::parse(&String::deserialize(deserializer)?))
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Card {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "lenient::string_or_number")]
    pub last4: Option<String>,
    #[serde(default)]
    pub network: Option<String>,
    #[serde(default, rename = "type")]
    pub card_type: Option<String>,
    #[serde(default)]
    pub issuer: Option<String>,
    #[serde(default, deserialize_with = "lenient::flag")]
    pub international: bool,
    #[serde(default, deserialize_with = "lenient::flag")]
    pub emi: bool,
    #[serde(default)]
    pub sub_type: Option<String>,
    #[serde(default, deserialize_with = "lenient::string_or_number")]
    pub token_iin: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Upi {
    #[serde(default)]
    pub payer_account_type: Option<String>,
    #[serde(default)]
    pub vpa: Option<String>,
    #[serde(default)]
    pub flow: Option<String>,
}

/// Reference numbers from the bank or network; which are present depends on the method.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AcquirerData {
    #[serde(
        default,
        deserialize_with = "lenient::string_or_number",
        skip_serializing_if = "Option::is_none"
    )]
    pub auth_code: Option<String>,
    #[serde(
        default,
        deserialize_with = "lenient::string_or_number",
        skip_serializing_if = "Option::is_none"
    )]
    pub rrn: Option<String>,
    #[serde(
        default,
        deserialize_with = "lenient::string_or_number",
        skip_serializing_if = "Option::is_none"
    )]
    pub authentication_reference_number: Option<String>,
    #[serde(
        default,
        deserialize_with = "lenient::string_or_number",
        skip_serializing_if = "Option::is_none"
    )]
    pub bank_transaction_id: Option<String>,
    #[serde(
        default,
        deserialize_with = "lenient::string_or_number",
        skip_serializing_if = "Option::is_none"
    )]
    pub upi_transaction_id: Option<String>,
    #[serde(
        default,
        deserialize_with = "lenient::string_or_number",
        skip_serializing_if = "Option::is_none"
    )]
    pub transaction_id: Option<String>,
    #[serde(
        default,
        deserialize_with = "lenient::string_or_number",
        skip_serializing_if = "Option::is_none"
    )]
    pub arn: Option<String>,
}

impl Payment {
    /// The failure in plain words, when the payment failed.
    pub fn failure_description(&self) -> Option<&str> {
        self.error_description.as_deref()
    }
}
