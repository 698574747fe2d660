use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Kind of organization.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, EnumIter, DeriveActiveEnum, Serialize, Deserialize, ToSchema,
)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::None)")]
pub enum OrganizationType {
    #[sea_orm(string_value = "individual")]
    #[serde(rename = "individual")]
    Individual,
    #[sea_orm(string_value = "team")]
    #[serde(rename = "team")]
    Team,
}

/// Subscription plan of an organization.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, EnumIter, DeriveActiveEnum, Serialize, Deserialize, ToSchema,
)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::None)")]
pub enum SubscriptionPlan {
    #[sea_orm(string_value = "free")]
    #[serde(rename = "free")]
    Free,
    #[sea_orm(string_value = "payAsYouGo")]
    #[serde(rename = "payAsYouGo")]
    PayAsYouGo,
}

/// Whether an organization shares its data for product improvement.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, EnumIter, DeriveActiveEnum, Serialize, Deserialize, ToSchema,
)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::None)")]
pub enum OptInShareData {
    #[sea_orm(string_value = "private")]
    #[serde(rename = "private")]
    Private,
    #[sea_orm(string_value = "shareData")]
    #[serde(rename = "shareData")]
    ShareData,
}

/// Role of a member inside an organization; `Owner > Admin > Member`.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    EnumIter,
    DeriveActiveEnum,
    Serialize,
    Deserialize,
    ToSchema,
)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::None)")]
pub enum Role {
    // Declaration order gives the ordering: member < admin < owner.
    #[sea_orm(string_value = "member")]
    #[serde(rename = "member")]
    Member,
    #[sea_orm(string_value = "admin")]
    #[serde(rename = "admin")]
    Admin,
    #[sea_orm(string_value = "owner")]
    #[serde(rename = "owner")]
    Owner,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Member => "member",
            Role::Admin => "admin",
            Role::Owner => "owner",
        }
    }
}

/// State of a membership: invited (`pending`) or accepted (`active`).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, EnumIter, DeriveActiveEnum, Serialize, Deserialize, ToSchema,
)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::None)")]
pub enum MembershipStatus {
    #[sea_orm(string_value = "pending")]
    #[serde(rename = "pending")]
    Pending,
    #[sea_orm(string_value = "active")]
    #[serde(rename = "active")]
    Active,
}

/// Kind of feedback.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, EnumIter, DeriveActiveEnum, Serialize, Deserialize, ToSchema,
)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::None)")]
pub enum FeedbackType {
    #[sea_orm(string_value = "bug")]
    #[serde(rename = "bug")]
    Bug,
    #[sea_orm(string_value = "feature")]
    #[serde(rename = "feature")]
    Feature,
    #[sea_orm(string_value = "general")]
    #[serde(rename = "general")]
    General,
}

/// What a usage record measures.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, EnumIter, DeriveActiveEnum, Serialize, Deserialize, ToSchema,
)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::None)")]
pub enum MetricType {
    #[sea_orm(string_value = "tokens")]
    #[serde(rename = "tokens")]
    Tokens,
    #[sea_orm(string_value = "compute")]
    #[serde(rename = "compute")]
    Compute,
    #[sea_orm(string_value = "storage")]
    #[serde(rename = "storage")]
    Storage,
}

/// State of a cron execution.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, EnumIter, DeriveActiveEnum, Serialize, Deserialize, ToSchema,
)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::None)")]
pub enum CronStatus {
    #[sea_orm(string_value = "running")]
    #[serde(rename = "running")]
    Running,
    #[sea_orm(string_value = "success")]
    #[serde(rename = "success")]
    Success,
    #[sea_orm(string_value = "failed")]
    #[serde(rename = "failed")]
    Failed,
}
