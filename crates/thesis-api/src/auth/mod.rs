//! Who is calling, and in which organization with which role.
//!
//! `Caller` authenticates a bearer token (API key or login session). `OrgCtx<R>` adds the current
//! organization (CONTRACT section 3) and requires at least role `R` in it. `PlatformAdmin`
//! requires a platform administrator. Every tenant-scoped feature builds on these.

pub mod cache;
pub mod password;
pub mod tokens;

use std::marker::PhantomData;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use chrono::{DateTime, Duration, Utc};
use sea_orm::prelude::*;
use sea_orm::{ActiveValue::Set, FromQueryResult, QueryOrder};
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

/// The row a token names, of either kind.
#[derive(Clone)]
enum TokenRow {
    Session(auth_session::Model),
    ApiKey(api_key::Model),
}

/// One lookup of a token: its row and user, and, when asked for, the membership (with its
/// organization) the caller acts in.
#[derive(Clone)]
pub struct Lookup {
    token: TokenRow,
    user: user::Model,
    membership: Option<(membership::Model, organization::Model)>,
}

/// Selects every column of `E` from `table`, named `{prefix}{column}`.
fn select_all<E: EntityTrait>(
    query: &mut sea_orm::sea_query::SelectStatement,
    table: &str,
    prefix: &str,
) {
    use sea_orm::Iterable;
    use sea_orm::sea_query::Alias;
    for column in E::Column::iter() {
        query.expr_as(
            Expr::col((Alias::new(table), column)),
            Alias::new(format!("{prefix}{}", column.as_str())),
        );
    }
}

/// A model read with [`select_all`] from a LEFT JOIN: `None` when the join found no row.
fn optional<M: sea_orm::FromQueryResult>(
    row: &sea_orm::QueryResult,
    prefix: &str,
) -> Result<Option<M>, ApiError> {
    match M::from_query_result_nullable(row, prefix) {
        Ok(m) => Ok(Some(m)),
        Err(sea_orm::TryGetError::Null(_)) => Ok(None),
        Err(sea_orm::TryGetError::DbErr(e)) => Err(e.into()),
    }
}

/// Reads the token's row and user, and with `org` = `Some(explicit)` also the caller's active
/// membership of the organization to act in (CONTRACT section 3: `explicit` — the header or the
/// body — else the API key's organization, else the oldest membership), all in one statement.
async fn lookup(
    state: &AppState,
    token: &str,
    org: Option<Option<Uuid>>,
) -> Result<Option<Lookup>, ApiError> {
    use sea_orm::sea_query::{Alias, ExprTrait as _, Func, JoinType, Order, Query};
    let is_session = token.starts_with(tokens::SESSION_PREFIX);
    if !is_session && !token.starts_with(tokens::API_KEY_PREFIX) {
        return Ok(None);
    }
    let t = Alias::new("t");
    let mut query = Query::select();
    if is_session {
        select_all::<auth_session::Entity>(&mut query, "t", "t_");
        query.from_as(auth_session::Entity, t.clone()).and_where(
            Expr::col((t.clone(), auth_session::Column::TokenHash)).eq(tokens::sha256_hex(token)),
        );
    } else {
        select_all::<api_key::Entity>(&mut query, "t", "t_");
        query.from_as(api_key::Entity, t.clone()).and_where(
            Expr::col((t.clone(), api_key::Column::KeyHash)).eq(tokens::sha256_hex(token)),
        );
    }
    select_all::<user::Entity>(&mut query, "u", "u_");
    query.join_as(
        JoinType::InnerJoin,
        user::Entity,
        Alias::new("u"),
        Expr::col((Alias::new("u"), user::Column::Id)).equals((t.clone(), Alias::new("user_id"))),
    );
    if let Some(explicit) = org {
        let (m, o, m2, o2) = (
            Alias::new("m"),
            Alias::new("o"),
            Alias::new("m2"),
            Alias::new("o2"),
        );
        // the organization named explicitly, else the key's (sessions have none)
        let named: Expr = if is_session {
            Expr::val(explicit)
        } else {
            Func::coalesce([
                Expr::val(explicit),
                Expr::col((t.clone(), api_key::Column::OrganizationId)),
            ])
            .into()
        };
        let chosen = Query::select()
            .column((m2.clone(), membership::Column::Id))
            .from_as(membership::Entity, m2.clone())
            .join_as(
                JoinType::InnerJoin,
                organization::Entity,
                o2.clone(),
                Expr::col((o2.clone(), organization::Column::Id))
                    .equals((m2.clone(), membership::Column::OrganizationId)),
            )
            .and_where(
                Expr::col((m2.clone(), membership::Column::UserId))
                    .equals((t.clone(), Alias::new("user_id"))),
            )
            .and_where(
                Expr::col((m2.clone(), membership::Column::Status))
                    .eq(Expr::val(thesis_db::entities::MembershipStatus::Active)),
            )
            .and_where(Expr::col((o2.clone(), organization::Column::DeletedAt)).is_null())
            .and_where(
                named.clone().is_null().or(Expr::col((
                    m2.clone(),
                    membership::Column::OrganizationId,
                ))
                .eq(named)),
            )
            .order_by((m2.clone(), membership::Column::CreatedAt), Order::Asc)
            .order_by((m2.clone(), membership::Column::Id), Order::Asc)
            .limit(1)
            .to_owned();
        select_all::<membership::Entity>(&mut query, "m", "m_");
        select_all::<organization::Entity>(&mut query, "o", "o_");
        query
            .join_as(
                JoinType::LeftJoin,
                membership::Entity,
                m.clone(),
                Expr::col((m.clone(), membership::Column::Id)).eq(Expr::from(chosen)),
            )
            .join_as(
                JoinType::LeftJoin,
                organization::Entity,
                o.clone(),
                Expr::col((o.clone(), organization::Column::Id))
                    .equals((m.clone(), membership::Column::OrganizationId)),
            );
    }
    let Some(row) = state.db.query_one(&query).await? else {
        return Ok(None);
    };
    let token = if is_session {
        TokenRow::Session(auth_session::Model::from_query_result(&row, "t_")?)
    } else {
        TokenRow::ApiKey(api_key::Model::from_query_result(&row, "t_")?)
    };
    let user = user::Model::from_query_result(&row, "u_")?;
    let membership = match org {
        None => None,
        Some(_) => match (
            optional::<membership::Model>(&row, "m_")?,
            optional::<organization::Model>(&row, "o_")?,
        ) {
            (Some(m), Some(o)) => Some((m, o)),
            _ => None,
        },
    };
    Ok(Some(Lookup {
        token,
        user,
        membership,
    }))
}

/// [`lookup`] through the cache of this instance (see [`cache`]).
async fn cached_lookup(
    state: &AppState,
    token: &str,
    org: Option<Option<Uuid>>,
) -> Result<Option<Lookup>, ApiError> {
    let key = (tokens::sha256_hex(token), org);
    if let Some(hit) = state.auth_cache.get(&key) {
        return Ok(Some(hit));
    }
    let generation = state.auth_cache.trusted_generation();
    let found = lookup(state, token, org).await?;
    if let (Some(generation), Some(found)) = (generation, &found) {
        state.auth_cache.put(key, generation, found.clone());
    }
    Ok(found)
}

/// How often `last_used_at` is written for a token in use.
const LAST_USED_GRANULARITY: i64 = 60;

/// Checks a looked-up token (any unknown, expired or revoked token is 401) and notes its use.
async fn check_token(
    state: &AppState,
    bearer: &str,
    found: Option<Lookup>,
) -> Result<
    (
        user::Model,
        Credential,
        Option<(membership::Model, organization::Model)>,
    ),
    ApiError,
> {
    let Some(Lookup {
        token,
        user,
        membership,
    }) = found
    else {
        return Err(unauthorized("invalid token"));
    };
    let now = thesis_db::now();
    let stale = |last: Option<DateTime<Utc>>| {
        let stale = last.is_none_or(|t| (now - t).num_seconds() >= LAST_USED_GRANULARITY);
        if stale {
            // what the cache holds for this token says "last used" too long ago: read it anew
            state.auth_cache.forget_token(&tokens::sha256_hex(bearer));
        }
        stale
    };
    let credential = match token {
        TokenRow::Session(session) => {
            if session.revoked_at.is_some() {
                return Err(unauthorized("this session has been revoked"));
            }
            if session.expires_at <= now {
                return Err(unauthorized("this session has expired; log in again"));
            }
            if stale(session.last_used_at) {
                auth_session::Entity::update_many()
                    .col_expr(auth_session::Column::LastUsedAt, Expr::value(now))
                    .filter(auth_session::Column::Id.eq(session.id))
                    .exec(&state.db)
                    .await?;
            }
            Credential::Session {
                id: session.id,
                expires_at: session.expires_at,
            }
        }
        TokenRow::ApiKey(key) => {
            if key.revoked_at.is_some() {
                return Err(unauthorized("this API key has been revoked"));
            }
            if stale(key.last_used_at) {
                api_key::Entity::update_many()
                    .col_expr(api_key::Column::LastUsedAt, Expr::value(now))
                    .filter(api_key::Column::Id.eq(key.id))
                    .exec(&state.db)
                    .await?;
            }
            Credential::ApiKey {
                id: key.id,
                organization_id: key.organization_id,
            }
        }
    };
    Ok((user, credential, membership))
}

/// Resolves a bearer token to a caller; any unknown, expired or revoked token is 401.
pub async fn authenticate(
    state: &AppState,
    token: &str,
) -> Result<(user::Model, Credential), ApiError> {
    let found = cached_lookup(state, token, None).await?;
    let (user, credential, _) = check_token(state, token, found).await?;
    Ok((user, credential))
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
        let caller = Caller::from_headers(state, &parts.headers).await?;
        parts.extensions.insert(caller.clone());
        Ok(caller)
    }
}

fn missing_token() -> ApiError {
    unauthorized("missing bearer token: send `Authorization: Bearer TOKEN`")
}

impl Caller {
    /// Authenticates the bearer token of `headers`.
    pub async fn from_headers(state: &AppState, headers: &HeaderMap) -> Result<Caller, ApiError> {
        let token = bearer_token(headers)?.ok_or_else(missing_token)?;
        let (user, credential) = authenticate(state, token).await?;
        Ok(Caller {
            is_platform_admin: state.is_platform_admin(&user),
            requested_org: requested_org(headers)?,
            user,
            credential,
        })
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
                _ => Err(not_a_member(org_id)),
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
                _ => Err(no_organization()),
            }
        }
    }
}

fn not_a_member(org_id: Uuid) -> ApiError {
    ApiError::Forbidden(format!("you are not a member of organization {org_id}"))
}

fn no_organization() -> ApiError {
    ApiError::NotFound("you have no organization yet: create one with POST /v1/organization".into())
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
    /// Authenticates the bearer token of `headers` and resolves the organization to act in
    /// (`body_org` for routes whose body may name it) in one database round trip, then checks
    /// the role. Errors come in the order of the separate steps: 401, then 400 for a malformed
    /// `x-organization-id`, then 403 / 404.
    pub async fn from_headers(
        state: &AppState,
        headers: &HeaderMap,
        body_org: Option<Uuid>,
    ) -> Result<Self, ApiError> {
        let token = bearer_token(headers)?.ok_or_else(missing_token)?;
        let requested = match requested_org(headers) {
            Ok(r) => r,
            Err(e) => {
                authenticate(state, token).await?;
                return Err(e);
            }
        };
        let explicit = requested.or(body_org);
        let found = cached_lookup(state, token, Some(explicit)).await?;
        let (user, credential, membership) = check_token(state, token, found).await?;
        let caller = Caller {
            is_platform_admin: state.is_platform_admin(&user),
            requested_org: requested,
            user,
            credential,
        };
        let Some((membership, organization)) = membership else {
            return Err(match explicit.or_else(|| caller.api_key_org()) {
                Some(org_id) => not_a_member(org_id),
                None => no_organization(),
            });
        };
        require_role(membership.role, R::ROLE)?;
        Ok(OrgCtx {
            caller,
            organization,
            membership,
            _role: PhantomData,
        })
    }

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
        if let Some(caller) = parts.extensions.get::<Caller>() {
            return OrgCtx::resolve(state, caller.clone(), None).await;
        }
        let ctx = OrgCtx::from_headers(state, &parts.headers, None).await?;
        parts.extensions.insert(ctx.caller.clone());
        Ok(ctx)
    }
}
