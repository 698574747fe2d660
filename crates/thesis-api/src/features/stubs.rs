//! Every reference endpoint that is not built yet is routed and answers 501 with a JSON error
//! naming it, and is in the OpenAPI document, so the route table is complete from day one.

use axum::http::StatusCode;
use axum::routing::MethodFilter;
use axum::routing::{MethodRouter, on};
use utoipa::openapi::path::{HttpMethod, OperationBuilder, ParameterBuilder, ParameterIn};
use utoipa::openapi::security::SecurityRequirement;
use utoipa::openapi::{Required, ResponseBuilder};
use utoipa_axum::router::OpenApiRouter;

use crate::error::{ApiError, error_response};
use crate::state::AppState;

pub struct Stub {
    pub method: &'static str,
    pub path: &'static str,
    pub tag: &'static str,
    pub summary: &'static str,
    /// Public routes need no token (CONTRACT section 3).
    pub public: bool,
}

include!("stubs_table.rs");

fn method_filter(method: &str) -> (MethodFilter, HttpMethod) {
    match method {
        "GET" => (MethodFilter::GET, HttpMethod::Get),
        "POST" => (MethodFilter::POST, HttpMethod::Post),
        "PUT" => (MethodFilter::PUT, HttpMethod::Put),
        "DELETE" => (MethodFilter::DELETE, HttpMethod::Delete),
        other => panic!("stub table has an unknown method {other}"),
    }
}

fn operation_id(stub: &Stub) -> String {
    let mut id = stub.method.to_ascii_lowercase();
    for part in stub
        .path
        .split(['/', '-', '{', '}'])
        .filter(|p| !p.is_empty())
    {
        id.push('_');
        id.push_str(part);
    }
    id
}

pub fn router() -> OpenApiRouter<AppState> {
    let mut router = OpenApiRouter::new();
    for stub in STUBS {
        let (filter, http_method) = method_filter(stub.method);
        let message = format!("{} /v1{} is not implemented yet", stub.method, stub.path);
        let handler = move || {
            let message = message.clone();
            async move { ApiError::NotImplemented(message) }
        };
        let method_router: MethodRouter<AppState> = on(filter, handler);
        router = router.route(stub.path, method_router);

        let mut op = OperationBuilder::new()
            .tag(stub.tag)
            .summary(Some(stub.summary))
            .description(Some("Not implemented yet: answers 501."))
            .operation_id(Some(operation_id(stub)))
            .response(
                "501",
                ResponseBuilder::new()
                    .description("Not implemented yet")
                    .build(),
            );
        for param in stub
            .path
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
        {
            op = op.parameter(
                ParameterBuilder::new()
                    .name(param)
                    .parameter_in(ParameterIn::Path)
                    .required(Required::True)
                    .schema(Some(
                        utoipa::openapi::ObjectBuilder::new()
                            .schema_type(utoipa::openapi::schema::Type::String),
                    ))
                    .build(),
            );
        }
        if stub.public {
            op = op.security(SecurityRequirement::default());
        }
        router
            .get_openapi_mut()
            .paths
            .add_path_operation(stub.path, vec![http_method], op.build());
    }
    router
}

/// 404 for unknown routes, as JSON.
pub async fn not_found() -> axum::response::Response {
    error_response(StatusCode::NOT_FOUND, "no such route".into())
}

/// 405 for a known route with another method, as JSON.
pub async fn method_not_allowed() -> axum::response::Response {
    error_response(
        StatusCode::METHOD_NOT_ALLOWED,
        "this route does not support this method".into(),
    )
}
