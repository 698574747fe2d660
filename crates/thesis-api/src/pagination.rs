//! `limit`/`offset` pagination and `startDate`/`endDate` filters, parsed with messages that name
//! the parameter, and the `{"data","total","limit","offset"}` envelope.

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::error::ApiError;

pub const DEFAULT_LIMIT: u64 = 20;
pub const MAX_LIMIT: u64 = 100;

/// Query parameters as sent; see [`PageQuery`] for their meaning.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct RawPageQuery {
    /// Number of records to return (1 to 100, default 20).
    #[param(value_type = Option<u64>, minimum = 1, maximum = 100)]
    pub limit: Option<String>,
    /// Number of records to skip (default 0).
    #[param(value_type = Option<u64>, minimum = 0)]
    pub offset: Option<String>,
    /// Only records from this instant or date (ISO 8601, e.g. `2026-01-15` or `2026-01-15T10:30:00Z`).
    pub start_date: Option<String>,
    /// Only records until this instant, or through this whole date (ISO 8601).
    pub end_date: Option<String>,
}

/// Parsed pagination and date range; `end` is exclusive.
#[derive(Debug, Clone)]
pub struct PageQuery {
    pub limit: u64,
    pub offset: u64,
    pub start: Option<DateTime<Utc>>,
    pub end: Option<DateTime<Utc>>,
}

/// Parses an ISO 8601 instant or date. A date is its midnight (UTC); with `end_of_day`, the
/// following midnight, so that the whole day is included.
pub fn parse_date(value: &str, end_of_day: bool) -> Option<DateTime<Utc>> {
    let v = value.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(v) {
        let t = t.with_timezone(&Utc);
        return Some(if end_of_day {
            t + Duration::microseconds(1)
        } else {
            t
        });
    }
    let date = NaiveDate::parse_from_str(v, "%Y-%m-%d").ok()?;
    let date = if end_of_day { date.succ_opt()? } else { date };
    Some(Utc.from_utc_datetime(&date.and_hms_opt(0, 0, 0)?))
}

pub fn parse_count(
    name: &str,
    value: Option<&str>,
    default: u64,
    min: u64,
    max: u64,
    errors: &mut Vec<String>,
) -> u64 {
    match value {
        None => default,
        Some(raw) => match raw.trim().parse::<u64>() {
            Ok(n) if (min..=max).contains(&n) => n,
            _ => {
                errors.push(format!(
                    "{name}: must be a whole number from {min} to {max}"
                ));
                default
            }
        },
    }
}

impl RawPageQuery {
    pub fn parse(&self) -> Result<PageQuery, ApiError> {
        let mut errors = vec![];
        let limit = parse_count(
            "limit",
            self.limit.as_deref(),
            DEFAULT_LIMIT,
            1,
            MAX_LIMIT,
            &mut errors,
        );
        let offset = parse_count(
            "offset",
            self.offset.as_deref(),
            0,
            0,
            i64::MAX as u64,
            &mut errors,
        );
        let (start, end) = parse_range(
            self.start_date.as_deref(),
            self.end_date.as_deref(),
            &mut errors,
        );
        if errors.is_empty() {
            Ok(PageQuery {
                limit,
                offset,
                start,
                end,
            })
        } else {
            Err(ApiError::Validation(errors))
        }
    }
}

/// Parses `startDate`/`endDate`; the end is exclusive and must follow the start.
pub fn parse_range(
    start: Option<&str>,
    end: Option<&str>,
    errors: &mut Vec<String>,
) -> (Option<DateTime<Utc>>, Option<DateTime<Utc>>) {
    let start = start.and_then(|s| {
        let parsed = parse_date(s, false);
        if parsed.is_none() {
            errors.push("startDate: must be an ISO 8601 date or date-time".into());
        }
        parsed
    });
    let end = end.and_then(|s| {
        let parsed = parse_date(s, true);
        if parsed.is_none() {
            errors.push("endDate: must be an ISO 8601 date or date-time".into());
        }
        parsed
    });
    if let (Some(s), Some(e)) = (start, end)
        && e <= s
    {
        errors.push("endDate: must not be before startDate".into());
    }
    (start, end)
}

/// A page of a list.
#[derive(Debug, Serialize, ToSchema)]
pub struct Page<T: ToSchema> {
    pub data: Vec<T>,
    /// Matching records in all pages.
    pub total: u64,
    pub limit: u64,
    pub offset: u64,
}

/// Extractor of [`RawPageQuery`] parsed into a [`PageQuery`] (400 naming bad parameters).
pub struct Pagination(pub PageQuery);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Pagination {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, ApiError> {
        let axum::extract::Query(raw) =
            axum::extract::Query::<RawPageQuery>::from_request_parts(parts, state)
                .await
                .map_err(|e| ApiError::Validation(vec![e.body_text()]))?;
        Ok(Pagination(raw.parse()?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_counts() {
        let d = parse_date("2026-01-15", false).unwrap();
        assert_eq!(d.to_rfc3339(), "2026-01-15T00:00:00+00:00");
        let e = parse_date("2026-01-15", true).unwrap();
        assert_eq!(e.to_rfc3339(), "2026-01-16T00:00:00+00:00");
        assert!(parse_date("2026-01-15T10:30:00Z", false).is_some());
        assert!(parse_date("2026-01-15T10:30:00+02:00", false).is_some());
        assert!(parse_date("yesterday", false).is_none());
        let q = RawPageQuery {
            limit: Some("0".into()),
            offset: Some("-1".into()),
            start_date: Some("x".into()),
            end_date: None,
        };
        match q.parse() {
            Err(ApiError::Validation(m)) => assert_eq!(m.len(), 3, "{m:?}"),
            other => panic!("{other:?}"),
        }
    }
}
