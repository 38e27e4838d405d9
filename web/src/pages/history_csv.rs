//! Credit History as CSV: the whole history as filtered, streamed page by page.

use std::fmt::Write as _;

use axum::{
    extract::{Query, State, rejection::QueryRejection},
    http::{HeaderValue, header},
    response::{IntoResponse, Response},
};
use futures_util::StreamExt;
use ledger::HistoryQuery;

use crate::{
    pages::{
        error::PageResult,
        history::{HistoryParams, filters, history_rows},
        session::CurrentUser,
        views::push_csv_field,
    },
    state::AppState,
};

/// One page of history as CSV lines.
async fn csv_lines(
    state: &AppState,
    user: &CurrentUser,
    query: &HistoryQuery,
    page: &ledger::HistoryPage,
) -> PageResult<String> {
    let rows = history_rows(state, user, query, page).await?;
    let mut out = String::with_capacity(rows.len() * 64);
    for row in rows {
        for field in [row.date.as_str(), row.kind, &row.description] {
            push_csv_field(&mut out, field);
            out.push(',');
        }
        // Writing to a String cannot fail.
        let _ = write!(out, "{}", row.amount);
        for field in [&row.amount_paid, &row.method, &row.payment_id] {
            out.push(',');
            push_csv_field(&mut out, field);
        }
        out.push('\n');
    }
    Ok(out)
}

/// Where a CSV download has got to: the query for the next page, or done.
struct CsvCursor {
    state: AppState,
    user: CurrentUser,
    query: Option<HistoryQuery>,
}

impl CsvCursor {
    /// The next page's lines, read when the client has taken the previous ones: memory holds one
    /// page (500 entries) however long the history, and a slow client slows only its reads.
    async fn next_chunk(mut self) -> Option<(Result<String, std::io::Error>, CsvCursor)> {
        let mut query = self.query.take()?;
        let chunk = async {
            let page = self.state.ledger.history(self.user.wallet, &query).await?;
            let lines = csv_lines(&self.state, &self.user, &query, &page).await?;
            PageResult::Ok((lines, page.next))
        }
        .await;
        match chunk {
            Ok((lines, next)) => {
                self.query = next.map(|n| {
                    query.before = Some(n);
                    query
                });
                Some((Ok(lines), self))
            }
            Err(e) => {
                // The headers are sent: cutting the body short is how the client learns.
                tracing::warn!(error = %e, "a CSV download stopped part way");
                Some((
                    Err(std::io::Error::other("the history could not be read")),
                    self,
                ))
            }
        }
    }
}

/// The whole Credit History (as filtered) as CSV, streamed page by page.
pub async fn history_csv(
    State(state): State<AppState>,
    user: CurrentUser,
    params: Result<Query<HistoryParams>, QueryRejection>,
) -> PageResult<Response> {
    let params = filters(params)?;
    let mut query = params.query(ledger::MAX_PAGE)?;
    // The first page is read before answering, so a failure there is an error page, not a
    // truncated file.
    let page = state.ledger.history(user.wallet, &query).await?;
    let mut first =
        String::from("date,type,description,credits,amount_paid,method,razorpay_payment_id\n");
    first.push_str(&csv_lines(&state, &user, &query, &page).await?);
    let rest = CsvCursor {
        state,
        user,
        query: page.next.map(|n| {
            query.before = Some(n);
            query
        }),
    };
    let body = futures_util::stream::once(async move { Ok(first) })
        .chain(futures_util::stream::unfold(rest, CsvCursor::next_chunk));
    let mut response = axum::body::Body::from_stream(body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    headers.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("attachment; filename=\"credit-history.csv\""),
    );
    Ok(response)
}
