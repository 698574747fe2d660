//! The OpenAPI document, generated from the routes.

use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityRequirement, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::error::ErrorBody;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Thesis API",
        description = "The backend of the Thesis AI machine-learning-engineer platform. Every \
                       endpoint of the reference is under `/v1`; send `Authorization: Bearer TOKEN` \
                       (an API key or a login session token) unless a route says otherwise. Errors \
                       are `{\"statusCode\", \"error\", \"message\"}`.",
        license(name = "Proprietary")
    ),
    components(schemas(ErrorBody)),
    modifiers(&Security)
)]
pub struct ApiDoc;

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
        openapi.security = Some(vec![SecurityRequirement::new(
            "bearer",
            Vec::<String>::new(),
        )]);
    }
}
