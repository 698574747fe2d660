use sea_orm::entity::prelude::*;

use super::FeedbackType;

/// Feedback from the desktop app; a screenshot, when sent, is kept decoded beside it.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "feedback")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub user_id: Option<Uuid>,
    pub name: String,
    pub email: String,
    pub feedback_type: FeedbackType,
    pub message: String,
    /// The metadata object as sent, without the screenshot data URL.
    pub metadata: Option<Json>,
    pub screenshot_content_type: Option<String>,
    pub screenshot: Option<Vec<u8>>,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
