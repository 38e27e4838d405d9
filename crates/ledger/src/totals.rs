//! Sums of a wallet's transfers over time: the Dashboard's month by kind and its days.
//!
//! They read the half-hour totals kept beside the transfers (migration m0006's table, written by
//! the same statements that insert or remove a transfer: `write::sql`), and the transfers
//! themselves only for the partial half-hours at either end of the range. The cost is
//! O(half-hours in the range) plus the transfers of at most two half-hours, instead of
//! O(transfers in the range): a customer who sends a lot no longer pays for it on every view.

use chrono::{DateTime, Utc};
use sea_orm::Value;

use crate::{
    db::{Pools, col, read_all},
    error::LedgerResult,
    types::{AccountId, HALF_HOUR, TransferKind},
};

const DAY: i64 = 86_400_000_000;

/// `[from, to)` in microseconds, cut into whole half-hours `[first, end)` read from the rollup and
/// the two partial ends read from the transfers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct RangeCut {
    half_hours: (i64, i64),
    head: (i64, i64),
    tail: (i64, i64),
}

impl RangeCut {
    fn of(from: i64, to: i64) -> RangeCut {
        let first = from.div_euclid(HALF_HOUR) + i64::from(from.rem_euclid(HALF_HOUR) != 0);
        let end = to.div_euclid(HALF_HOUR);
        if first >= end {
            return RangeCut::transfers_only(from, to);
        }
        RangeCut {
            half_hours: (first, end),
            head: (from, first * HALF_HOUR),
            tail: (end * HALF_HOUR, to),
        }
    }

    /// For days that don't begin on a half-hour (an offset such as Nepal's +5:45).
    fn transfers_only(from: i64, to: i64) -> RangeCut {
        RangeCut {
            half_hours: (0, 0),
            head: (from, to),
            tail: (0, 0),
        }
    }
}

/// A subquery `(at, kind, amount)` of what `wallet` moved in `cut`: one row per half-hour and kind
/// from the rollup (`at` is the half-hour's start), one per transfer in the partial ends.
fn moved(wallet: AccountId, cut: RangeCut, kinds: &[TransferKind]) -> (String, Vec<Value>) {
    let kind_filter = if kinds.is_empty() {
        String::new()
    } else {
        format!(" AND kind IN ({})", vec!["?"; kinds.len()].join(", "))
    };
    let mut values: Vec<Value> = Vec::new();
    let mut branch = |range: (i64, i64)| {
        values.extend([wallet.0.into(), range.0.into(), range.1.into()]);
        values.extend(kinds.iter().map(|k| Value::from(k.as_str())));
    };
    branch(cut.half_hours);
    branch(cut.head);
    branch(cut.tail);
    let transfers = format!(
        "SELECT created_at AS at, kind, amount FROM ledger_transfers \
         WHERE wallet_account_id = ? AND created_at >= ? AND created_at < ?{kind_filter}"
    );
    let sql = format!(
        "SELECT half_hour * {HALF_HOUR} AS at, kind, total AS amount FROM ledger_wallet_half_hours \
         WHERE wallet_account_id = ? AND half_hour >= ? AND half_hour < ?{kind_filter} \
         UNION ALL {transfers} UNION ALL {transfers}"
    );
    (sql, values)
}

fn micros(t: Option<DateTime<Utc>>, unbounded: i64) -> i64 {
    t.map(|t| t.timestamp_micros()).unwrap_or(unbounded)
}

/// Credits moved per kind for a wallet, in `[from, to)`.
pub(crate) async fn totals_by_kind(
    pools: &Pools,
    wallet: AccountId,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
) -> LedgerResult<Vec<(TransferKind, i64)>> {
    let cut = RangeCut::of(micros(from, i64::MIN), micros(to, i64::MAX));
    let (moved, values) = moved(wallet, cut, &[]);
    let rows = read_all(
        pools,
        &format!(
            "SELECT kind, CAST(SUM(amount) AS BIGINT) AS total FROM ({moved}) m GROUP BY kind"
        ),
        values,
    )
    .await?;
    let mut out = Vec::new();
    for row in &rows {
        let kind: String = col(row, "kind")?;
        if let Some(kind) = TransferKind::parse(&kind) {
            out.push((kind, col(row, "total")?));
        }
    }
    out.sort_by_key(|(k, _)| k.as_str());
    Ok(out)
}

/// Credits moved per day (days start at `utc_offset_secs` past UTC midnight) and kind, since
/// `from`, newest day first.
pub(crate) fn daily_totals_statement(
    wallet: AccountId,
    from: DateTime<Utc>,
    utc_offset_secs: i64,
    kinds: &[TransferKind],
) -> (String, Vec<Value>) {
    let offset = utc_offset_secs * 1_000_000;
    let from = from.timestamp_micros();
    let cut = if offset.rem_euclid(HALF_HOUR) == 0 {
        RangeCut::of(from, i64::MAX)
    } else {
        RangeCut::transfers_only(from, i64::MAX)
    };
    let (moved, moved_values) = moved(wallet, cut, kinds);
    let mut values: Vec<Value> = vec![offset.into()];
    values.extend(moved_values);
    // By position: PostgreSQL would not match a repeated `(at + $n)` to the select list.
    let sql = format!(
        "SELECT (at + ?) / {DAY} AS day, kind, CAST(SUM(amount) AS BIGINT) AS total \
         FROM ({moved}) m GROUP BY 1, 2 ORDER BY 1 DESC, 2"
    );
    (sql, values)
}

pub(crate) async fn daily_totals(
    pools: &Pools,
    wallet: AccountId,
    from: DateTime<Utc>,
    utc_offset_secs: i64,
    kinds: &[TransferKind],
) -> LedgerResult<Vec<(chrono::NaiveDate, TransferKind, i64)>> {
    let (sql, values) = daily_totals_statement(wallet, from, utc_offset_secs, kinds);
    let rows = read_all(pools, &sql, values).await?;
    let mut out = Vec::new();
    for row in &rows {
        let day: i64 = col(row, "day")?;
        let kind: String = col(row, "kind")?;
        let date = DateTime::from_timestamp_micros(day * DAY)
            .map(|t| t.date_naive())
            .unwrap_or_default();
        if let Some(kind) = TransferKind::parse(&kind) {
            out.push((date, kind, col(row, "total")?));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_range_is_cut_into_whole_half_hours_and_two_partial_ends() {
        let h = HALF_HOUR;
        let cut = RangeCut::of(h + 5, 4 * h + 7);
        assert_eq!(cut.half_hours, (2, 4));
        assert_eq!(cut.head, (h + 5, 2 * h));
        assert_eq!(cut.tail, (4 * h, 4 * h + 7));
        let aligned = RangeCut::of(2 * h, 3 * h);
        assert_eq!(aligned.half_hours, (2, 3));
        assert_eq!(aligned.head, (2 * h, 2 * h));
        assert_eq!(aligned.tail, (3 * h, 3 * h));
    }

    #[test]
    fn a_range_inside_one_half_hour_reads_only_transfers() {
        let cut = RangeCut::of(HALF_HOUR + 1, HALF_HOUR + 9);
        assert_eq!(cut.half_hours.0, cut.half_hours.1);
        assert_eq!(cut.head, (HALF_HOUR + 1, HALF_HOUR + 9));
    }

    #[test]
    fn unbounded_ends_take_every_half_hour_without_overflow() {
        let cut = RangeCut::of(i64::MIN, i64::MAX);
        assert!(cut.half_hours.0.checked_mul(HALF_HOUR).is_some());
        assert!(cut.half_hours.1 > 1_000_000_000);
        assert!(cut.head.0 <= cut.head.1 && cut.tail.0 <= cut.tail.1);
    }
}
