//! GST vouchers for their owner only (another account's are "not found"), as printable pages
//! and as PDF downloads: a top-up's receipt voucher (`/billing/topups/{id}/receipt`, `.pdf`)
//! and any voucher by id (`/billing/vouchers/{id}`, `.pdf`), which is how refund vouchers are
//! reached.

use askama::Template;
use axum::{
    extract::{Path, State},
    http::header,
    response::{Html, IntoResponse, Response},
};

use crate::{
    documents::{voucher_pdf::voucher_pdf, voucher_view::VoucherView},
    pages::{
        error::{PageError, PageResult},
        session::CurrentUser,
    },
    state::AppState,
    store::{topups, vouchers},
};

#[derive(Template)]
#[template(path = "voucher.html")]
struct VoucherPage {
    voucher: VoucherView,
}

/// A path segment that is a voucher id, with or without `.pdf` after it.
fn parse_id(segment: &str) -> PageResult<(i64, bool)> {
    let (id, pdf) = match segment.strip_suffix(".pdf") {
        Some(id) => (id, true),
        None => (segment, false),
    };
    let id = id.parse::<i64>().map_err(|_| PageError::NotFound)?;
    Ok((id, pdf))
}

pub async fn receipt_page(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    user: CurrentUser,
) -> PageResult<Response> {
    let view = receipt_view(&state, id, &user).await?;
    Ok(Html(VoucherPage { voucher: view }.render()?).into_response())
}

pub async fn receipt_pdf(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    user: CurrentUser,
) -> PageResult<Response> {
    let view = receipt_view(&state, id, &user).await?;
    pdf_response(&view)
}

pub async fn voucher_page(
    State(state): State<AppState>,
    Path(segment): Path<String>,
    user: CurrentUser,
) -> PageResult<Response> {
    let (id, pdf) = parse_id(&segment)?;
    let voucher = vouchers::find(&state.reads, id)
        .await?
        .filter(|v| v.user_id == user.id)
        .ok_or(PageError::NotFound)?;
    let view = VoucherView::load(&state.reads, voucher).await?;
    if pdf {
        pdf_response(&view)
    } else {
        Ok(Html(VoucherPage { voucher: view }.render()?).into_response())
    }
}

async fn receipt_view(
    state: &AppState,
    topup_id: i64,
    user: &CurrentUser,
) -> PageResult<VoucherView> {
    let topup = topups::find_owned(&state.reads, topup_id, user.id)
        .await?
        .ok_or(PageError::NotFound)?;
    let voucher = vouchers::receipt_of_topup(&state.reads, topup.id)
        .await?
        .ok_or(PageError::NotFound)?;
    Ok(VoucherView::load(&state.reads, voucher).await?)
}

fn pdf_response(view: &VoucherView) -> PageResult<Response> {
    let bytes = voucher_pdf(view).map_err(|e| PageError::Internal(e.into()))?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/pdf".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{}\"", view.file_name()),
            ),
        ],
        bytes,
    )
        .into_response())
}
