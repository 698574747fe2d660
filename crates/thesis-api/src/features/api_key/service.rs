use sea_orm::ActiveValue::Set;
use sea_orm::QueryOrder;
use sea_orm::prelude::*;
use thesis_db::entities::{MembershipStatus, api_key, membership, organization};

use crate::auth::tokens;
use crate::error::ApiError;

/// How many characters of a key are kept in clear to recognise it.
const PREFIX_LEN: usize = 12;

/// Creates an API key for `user_id`; returns the row and the key (shown once). With an
/// organization, the user must be an active member of it (403 otherwise).
pub async fn create_api_key<C: ConnectionTrait>(
    db: &C,
    user_id: Uuid,
    name: &str,
    organization_id: Option<Uuid>,
) -> Result<(api_key::Model, String), ApiError> {
    if let Some(org_id) = organization_id {
        let member = membership::Entity::find()
            .filter(membership::Column::OrganizationId.eq(org_id))
            .filter(membership::Column::UserId.eq(user_id))
            .filter(membership::Column::Status.eq(MembershipStatus::Active))
            .inner_join(organization::Entity)
            .filter(organization::Column::DeletedAt.is_null())
            .one(db)
            .await?;
        if member.is_none() {
            return Err(ApiError::Forbidden(format!(
                "you are not a member of organization {org_id}"
            )));
        }
    }
    let key = tokens::generate(tokens::API_KEY_PREFIX);
    let model = api_key::ActiveModel {
        id: Set(thesis_db::new_id()),
        user_id: Set(user_id),
        organization_id: Set(organization_id),
        name: Set(name.trim().to_string()),
        prefix: Set(key[..PREFIX_LEN].to_string()),
        key_hash: Set(tokens::sha256_hex(&key)),
        created_at: Set(thesis_db::now()),
        last_used_at: Set(None),
        revoked_at: Set(None),
    }
    .insert(db)
    .await?;
    Ok((model, key))
}

pub async fn list_api_keys<C: ConnectionTrait>(
    db: &C,
    user_id: Uuid,
) -> Result<Vec<api_key::Model>, ApiError> {
    Ok(api_key::Entity::find()
        .filter(api_key::Column::UserId.eq(user_id))
        .filter(api_key::Column::RevokedAt.is_null())
        .order_by_asc(api_key::Column::CreatedAt)
        .all(db)
        .await?)
}

/// Revokes one of the user's keys; someone else's key is 404.
pub async fn revoke_api_key<C: ConnectionTrait>(
    db: &C,
    user_id: Uuid,
    id: Uuid,
) -> Result<(), ApiError> {
    let result = api_key::Entity::update_many()
        .col_expr(api_key::Column::RevokedAt, Expr::value(thesis_db::now()))
        .filter(api_key::Column::Id.eq(id))
        .filter(api_key::Column::UserId.eq(user_id))
        .filter(api_key::Column::RevokedAt.is_null())
        .exec(db)
        .await?;
    if result.rows_affected == 0 {
        return Err(ApiError::not_found("API key"));
    }
    Ok(())
}
