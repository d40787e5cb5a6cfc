//! The API's own description: the OpenAPI document and an interactive page
//! over it (Swagger UI, whose assets come inside the binary from the
//! `swagger-ui-redist` crate: no CDN, and nothing downloaded at build time).

use std::sync::OnceLock;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use swagger_ui_redist::{SwaggerUi, SwaggerUiStaticFile};

use crate::error::ApiError;
use crate::extract::DocsFilePath;
use crate::guard::Access;
use crate::routes::Route;

pub fn routes() -> Vec<Route> {
    vec![
        Route::get("/openapi.json", Access::Public, get_openapi)
            .summary("This API's OpenAPI 3.1 document")
            .answers_media(StatusCode::OK, "application/json"),
        Route::get("/docs", Access::Public, get_docs)
            .summary("Interactive API documentation")
            .answers_media(StatusCode::OK, "text/html"),
        Route::get("/docs/{file}", Access::Public, get_docs_file)
            .summary("The documentation page's assets")
            .answers_media(StatusCode::OK, "application/octet-stream"),
    ]
}

const DOCS_PREFIX: &str = "/docs/";

fn with_type(body: impl IntoResponse, content_type: &'static str) -> Response {
    let mut response = body.into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

/// The document, built once per process from the route table.
async fn get_openapi() -> Response {
    static DOCUMENT: OnceLock<String> = OnceLock::new();
    let body = DOCUMENT.get_or_init(super::document_json).clone();
    with_type(body, "application/json")
}

/// Swagger UI over `/openapi.json`, every asset served from `/docs/`.
async fn get_docs() -> Result<Response, ApiError> {
    static PAGE: OnceLock<Result<String, String>> = OnceLock::new();
    let page = PAGE.get_or_init(|| {
        let mut ui = SwaggerUi::new();
        ui.title("Tenantry API");
        // No online validator: the page contacts no other host.
        ui.config()
            .urls(["/openapi.json"])
            .try_it_out_enabled(true)
            .validator_url("none");
        for file in SwaggerUiStaticFile::all() {
            ui.override_file_path(*file, format!("{DOCS_PREFIX}{}", file.file_name()));
        }
        ui.serve().map_err(|e| e.to_string())
    });
    match page {
        Ok(html) => Ok(with_type(html.clone(), "text/html; charset=utf-8")),
        Err(e) => Err(ApiError::internal(format!("the docs page: {e}"))),
    }
}

async fn get_docs_file(DocsFilePath(name): DocsFilePath) -> Result<Response, ApiError> {
    let (file, bytes) = SwaggerUi::static_files()
        .iter()
        .find(|(file, _)| file.file_name() == name)
        .ok_or_else(|| ApiError::not_found("not_found", "no such resource"))?;
    let content_type = match file.file_name().rsplit('.').next() {
        Some("css") => "text/css; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("png") => "image/png",
        _ => "application/octet-stream",
    };
    let mut response = with_type(*bytes, content_type);
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=86400"),
    );
    Ok(response)
}
