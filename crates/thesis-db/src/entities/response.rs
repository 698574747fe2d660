use sea_orm::entity::prelude::*;

/// A stored response (`store` not false): the whole conversation it answered and the response
/// object, for `GET /v1/responses/{id}` and `previous_response_id`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "responses")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub organization_id: Uuid,
    pub user_id: Option<Uuid>,
    pub session_id: Option<String>,
    pub model: String,
    pub status: String,
    /// Every input item the model saw (earlier context included), Responses JSON.
    pub conversation: Json,
    pub response: Json,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
