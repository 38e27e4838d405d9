//! Starting a top-up: record it at the rate shown, create its Razorpay order, and describe the
//! hosted checkout the browser is handed to.

use razorpay::wire::{CreateOrder, Notes};

use crate::{
    billing::amount::TopupAmount,
    services::{ServiceResult, Services},
    store::topup_moves,
};

/// Razorpay's hosted checkout for one top-up: where the browser posts, and the fields.
pub struct Checkout {
    pub action: String,
    pub fields: Vec<(String, String)>,
    /// The amount, as the hand-over page says it.
    pub amount: String,
}

/// Razorpay would not start the payment; nothing was charged. The message is for the customer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckoutRefused(pub String);

/// Records the top-up and creates its order. The top-up keeps the credits and rate shown.
pub async fn start_topup(
    services: &Services,
    user_id: i64,
    email: &str,
    amount: &TopupAmount,
) -> ServiceResult<Result<Checkout, CheckoutRefused>> {
    let topup_id = services
        .ledger
        .autocommit(|writer| {
            Box::pin(async move {
                topup_moves::create(
                    writer,
                    user_id,
                    amount.paise,
                    amount.credits,
                    amount.paise_per_credit,
                )
                .await
            })
        })
        .await?;
    metrics::counter!("kalp_topups_created_total").increment(1);
    let settings = &services.settings;
    let mut order = CreateOrder::inr(amount.paise);
    order.receipt = Some(format!(
        "{}topup_{topup_id}",
        settings.razorpay.receipt_prefix
    ));
    order.notes = Notes::new()
        .with("account", format!("user:{user_id}"))
        .with("topup", topup_id.to_string())
        .with("credits", amount.credits.to_string());
    let order = match services.razorpay.create_order(&order).await {
        Ok(order) => order,
        Err(e) => {
            tracing::warn!(topup = topup_id, error = %e, "could not create the Razorpay order");
            let (code, message) = refusal(&e);
            services
                .ledger
                .autocommit(|writer| {
                    Box::pin(async move { topup_moves::failed(writer, topup_id, code, None).await })
                })
                .await?;
            return Ok(Err(CheckoutRefused(message)));
        }
    };
    if order.amount != amount.paise {
        services
            .ledger
            .transact(|tx| {
                Box::pin(async move {
                    topup_moves::flag(
                        tx,
                        topup_id,
                        "Razorpay created the order for another amount",
                        None,
                    )
                    .await
                })
            })
            .await?;
        return Ok(Err(CheckoutRefused(
            "Razorpay answered with another amount. Nothing was charged.".into(),
        )));
    }
    let order_id = order.id.as_str();
    services
        .ledger
        .autocommit(|writer| {
            Box::pin(async move { topup_moves::order_created(writer, topup_id, order_id).await })
        })
        .await?;
    let base = settings.public_url();
    let fields = vec![
        ("key_id", settings.razorpay.key_id.clone()),
        ("order_id", order.id.clone()),
        ("amount", amount.paise.0.to_string()),
        ("currency", "INR".to_string()),
        ("name", settings.billing.merchant_name.clone()),
        (
            "description",
            format!("Add Credits: {} credits", amount.credits_display()),
        ),
        ("prefill[email]", email.to_string()),
        ("notes[topup]", topup_id.to_string()),
        (
            "callback_url",
            format!("{base}/billing/topups/{topup_id}/callback"),
        ),
        (
            "cancel_url",
            format!("{base}/billing/topups/{topup_id}/cancel"),
        ),
    ];
    Ok(Ok(Checkout {
        action: format!("{}/v1/checkout/embedded", services.razorpay.base_url()),
        fields: fields
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
        amount: amount.paise.display_inr(),
    }))
}

/// Why an order was not created: Razorpay's reason code for the top-up, and words for the
/// customer.
fn refusal(e: &razorpay::Error) -> (&'static str, String) {
    match e {
        // Razorpay answered and refused: say what it said (its words, from its API).
        razorpay::Error::BadRequest(refusal) | razorpay::Error::NotFound(refusal) => (
            "order_refused",
            format!(
                "Razorpay could not start this payment: {} Nothing was charged.",
                refusal.description.trim_end_matches('.').to_string() + "."
            ),
        ),
        razorpay::Error::Authentication(_) | razorpay::Error::Config(_) => (
            "order_refused",
            "Our payment settings were refused by Razorpay, so the payment could not start. Nothing was charged; we have been told."
                .to_string(),
        ),
        _ => (
            "order_unavailable",
            "We could not reach our payment partner, Razorpay. Nothing was charged. Please try again in a minute."
                .to_string(),
        ),
    }
}
