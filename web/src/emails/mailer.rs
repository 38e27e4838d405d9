//! SMTP through `lettre` (rustls with ring): an outbox row becomes a MIME message with a text
//! and an HTML part, a stable Message-ID, and any voucher attached as PDF.

use std::time::Duration;

use lettre::{
    AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor,
    message::{Attachment, Mailbox, MultiPart, SinglePart, header::ContentType},
};

use crate::{configuration::EmailSettings, store::outbox::QueuedEmail};

/// A PDF to attach: its file name and bytes.
pub struct PdfAttachment {
    pub file_name: String,
    pub bytes: Vec<u8>,
}

/// Why a message was not sent, and whether trying again can help.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    /// The server refused it for good (a 5xx answer), or the message cannot be built.
    #[error("{0}")]
    Permanent(String),
    /// Unreachable, timed out, or refused for now: worth another try.
    #[error("{0}")]
    Transient(String),
}

/// Sends email through the configured SMTP server.
#[derive(Clone)]
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    /// The domain of Message-IDs: the sender's.
    domain: String,
}

impl Mailer {
    /// The mailer `[email]` describes, or `None` when no SMTP server is set (emails wait).
    pub fn from_settings(settings: &EmailSettings) -> anyhow::Result<Option<Mailer>> {
        let url = settings.smtp_url.expose();
        if url.trim().is_empty() {
            return Ok(None);
        }
        // lettre's own errors never repeat the URL; ours must not either (it may hold a password).
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .map_err(|e| anyhow::anyhow!("KALP__EMAIL__SMTP_URL is not an SMTP URL: {e}"))?
            .timeout(Some(Duration::from_secs(20)))
            .build();
        let from: Mailbox = settings
            .from
            .parse()
            .map_err(|e| anyhow::anyhow!("KALP__EMAIL__FROM: {e}"))?;
        let domain = from.email.domain().to_string();
        Ok(Some(Mailer {
            transport,
            from,
            domain,
        }))
    }

    /// The Message-ID of an outbox row: the same on every attempt, so a message delivered twice
    /// (at-least-once) is recognisably one message.
    pub fn message_id(&self, email: &QueuedEmail) -> String {
        format!("<outbox-{}.{}@{}>", email.id, email.created_at, self.domain)
    }

    pub fn build(
        &self,
        email: &QueuedEmail,
        attachment: Option<PdfAttachment>,
    ) -> Result<Message, DeliveryError> {
        let to: Mailbox = email
            .recipient
            .parse()
            .map_err(|e| DeliveryError::Permanent(format!("recipient: {e}")))?;
        let body = MultiPart::alternative_plain_html(email.text.clone(), email.html.clone());
        let body = match attachment {
            Some(pdf) => {
                let content_type = ContentType::parse("application/pdf")
                    .map_err(|e| DeliveryError::Permanent(e.to_string()))?;
                let part: SinglePart = Attachment::new(pdf.file_name).body(pdf.bytes, content_type);
                MultiPart::mixed().multipart(body).singlepart(part)
            }
            None => body,
        };
        Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(email.subject.clone())
            .message_id(Some(self.message_id(email)))
            .multipart(body)
            .map_err(|e| DeliveryError::Permanent(e.to_string()))
    }

    /// Connects and greets the server (EHLO, and TLS and log-in where the URL asks for them),
    /// sending nothing: what `web doctor` checks.
    pub async fn check_connection(&self) -> Result<(), String> {
        match self.transport.test_connection().await {
            Ok(true) => Ok(()),
            Ok(false) => Err("it did not accept the connection".into()),
            Err(e) => Err(e.to_string()),
        }
    }

    pub async fn send(&self, message: Message) -> Result<(), DeliveryError> {
        match self.transport.send(message).await {
            Ok(_) => Ok(()),
            Err(e) if e.is_permanent() => Err(DeliveryError::Permanent(e.to_string())),
            Err(e) => Err(DeliveryError::Transient(e.to_string())),
        }
    }
}
