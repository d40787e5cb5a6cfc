//! What every domain error tells the outside: a stable code and its kind.
//! The API maps the kind to an HTTP status; the code is the wire `code`.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The thing does not exist (or is not visible to the caller).
    NotFound,
    /// The current state forbids the change.
    Conflict,
    /// The thing existed and is gone for good (used, expired).
    Gone,
    /// The input breaks a rule only the aggregate can check.
    Invalid,
    /// The actor may not do this (for example grant more than they hold).
    Forbidden,
}

pub trait DomainError: std::error::Error {
    fn code(&self) -> &'static str;
    fn kind(&self) -> ErrorKind;
    /// Structured detail for the error body (for example missing permissions).
    fn details(&self) -> Option<serde_json::Value> {
        None
    }
}
