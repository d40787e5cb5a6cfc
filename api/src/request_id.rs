//! Request ids: every request gets one (a sane incoming `x-request-id` is
//! kept), every response and event metadata carries it, and code deep in a
//! request (an error body) can read the current one.

use std::future::Future;

use axum::http::HeaderValue;

/// The header that carries it, both ways.
pub const HEADER: &str = "x-request-id";

/// The request id, as a request extension.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

tokio::task_local! {
    static CURRENT: String;
}

/// An incoming id worth keeping: 1 to 128 of `A-Za-z0-9-_.:`.
pub fn sane(value: &HeaderValue) -> Option<String> {
    let s = value.to_str().ok()?;
    let ok = !s.is_empty()
        && s.len() <= 128
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'));
    ok.then(|| s.to_string())
}

/// Run `f` with `id` as the current request id.
pub async fn scope<F: Future>(id: String, f: F) -> F::Output {
    CURRENT.scope(id, f).await
}

/// The request id of the request being served, if any.
pub fn current() -> Option<String> {
    CURRENT.try_with(Clone::clone).ok()
}
