//! `notes`: up to 15 key/value pairs; Razorpay sends an empty set as `[]`, not `{}`.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Notes(pub BTreeMap<String, String>);

impl Notes {
    pub fn new() -> Self {
        Notes::default()
    }

    pub fn with(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.0.insert(key.into(), value.into());
        self
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }
}

impl Serialize for Notes {
    /// As Razorpay does: `[]` when empty, an object otherwise.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if self.0.is_empty() {
            serializer.collect_seq(std::iter::empty::<()>())
        } else {
            self.0.serialize(serializer)
        }
    }
}

impl<'de> Deserialize<'de> for Notes {
    /// An object (values stringified when they are numbers or booleans), `[]`, or null.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde_json::Value;
        match Option::<Value>::deserialize(deserializer)? {
            None | Some(Value::Null) => Ok(Notes::default()),
            Some(Value::Array(items)) if items.is_empty() => Ok(Notes::default()),
            Some(Value::Object(map)) => Ok(Notes(
                map.into_iter()
                    .map(|(k, v)| {
                        let v = match v {
                            Value::String(s) => s,
                            Value::Null => String::new(),
                            other => other.to_string(),
                        };
                        (k, v)
                    })
                    .collect(),
            )),
            Some(other) => Err(serde::de::Error::custom(format!(
                "notes must be an object or [], got {other}"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notes_read_as_object_or_empty_array() {
        let empty: Notes = serde_json::from_str("[]").expect("[]");
        assert!(empty.is_empty());
        let some: Notes = serde_json::from_str(r#"{"a":"x","n":5}"#).expect("object");
        assert_eq!(some.get("a"), Some("x"));
        assert_eq!(some.get("n"), Some("5"));
        assert!(serde_json::from_str::<Notes>("[1]").is_err());
        assert_eq!(
            serde_json::to_string(&Notes::new()).ok().as_deref(),
            Some("[]")
        );
        assert_eq!(
            serde_json::to_string(&Notes::new().with("k", "v"))
                .ok()
                .as_deref(),
            Some(r#"{"k":"v"}"#)
        );
    }
}
