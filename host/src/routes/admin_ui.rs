//! The admin interface: plain ES modules and CSS from `host/admin-ui/`,
//! embedded in the binary and served at `/admin/`. The page signs in with
//! an admin key (kept in the tab's session storage, sent as a bearer token)
//! and talks only to the admin API under `/admin/v1`; its test console
//! also calls functions at `/functions/v1`.
//!
//! Invariant: the page runs only the scripts served here. Every response
//! carries a Content-Security-Policy without `unsafe-inline` or
//! `unsafe-eval`, frames are refused, and text from the API is put into
//! the page as text, never as markup.

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use std::sync::LazyLock;

/// Scripts, styles, images and connections from this origin only; nothing
/// inline, no eval, no framing, no `<base>` or form posts elsewhere.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
     connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// One embedded file.
struct Asset {
    /// Its path under `host/admin-ui/` and under `/admin/assets/`.
    path: &'static str,
    bytes: &'static [u8],
}

macro_rules! assets {
    ($($path:literal),* $(,)?) => {
        &[$(Asset { path: $path, bytes: include_bytes!(concat!("../../admin-ui/", $path)) }),*]
    };
}

/// Every file of the interface; a unit test checks the folder holds no other.
static ASSETS: &[Asset] = assets![
    "index.html",
    "app.css",
    "favicon.svg",
    "js/api.js",
    "js/app.js",
    "js/chart.js",
    "js/deploy-form.js",
    "js/dom.js",
    "js/format.js",
    "js/highlight.js",
    "js/policy-editor.js",
    "js/pages/console.js",
    "js/pages/function.js",
    "js/pages/functions.js",
    "js/pages/identity.js",
    "js/pages/logs.js",
    "js/pages/secrets.js",
    "js/pages/signin.js",
    "js/pages/tables.js",
];

/// Each asset's strong ETag: a hash of its bytes, so a new build's files
/// are fetched again and unchanged ones are answered with 304.
static ETAGS: LazyLock<Vec<String>> = LazyLock::new(|| {
    ASSETS.iter().map(|a| format!("\"{}\"", &edgefn_compiler::sha256_hex(a.bytes)[..20])).collect()
});

/// `/admin` (redirected to `/admin/`), `/admin/` and `/admin/assets/...`.
pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/admin", get(|| async { Redirect::permanent("/admin/") }))
        .route("/admin/", get(|headers: HeaderMap| async move { serve("index.html", &headers) }))
        .route("/admin/assets/{*path}", get(|Path(path): Path<String>, headers: HeaderMap| async move { serve(&path, &headers) }))
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit_once('.').map(|(_, ext)| ext) {
        Some("html") => "text/html; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("svg") => "image/svg+xml",
        _ => "application/octet-stream",
    }
}

fn serve(path: &str, request: &HeaderMap) -> Response {
    let Some(index) = ASSETS.iter().position(|a| a.path == path) else {
        return crate::error::ApiError::NotFound(format!("the admin interface has no file {path:?}")).into_response();
    };
    let etag = &ETAGS[index];
    let fresh = request
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|tag| tag.trim() == etag));
    let mut response =
        if fresh { StatusCode::NOT_MODIFIED.into_response() } else { ASSETS[index].bytes.into_response() };
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type(path)));
    headers.insert(header::ETAG, HeaderValue::from_str(etag).expect("hex is a valid header value"));
    // Revalidate every time: module imports cannot carry a version in their
    // URLs without a build step, and a 304 costs only a round trip.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CONTENT_SECURITY_POLICY));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file added to `host/admin-ui/` but not to [`ASSETS`] would be
    /// missing from the binary; one listed but deleted fails to compile.
    #[test]
    fn every_file_in_the_folder_is_embedded() {
        fn walk(dir: &std::path::Path, prefix: &str, found: &mut Vec<String>) {
            for entry in std::fs::read_dir(dir).unwrap() {
                let entry = entry.unwrap();
                let name = format!("{prefix}{}", entry.file_name().to_string_lossy());
                if entry.file_type().unwrap().is_dir() {
                    walk(&entry.path(), &format!("{name}/"), found);
                } else {
                    found.push(name);
                }
            }
        }
        let mut found = Vec::new();
        walk(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("admin-ui"), "", &mut found);
        found.sort();
        let mut listed: Vec<String> = ASSETS.iter().map(|a| a.path.to_owned()).collect();
        listed.sort();
        assert_eq!(found, listed);
    }

    #[test]
    fn content_types_are_exact() {
        for asset in ASSETS {
            assert_ne!(content_type(asset.path), "application/octet-stream", "{}", asset.path);
        }
    }
}
