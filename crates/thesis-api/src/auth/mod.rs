//! Who is calling, and in which organization with which role.
//!
//! `Caller` authenticates a bearer token (API key or login session). `OrgCtx<R>` adds the current
//! organization (CONTRACT section 3) and requires at least role `R` in it. `PlatformAdmin`
//! requires a platform administrator. Every tenant-scoped feature builds on these.

pub mod password;
pub mod tokens;

use std::marker::PhantomData;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use chrono::{DateTime, Duration, Utc};
use sea_orm::prelude::*;
use sea_orm::{ActiveValue::Set, QueryOrder};
use thesis_db::entities::{Role, api_key, auth_session, membership, organization, user};

use crate::error::ApiError;
use crate::state::AppState;

/// Header that selects the current organization.
pub const ORG_HEADER: &str = "x-organization-id";
/// Cookie that may carry a login session token (read only by `GET /v1/user/by-session`).
pub const SESSION_COOKIE: &str = "thesis_session";

/// How the caller authenticated.
#[derive(Debug, Clone)]
pub enum Credential {
    Session {
        id: Uuid,
        expires_at: DateTime<Utc>,
    },
    ApiKey {
        id: Uuid,
        organization_id: Option<Uuid>,
    },
}

/// An authenticated caller.
#[derive(Debug, Clone)]
pub struct Caller {
    pub user: user::Model,
    pub credential: Credential,
    pub is_platform_admin: bool,
    /// The organization named by the `x-organization-id` header, if any.
    pub requested_org: Option<Uuid>,
}

impl Caller {
    pub fn api_key_org(&self) -> Option<Uuid> {
        match self.credential {
            Credential::ApiKey {
                organization_id, ..
            } => organization_id,
            Credential::Session { .. } => None,
        }
    }
}

fn unauthorized(message: &str) -> ApiError {
    ApiError::Unauthorized(message.to_string())
}

/// The bearer token of the `Authorization` header, if one is present.
pub fn bearer_token(headers: &HeaderMap) -> Result<Option<&str>, ApiError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let value = value
        .to_str()
        .map_err(|_| unauthorized("the Authorization header is not valid text"))?;
    let (scheme, token) = value
        .split_once(' ')
        .ok_or_else(|| unauthorized("the Authorization header must be `Bearer TOKEN`"))?;
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(unauthorized(
            "the Authorization header must be `Bearer TOKEN`",
        ));
    }
    Ok(Some(token.trim()))
}

/// The session token of the `thesis_session` cookie, if any.
pub fn session_cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value.trim())
}

fn requested_org(headers: &HeaderMap) -> Result<Option<Uuid>, ApiError> {
    match headers.get(ORG_HEADER) {
        None => Ok(None),
        Some(v) => v
            .to_str()
            .ok()
            .and_then(|s| Uuid::parse_str(s.trim()).ok())
            .map(Some)
            .ok_or_else(|| {
                ApiError::Validation(vec![format!(
                    "{ORG_HEADER}: must be an organization id (UUID)"
                )])
            }),
    }
}

/// How often `last_used_at` is written for a token in use.
const LAST_USED_GRANULARITY: i64 = 60;

/// Resolves a bearer token to a caller; any unknown, expired or revoked token is 401.
pub async fn authenticate(
    state: &AppState,
    token: &str,
) -> Result<(user::Model, Credential), ApiError> {
    let now = thesis_db::now();
    let hash = tokens::sha256_hex(token);
    if token.starts_with(tokens::SESSION_PREFIX) {
        let found = auth_session::Entity::find()
            .filter(auth_session::Column::TokenHash.eq(hash))
            .find_also_related(user::Entity)
            .one(&state.db)
            .await?;
        let Some((session, Some(user))) = found else {
            return Err(unauthorized("invalid token"));
        };
        if session.revoked_at.is_some() {
            return Err(unauthorized("this session has been revoked"));
        }
        if session.expires_at <= now {
            return Err(unauthorized("this session has expired; log in again"));
        }
        if session
            .last_used_at
            .is_none_or(|t| (now - t).num_seconds() >= LAST_USED_GRANULARITY)
        {
            auth_session::Entity::update_many()
                .col_expr(auth_session::Column::LastUsedAt, Expr::value(now))
                .filter(auth_session::Column::Id.eq(session.id))
                .exec(&state.db)
                .await?;
        }
        Ok((
            user,
            Credential::Session {
                id: session.id,
                expires_at: session.expires_at,
            },
        ))
    } else if token.starts_with(tokens::API_KEY_PREFIX) {
        let found = api_key::Entity::find()
            .filter(api_key::Column::KeyHash.eq(hash))
            .find_also_related(user::Entity)
            .one(&state.db)
            .await?;
        let Some((key, Some(user))) = found else {
            return Err(unauthorized("invalid token"));
        };
        if key.revoked_at.is_some() {
            return Err(unauthorized("this API key has been revoked"));
        }
        if key
            .last_used_at
            .is_none_or(|t| (now - t).num_seconds() >= LAST_USED_GRANULARITY)
        {
            api_key::Entity::update_many()
                .col_expr(api_key::Column::LastUsedAt, Expr::value(now))
                .filter(api_key::Column::Id.eq(key.id))
                .exec(&state.db)
                .await?;
        }
        Ok((
            user,
            Credential::ApiKey {
                id: key.id,
                organization_id: key.organization_id,
            },
        ))
    } else {
        Err(unauthorized("invalid token"))
    }
}

impl AppState {
    pub fn is_platform_admin(&self, user: &user::Model) -> bool {
        user.is_admin || self.admin_emails.contains(&user.email_normalized)
    }

    /// Creates a login session for `user_id`; returns the token (shown once) and its expiry.
    pub async fn create_login_session<C: ConnectionTrait>(
        &self,
        conn: &C,
        user_id: Uuid,
    ) -> Result<(String, DateTime<Utc>), ApiError> {
        let token = tokens::generate(tokens::SESSION_PREFIX);
        let now = thesis_db::now();
        let expires_at = now + Duration::days(SESSION_DAYS);
        auth_session::ActiveModel {
            id: Set(thesis_db::new_id()),
            user_id: Set(user_id),
            token_hash: Set(tokens::sha256_hex(&token)),
            created_at: Set(now),
            expires_at: Set(expires_at),
            revoked_at: Set(None),
            last_used_at: Set(None),
        }
        .insert(conn)
        .await?;
        Ok((token, expires_at))
    }
}

/// Lifetime of a login session.
pub const SESSION_DAYS: i64 = 30;

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        if let Some(caller) = parts.extensions.get::<Caller>() {
            return Ok(caller.clone());
        }
        let token = bearer_token(&parts.headers)?.ok_or_else(|| {
            unauthorized("missing bearer token: send `Authorization: Bearer TOKEN`")
        })?;
        let (user, credential) = authenticate(state, token).await?;
        let caller = Caller {
            is_platform_admin: state.is_platform_admin(&user),
            requested_org: requested_org(&parts.headers)?,
            user,
            credential,
        };
        parts.extensions.insert(caller.clone());
        Ok(caller)
    }
}

/// A caller when a bearer token is given, nobody otherwise; a bad token is still 401.
pub struct OptionalCaller(pub Option<Caller>);

impl FromRequestParts<AppState> for OptionalCaller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        if bearer_token(&parts.headers)?.is_none() {
            return Ok(OptionalCaller(None));
        }
        Caller::from_request_parts(parts, state)
            .await
            .map(|c| OptionalCaller(Some(c)))
    }
}

/// A platform administrator; anyone else is 403.
pub struct PlatformAdmin(pub Caller);

impl FromRequestParts<AppState> for PlatformAdmin {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let caller = Caller::from_request_parts(parts, state).await?;
        if !caller.is_platform_admin {
            return Err(ApiError::Forbidden("platform administrators only".into()));
        }
        Ok(PlatformAdmin(caller))
    }
}

/// The least role a route needs.
pub trait MinRole: Send + Sync + 'static {
    const ROLE: Role;
}

/// Any member of the organization.
pub struct Member;
/// `admin` or `owner`.
pub struct Admin;
/// `owner` only.
pub struct Owner;

impl MinRole for Member {
    const ROLE: Role = Role::Member;
}
impl MinRole for Admin {
    const ROLE: Role = Role::Admin;
}
impl MinRole for Owner {
    const ROLE: Role = Role::Owner;
}

/// The caller acting in their current organization with at least role `R`.
pub struct OrgCtx<R: MinRole = Member> {
    pub caller: Caller,
    pub organization: organization::Model,
    pub membership: membership::Model,
    _role: PhantomData<R>,
}

impl<R: MinRole> OrgCtx<R> {
    pub fn org_id(&self) -> Uuid {
        self.organization.id
    }
    pub fn role(&self) -> Role {
        self.membership.role
    }
}

/// Resolves the current organization: the `x-organization-id` header, then the body's
/// `organizationId`, then the API key's organization, then the caller's oldest membership.
/// Not an active member of the named organization is 403; no organization at all is 404.
pub async fn resolve_organization(
    state: &AppState,
    caller: &Caller,
    body_org: Option<Uuid>,
) -> Result<(organization::Model, membership::Model), ApiError> {
    let explicit = caller
        .requested_org
        .or(body_org)
        .or_else(|| caller.api_key_org());
    let active_memberships = membership::Entity::find()
        .filter(membership::Column::UserId.eq(caller.user.id))
        .filter(membership::Column::Status.eq(thesis_db::entities::MembershipStatus::Active))
        .find_also_related(organization::Entity)
        .filter(organization::Column::DeletedAt.is_null());
    match explicit {
        Some(org_id) => {
            let found = active_memberships
                .filter(membership::Column::OrganizationId.eq(org_id))
                .one(&state.db)
                .await?;
            match found {
                Some((m, Some(org))) => Ok((org, m)),
                _ => Err(ApiError::Forbidden(format!(
                    "you are not a member of organization {org_id}"
                ))),
            }
        }
        None => {
            let found = active_memberships
                .order_by_asc(membership::Column::CreatedAt)
                .order_by_asc(membership::Column::Id)
                .one(&state.db)
                .await?;
            match found {
                Some((m, Some(org))) => Ok((org, m)),
                _ => Err(ApiError::NotFound(
                    "you have no organization yet: create one with POST /v1/organization".into(),
                )),
            }
        }
    }
}

/// 403 unless `role` is at least `needed`.
pub fn require_role(role: Role, needed: Role) -> Result<(), ApiError> {
    if role >= needed {
        Ok(())
    } else {
        Err(ApiError::Forbidden(format!(
            "this action needs the {} role in the organization (yours: {})",
            needed.as_str(),
            role.as_str()
        )))
    }
}

impl<R: MinRole> OrgCtx<R> {
    /// For routes whose body names the organization: resolves with it and checks the role.
    pub async fn resolve(
        state: &AppState,
        caller: Caller,
        body_org: Option<Uuid>,
    ) -> Result<Self, ApiError> {
        let (organization, membership) = resolve_organization(state, &caller, body_org).await?;
        require_role(membership.role, R::ROLE)?;
        Ok(OrgCtx {
            caller,
            organization,
            membership,
            _role: PhantomData,
        })
    }
}

impl<R: MinRole> FromRequestParts<AppState> for OrgCtx<R> {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let caller = Caller::from_request_parts(parts, state).await?;
        OrgCtx::resolve(state, caller, None).await
    }
}
