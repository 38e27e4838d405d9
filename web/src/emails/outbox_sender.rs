//! Drains the outbox: claims due emails (a lease, so several instances never send one row at
//! once), sends each, and marks it sent; a failure is retried with exponential backoff, and an
//! email refused for good or failing `max_attempts` times is parked for an operator (shown in
//! Needs attention, sent again from there). Delivery is at least once: a crash between the
//! server's "250" and our "sent" sends it again, with the same Message-ID.

use std::fmt;

use crate::{
    documents::{voucher_pdf::voucher_pdf, voucher_view::VoucherView},
    emails::mailer::{DeliveryError, Mailer, PdfAttachment},
    services::Services,
    store::{self, outbox, outbox::QueuedEmail, vouchers},
};

/// What one round did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SendReport {
    pub sent: usize,
    pub retried: usize,
    pub parked: usize,
}

impl fmt::Display for SendReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} sent, {} to retry, {} parked",
            self.sent, self.retried, self.parked
        )
    }
}

/// How long after its `attempts`-th failure an email is tried again: `base`, doubling, at most
/// an hour.
pub fn backoff_secs(base: i64, attempts: i64) -> i64 {
    let doublings = u32::try_from(attempts.saturating_sub(1).clamp(0, 20)).unwrap_or(20);
    base.saturating_mul(1_i64 << doublings).min(3600)
}

/// One round: everything due now, up to `email.batch`.
pub async fn send_due(services: &Services, mailer: &Mailer) -> anyhow::Result<SendReport> {
    let settings = &services.settings.email;
    let now = store::now_micros();
    // Each send has 20 s (the transport's timeout); the lease outlasts a whole batch.
    let lease = i64::try_from(settings.batch)
        .unwrap_or(i64::MAX / 40_000_000)
        .saturating_mul(30_000_000);
    let batch = settings.batch;
    let claimed = services
        .ledger
        .autocommit(|writer| {
            Box::pin(async move { outbox::claim_due(writer, now, now + lease, batch).await })
        })
        .await?;
    let mut report = SendReport::default();
    for email in claimed {
        let outcome = deliver(services, mailer, &email).await;
        let now = store::now_micros();
        match outcome {
            Ok(()) => {
                let id = email.id;
                services
                    .ledger
                    .autocommit(|writer| {
                        Box::pin(async move { outbox::sent(writer, id, now).await })
                    })
                    .await?;
                metrics::counter!("kalp_emails_sent_total", "kind" => email.kind.clone())
                    .increment(1);
                report.sent += 1;
            }
            Err(error) => {
                let park = matches!(error, DeliveryError::Permanent(_))
                    || email.attempts >= settings.max_attempts;
                let retry_at =
                    now + backoff_secs(settings.retry_base_secs, email.attempts) * 1_000_000;
                tracing::warn!(
                    outbox_id = email.id,
                    kind = %email.kind,
                    attempts = email.attempts,
                    parked = park,
                    error = %error,
                    "email not sent"
                );
                let (id, text) = (email.id, error.to_string());
                let text = &text;
                services
                    .ledger
                    .autocommit(|writer| {
                        Box::pin(async move {
                            outbox::failed(writer, id, text, retry_at, park, now).await
                        })
                    })
                    .await?;
                if park {
                    metrics::counter!("kalp_emails_parked_total").increment(1);
                    report.parked += 1;
                } else {
                    report.retried += 1;
                }
            }
        }
    }
    Ok(report)
}

async fn deliver(
    services: &Services,
    mailer: &Mailer,
    email: &QueuedEmail,
) -> Result<(), DeliveryError> {
    let attachment = match email.voucher_id {
        Some(id) => Some(voucher_attachment(services, id).await?),
        None => None,
    };
    let message = mailer.build(email, attachment)?;
    mailer.send(message).await
}

async fn voucher_attachment(services: &Services, id: i64) -> Result<PdfAttachment, DeliveryError> {
    let read = |e: store::StoreError| DeliveryError::Transient(format!("reading the voucher: {e}"));
    let voucher = vouchers::find(&services.reads, id)
        .await
        .map_err(read)?
        .ok_or_else(|| DeliveryError::Permanent(format!("voucher {id} does not exist")))?;
    let view = VoucherView::load(&services.reads, voucher)
        .await
        .map_err(read)?;
    let bytes = voucher_pdf(&view).map_err(|e| DeliveryError::Permanent(e.to_string()))?;
    Ok(PdfAttachment {
        file_name: view.file_name(),
        bytes,
    })
}

#[cfg(test)]
mod tests {
    use super::backoff_secs;

    #[test]
    fn retries_back_off_exponentially_up_to_an_hour() {
        let waits: Vec<i64> = (1..=9).map(|n| backoff_secs(30, n)).collect();
        assert_eq!(waits, [30, 60, 120, 240, 480, 960, 1920, 3600, 3600]);
        assert_eq!(backoff_secs(30, 1_000), 3600);
    }
}
