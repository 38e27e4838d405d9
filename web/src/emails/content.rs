//! What each email says, as a subject and a text and an HTML part made from the same words
//! (templates/emails/email.txt and email.html), so the two parts never disagree. Links are
//! absolute, from the public URL in settings.

use askama::Template;

use crate::{billing::amount::group_credits, store::outbox::NewEmail};

/// An email ready for the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailContent {
    pub kind: &'static str,
    pub subject: String,
    pub text: String,
    pub html: String,
}

impl EmailContent {
    /// This email to `recipient` as an outbox row; `once_key` makes it written at most once.
    pub fn to<'a>(
        &'a self,
        recipient: &'a str,
        voucher_id: Option<i64>,
        once_key: Option<String>,
    ) -> NewEmail<'a> {
        NewEmail {
            kind: self.kind,
            recipient,
            subject: &self.subject,
            text: &self.text,
            html: &self.html,
            voucher_id,
            once_key,
        }
    }
}

/// The words of an email, laid out by both templates.
struct EmailWords<'a> {
    subject: String,
    greeting: &'a str,
    paragraphs: Vec<String>,
    /// A button (HTML) or a line (text): (label, absolute URL).
    action: Option<(String, String)>,
    footer: Vec<String>,
    public_url: &'a str,
}

#[derive(Template)]
#[template(path = "emails/email.txt")]
struct TextPart<'a> {
    greeting: &'a str,
    paragraphs: &'a [String],
    action: &'a Option<(String, String)>,
    footer: &'a [String],
    public_url: &'a str,
}

#[derive(Template)]
#[template(path = "emails/email.html")]
struct HtmlPart<'a> {
    subject: &'a str,
    greeting: &'a str,
    paragraphs: &'a [String],
    action: &'a Option<(String, String)>,
    footer: &'a [String],
}

impl EmailWords<'_> {
    fn render(self, kind: &'static str) -> Result<EmailContent, askama::Error> {
        let text = TextPart {
            greeting: self.greeting,
            paragraphs: &self.paragraphs,
            action: &self.action,
            footer: &self.footer,
            public_url: self.public_url,
        }
        .render()?;
        let html = HtmlPart {
            subject: &self.subject,
            greeting: self.greeting,
            paragraphs: &self.paragraphs,
            action: &self.action,
            footer: &self.footer,
        }
        .render()?;
        Ok(EmailContent {
            kind,
            subject: self.subject,
            text,
            html,
        })
    }
}

const GREETING: &str = "Hello,";

fn url(public_url: &str, path: &str) -> String {
    format!("{}{path}", public_url.trim_end_matches('/'))
}

/// After a top-up is credited: what was paid and credited, with its receipt voucher attached.
pub fn receipt(
    public_url: &str,
    amount: &str,
    credits: i64,
    topup_id: i64,
    voucher_number: &str,
) -> Result<EmailContent, askama::Error> {
    EmailWords {
        subject: format!("Receipt for your Kalp Studio top-up of {amount}"),
        greeting: GREETING,
        paragraphs: vec![
            format!(
                "Thank you for your payment of {amount}. {} credits have been added to your \
                 balance.",
                group_credits(credits)
            ),
            format!(
                "Your GST receipt voucher {voucher_number} is attached as a PDF, and is always \
                 on the top-up's page."
            ),
        ],
        action: Some((
            "View your top-up".to_string(),
            url(public_url, &format!("/billing/topups/{topup_id}")),
        )),
        footer: vec!["You receive this email because you topped up your credits.".to_string()],
        public_url,
    }
    .render("receipt")
}

/// The balance fell below the customer's alert level (once per crossing).
pub fn low_balance(
    public_url: &str,
    available: i64,
    threshold: i64,
) -> Result<EmailContent, askama::Error> {
    EmailWords {
        subject: "Your Kalp Studio credits are running low".to_string(),
        greeting: GREETING,
        paragraphs: vec![
            format!(
                "Your balance is {} credits, below your alert level of {}.",
                group_credits(available),
                group_credits(threshold)
            ),
            "Top up from Billing to keep your emails and SMS going.".to_string(),
        ],
        action: Some(("Top up".to_string(), url(public_url, "/billing/topup"))),
        footer: vec![format!(
            "You receive this because low-balance alerts are on. Turn them off or change the \
             level: {}",
            url(public_url, "/api-keys#alert")
        )],
        public_url,
    }
    .render("low_balance")
}

/// Razorpay processed a refund: what was refunded, with its refund voucher attached.
pub fn refund_processed(
    public_url: &str,
    amount: &str,
    topup_id: i64,
    voucher_number: Option<&str>,
) -> Result<EmailContent, askama::Error> {
    let mut paragraphs = vec![format!(
        "We have refunded {amount} for top-up #{topup_id}. Razorpay has processed it; banks \
         usually show it within 5 to 7 working days."
    )];
    if let Some(number) = voucher_number {
        paragraphs.push(format!(
            "Your GST refund voucher {number} is attached as a PDF."
        ));
    }
    EmailWords {
        subject: format!("Your refund of {amount} is on its way"),
        greeting: GREETING,
        paragraphs,
        action: Some((
            "View the top-up".to_string(),
            url(public_url, &format!("/billing/topups/{topup_id}")),
        )),
        footer: vec!["You receive this email because a payment of yours was refunded.".to_string()],
        public_url,
    }
    .render("refund_processed")
}

/// An operator granted promotional credits.
pub fn promotional_credits_granted(
    public_url: &str,
    credits: i64,
    expires_on: Option<&str>,
) -> Result<EmailContent, askama::Error> {
    let expiry = match expires_on {
        Some(date) => format!(" and expire on {date}"),
        None => String::new(),
    };
    EmailWords {
        subject: format!(
            "{} promotional credits added to your Kalp Studio account",
            group_credits(credits)
        ),
        greeting: GREETING,
        paragraphs: vec![format!(
            "We have added {} promotional credits to your balance. They are spent before your \
             paid credits{expiry}.",
            group_credits(credits)
        )],
        action: Some(("See your balance".to_string(), url(public_url, "/billing"))),
        footer: vec!["Promotional credits cannot be refunded.".to_string()],
        public_url,
    }
    .render("promotional_credits_granted")
}

/// Credits that expire within the week (sent once per grant).
pub fn credits_expiring(
    public_url: &str,
    credits: i64,
    expires_on: &str,
) -> Result<EmailContent, askama::Error> {
    EmailWords {
        subject: format!(
            "{} of your Kalp Studio credits expire on {expires_on}",
            group_credits(credits)
        ),
        greeting: GREETING,
        paragraphs: vec![format!(
            "{} promotional credits on your account expire on {expires_on}. Credits you have \
             not used by then are removed from your balance.",
            group_credits(credits)
        )],
        action: Some(("See your balance".to_string(), url(public_url, "/billing"))),
        footer: vec!["We send this once, a week or less before credits expire.".to_string()],
        public_url,
    }
    .render("credits_expiring")
}

/// A link to choose a new password, valid for `minutes`.
pub fn password_reset(
    public_url: &str,
    token: &str,
    minutes: i64,
) -> Result<EmailContent, askama::Error> {
    EmailWords {
        subject: "Reset your Kalp Studio password".to_string(),
        greeting: GREETING,
        paragraphs: vec![
            format!(
                "Someone asked to reset the password of your Kalp Studio account. The link \
                 below works once, for {minutes} minutes."
            ),
            "Choosing a new password signs you out everywhere else.".to_string(),
        ],
        action: Some((
            "Choose a new password".to_string(),
            url(public_url, &format!("/reset-password?token={token}")),
        )),
        footer: vec![
            "If it was not you, ignore this email: your password stays as it is.".to_string(),
        ],
        public_url,
    }
    .render("password_reset")
}
