use sea_orm::ActiveValue::Set;
use sea_orm::prelude::*;
use sea_orm::{IntoActiveModel, QueryOrder, TransactionTrait};
use thesis_db::entities::{
    MembershipStatus, OptInShareData, OrganizationType, Role, SubscriptionPlan, membership,
    organization, user,
};

use super::dto::UpdateOrganizationRequest;
use crate::auth::require_role;
use crate::error::{ApiError, normalize_email};

pub struct NewOrganization {
    pub name: String,
    pub email: String,
    pub r#type: OrganizationType,
}

/// Creates an organization on the free plan with `creator` as its active owner, in one transaction.
pub async fn create_organization(
    db: &sea_orm::DatabaseConnection,
    creator: &user::Model,
    new: NewOrganization,
) -> Result<organization::Model, ApiError> {
    let now = thesis_db::now();
    let txn = db.begin().await?;
    let org = organization::ActiveModel {
        id: Set(thesis_db::new_id()),
        name: Set(new.name.trim().to_string()),
        email: Set(new.email.trim().to_string()),
        r#type: Set(new.r#type),
        subscription_plan: Set(SubscriptionPlan::Free),
        opt_in_share_data: Set(OptInShareData::Private),
        usage_limit_cents: Set(None),
        usage_allowance_cents: Set(None),
        price_per_seat_cents: Set(None),
        price_for_organization_cents: Set(None),
        machine_quota: Set(None),
        deleted_at: Set(None),
        stripe_customer_id: Set(None),
        stripe_subscription_id: Set(None),
        subscription_status: Set(None),
        cancel_at_period_end: Set(false),
        current_period_start: Set(None),
        current_period_end: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(&txn)
    .await?;
    membership::ActiveModel {
        id: Set(thesis_db::new_id()),
        organization_id: Set(org.id),
        user_id: Set(Some(creator.id)),
        email: Set(creator.email.clone()),
        email_normalized: Set(normalize_email(&creator.email)),
        role: Set(Role::Owner),
        status: Set(MembershipStatus::Active),
        invite_token_hash: Set(None),
        invite_expires_at: Set(None),
        invited_by: Set(None),
        accepted_at: Set(Some(now)),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(&txn)
    .await?;
    txn.commit().await?;
    Ok(org)
}

/// The organizations the user is an active member of, oldest membership first, with the role.
pub async fn list_organizations<C: ConnectionTrait>(
    db: &C,
    user_id: Uuid,
) -> Result<Vec<(organization::Model, Role)>, ApiError> {
    let rows = membership::Entity::find()
        .filter(membership::Column::UserId.eq(user_id))
        .filter(membership::Column::Status.eq(MembershipStatus::Active))
        .find_also_related(organization::Entity)
        .filter(organization::Column::DeletedAt.is_null())
        .order_by_asc(membership::Column::CreatedAt)
        .order_by_asc(membership::Column::Id)
        .all(db)
        .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(m, org)| org.map(|o| (o, m.role)))
        .collect())
}

/// Applies `PUT /organization`. Permissions are checked for every field before anything is
/// written, so a refused request changes nothing.
pub async fn update_organization<C: ConnectionTrait>(
    db: &C,
    org: organization::Model,
    role: Role,
    is_platform_admin: bool,
    patch: UpdateOrganizationRequest,
) -> Result<organization::Model, ApiError> {
    let pricing: Vec<&str> = [
        (
            "usageAllowanceCents",
            patch.usage_allowance_cents.is_present(),
        ),
        ("pricePerSeatCents", patch.price_per_seat_cents.is_present()),
        (
            "priceForOrganizationCents",
            patch.price_for_organization_cents.is_present(),
        ),
        ("machineQuota", patch.machine_quota.is_present()),
    ]
    .into_iter()
    .filter_map(|(name, present)| present.then_some(name))
    .collect();
    if !pricing.is_empty() && !is_platform_admin {
        return Err(ApiError::Forbidden(format!(
            "only platform administrators may set {}",
            pricing.join(", ")
        )));
    }
    let admin_fields = patch.opt_in_share_data.is_present() || patch.usage_limit_cents.is_present();
    if admin_fields && !is_platform_admin {
        require_role(role, Role::Admin)?;
    }

    let mut active = org.clone().into_active_model();
    let mut changed = false;
    match patch.opt_in_share_data {
        crate::patch::Patch::Value(v) => {
            active.opt_in_share_data = Set(v);
            changed = true;
        }
        crate::patch::Patch::Null => {
            return Err(ApiError::Validation(vec![
                "optInShareData: must be `private` or `shareData`, not null".into(),
            ]));
        }
        crate::patch::Patch::Absent => {}
    }
    if let Some(v) = patch.usage_limit_cents.into_update() {
        active.usage_limit_cents = Set(v);
        changed = true;
    }
    if let Some(v) = patch.usage_allowance_cents.into_update() {
        active.usage_allowance_cents = Set(v);
        changed = true;
    }
    if let Some(v) = patch.price_per_seat_cents.into_update() {
        active.price_per_seat_cents = Set(v);
        changed = true;
    }
    if let Some(v) = patch.price_for_organization_cents.into_update() {
        active.price_for_organization_cents = Set(v);
        changed = true;
    }
    if let Some(v) = patch.machine_quota.into_update() {
        active.machine_quota = Set(v);
        changed = true;
    }
    if !changed {
        return Ok(org);
    }
    active.updated_at = Set(thesis_db::now());
    Ok(active.update(db).await?)
}
