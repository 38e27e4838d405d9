//! Checks of request bodies, with Razorpay's own wording for what is wrong: unknown fields,
//! integer amounts, notes, ids.

use razorpay::{Paise, wire::Notes};
use serde_json::{Map, Value};

use crate::{errors::GatewayError, ids};

pub(crate) fn reject_unknown_fields(
    body: &Map<String, Value>,
    allowed: &[&str],
) -> Result<(), GatewayError> {
    match body.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(extra) => Err(GatewayError::bad_request(format!(
            "{extra} is/are not required and should not be sent"
        ))
        .field(extra)),
        None => Ok(()),
    }
}

/// An integer amount, or an integer in a string; floats and anything else are refused.
pub(crate) fn amount_field(
    body: &Map<String, Value>,
    name: &str,
    required: bool,
) -> Result<Option<Paise>, GatewayError> {
    match body.get(name) {
        None | Some(Value::Null) if required => {
            Err(GatewayError::bad_request(format!("The {name} field is required.")).field(name))
        }
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n.as_i64().map(|v| Some(Paise(v))).ok_or_else(|| {
            GatewayError::bad_request(format!("The {name} must be an integer.")).field(name)
        }),
        Some(Value::String(s)) => s.parse::<i64>().map(|v| Some(Paise(v))).map_err(|_| {
            GatewayError::bad_request(format!("The {name} must be an integer.")).field(name)
        }),
        Some(_) => {
            Err(GatewayError::bad_request(format!("The {name} must be an integer.")).field(name))
        }
    }
}

pub(crate) fn notes_field(body: &Map<String, Value>) -> Result<Notes, GatewayError> {
    let notes = match body.get("notes") {
        None | Some(Value::Null) => return Ok(Notes::new()),
        Some(Value::Array(a)) if a.is_empty() => return Ok(Notes::new()),
        Some(Value::Object(map)) => map,
        Some(_) => {
            return Err(GatewayError::bad_request("The notes must be an array.").field("notes"));
        }
    };
    if notes.len() > 15 {
        return Err(GatewayError::bad_request(
            "Number of notes fields should be less than or equal to 15",
        )
        .field("notes"));
    }
    let mut out = Notes::new();
    for (k, v) in notes {
        let v = match v {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            _ => {
                return Err(
                    GatewayError::bad_request("The notes values must be strings.").field("notes"),
                );
            }
        };
        if v.chars().count() > 256 || k.chars().count() > 256 {
            return Err(
                GatewayError::bad_request("Notes value must be less than 256 characters.")
                    .field("notes"),
            );
        }
        out = out.with(k.clone(), v);
    }
    Ok(out)
}

pub(crate) fn as_object(body: &Value) -> Result<&Map<String, Value>, GatewayError> {
    body.as_object()
        .ok_or_else(|| GatewayError::bad_request("The request body must be a JSON object."))
}

pub(crate) fn check_id(id: &str, prefix: &str) -> Result<(), GatewayError> {
    if ids::is_valid(id, prefix) {
        Ok(())
    } else {
        Err(GatewayError::bad_request(format!("{id} is not a valid id")))
    }
}
