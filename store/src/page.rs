//! Keyset pagination shared by the list queries: ids are UUID v7, so id
//! order is creation order and the cursor is the last id of a page.

use uuid::Uuid;

#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// The id after which the next page starts, when there is one.
    pub next_after: Option<Uuid>,
}

impl<T> Page<T> {
    /// Build a page from `limit + 1` fetched rows: the extra row only says
    /// that another page exists.
    pub fn from_rows(mut rows: Vec<T>, limit: i64, id: impl Fn(&T) -> Uuid) -> Self {
        let limit = usize::try_from(limit).unwrap_or(0);
        let next_after = if rows.len() > limit {
            rows.truncate(limit);
            rows.last().map(id)
        } else {
            None
        };
        Self {
            items: rows,
            next_after,
        }
    }
}
