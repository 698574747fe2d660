use chrono::Duration;
use sea_orm::ActiveValue::Set;
use sea_orm::prelude::*;
use sea_orm::{QueryOrder, QuerySelect};
use subtle::ConstantTimeEq;
use thesis_db::entities::{MembershipStatus, Role, membership, organization, user};

use crate::auth::{require_role, tokens};
use crate::error::{ApiError, normalize_email};
use crate::integrations::mail::OutgoingMail;
use crate::state::AppState;

/// Purpose tag of invitation tokens in their keyed hash.
pub const INVITE_PURPOSE: &str = "invite";
/// How long an invitation link works.
pub const INVITE_TTL_DAYS: i64 = 7;

/// Invites `email` into `org` with `role` and mails the acceptance link. Only admins and owners
/// invite, only owners invite owners; an e-mail that already has a membership there is 409.
pub async fn invite_member(
    state: &AppState,
    org: &organization::Model,
    inviter: &user::Model,
    inviter_role: Role,
    email: &str,
    role: Role,
) -> Result<membership::Model, ApiError> {
    require_role(inviter_role, Role::Admin)?;
    if role == Role::Owner {
        require_role(inviter_role, Role::Owner)?;
    }
    let token = tokens::generate("");
    let now = thesis_db::now();
    let email = email.trim().to_string();
    let created = membership::ActiveModel {
        id: Set(thesis_db::new_id()),
        organization_id: Set(org.id),
        user_id: Set(None),
        email_normalized: Set(normalize_email(&email)),
        email: Set(email.clone()),
        role: Set(role),
        status: Set(MembershipStatus::Pending),
        invite_token_hash: Set(Some(tokens::keyed_hash(
            state.secret.expose(),
            INVITE_PURPOSE,
            &token,
        ))),
        invite_expires_at: Set(Some(now + Duration::days(INVITE_TTL_DAYS))),
        invited_by: Set(Some(inviter.id)),
        accepted_at: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(&state.db)
    .await
    .map_err(|e| {
        if thesis_db::is_unique_violation(&e) {
            ApiError::Conflict(format!(
                "{email} already has a membership in this organization"
            ))
        } else {
            e.into()
        }
    })?;

    let link = format!(
        "{}/v1/public/organization-member/{}/accept-invite-via-email?token={token}",
        state.public_url, created.id
    );
    state.mailer.send_in_background(
        &state.background,
        OutgoingMail {
            to: email,
            subject: format!("You are invited to {} on Thesis", org.name),
            body: format!(
                "{inviter} invited you to join the organization \"{org}\" on Thesis as {role}.\n\n\
                 Accept the invitation: {link}\n\n\
                 The link works for {INVITE_TTL_DAYS} days.\n",
                inviter = inviter.name,
                org = org.name,
                role = role.as_str(),
            ),
        },
    );
    Ok(created)
}

/// Memberships of the organization (pending and active) with their users, oldest first.
pub async fn list_memberships<C: ConnectionTrait>(
    db: &C,
    org_id: Uuid,
) -> Result<Vec<(membership::Model, Option<user::Model>)>, ApiError> {
    Ok(membership::Entity::find()
        .filter(membership::Column::OrganizationId.eq(org_id))
        .find_also_related(user::Entity)
        .order_by_asc(membership::Column::CreatedAt)
        .order_by_asc(membership::Column::Id)
        .all(db)
        .await?)
}

/// Removes a membership of `org_id`. A member may remove their own; otherwise admins remove
/// members and admins, and only owners remove owners. The last active owner stays (409).
///
/// The organization row is locked first (SQLite: `BEGIN IMMEDIATE`; PostgreSQL: `FOR UPDATE`),
/// so concurrent removals are serialized and the owner count is read after the previous one
/// committed: two owners removing each other at once leave one owner.
pub async fn remove_membership(
    state: &AppState,
    org_id: Uuid,
    caller: &user::Model,
    membership_id: Uuid,
) -> Result<(membership::Model, Option<user::Model>), ApiError> {
    let txn = thesis_db::begin_write(&state.db).await?;
    organization::Entity::find_by_id(org_id)
        .lock_exclusive()
        .one(&txn)
        .await?
        .ok_or_else(|| ApiError::not_found("organization"))?;

    let target = membership::Entity::find_by_id(membership_id)
        .filter(membership::Column::OrganizationId.eq(org_id))
        .find_also_related(user::Entity)
        .one(&txn)
        .await?;
    let Some((target, target_user)) = target else {
        return Err(ApiError::not_found("membership"));
    };
    // the caller's role as of now, inside the lock
    let mine = membership::Entity::find()
        .filter(membership::Column::OrganizationId.eq(org_id))
        .filter(membership::Column::UserId.eq(caller.id))
        .filter(membership::Column::Status.eq(MembershipStatus::Active))
        .one(&txn)
        .await?
        .ok_or_else(|| {
            ApiError::Forbidden("you are no longer a member of this organization".into())
        })?;

    if mine.id != target.id {
        require_role(mine.role, Role::Admin)?;
        if target.role == Role::Owner {
            require_role(mine.role, Role::Owner)?;
        }
    }
    if target.role == Role::Owner && target.status == MembershipStatus::Active {
        let owners = membership::Entity::find()
            .filter(membership::Column::OrganizationId.eq(org_id))
            .filter(membership::Column::Role.eq(Role::Owner))
            .filter(membership::Column::Status.eq(MembershipStatus::Active))
            .count(&txn)
            .await?;
        if owners <= 1 {
            return Err(ApiError::Conflict(
                "the last owner of an organization cannot be removed; make someone else owner first"
                    .into(),
            ));
        }
    }
    membership::Entity::delete_by_id(target.id)
        .exec(&txn)
        .await?;
    txn.commit().await?;
    Ok((target, target_user))
}

/// Accepts an invitation with the token from its mail: the membership becomes active and is
/// linked to the account with its e-mail (now, or at sign-up). Accepting twice is harmless.
pub async fn accept_invite(
    state: &AppState,
    membership_id: Uuid,
    token: Option<&str>,
) -> Result<membership::Model, ApiError> {
    let token = token
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| ApiError::BadRequest("the invitation token is missing".into()))?;
    let found = membership::Entity::find_by_id(membership_id)
        .one(&state.db)
        .await?
        .ok_or_else(|| ApiError::not_found("invitation"))?;
    let given = tokens::keyed_hash(state.secret.expose(), INVITE_PURPOSE, token);
    let matches = found
        .invite_token_hash
        .as_deref()
        .is_some_and(|stored| bool::from(stored.as_bytes().ct_eq(given.as_bytes())));
    if !matches {
        return Err(ApiError::BadRequest("invalid invitation token".into()));
    }
    if found.status == MembershipStatus::Active {
        return Ok(found);
    }
    let now = thesis_db::now();
    if found.invite_expires_at.is_some_and(|t| t <= now) {
        return Err(ApiError::BadRequest(
            "this invitation has expired; ask for a new one".into(),
        ));
    }
    let user_id = user::Entity::find()
        .filter(user::Column::EmailNormalized.eq(&found.email_normalized))
        .one(&state.db)
        .await?
        .map(|u| u.id);
    membership::Entity::update_many()
        .col_expr(
            membership::Column::Status,
            Expr::value(MembershipStatus::Active),
        )
        .col_expr(membership::Column::UserId, Expr::value(user_id))
        .col_expr(membership::Column::AcceptedAt, Expr::value(now))
        .col_expr(membership::Column::UpdatedAt, Expr::value(now))
        .filter(membership::Column::Id.eq(found.id))
        .filter(membership::Column::Status.eq(MembershipStatus::Pending))
        .exec(&state.db)
        .await?;
    Ok(membership::Entity::find_by_id(found.id)
        .one(&state.db)
        .await?
        .unwrap_or(found))
}

/// Loads one membership with its user (for the answer to an invite).
pub async fn membership_with_user<C: ConnectionTrait>(
    db: &C,
    m: membership::Model,
) -> Result<(membership::Model, Option<user::Model>), ApiError> {
    let user = match m.user_id {
        Some(id) => user::Entity::find_by_id(id).one(db).await?,
        None => None,
    };
    Ok((m, user))
}
