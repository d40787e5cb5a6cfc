//! What the guard knows of callers, kept in memory so that a warm request
//! makes no database round trip before its handler: a session's standing
//! (live, platform admin, impersonated, and in a tenant its status and the
//! caller's role and permissions), and an API key's.
//!
//! Entries are filled from the database on a miss and dropped by
//! invalidation, never updated in place. Every entry names what it depends
//! on, as `(aggregate type, aggregate id)` pairs: a session on its session,
//! its user and the tenant it was asked about; a key on itself and its
//! tenant. An invalidation of a pair makes every entry that depends on it
//! stale. Invalidations come from:
//! - this process's commits, before the command returns (`Store::on_commit`),
//!   and again once the projections show them (`AppState::settle`): the
//!   standing is read partly from read models, which follow the commit;
//! - every process's commits, from the log (`workers::auth_cache`): within
//!   the time a notification takes, and again once the projections have
//!   applied them.
//!
//! A fill that raced an invalidation cannot resurrect old data: each entry
//! remembers the invalidation counter as it was *before* its database read,
//! and it is valid only while none of its dependencies was invalidated
//! later. Entries also expire after `ENTRY_TTL` (a read-model rebuild
//! changes rows without events) and are checked against their own expiry.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::store::api_keys::KeyAuth;
use crate::store::sessions::SessionAuth;

/// The longest an entry is trusted without a fresh read.
pub const ENTRY_TTL: Duration = Duration::from_secs(30);

/// At most this many entries of each kind; a full map is emptied.
const MAX_ENTRIES: usize = 50_000;

/// At most this many remembered invalidations; beyond, everything is
/// forgotten (entries included), which is always safe.
const MAX_INVALIDATIONS: usize = 200_000;

type Dependency = (&'static str, String);

struct Entry<T> {
    value: T,
    depends_on: Vec<Dependency>,
    /// The invalidation counter before the database read that filled it.
    as_of: u64,
    filled: Instant,
}

#[derive(Default)]
struct Inner {
    /// Counts invalidations; never goes back.
    counter: u64,
    /// The counter at each pair's latest invalidation.
    invalidated: HashMap<Dependency, u64>,
    sessions: HashMap<(Uuid, Option<Uuid>), Entry<SessionAuth>>,
    keys: HashMap<Vec<u8>, Entry<KeyAuth>>,
}

impl Inner {
    fn fresh<T>(&self, entry: &Entry<T>) -> bool {
        entry.filled.elapsed() < ENTRY_TTL
            && entry
                .depends_on
                .iter()
                .all(|d| self.invalidated.get(d).is_none_or(|at| *at <= entry.as_of))
    }
}

/// A ticket taken before a database read: what an entry filled from that
/// read is as fresh as.
#[derive(Debug, Clone, Copy)]
pub struct Ticket(u64);

#[derive(Default)]
pub struct AuthCache {
    inner: Mutex<Inner>,
}

fn aggregate_type(kind: &str) -> Option<&'static str> {
    Some(match kind {
        "session" => "session",
        "user" => "user",
        // A tenant's billing (its aggregate id is the tenant's) is part of
        // its standing.
        "tenant" | "billing" => "tenant",
        "api_key" => "api_key",
        _ => return None,
    })
}

impl AuthCache {
    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Take before reading what an entry will hold.
    pub fn ticket(&self) -> Ticket {
        Ticket(self.inner().counter)
    }

    /// Entries depending on this aggregate are stale from now on. Types the
    /// guard does not depend on are ignored.
    pub fn invalidate(&self, kind: &str, id: &str) {
        let Some(kind) = aggregate_type(kind) else {
            return;
        };
        let mut inner = self.inner();
        inner.counter += 1;
        let counter = inner.counter;
        if inner.invalidated.len() >= MAX_INVALIDATIONS {
            inner.invalidated.clear();
            inner.sessions.clear();
            inner.keys.clear();
        }
        inner.invalidated.insert((kind, id.to_string()), counter);
    }

    /// A session's standing, asked about `tenant`, if known and fresh, and
    /// the session not past its end.
    pub fn session(
        &self,
        session: Uuid,
        tenant: Option<Uuid>,
        now: DateTime<Utc>,
    ) -> Option<SessionAuth> {
        let inner = self.inner();
        let entry = inner.sessions.get(&(session, tenant))?;
        (inner.fresh(entry) && entry.value.expires_at > now).then(|| entry.value.clone())
    }

    pub fn put_session(
        &self,
        ticket: Ticket,
        session: Uuid,
        user: Uuid,
        tenant: Option<Uuid>,
        value: SessionAuth,
    ) {
        let mut depends_on = vec![("session", session.to_string()), ("user", user.to_string())];
        if let Some(tenant) = tenant {
            depends_on.push(("tenant", tenant.to_string()));
        }
        let mut inner = self.inner();
        if inner.sessions.len() >= MAX_ENTRIES {
            inner.sessions.clear();
        }
        inner.sessions.insert(
            (session, tenant),
            Entry {
                value,
                depends_on,
                as_of: ticket.0,
                filled: Instant::now(),
            },
        );
    }

    /// An API key by the hash of its secret, if known and fresh.
    pub fn key(&self, secret_hash: &[u8]) -> Option<KeyAuth> {
        let inner = self.inner();
        let entry = inner.keys.get(secret_hash)?;
        inner.fresh(entry).then(|| entry.value.clone())
    }

    pub fn put_key(&self, ticket: Ticket, secret_hash: Vec<u8>, value: KeyAuth) {
        let depends_on = vec![
            ("api_key", value.id.to_string()),
            ("tenant", value.tenant_id.to_string()),
        ];
        let mut inner = self.inner();
        if inner.keys.len() >= MAX_ENTRIES {
            inner.keys.clear();
        }
        inner.keys.insert(
            secret_hash,
            Entry {
                value,
                depends_on,
                as_of: ticket.0,
                filled: Instant::now(),
            },
        );
    }

    /// Record a key's use in the cached copy (the database was told).
    pub fn touched_key(&self, secret_hash: &[u8], at: DateTime<Utc>) {
        if let Some(entry) = self.inner().keys.get_mut(secret_hash) {
            entry.value.last_used_at = Some(at);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sessions::TenantAccess;

    fn standing(role: &str) -> SessionAuth {
        SessionAuth {
            is_platform_admin: false,
            impersonator_id: None,
            expires_at: Utc::now() + chrono::Duration::hours(1),
            tenant: TenantAccess {
                tenant_status: Some("active".into()),
                role: Some(role.into()),
                custom_permissions: None,
                ..TenantAccess::default()
            },
        }
    }

    #[test]
    fn an_invalidated_dependency_makes_its_entries_stale() {
        let cache = AuthCache::default();
        let (session, user, tenant) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
        let now = Utc::now();
        cache.put_session(
            cache.ticket(),
            session,
            user,
            Some(tenant),
            standing("admin"),
        );
        assert!(cache.session(session, Some(tenant), now).is_some());
        cache.invalidate("tenant", &Uuid::now_v7().to_string());
        cache.invalidate("llm_key", &tenant.to_string());
        assert!(
            cache.session(session, Some(tenant), now).is_some(),
            "unrelated"
        );
        cache.invalidate("tenant", &tenant.to_string());
        assert!(cache.session(session, Some(tenant), now).is_none());
        // Filled again afterwards, it is good again; the user's change drops it.
        cache.put_session(
            cache.ticket(),
            session,
            user,
            Some(tenant),
            standing("viewer"),
        );
        assert_eq!(
            cache
                .session(session, Some(tenant), now)
                .unwrap()
                .tenant
                .role
                .as_deref(),
            Some("viewer")
        );
        cache.invalidate("user", &user.to_string());
        assert!(cache.session(session, Some(tenant), now).is_none());
    }

    #[test]
    fn a_fill_that_raced_an_invalidation_is_never_served() {
        let cache = AuthCache::default();
        let (session, user) = (Uuid::now_v7(), Uuid::now_v7());
        // The ticket is taken, the database read, and meanwhile the session
        // is revoked: what the read saw must not be served.
        let ticket = cache.ticket();
        cache.invalidate("session", &session.to_string());
        cache.put_session(ticket, session, user, None, standing("owner"));
        assert!(cache.session(session, None, Utc::now()).is_none());
    }

    #[test]
    fn a_session_past_its_end_is_not_served() {
        let cache = AuthCache::default();
        let (session, user) = (Uuid::now_v7(), Uuid::now_v7());
        let mut ending = standing("owner");
        ending.expires_at = Utc::now() + chrono::Duration::seconds(10);
        cache.put_session(cache.ticket(), session, user, None, ending);
        assert!(cache.session(session, None, Utc::now()).is_some());
        assert!(cache
            .session(session, None, Utc::now() + chrono::Duration::seconds(11))
            .is_none());
    }
}
