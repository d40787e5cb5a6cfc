//! The audit chain's format, as `docs/AUDIT.md` documents it for anyone
//! writing their own verifier, and the verifier Tenantry runs (over an
//! export with no database, or over the stored chain).
//!
//! Each event belongs to one chain (its tenant's, or a person's for
//! platform events) and holds two hashes:
//!
//! - `content_hash` = SHA-256 of the RFC 8785 (JCS) canonical JSON of the
//!   event's content ([`Content`]); computed here before the append.
//! - `hash` = SHA-256 of `prev_hash ‖ content_hash ‖ "<tenant_sequence>|<recorded_at>"`,
//!   where `prev_hash` is the previous event's `hash` in the chain (no
//!   bytes for the first) and `recorded_at` is written
//!   `YYYY-MM-DDTHH:MM:SS.ffffffZ`; computed by the append trigger under
//!   the chain's head lock, which also assigns the sequence and the time.
//!
//! Events appended before this format (`content_hash` absent, format 1)
//! were hashed over PostgreSQL's own text of the JSONB values; only the
//! database can recompute them, so only the stored chain's verifier checks
//! them (offline, they are reported as not verifiable).

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// The format a `content_hash` is computed in (a field of the hashed
/// document, so a later format can never collide with this one).
pub const FORMAT: u32 = 2;

/// What an event's content hash covers.
#[derive(Debug, Clone, Copy)]
pub struct Content<'a> {
    /// The person's chain a platform event is in; `None` for a tenant's.
    pub chain_id: Option<Uuid>,
    pub tenant_id: Uuid,
    pub aggregate_type: &'a str,
    pub aggregate_id: &'a str,
    /// The event's place in its aggregate's stream (from 1).
    pub sequence: i64,
    pub event_type: &'a str,
    pub event_version: i32,
    pub payload: &'a Value,
    pub metadata: &'a Value,
}

impl Content<'_> {
    /// The canonical bytes: RFC 8785 of the object with the keys
    /// `aggregate_id`, `aggregate_type`, `chain_id` (string or null),
    /// `event_type`, `event_version`, `format`, `metadata`, `payload`,
    /// `sequence`, `tenant_id` (UUIDs lowercase and hyphenated).
    pub fn canonical(&self) -> Vec<u8> {
        let document = serde_json::json!({
            "format": FORMAT,
            "chain_id": self.chain_id,
            "tenant_id": self.tenant_id,
            "aggregate_type": self.aggregate_type,
            "aggregate_id": self.aggregate_id,
            "sequence": self.sequence,
            "event_type": self.event_type,
            "event_version": self.event_version,
            "payload": self.payload,
            "metadata": self.metadata,
        });
        // A `Value` always serializes; JCS refuses only non-finite numbers,
        // which a `Value` cannot hold.
        serde_json_canonicalizer::to_vec(&document).unwrap_or_default()
    }

    pub fn hash(&self) -> [u8; 32] {
        Sha256::digest(self.canonical()).into()
    }
}

/// How `recorded_at` enters a link.
pub fn time_text(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

/// `recorded_at` in exports: exactly the text the link hashes.
mod link_time {
    use chrono::{DateTime, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(at: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::time_text(*at))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let text = String::deserialize(d)?;
        DateTime::parse_from_rfc3339(&text)
            .map(|t| t.with_timezone(&Utc))
            .map_err(serde::de::Error::custom)
    }
}

/// An event's `hash`: its link to the one before.
pub fn link(
    prev_hash: &[u8],
    content_hash: &[u8],
    tenant_sequence: i64,
    recorded_at: DateTime<Utc>,
) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(prev_hash);
    h.update(content_hash);
    h.update(format!("{tenant_sequence}|{}", time_text(recorded_at)).as_bytes());
    h.finalize().into()
}

/// One event as an export line carries it (and as the stored chain's
/// verifier reads it): the content, its place in the chain, its hashes in
/// lowercase hex.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChainEvent {
    pub tenant_id: Uuid,
    pub chain_id: Option<Uuid>,
    pub tenant_sequence: i64,
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub sequence: i64,
    pub event_type: String,
    pub event_version: i32,
    pub payload: Value,
    pub metadata: Value,
    /// Written as the link has it: `YYYY-MM-DDTHH:MM:SS.ffffffZ`.
    #[serde(with = "link_time")]
    pub recorded_at: DateTime<Utc>,
    /// Absent (or null) for a format-1 event.
    #[serde(default)]
    pub content_hash: Option<String>,
    pub prev_hash: String,
    pub hash: String,
}

impl ChainEvent {
    pub fn content(&self) -> Content<'_> {
        Content {
            chain_id: self.chain_id,
            tenant_id: self.tenant_id,
            aggregate_type: &self.aggregate_type,
            aggregate_id: &self.aggregate_id,
            sequence: self.sequence,
            event_type: &self.event_type,
            event_version: self.event_version,
            payload: &self.payload,
            metadata: &self.metadata,
        }
    }
}

/// Why a chain fails to verify at a sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Break {
    /// The event's content (payload, metadata, type, ids, time or
    /// sequence) is not what its link was made over, or its hash was
    /// rewritten.
    ContentChanged,
    /// The sequence jumps: an event is missing here.
    EventMissing,
    /// Events are out of order (a sequence repeats or goes back, or an
    /// event follows one it was not linked to).
    EventsReordered,
    /// The event before this one is not the one it was linked to: an event
    /// was put in between.
    EventInserted,
    /// The event at a saved checkpoint is not the one the checkpoint
    /// signed: the chain was rewritten (every hash recomputed) since.
    ChainRewrittenAfterCheckpoint,
    /// A kept checkpoint whose signature holds for none of the server's
    /// keys: the checkpoints were tampered with.
    CheckpointForged,
    /// A format-1 event outside the database (its hash covers PostgreSQL's
    /// text of the values; only the stored chain's verifier checks it).
    NotVerifiableOffline,
}

impl Break {
    pub fn describe(self) -> &'static str {
        match self {
            Self::ContentChanged => "content changed: the event is not what its hash was made over",
            Self::EventMissing => "event missing: the sequence skips this number",
            Self::EventsReordered => "events reordered: this event does not follow the one before",
            Self::EventInserted => "event inserted: the event before this one was put in between",
            Self::ChainRewrittenAfterCheckpoint => {
                "chain rewritten after a checkpoint: the hash here differs from the signed one"
            }
            Self::CheckpointForged => {
                "checkpoint forged: a kept checkpoint's signature holds for none of the server's keys"
            }
            Self::NotVerifiableOffline => {
                "a format-1 event: only the stored chain's verifier can check it"
            }
        }
    }
}

/// A hash the verifier must find at a sequence (a saved checkpoint's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Anchor {
    pub sequence: i64,
    pub hash: String,
}

/// A signed checkpoint: the head of a chain (its sequence and hash) at a
/// time, signed by the server's Ed25519 key `key_id`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainCheckpoint {
    pub chain_id: Uuid,
    pub sequence: i64,
    /// The chain's hash at `sequence` (lowercase hex).
    pub hash: String,
    #[serde(with = "link_time")]
    pub signed_at: DateTime<Utc>,
    pub key_id: String,
    /// Ed25519 over [`ChainCheckpoint::message`] (lowercase hex, 64 bytes).
    pub signature: String,
}

impl ChainCheckpoint {
    /// The bytes signed: RFC 8785 of `{"chain_id", "format":
    /// "tenantry-checkpoint-1", "hash", "key_id", "sequence", "signed_at"}`
    /// with the values as the checkpoint carries them.
    pub fn message(&self) -> Vec<u8> {
        let document = serde_json::json!({
            "format": "tenantry-checkpoint-1",
            "chain_id": self.chain_id,
            "sequence": self.sequence,
            "hash": self.hash,
            "signed_at": time_text(self.signed_at),
            "key_id": self.key_id,
        });
        serde_json_canonicalizer::to_vec(&document).unwrap_or_default()
    }

    /// The signature holds for `public_key` (32 bytes of an Ed25519 key).
    pub fn signed_by(&self, public_key: &[u8]) -> bool {
        use ed25519_dalek::{Signature, VerifyingKey};
        let Ok(key) = <[u8; 32]>::try_from(public_key) else {
            return false;
        };
        let Ok(key) = VerifyingKey::from_bytes(&key) else {
            return false;
        };
        let Some(signature) = hex::decode(&self.signature)
            .ok()
            .and_then(|b| <[u8; 64]>::try_from(b.as_slice()).ok())
        else {
            return false;
        };
        key.verify_strict(&self.message(), &Signature::from_bytes(&signature))
            .is_ok()
    }

    /// What a verifier must find at its sequence.
    pub fn anchor(&self) -> Anchor {
        Anchor {
            sequence: self.sequence,
            hash: self.hash.clone(),
        }
    }
}

/// The outcome of a verification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum Verdict {
    /// Every event from `from` to `to` verified; `head` is the last hash.
    Verified {
        from: Option<i64>,
        to: Option<i64>,
        events: u64,
        head: Option<String>,
    },
    /// The first sequence that fails, and why.
    Broken {
        sequence: i64,
        reason: Break,
        /// Events verified before it.
        verified: u64,
    },
}

/// A verifier fed events in chain order, one at a time (memory flat for
/// any length: it keeps the hashes it saw, 32 bytes an event, to tell an
/// insertion from a reordering).
pub struct Verifier {
    expected: Option<i64>,
    last_hash: Vec<u8>,
    seen: HashSet<Vec<u8>>,
    anchors: Vec<Anchor>,
    from: Option<i64>,
    to: Option<i64>,
    count: u64,
    broken: Option<(i64, Break)>,
}

/// The stored chain's answer for a format-1 event: whether the database
/// recomputed its hash to the stored one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Legacy {
    /// Offline: format-1 events cannot be checked.
    Unknown,
    Checked(bool),
}

impl Verifier {
    /// From the chain's start, or from `(sequence, prev_hash)` for a range
    /// that starts later (an export from `from_sequence`).
    pub fn new(start: Option<(i64, String)>, anchors: Vec<Anchor>) -> Self {
        let (expected, last_hash) = match start {
            Some((sequence, prev)) => (Some(sequence), hex::decode(prev).unwrap_or_default()),
            None => (Some(1), Vec::new()),
        };
        Self {
            expected,
            last_hash,
            seen: HashSet::new(),
            anchors,
            from: None,
            to: None,
            count: 0,
            broken: None,
        }
    }

    /// A verifier for a range whose first event's `prev_hash` is taken on
    /// trust (the start of an export that begins mid-chain).
    pub fn from_first_event() -> Self {
        Self {
            expected: None,
            ..Self::new(None, Vec::new())
        }
    }

    pub fn with_anchors(mut self, anchors: Vec<Anchor>) -> Self {
        self.anchors = anchors;
        self
    }

    /// Feed the next event; false once the chain is broken (the verdict
    /// names where).
    pub fn push(&mut self, e: &ChainEvent, legacy: Legacy) -> bool {
        if self.broken.is_some() {
            return false;
        }
        match self.check(e, legacy) {
            Ok(()) => {
                self.from.get_or_insert(e.tenant_sequence);
                self.to = Some(e.tenant_sequence);
                self.count += 1;
                let hash = hex::decode(&e.hash).unwrap_or_default();
                self.seen
                    .insert(std::mem::replace(&mut self.last_hash, hash));
                self.expected = Some(e.tenant_sequence + 1);
                true
            }
            Err((sequence, reason)) => {
                self.broken = Some((sequence, reason));
                false
            }
        }
    }

    fn check(&self, e: &ChainEvent, legacy: Legacy) -> Result<(), (i64, Break)> {
        let at = e.tenant_sequence;
        let prev = hex::decode(&e.prev_hash).unwrap_or_default();
        let stored = hex::decode(&e.hash).unwrap_or_default();
        if let Some(expected) = self.expected {
            if at > expected {
                return Err((expected, Break::EventMissing));
            }
            if at < expected {
                return Err((at, Break::EventsReordered));
            }
        }
        let own_link_holds = match (&e.content_hash, legacy) {
            (Some(_), _) => {
                // Recomputed from the content, never taken from the event.
                let content = e.content().hash();
                link(&prev, &content, at, e.recorded_at).as_slice() == stored.as_slice()
            }
            (None, Legacy::Checked(ok)) => ok,
            (None, Legacy::Unknown) => return Err((at, Break::NotVerifiableOffline)),
        };
        let follows = self.expected.is_none() || prev == self.last_hash;
        match (follows, own_link_holds) {
            (true, true) => {}
            (true, false) => return Err((at, Break::ContentChanged)),
            // It links to an event further back: the one before was put in.
            (false, _) if self.seen.contains(&prev) => {
                return Err((at - 1, Break::EventInserted));
            }
            // Intact itself, but the event before is not the one it was
            // linked to: that one was changed (and its hash rewritten).
            (false, true) => return Err((at - 1, Break::ContentChanged)),
            (false, false) => return Err((at, Break::EventsReordered)),
        }
        if let Some(anchor) = self.anchors.iter().find(|a| a.sequence == at) {
            if anchor.hash != e.hash {
                return Err((at, Break::ChainRewrittenAfterCheckpoint));
            }
        }
        Ok(())
    }

    /// The verdict over what was fed. An anchor past the last event fed is
    /// not checked (the range did not reach it).
    pub fn finish(self) -> Verdict {
        match self.broken {
            Some((sequence, reason)) => Verdict::Broken {
                sequence,
                reason,
                verified: self.count,
            },
            None => Verdict::Verified {
                from: self.from,
                to: self.to,
                events: self.count,
                head: self.to.map(|_| hex::encode(&self.last_hash)),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn chain(n: i64) -> Vec<ChainEvent> {
        let tenant_id = Uuid::from_u128(7);
        let mut prev = Vec::new();
        let start = DateTime::parse_from_rfc3339("2026-12-01T10:00:00.123456Z")
            .unwrap()
            .with_timezone(&Utc);
        (1..=n)
            .map(|i| {
                let mut e = ChainEvent {
                    tenant_id,
                    chain_id: None,
                    tenant_sequence: i,
                    aggregate_type: "tenant".into(),
                    aggregate_id: tenant_id.to_string(),
                    sequence: i,
                    event_type: "TenantRenamed".into(),
                    event_version: 1,
                    payload: json!({"name": format!("Acme {i}"), "ü": [1.5, 10, "x"]}),
                    metadata: json!({"actor": {"type": "system", "id": "test"}}),
                    recorded_at: start + chrono::Duration::seconds(i),
                    content_hash: None,
                    prev_hash: hex::encode(&prev),
                    hash: String::new(),
                };
                let content = e.content().hash();
                let hash = link(&prev, &content, i, e.recorded_at);
                e.content_hash = Some(hex::encode(content));
                e.hash = hex::encode(hash);
                prev = hash.to_vec();
                e
            })
            .collect()
    }

    fn verify(events: &[ChainEvent], anchors: Vec<Anchor>) -> Verdict {
        let mut v = Verifier::new(None, anchors);
        for e in events {
            if !v.push(e, Legacy::Unknown) {
                break;
            }
        }
        v.finish()
    }

    fn broken_at(events: &[ChainEvent]) -> (i64, Break) {
        match verify(events, Vec::new()) {
            Verdict::Broken {
                sequence, reason, ..
            } => (sequence, reason),
            v => panic!("verified: {v:?}"),
        }
    }

    #[test]
    fn the_canonical_form_sorts_keys_and_drops_whitespace() {
        let events = chain(1);
        let text = String::from_utf8(events[0].content().canonical()).unwrap();
        assert!(text.starts_with(r#"{"aggregate_id":"00000000-0000-0000-0000-000000000007","aggregate_type":"tenant","chain_id":null,"event_type":"TenantRenamed","event_version":1,"format":2,"metadata":{"#), "{text}");
        assert!(
            text.contains(r#""payload":{"name":"Acme 1","ü":[1.5,10,"x"]}"#),
            "{text}"
        );
    }

    #[test]
    fn an_export_line_carries_the_time_as_the_link_hashes_it_and_reads_back() {
        let mut e = chain(1).remove(0);
        e.recorded_at = DateTime::parse_from_rfc3339("2026-12-01T10:00:00.5Z")
            .unwrap()
            .with_timezone(&Utc);
        let line = serde_json::to_value(&e).unwrap();
        assert_eq!(line["recorded_at"], "2026-12-01T10:00:00.500000Z");
        assert_eq!(serde_json::from_value::<ChainEvent>(line).unwrap(), e);
    }

    #[test]
    fn an_intact_chain_verifies_and_names_its_range_and_head() {
        let events = chain(5);
        assert_eq!(
            verify(&events, Vec::new()),
            Verdict::Verified {
                from: Some(1),
                to: Some(5),
                events: 5,
                head: Some(events[4].hash.clone()),
            }
        );
    }

    #[test]
    fn each_kind_of_tampering_is_found_at_its_sequence() {
        let mut edited = chain(5);
        edited[2].payload["name"] = json!("Evil");
        assert_eq!(broken_at(&edited), (3, Break::ContentChanged));

        let mut rehashed = chain(5);
        rehashed[2].payload["name"] = json!("Evil");
        let content = rehashed[2].content().hash();
        let prev = hex::decode(&rehashed[2].prev_hash).unwrap();
        rehashed[2].hash = hex::encode(link(&prev, &content, 3, rehashed[2].recorded_at));
        assert_eq!(broken_at(&rehashed), (3, Break::ContentChanged));

        let mut deleted = chain(5);
        deleted.remove(2);
        assert_eq!(broken_at(&deleted), (3, Break::EventMissing));

        // Two events swapped, their sequence numbers exchanged so the
        // order looks right (as a rewrite in the database would).
        let mut renumbered = chain(5);
        renumbered.swap(1, 2);
        renumbered[1].tenant_sequence = 2;
        renumbered[2].tenant_sequence = 3;
        assert_eq!(broken_at(&renumbered), (2, Break::EventsReordered));

        // An event put in after 2, linked to 2 and well hashed itself; the
        // rest renumbered.
        let mut inserted = chain(5);
        let mut extra = inserted[1].clone();
        extra.payload = json!({"name": "Inserted"});
        extra.tenant_sequence = 3;
        let prev = hex::decode(&inserted[1].hash).unwrap();
        let content = extra.content().hash();
        extra.prev_hash = inserted[1].hash.clone();
        extra.hash = hex::encode(link(&prev, &content, 3, extra.recorded_at));
        inserted.insert(2, extra);
        for (i, e) in inserted.iter_mut().enumerate().skip(3) {
            e.tenant_sequence = i as i64 + 1;
        }
        assert_eq!(broken_at(&inserted), (3, Break::EventInserted));
    }

    #[test]
    fn a_chain_rewritten_after_a_checkpoint_is_found_against_it() {
        let original = chain(5);
        let anchor = Anchor {
            sequence: 4,
            hash: original[3].hash.clone(),
        };
        // Event 2 edited and every hash from it recomputed: a valid chain.
        let mut rewritten = original.clone();
        rewritten[1].payload["name"] = json!("Evil");
        let mut prev = hex::decode(&rewritten[0].hash).unwrap();
        for e in rewritten.iter_mut().skip(1) {
            e.prev_hash = hex::encode(&prev);
            let content = e.content().hash();
            let hash = link(&prev, &content, e.tenant_sequence, e.recorded_at);
            e.hash = hex::encode(hash);
            prev = hash.to_vec();
        }
        assert!(matches!(
            verify(&rewritten, Vec::new()),
            Verdict::Verified { .. }
        ));
        assert!(matches!(
            verify(&rewritten, vec![anchor]),
            Verdict::Broken {
                sequence: 4,
                reason: Break::ChainRewrittenAfterCheckpoint,
                ..
            }
        ));
    }

    #[test]
    fn a_checkpoint_signature_holds_for_its_key_and_nothing_it_did_not_sign() {
        use ed25519_dalek::{Signer, SigningKey};
        let key = SigningKey::from_bytes(&[7u8; 32]);
        let events = chain(3);
        let mut cp = ChainCheckpoint {
            chain_id: events[2].tenant_id,
            sequence: 3,
            hash: events[2].hash.clone(),
            signed_at: events[2].recorded_at,
            key_id: "k1".into(),
            signature: String::new(),
        };
        cp.signature = hex::encode(key.sign(&cp.message()).to_bytes());
        let public = key.verifying_key().to_bytes();
        assert!(cp.signed_by(&public));
        assert!(!cp.signed_by(
            &SigningKey::from_bytes(&[8u8; 32])
                .verifying_key()
                .to_bytes()
        ));
        let mut moved = cp.clone();
        moved.hash = events[1].hash.clone();
        assert!(!moved.signed_by(&public));
        let mut later = cp.clone();
        later.sequence = 4;
        assert!(!later.signed_by(&public));
        assert!(!cp.signed_by(b"short"));
    }

    #[test]
    fn format_1_events_are_not_verifiable_offline_but_checked_in_the_database() {
        let mut events = chain(2);
        events[0].content_hash = None;
        assert_eq!(broken_at(&events), (1, Break::NotVerifiableOffline));
        let mut v = Verifier::new(None, Vec::new());
        assert!(v.push(&events[0], Legacy::Checked(true)));
        assert!(v.push(&events[1], Legacy::Unknown));
        assert!(matches!(v.finish(), Verdict::Verified { events: 2, .. }));
    }
}
