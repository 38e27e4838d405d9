//! India Standard Time, which Kalp Studio's customers, its pages and its GST documents keep:
//! one definition for pages, promotional expiries and financial years.

use chrono::{DateTime, FixedOffset, NaiveDate, TimeZone, Utc};

/// UTC+05:30 (checked when compiling).
pub const IST: FixedOffset = match FixedOffset::east_opt(5 * 3600 + 30 * 60) {
    Some(offset) => offset,
    None => panic!("IST is within a day of UTC"),
};

/// Midnight IST at the start of `date`.
pub fn ist_midnight(date: NaiveDate) -> Option<DateTime<Utc>> {
    date.and_hms_opt(0, 0, 0)
        .and_then(|t| IST.from_local_datetime(&t).single())
        .map(|t| t.with_timezone(&Utc))
}
