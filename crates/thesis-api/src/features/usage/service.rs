use chrono::{DateTime, Utc};
use sea_orm::prelude::*;
use sea_orm::sea_query::Expr;
use sea_orm::{PaginatorTrait, QueryOrder, QuerySelect, Select};
use thesis_db::entities::{MetricType, usage_record};

use super::dto::*;
use crate::billing::money::nanos_to_cents;
use crate::error::ApiError;
use crate::pagination::PageQuery;

/// Usage records of an organization in a range, newest first.
pub fn records_query(
    org_id: Option<Uuid>,
    start: Option<DateTime<Utc>>,
    end: Option<DateTime<Utc>>,
    metric: Option<MetricType>,
) -> Select<usage_record::Entity> {
    let mut q = usage_record::Entity::find();
    if let Some(org) = org_id {
        q = q.filter(usage_record::Column::OrganizationId.eq(org));
    }
    if let Some(s) = start {
        q = q.filter(usage_record::Column::CreatedAt.gte(s));
    }
    if let Some(e) = end {
        q = q.filter(usage_record::Column::CreatedAt.lt(e));
    }
    if let Some(m) = metric {
        q = q.filter(usage_record::Column::MetricType.eq(m));
    }
    q.order_by_desc(usage_record::Column::CreatedAt)
        .order_by_desc(usage_record::Column::Id)
}

/// One page of records and the total count.
pub async fn page<C: ConnectionTrait>(
    conn: &C,
    query: Select<usage_record::Entity>,
    page: &PageQuery,
) -> Result<(Vec<usage_record::Model>, u64), ApiError> {
    let total = query.clone().count(conn).await?;
    let rows = query
        .offset(page.offset)
        .limit(page.limit)
        .all(conn)
        .await?;
    Ok((rows, total))
}

type Row = (i64, i64, i64, i64, i64, i64, i64, f64);
type KeyedRow<K> = (K, i64, i64, i64, i64, i64, i64, i64, f64);

fn totals_columns<E: EntityTrait>(q: Select<E>) -> Select<E> {
    q.column_as(Expr::cust("COUNT(*)"), "records")
        .column_as(
            Expr::cust("CAST(COALESCE(SUM(cost_nanocents), 0) AS BIGINT)"),
            "cost",
        )
        .column_as(
            Expr::cust("CAST(COALESCE(SUM(trial_covered_nanocents), 0) AS BIGINT)"),
            "covered",
        )
        .column_as(
            Expr::cust("CAST(COALESCE(SUM(input_tokens), 0) AS BIGINT)"),
            "input",
        )
        .column_as(
            Expr::cust("CAST(COALESCE(SUM(output_tokens), 0) AS BIGINT)"),
            "output",
        )
        .column_as(
            Expr::cust("CAST(COALESCE(SUM(cached_tokens), 0) AS BIGINT)"),
            "cached",
        )
        .column_as(
            Expr::cust("CAST(COALESCE(SUM(reasoning_tokens), 0) AS BIGINT)"),
            "reasoning",
        )
        .column_as(
            Expr::cust("CAST(COALESCE(SUM(quantity), 0) AS DOUBLE PRECISION)"),
            "quantity",
        )
}

fn to_totals(r: Row) -> UsageTotalsDto {
    UsageTotalsDto {
        records: r.0,
        cost_cents: nanos_to_cents(r.1),
        trial_covered_cents: nanos_to_cents(r.2),
        input_tokens: r.3,
        output_tokens: r.4,
        cached_tokens: r.5,
        reasoning_tokens: r.6,
        quantity: r.7,
    }
}

fn filtered(
    org_id: Uuid,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> Select<usage_record::Entity> {
    usage_record::Entity::find()
        .filter(usage_record::Column::OrganizationId.eq(org_id))
        .filter(usage_record::Column::CreatedAt.gte(start))
        .filter(usage_record::Column::CreatedAt.lt(end))
        .select_only()
}

/// Totals in `[start, end)`, overall, per model (token usage) and per metric type. Every figure is
/// an integer sum in the database, converted to cents at the end.
pub async fn summary<C: ConnectionTrait>(
    conn: &C,
    org_id: Uuid,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> Result<UsageSummaryDto, ApiError> {
    let overall: Option<Row> = totals_columns(filtered(org_id, start, end))
        .into_tuple()
        .one(conn)
        .await?;
    let by_model: Vec<KeyedRow<Option<String>>> = totals_columns(
        filtered(org_id, start, end)
            .column(usage_record::Column::Model)
            .filter(usage_record::Column::Model.is_not_null()),
    )
    .group_by(usage_record::Column::Model)
    .order_by_asc(usage_record::Column::Model)
    .into_tuple()
    .all(conn)
    .await?;
    let by_metric: Vec<KeyedRow<MetricType>> =
        totals_columns(filtered(org_id, start, end).column(usage_record::Column::MetricType))
            .group_by(usage_record::Column::MetricType)
            .order_by_asc(usage_record::Column::MetricType)
            .into_tuple()
            .all(conn)
            .await?;
    Ok(UsageSummaryDto {
        start_date: start,
        end_date: end,
        totals: overall.map(to_totals).unwrap_or_default(),
        by_model: by_model
            .into_iter()
            .map(|(m, a, b, c, d, e, f, g, h)| ModelUsageDto {
                model: m.unwrap_or_default(),
                totals: to_totals((a, b, c, d, e, f, g, h)),
            })
            .collect(),
        by_metric_type: by_metric
            .into_iter()
            .map(|(m, a, b, c, d, e, f, g, h)| MetricUsageDto {
                metric_type: m,
                totals: to_totals((a, b, c, d, e, f, g, h)),
            })
            .collect(),
    })
}
