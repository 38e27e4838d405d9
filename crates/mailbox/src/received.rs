//! A message as received, and what a person or a test reads of it: its headers, its text and
//! HTML parts decoded, and its attachments.

use mail_parser::{MessageParser, MimeHeaders};
use serde::Serialize;

/// An attachment's name, type and size.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct AttachmentSummary {
    pub file_name: String,
    pub content_type: String,
    pub size: usize,
    /// The attachment's decoded bytes (not in JSON: fetch the raw message for them).
    #[serde(skip)]
    pub bytes: Vec<u8>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ReceivedMessage {
    pub id: u64,
    pub received_at: String,
    pub envelope_from: String,
    pub envelope_to: Vec<String>,
    pub from: String,
    pub to: String,
    pub subject: String,
    pub message_id: String,
    pub text: String,
    pub html: String,
    pub attachments: Vec<AttachmentSummary>,
    #[serde(skip)]
    pub raw: Vec<u8>,
}

fn addresses(address: Option<&mail_parser::Address<'_>>) -> String {
    address
        .map(|a| {
            a.iter()
                .filter_map(|addr| addr.address())
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default()
}

impl ReceivedMessage {
    pub fn parse(id: u64, raw: Vec<u8>, envelope_from: String, envelope_to: Vec<String>) -> Self {
        let received_at = chrono::Utc::now().to_rfc3339();
        let mut message = ReceivedMessage {
            id,
            received_at,
            envelope_from,
            envelope_to,
            from: String::new(),
            to: String::new(),
            subject: String::new(),
            message_id: String::new(),
            text: String::new(),
            html: String::new(),
            attachments: Vec::new(),
            raw: Vec::new(),
        };
        if let Some(parsed) = MessageParser::default().parse(&raw) {
            message.from = addresses(parsed.from());
            message.to = addresses(parsed.to());
            message.subject = parsed.subject().unwrap_or_default().to_string();
            message.message_id = parsed.message_id().unwrap_or_default().to_string();
            message.text = parsed
                .body_text(0)
                .map(|t| t.into_owned())
                .unwrap_or_default();
            message.html = parsed
                .body_html(0)
                .map(|t| t.into_owned())
                .unwrap_or_default();
            message.attachments = parsed
                .attachments()
                .map(|part| AttachmentSummary {
                    file_name: part.attachment_name().unwrap_or("attachment").to_string(),
                    content_type: part
                        .content_type()
                        .map(|ct| match ct.subtype() {
                            Some(sub) => format!("{}/{sub}", ct.ctype()),
                            None => ct.ctype().to_string(),
                        })
                        .unwrap_or_default(),
                    size: part.contents().len(),
                    bytes: part.contents().to_vec(),
                })
                .collect();
        }
        message.raw = raw;
        message
    }
}
