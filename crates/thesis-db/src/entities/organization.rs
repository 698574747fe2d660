use sea_orm::entity::prelude::*;

use super::{OptInShareData, OrganizationType, SubscriptionPlan};

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "organizations")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
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
    pub deleted_at: Option<DateTimeUtc>,
    pub stripe_customer_id: Option<String>,
    pub stripe_subscription_id: Option<String>,
    /// The Stripe subscription status as Stripe spells it (`active`, `past_due`, ...), or
    /// `active` for a self-hosted payAsYouGo plan; null without a subscription.
    pub subscription_status: Option<String>,
    pub cancel_at_period_end: bool,
    pub current_period_start: Option<DateTimeUtc>,
    pub current_period_end: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(has_many = "super::membership::Entity")]
    Membership,
}

impl Related<super::membership::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Membership.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
