use sea_orm::entity::prelude::*;

/// One exchange of a session: the input items sent and the output items produced (Responses
/// JSON form).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "session_turns")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub session_id: String,
    pub seq: i32,
    pub response_id: Option<String>,
    pub model: String,
    pub input: Json,
    pub output: Json,
    pub usage: Option<Json>,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
