//! `POST /api/v1/charges`: charge for emails or SMS, exactly once per `Idempotency-Key`.

use axum::{body::Bytes, extract::State, http::HeaderMap, response::Response};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::{
    alerts,
    api::{
        batcher::{Answer, Record},
        error::ApiError,
        key_cache::ApiCaller,
        pricing::{Service, sms_segment_price},
        requests::{check_reference, idempotency_key, json_answer, parse_json},
    },
    configuration::PriceSettings,
    crypto::sha256_hex,
    state::AppState,
};

/// The most lines one request may charge.
pub const MAX_LINES: usize = 10_000;
const MAX_QUANTITY: i64 = 1_000_000;
const MAX_SEGMENTS: i64 = 10;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChargeRequest {
    pub service: Service,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quantity: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lines: Option<Vec<Line>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Line {
    pub destination: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub segments: Option<i64>,
}

/// A checked request: what it charges, in credits and messages.
pub struct Priced {
    pub credits: i64,
    pub messages: i64,
}

impl ChargeRequest {
    pub fn price(&self, prices: &PriceSettings) -> Result<Priced, ApiError> {
        check_reference(&self.reference)?;
        match (self.quantity, &self.lines) {
            (Some(_), Some(_)) => Err(ApiError::invalid(
                "Send either `quantity` or `lines`, not both.",
            )),
            (None, None) => Err(ApiError::invalid(
                "Send `quantity` (messages) or `lines` (one per recipient).",
            )),
            (Some(q), None) if !(1..=MAX_QUANTITY).contains(&q) => Err(ApiError::invalid(format!(
                "`quantity` must be between 1 and {MAX_QUANTITY}."
            ))),
            (Some(q), None) => Ok(Priced {
                credits: q * self.service.unit_price(prices),
                messages: q,
            }),
            (None, Some(lines)) if lines.is_empty() || lines.len() > MAX_LINES => Err(
                ApiError::invalid(format!("`lines` must hold 1 to {MAX_LINES} recipients.")),
            ),
            (None, Some(lines)) => {
                let mut credits = 0;
                for (i, line) in lines.iter().enumerate() {
                    credits += self
                        .line_price(prices, line)
                        .map_err(|m| ApiError::invalid(format!("lines[{i}]: {m}")))?;
                }
                Ok(Priced {
                    credits,
                    messages: lines.len() as i64,
                })
            }
        }
    }

    fn line_price(&self, prices: &PriceSettings, line: &Line) -> Result<i64, String> {
        let d = line.destination.trim();
        match self.service {
            Service::Email => {
                if line.segments.is_some() {
                    return Err("emails have no segments".into());
                }
                if d.len() < 3
                    || d.len() > 254
                    || !d.contains('@')
                    || d.chars().any(char::is_whitespace)
                {
                    return Err(format!("{d:?} is not an email address"));
                }
                Ok(prices.email_credits)
            }
            Service::Sms => {
                let segments = line.segments.unwrap_or(1);
                if !(1..=MAX_SEGMENTS).contains(&segments) {
                    return Err(format!("segments must be 1 to {MAX_SEGMENTS}"));
                }
                let digits = d.strip_prefix('+').unwrap_or("");
                if !(8..=15).contains(&digits.len()) || !digits.chars().all(|c| c.is_ascii_digit())
                {
                    return Err(format!("{d:?} is not an E.164 number like +919876543210"));
                }
                Ok(segments * sms_segment_price(prices, d))
            }
        }
    }
}

/// The ledger's idempotency key for a charge: per account, and a hash of the caller's key (any
/// printable ASCII, up to 100 characters) so it has a fixed length. Its answer is found through it.
pub fn ledger_key(user_id: i64, idempotency_key: &str) -> String {
    format!("charge:{user_id}:{}", sha256_hex(idempotency_key))
}

pub async fn create(
    State(state): State<AppState>,
    caller: ApiCaller,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let key = idempotency_key(&headers)?;
    let request: ChargeRequest = parse_json(&headers, &body)?;
    let canonical = serde_json::to_string(&request).map_err(ApiError::internal)?;
    let request_hash = sha256_hex(&canonical);
    let priced = request.price(&state.settings.prices)?;
    let debit = ledger::Debit {
        wallet: caller.wallet,
        amount: ledger::Credits::new(priced.credits)
            .map_err(|_| ApiError::invalid("The charge is too large."))?,
        kind: request.service.debit_kind(),
        key: ledger::IdempotencyKey::new(ledger_key(caller.user_id, &key))
            .map_err(ApiError::internal)?,
        reference: request.reference.clone(),
        memo: Some(format!(
            "{}: {} message(s){}",
            if request.service == Service::Email {
                "Email"
            } else {
                "SMS"
            },
            priced.messages,
            request
                .reference
                .as_deref()
                .map(|r| format!(" · {r}"))
                .unwrap_or_default()
        )),
    };
    let service = request.service;
    let reference = request.reference.clone();
    let messages = priced.messages;
    let record = Record {
        user_id: caller.user_id,
        request_hash,
        answer: Box::new(move |receipt, balance| {
            json!({
                "id": format!("chg_{}", receipt.transfer.id.0),
                "service": service.as_str(),
                "messages": messages,
                "credits": receipt.transfer.amount,
                "reference": reference,
                "balance": {"available": balance.available, "reserved": balance.reserved},
                "created_at": receipt.transfer.created_at.to_rfc3339(),
            })
            .to_string()
        }),
    };
    // The lookup of a stored answer, the debit and the new answer commit together, in a
    // group-committed transaction. A retry gets the original answer; the same key with another
    // request is a conflict.
    let charged = match state.charger.charge(debit, Some(record)).await? {
        Answer::Charged(charged) => charged,
        Answer::Stored { status, body } => return Ok(json_answer(status, body, true)),
        Answer::KeyReused => return Err(ApiError::key_reused()),
    };
    let text = charged.answer.unwrap_or_default();
    // The charge stands whatever happens to its alert; log and go on.
    if let Err(e) = alerts::after_balance_change_with(
        &state.services,
        caller.user_id,
        &caller.email,
        charged.balance.available,
        charged.alert,
    )
    .await
    {
        tracing::warn!(error = %e, "low-balance alert check failed");
    }
    Ok(json_answer(201, text, charged.receipt.replayed))
}
