//! Auditors' use cases: a chain exported as NDJSON or CSV in pages (memory
//! flat for any length, resumable by sequence), ended by a manifest; the
//! stored chain verified; an export verified with no database. The format
//! is `docs/AUDIT.md`'s; the verifier is `tenantry_store::chain`'s.

use std::io::BufRead;

use futures_util::Stream;
use serde::Serialize;
use tenantry_store::audit::EventFilter;
use tenantry_store::chain::{Anchor, ChainCheckpoint, ChainEvent, Legacy, Verdict, Verifier};
use uuid::Uuid;

use crate::audit_keys::AuditKeys;
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::Store;

/// Events read from the database per page of an export.
const PAGE: i64 = 500;

/// What an export holds, as its last line says.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct Manifest {
    pub tenant_id: Uuid,
    pub from_sequence: i64,
    /// The last sequence the export was to hold (the head's when none was
    /// asked, or a smaller one).
    pub to_sequence: i64,
    pub events: u64,
    /// The chain's head when the export began.
    pub head_sequence: i64,
    pub head_hash: Option<String>,
    /// The last signed checkpoint within the range, if any: verify it with
    /// the published key, then check the export against it.
    pub latest_checkpoint: Option<ChainCheckpoint>,
    pub format: u32,
    pub exported_at: chrono::DateTime<chrono::Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    Ndjson,
    Csv,
}

/// The columns of a CSV export, in order.
const CSV_HEADER: [&str; 15] = [
    "tenant_sequence",
    "recorded_at",
    "aggregate_type",
    "aggregate_id",
    "sequence",
    "event_type",
    "event_version",
    "actor",
    "impersonator",
    "payload",
    "metadata",
    "content_hash",
    "prev_hash",
    "hash",
    "chain_id",
];

struct Export {
    store: Store,
    chain: Uuid,
    after: i64,
    to: i64,
    format: ExportFormat,
    manifest: Option<Manifest>,
    started: bool,
}

/// A tenant's chain from `from_sequence` (1 when absent) to `to_sequence`
/// (the head when absent), as chunks of lines; the head is read first, so
/// the range is what the chain held when the export began.
pub async fn export(
    store: Store,
    tenant_id: Uuid,
    from_sequence: Option<i64>,
    to_sequence: Option<i64>,
    format: ExportFormat,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<impl Stream<Item = Result<String, std::io::Error>>, sqlx::Error> {
    let head = store.audit().head(tenant_id).await?;
    let (head_sequence, head_hash) = head.map_or((0, None), |(s, h)| (s, Some(h)));
    let from = from_sequence.unwrap_or(1).max(1);
    let to = to_sequence.map_or(head_sequence, |t| t.min(head_sequence));
    let latest_checkpoint = store.audit().checkpoint_at_or_before(tenant_id, to).await?;
    let manifest = Manifest {
        tenant_id,
        from_sequence: from,
        to_sequence: to,
        events: 0,
        head_sequence,
        head_hash,
        latest_checkpoint,
        format: tenantry_store::chain::FORMAT,
        exported_at: now,
    };
    let state = Export {
        store,
        chain: tenant_id,
        after: from - 1,
        to,
        format,
        manifest: Some(manifest),
        started: false,
    };
    Ok(futures_util::stream::unfold(state, next_chunk))
}

async fn next_chunk(mut x: Export) -> Option<(Result<String, std::io::Error>, Export)> {
    let mut out = String::new();
    if !x.started && x.format == ExportFormat::Csv {
        out.push_str(&csv_line(CSV_HEADER.iter().map(|h| h.to_string())));
    }
    x.started = true;
    if x.after < x.to {
        let page = x
            .store
            .audit()
            .chain_page(x.chain, &EventFilter::default(), x.after, Some(x.to), PAGE)
            .await;
        let page = match page {
            Ok(page) => page,
            Err(e) => return Some((Err(std::io::Error::other(e)), x)),
        };
        if let Some(last) = page.last() {
            x.after = last.event.tenant_sequence;
        } else {
            // The chain ends before `to` (it cannot shrink; nothing more).
            x.after = x.to;
        }
        for e in &page {
            match x.format {
                ExportFormat::Ndjson => {
                    out.push_str(&serde_json::to_string(&e.event).unwrap_or_default());
                    out.push('\n');
                }
                ExportFormat::Csv => out.push_str(&csv_row(&e.event)),
            }
        }
        if let Some(m) = x.manifest.as_mut() {
            m.events += page.len() as u64;
        }
        return Some((Ok(out), x));
    }
    // The range is done: the manifest, once (NDJSON only), then the end.
    let manifest = x.manifest.take()?;
    if x.format == ExportFormat::Ndjson {
        out.push_str(&serde_json::json!({ "manifest": manifest }).to_string());
        out.push('\n');
    }
    Some((Ok(out), x))
}

fn csv_row(e: &ChainEvent) -> String {
    let actor = |key: &str| {
        e.metadata
            .get(key)
            .and_then(|a| serde_json::from_value::<tenantry_domain::Actor>(a.clone()).ok())
            .map(|a| a.label())
            .unwrap_or_default()
    };
    csv_line(
        [
            e.tenant_sequence.to_string(),
            tenantry_store::chain::time_text(e.recorded_at),
            e.aggregate_type.clone(),
            e.aggregate_id.clone(),
            e.sequence.to_string(),
            e.event_type.clone(),
            e.event_version.to_string(),
            actor("actor"),
            actor("impersonator"),
            e.payload.to_string(),
            e.metadata.to_string(),
            e.content_hash.clone().unwrap_or_default(),
            e.prev_hash.clone(),
            e.hash.clone(),
            e.chain_id.map(|c| c.to_string()).unwrap_or_default(),
        ]
        .into_iter(),
    )
}

/// One CSV record (RFC 4180 quoting), with its line end.
fn csv_line(fields: impl Iterator<Item = String>) -> String {
    let mut w = csv::Writer::from_writer(Vec::new());
    let fields: Vec<String> = fields.collect();
    // Writing to memory fails only on a bug in the writer.
    let _ = w.write_record(&fields);
    String::from_utf8(w.into_inner().unwrap_or_default()).unwrap_or_default()
}

/// Verify a tenant's stored chain from its first event, against every
/// checkpoint kept for it. A kept checkpoint whose signature holds for none
/// of `keys` is itself the finding (`checkpoint_forged`).
pub async fn verify_stored(
    store: &Store,
    keys: &AuditKeys,
    tenant_id: Uuid,
) -> Result<Verdict, sqlx::Error> {
    let mut anchors = Vec::new();
    let mut after = 0;
    loop {
        let page = store.audit().checkpoints(tenant_id, after, 1000).await?;
        let Some(last) = page.last() else { break };
        after = last.sequence;
        for cp in &page {
            match keys.public_key(&cp.key_id) {
                Some(public) if cp.signed_by(&public) => anchors.push(cp.anchor()),
                _ => {
                    return Ok(Verdict::Broken {
                        sequence: cp.sequence,
                        reason: tenantry_store::chain::Break::CheckpointForged,
                        verified: 0,
                    })
                }
            }
        }
    }
    store.audit().verify_chain(tenant_id, anchors).await
}

/// Sign the tenant's head now and keep it (on request, and the job's
/// work): the checkpoint, or the one already kept at that sequence.
pub async fn checkpoint_now(
    state: &AppState,
    tenant_id: Uuid,
) -> Result<Option<ChainCheckpoint>, ApiError> {
    let Some((sequence, hash)) = state.store.audit().head(tenant_id).await? else {
        return Ok(None);
    };
    let checkpoint = state.config.audit_keys.sign(ChainCheckpoint {
        chain_id: tenant_id,
        sequence,
        hash,
        signed_at: state.now(),
        key_id: String::new(),
        signature: String::new(),
    });
    if state.store.audit().keep_checkpoint(&checkpoint).await? {
        return Ok(Some(checkpoint));
    }
    Ok(state
        .store
        .audit()
        .checkpoint_at_or_before(tenant_id, sequence)
        .await?)
}

/// Sign every tenant's head that is due (the checkpoint job's work).
pub async fn sign_due(state: &AppState) -> Result<(), ApiError> {
    let every = i64::from(state.config.checkpoint_every_events);
    let interval = chrono::Duration::from_std(state.config.checkpoint_interval)
        .unwrap_or(chrono::Duration::minutes(10));
    let due = state
        .store
        .audit()
        .heads_due(every, state.now() - interval, 100)
        .await?;
    for (tenant_id, _, _) in due {
        checkpoint_now(state, tenant_id).await?;
    }
    Ok(())
}

/// Why an export file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("reading the export: {0}")]
    Io(#[from] std::io::Error),
    #[error("line {line} is not an exported event: {reason}")]
    Line { line: usize, reason: String },
}

/// Verify an export (NDJSON, as `export` writes it) with no database. A
/// file that starts at sequence 1 is checked from the chain's start; one
/// that starts later takes its first `prev_hash` on trust. The manifest,
/// when there, must agree: an export cut short is missing its end.
pub fn verify_file(reader: impl BufRead, anchors: Vec<Anchor>) -> Result<Verdict, FileError> {
    let mut verifier: Option<Verifier> = None;
    let mut manifest: Option<Manifest> = None;
    let mut last = None;
    for (i, line) in reader.lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let value: serde_json::Value =
            serde_json::from_str(&line).map_err(|e| FileError::Line {
                line: i + 1,
                reason: e.to_string(),
            })?;
        if let Some(m) = value.get("manifest") {
            manifest = serde_json::from_value(m.clone()).ok();
            continue;
        }
        let event: ChainEvent = serde_json::from_value(value).map_err(|e| FileError::Line {
            line: i + 1,
            reason: e.to_string(),
        })?;
        let v = verifier.get_or_insert_with(|| {
            if event.tenant_sequence == 1 {
                Verifier::new(None, anchors.clone())
            } else {
                Verifier::from_first_event().with_anchors(anchors.clone())
            }
        });
        if !v.push(&event, Legacy::Unknown) {
            break;
        }
        last = Some(event.tenant_sequence);
    }
    let verdict = verifier.map_or(
        Verdict::Verified {
            from: None,
            to: None,
            events: 0,
            head: None,
        },
        Verifier::finish,
    );
    Ok(match (verdict, manifest) {
        (Verdict::Verified { events, .. }, Some(m))
            if last.unwrap_or(m.from_sequence - 1) < m.to_sequence =>
        {
            Verdict::Broken {
                sequence: last.map_or(m.from_sequence, |l| l + 1),
                reason: tenantry_store::chain::Break::EventMissing,
                verified: events,
            }
        }
        (verdict, _) => verdict,
    })
}
