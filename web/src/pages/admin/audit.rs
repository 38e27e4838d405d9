//! `/admin/audit`: the audit (`web audit`) run on demand. Captured payments that never
//! credited, refunds not taken back and every other difference, each naming its payment and
//! top-up, beside the ledger's own invariants.

use askama::Template;
use axum::{
    extract::{Query, State},
    response::{Html, IntoResponse, Response},
};
use serde::Deserialize;

use crate::{
    audit,
    pages::{admin::SignedInOperator, error::PageResult},
    state::AppState,
};

#[derive(Template)]
#[template(path = "admin_audit.html")]
struct AuditPage {
    email: String,
    days: i64,
    clean: bool,
    ledger: String,
    payments_checked: usize,
    refunds_checked: usize,
    differences: Vec<String>,
    notes: Vec<String>,
    summary: Vec<String>,
}

#[derive(Deserialize)]
pub struct AuditQuery {
    #[serde(default)]
    days: Option<i64>,
}

pub async fn audit_page(
    State(state): State<AppState>,
    SignedInOperator(operator): SignedInOperator,
    Query(query): Query<AuditQuery>,
) -> PageResult<Response> {
    let days = query.days.unwrap_or(7).clamp(1, 90);
    let outcome = audit::run_and_record(&state.services, days).await?;
    let page = AuditPage {
        email: operator.email,
        days,
        clean: outcome.is_clean(),
        ledger: outcome.ledger.to_string(),
        payments_checked: outcome.payments_checked,
        refunds_checked: outcome.refunds_checked,
        differences: outcome.differences,
        notes: outcome.notes,
        summary: outcome.operator_summary,
    };
    Ok(Html(page.render()?).into_response())
}
