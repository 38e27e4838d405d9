//! "Forgot password?": a single-use link, valid for 30 minutes, sent by email. The token is 32
//! random bytes; only its SHA-256 is stored. Asking answers the same whether or not the email
//! has an account (nothing tells a stranger who is a customer), and at most a few links per
//! account per half hour are sent. Choosing the new password uses the link, retires every other
//! link of the account and ends every session, in one transaction.

use crate::{
    crypto::{random_token, sha256_hex},
    emails::content,
    passwords::{HashingError, PasswordHashing, check_new_password},
    services::{ServiceError, Services},
    store::{self, outbox, password_resets, sessions, users},
};

/// How long a link works.
pub const LINK_MINUTES: i64 = 30;
/// Links sent per account per `LINK_MINUTES`; further requests are answered the same and send
/// nothing (a stranger cannot flood someone's inbox).
pub const LINKS_PER_WINDOW: u64 = 3;

#[derive(Debug, thiserror::Error)]
pub enum PasswordResetError {
    #[error(transparent)]
    Service(#[from] ServiceError),
    #[error(transparent)]
    Hashing(#[from] HashingError),
}

impl From<store::StoreError> for PasswordResetError {
    fn from(e: store::StoreError) -> Self {
        PasswordResetError::Service(ServiceError::Store(e))
    }
}

/// Sends a reset link to `email` if it has an account (and has not had too many lately).
pub async fn request_link(services: &Services, email: &str) -> Result<(), PasswordResetError> {
    let Some(user) = users::by_email(&services.reads, email).await? else {
        return Ok(());
    };
    let now = store::now_micros();
    let window_start = now - LINK_MINUTES * 60 * 1_000_000;
    if password_resets::asked_since(&services.reads, user.id, window_start).await?
        >= LINKS_PER_WINDOW
    {
        tracing::info!(
            user_id = user.id,
            "password reset: too many links lately, none sent"
        );
        return Ok(());
    }
    let token = random_token().map_err(|e| ServiceError::Invariant(e.to_string()))?;
    let email = content::password_reset(services.settings.public_url(), &token, LINK_MINUTES)
        .map_err(|e| ServiceError::Invariant(format!("an email could not be written: {e}")))?;
    let (token_hash, email, recipient) = (sha256_hex(&token), &email, user.email.as_str());
    let token_hash = token_hash.as_str();
    services
        .ledger
        .transact(|tx| {
            Box::pin(async move {
                password_resets::create(
                    tx,
                    token_hash,
                    user.id,
                    now,
                    now + LINK_MINUTES * 60 * 1_000_000,
                )
                .await?;
                outbox::enqueue(tx, email.to(recipient, None, None)).await?;
                store::StoreResult::Ok(())
            })
        })
        .await?;
    tracing::info!(user_id = user.id, "password reset link written");
    Ok(())
}

/// The account a link belongs to, while it still works.
pub async fn link_account(
    services: &Services,
    token: &str,
) -> Result<Option<users::User>, PasswordResetError> {
    let now = store::now_micros();
    let Some(user_id) =
        password_resets::valid_user(&services.reads, &sha256_hex(token), now).await?
    else {
        return Ok(None);
    };
    Ok(users::by_id(&services.reads, user_id).await?)
}

/// What choosing a new password came to.
#[derive(Debug, PartialEq, Eq)]
pub enum ResetOutcome {
    /// Changed; every session of the account ended. The account's id.
    Changed(i64),
    /// The link expired, was used, or never existed.
    LinkNotValid,
    /// The password is not acceptable: why, for the person.
    PasswordRefused(&'static str),
}

/// Sets the new password through the link, once.
pub async fn choose_password(
    services: &Services,
    passwords: &PasswordHashing,
    token: &str,
    password: &str,
) -> Result<ResetOutcome, PasswordResetError> {
    let Some(user) = link_account(services, token).await? else {
        return Ok(ResetOutcome::LinkNotValid);
    };
    if let Err(why) = check_new_password(password, &user.email) {
        return Ok(ResetOutcome::PasswordRefused(why));
    }
    let hash = passwords.hash(password).await?;
    let (token_hash, hash, user_id) = (sha256_hex(token), hash.as_str(), user.id);
    let token_hash = token_hash.as_str();
    let now = store::now_micros();
    let changed = services
        .ledger
        .transact(|tx| {
            Box::pin(async move {
                if !password_resets::consume(tx, token_hash, user_id, now).await? {
                    return store::StoreResult::Ok(false);
                }
                users::set_password_hash(tx, user_id, hash).await?;
                password_resets::retire_all(tx, user_id, now).await?;
                sessions::end_all(tx, user_id).await?;
                Ok(true)
            })
        })
        .await?;
    Ok(if changed {
        tracing::info!(
            user_id,
            "password changed through a reset link; sessions ended"
        );
        ResetOutcome::Changed(user_id)
    } else {
        ResetOutcome::LinkNotValid
    })
}
