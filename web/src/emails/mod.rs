//! Email (issue 19): what each email says (`content`, written to the outbox with
//! `store::outbox::enqueue` in the transaction that causes it), and sending the outbox through
//! SMTP (`mailer`, `outbox_sender`). Every email is written in the same transaction as what it tells of, and
//! sent at least once after that commits.

pub mod content;
pub mod expiry_reminders;
pub mod mailer;
pub mod outbox_sender;
