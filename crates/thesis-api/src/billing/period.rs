//! Billing periods and days.

use chrono::{DateTime, Datelike, Duration, NaiveDate, TimeZone, Utc};
use thesis_db::entities::{SubscriptionPlan, organization};

/// `YYYY-MM-DD` of a UTC instant.
pub fn day_of(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d").to_string()
}

/// Start of the UTC day containing `t`.
pub fn start_of_day(t: DateTime<Utc>) -> DateTime<Utc> {
    Utc.from_utc_datetime(
        &t.date_naive()
            .and_hms_opt(0, 0, 0)
            .expect("midnight exists"),
    )
}

/// Start of the next UTC day.
pub fn next_midnight(t: DateTime<Utc>) -> DateTime<Utc> {
    let date = t.date_naive() + Duration::days(1);
    Utc.from_utc_datetime(&date.and_hms_opt(0, 0, 0).expect("midnight exists"))
}

/// The calendar month (UTC) containing `t`.
pub fn calendar_month(t: DateTime<Utc>) -> (DateTime<Utc>, DateTime<Utc>) {
    let start = NaiveDate::from_ymd_opt(t.year(), t.month(), 1).expect("first of month");
    let (ny, nm) = if t.month() == 12 {
        (t.year() + 1, 1)
    } else {
        (t.year(), t.month() + 1)
    };
    let end = NaiveDate::from_ymd_opt(ny, nm, 1).expect("first of next month");
    (
        Utc.from_utc_datetime(&start.and_hms_opt(0, 0, 0).expect("midnight")),
        Utc.from_utc_datetime(&end.and_hms_opt(0, 0, 0).expect("midnight")),
    )
}

/// The billing period of `org` at `now`: its subscription's period when one is known and
/// current, else the calendar month.
pub fn current_period(
    org: &organization::Model,
    now: DateTime<Utc>,
) -> (DateTime<Utc>, DateTime<Utc>) {
    match (
        org.subscription_plan,
        org.current_period_start,
        org.current_period_end,
    ) {
        (SubscriptionPlan::PayAsYouGo, Some(start), Some(end)) if start <= now && now < end => {
            (start, end)
        }
        _ => calendar_month(now),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_and_days() {
        let t = Utc.with_ymd_and_hms(2026, 12, 31, 23, 59, 59).unwrap();
        let (s, e) = calendar_month(t);
        assert_eq!(s, Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).unwrap());
        assert_eq!(e, Utc.with_ymd_and_hms(2027, 1, 1, 0, 0, 0).unwrap());
        assert_eq!(day_of(t), "2026-12-31");
        assert_eq!(
            next_midnight(t),
            Utc.with_ymd_and_hms(2027, 1, 1, 0, 0, 0).unwrap()
        );
    }
}
