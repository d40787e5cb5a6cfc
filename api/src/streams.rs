//! What bounds live event streams in this process: how many a tenant and
//! a caller may hold open at once, and the signal that ends them all when
//! the server shuts down (a graceful shutdown waits for open responses, and
//! a stream would otherwise never end).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde_json::json;
use tokio::sync::watch;
use uuid::Uuid;

use crate::error::ApiError;

#[derive(Debug)]
pub struct Streams {
    per_tenant: u32,
    per_caller: u32,
    open: Mutex<Open>,
    closing: watch::Sender<bool>,
}

#[derive(Debug, Default)]
struct Open {
    tenants: HashMap<Uuid, u32>,
    callers: HashMap<String, u32>,
}

/// One open stream, counted until dropped.
#[derive(Debug)]
pub struct Slot {
    streams: Arc<Streams>,
    tenant: Uuid,
    caller: String,
}

impl Streams {
    pub fn new(per_tenant: u32, per_caller: u32) -> Self {
        Self {
            per_tenant,
            per_caller,
            open: Mutex::default(),
            closing: watch::channel(false).0,
        }
    }

    /// A slot for one more stream of `tenant` by `caller` (an actor's
    /// label), or 429 `too_many_streams` naming the bound reached.
    pub fn open(self: &Arc<Self>, tenant: Uuid, caller: String) -> Result<Slot, ApiError> {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let by_tenant = open.tenants.get(&tenant).copied().unwrap_or(0);
        let by_caller = open.callers.get(&caller).copied().unwrap_or(0);
        let full = if by_caller >= self.per_caller {
            Some(("caller", self.per_caller))
        } else if by_tenant >= self.per_tenant {
            Some(("tenant", self.per_tenant))
        } else {
            None
        };
        if let Some((scope, limit)) = full {
            return Err(ApiError::new(
                axum::http::StatusCode::TOO_MANY_REQUESTS,
                "too_many_streams",
                format!("this {scope} has {limit} event streams open already; close one first"),
            )
            .with_details(json!({ "scope": scope, "limit": limit })));
        }
        *open.tenants.entry(tenant).or_default() += 1;
        *open.callers.entry(caller.clone()).or_default() += 1;
        Ok(Slot {
            streams: self.clone(),
            tenant,
            caller,
        })
    }

    /// Changes to true when the server begins to shut down.
    pub fn closing(&self) -> watch::Receiver<bool> {
        self.closing.subscribe()
    }

    /// End every stream: the server is shutting down.
    pub fn close(&self) {
        self.closing.send_replace(true);
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.streams.open.lock().unwrap_or_else(|e| e.into_inner());
        fn release<K: std::hash::Hash + Eq>(counts: &mut HashMap<K, u32>, key: &K) {
            if let Some(n) = counts.get_mut(key) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    counts.remove(key);
                }
            }
        }
        release(&mut open.tenants, &self.tenant);
        release(&mut open.callers, &self.caller);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_per_caller_and_per_tenant_and_gives_slots_back() {
        let streams = Arc::new(Streams::new(3, 2));
        let (t1, t2) = (Uuid::now_v7(), Uuid::now_v7());
        let a1 = streams.open(t1, "user:a".into()).unwrap();
        let _a2 = streams.open(t1, "user:a".into()).unwrap();
        let refused = streams.open(t2, "user:a".into()).unwrap_err();
        assert_eq!(refused.code, "too_many_streams");
        assert!(refused.message.contains("caller"), "{}", refused.message);
        let _b = streams.open(t1, "user:b".into()).unwrap();
        let refused = streams.open(t1, "user:c".into()).unwrap_err();
        assert!(refused.message.contains("tenant"), "{}", refused.message);
        drop(a1);
        let _c = streams.open(t1, "user:c".into()).unwrap();
        assert!(streams.open(t2, "user:c".into()).is_ok(), "another tenant");
    }

    #[test]
    fn close_reaches_every_receiver() {
        let streams = Streams::new(1, 1);
        let rx = streams.closing();
        assert!(!*rx.borrow());
        streams.close();
        assert!(*rx.borrow());
        assert!(*streams.closing().borrow(), "a later stream sees it too");
    }
}
