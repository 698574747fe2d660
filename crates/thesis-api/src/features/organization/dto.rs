use chrono::{DateTime, Utc};
use garde::Validate;
use serde::{Deserialize, Serialize};
use thesis_db::entities::{OptInShareData, OrganizationType, Role, SubscriptionPlan, organization};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::error::rules;
use crate::patch::{self, Patch};

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreateOrganizationRequest {
    #[garde(length(chars, max = 200), custom(rules::not_blank))]
    #[schema(min_length = 1, max_length = 200)]
    pub name: String,
    /// Contact e-mail of the organization (billing mail goes here).
    #[garde(custom(rules::email))]
    #[schema(format = Email)]
    pub email: String,
    #[garde(skip)]
    pub r#type: OrganizationType,
}

/// Fields of `PUT /organization`. `optInShareData` and `usageLimitCents` need the admin role;
/// the pricing fields (`usageAllowanceCents`, `pricePerSeatCents`, `priceForOrganizationCents`,
/// `machineQuota`) only platform administrators may set. `null` clears a nullable field.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateOrganizationRequest {
    #[serde(default)]
    #[garde(skip)]
    #[schema(value_type = Option<OptInShareData>)]
    pub opt_in_share_data: Patch<OptInShareData>,
    #[serde(default)]
    #[garde(custom(patch::cents))]
    #[schema(value_type = Option<i64>, minimum = 0)]
    pub usage_limit_cents: Patch<i64>,
    #[serde(default)]
    #[garde(custom(patch::cents))]
    #[schema(value_type = Option<i64>, minimum = 0)]
    pub usage_allowance_cents: Patch<i64>,
    #[serde(default)]
    #[garde(custom(patch::cents))]
    #[schema(value_type = Option<i64>, minimum = 0)]
    pub price_per_seat_cents: Patch<i64>,
    #[serde(default)]
    #[garde(custom(patch::cents))]
    #[schema(value_type = Option<i64>, minimum = 0)]
    pub price_for_organization_cents: Patch<i64>,
    #[serde(default)]
    #[garde(custom(patch::count))]
    #[schema(value_type = Option<i64>, minimum = 0)]
    pub machine_quota: Patch<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrganizationDto {
    pub id: Uuid,
    pub name: String,
    pub email: String,
    pub r#type: OrganizationType,
    pub subscription_plan: SubscriptionPlan,
    pub opt_in_share_data: OptInShareData,
    pub usage_limit_cents: Option<i64>,
    pub usage_allowance_cents: Option<i64>,
    pub price_per_seat_cents: Option<i64>,
    pub price_for_organization_cents: Option<i64>,
    pub machine_quota: Option<i64>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<organization::Model> for OrganizationDto {
    fn from(m: organization::Model) -> Self {
        OrganizationDto {
            id: m.id,
            name: m.name,
            email: m.email,
            r#type: m.r#type,
            subscription_plan: m.subscription_plan,
            opt_in_share_data: m.opt_in_share_data,
            usage_limit_cents: m.usage_limit_cents,
            usage_allowance_cents: m.usage_allowance_cents,
            price_per_seat_cents: m.price_per_seat_cents,
            price_for_organization_cents: m.price_for_organization_cents,
            machine_quota: m.machine_quota,
            created_at: m.created_at,
            updated_at: m.updated_at,
        }
    }
}

/// An organization with the caller's role in it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrganizationWithRoleDto {
    #[serde(flatten)]
    pub organization: OrganizationDto,
    pub role: Role,
}
