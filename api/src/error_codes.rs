//! The catalogue of every error code the API answers, with its status, and
//! of the field codes inside a 422's `details.fields`. `docs/API.md`'s list
//! is generated from it (a test keeps the two equal; `TENANTRY_BLESS=1`
//! rewrites the document). In debug builds an `ApiError` or a field error
//! with a code missing here panics, so the test suite finds any code that
//! a change adds without cataloguing it.

/// `(status, code, note)`: the note says what `details` carries, or when
/// the code is met.
pub const CODES: &[(u16, &str, &str)] = &[
    (400, "malformed_json", "the body is not JSON"),
    (400, "bad_request", "any other request the framework refuses"),
    (
        400,
        "invalid_signature",
        "a Stripe webhook whose Stripe-Signature is missing, malformed, stale or forged; nothing is changed",
    ),
    (400, "malformed_event", "a signed Stripe webhook that is not an event"),
    (401, "missing_token", ""),
    (
        401,
        "invalid_token",
        "also an `Authorization` header that holds no readable bearer token",
    ),
    (401, "invalid_credentials", ""),
    (401, "invalid_refresh_token", ""),
    (401, "refresh_token_reused", "the whole session is revoked"),
    (401, "sign_in_required", ""),
    (
        403,
        "missing_permission",
        "`details.permission`, or `details.permission_any_of` where any one of several suffices",
    ),
    (403, "platform_admin_required", "`details.permission`"),
    (403, "user_token_required", ""),
    (
        403,
        "self_approval",
        "nobody decides their own request, nor one made with an API key they created",
    ),
    (
        403,
        "not_an_approver_at_stage",
        "the request's current stage is decided by members of another role",
    ),
    (403, "not_the_requester", "only the requester cancels a request"),
    (403, "role_escalation", "`details.missing_permissions`"),
    (403, "permission_escalation", "`details.missing_permissions`"),
    (403, "owner_required", ""),
    (403, "invitation_email_mismatch", ""),
    (403, "cannot_impersonate_admin", ""),
    (403, "not_allowed_while_impersonating", ""),
    (403, "feature_not_in_plan", "`details.feature`"),
    (
        404,
        "not_found",
        "no such route, or a path id that names nothing: not a UUID, not UTF-8, a control character, over 16 KiB",
    ),
    (404, "tenant_not_found", ""),
    (404, "user_not_found", ""),
    (404, "member_not_found", ""),
    (404, "role_not_found", ""),
    (404, "api_key_not_found", ""),
    (404, "llm_key_not_found", ""),
    (404, "invitation_not_found", ""),
    (404, "session_not_found", ""),
    (404, "plan_not_found", ""),
    (405, "method_not_allowed", ""),
    (408, "request_timeout", ""),
    (409, "slug_taken", ""),
    (409, "email_taken", ""),
    (
        409,
        "concurrent_update",
        "retry; also an invitation resent by a racing request",
    ),
    (409, "tenant_already_suspended", ""),
    (409, "tenant_not_suspended", ""),
    (409, "tenant_archived", ""),
    (409, "user_already_deactivated", ""),
    (409, "user_already_active", ""),
    (409, "user_deactivated", ""),
    (409, "already_platform_admin", ""),
    (409, "not_platform_admin", ""),
    (404, "agent_not_found", ""),
    (404, "approval_policy_not_found", ""),
    (404, "approval_not_found", ""),
    (409, "cannot_revoke_own_admin", ""),
    (409, "cannot_deactivate_self", ""),
    (409, "cannot_erase_self", ""),
    (
        409,
        "user_erased",
        "the person was erased: their account is closed for good",
    ),
    (409, "plan_key_taken", ""),
    (
        409,
        "stripe_event_applied",
        "never answered to Stripe: a replayed event is acknowledged with 200",
    ),
    (409, "plan_retired", ""),
    (409, "plan_already_exists", "only a racing duplicate command meets it"),
    (
        409,
        "billing_not_configured",
        "Stripe is not configured: plans are assigned by platform admins",
    ),
    (
        409,
        "no_stripe_customer",
        "the billing portal before the tenant has subscribed through checkout",
    ),
    (409, "plan_not_for_sale", "a free plan, or one without a Stripe price: a platform admin assigns it"),
    (409, "duplicate_provider_key", ""),
    (
        409,
        "agent_quota_reached",
        "`details.max_agents`: the plan's limit on agents that are not archived",
    ),
    (409, "agent_archived", "an archived agent cannot change or run again"),
    (
        409,
        "action_pattern_taken",
        "another approval policy names this action pattern already",
    ),
    (
        409,
        "approval_id_conflict",
        "a request with this id was made before with other content",
    ),
    (409, "approval_not_pending", "the request was approved, rejected or canceled"),
    (409, "approval_expired", "the request expired before this decision"),
    (409, "already_decided", "this member has decided on this request already"),
    (409, "stage_not_reached", "the request has not reached the stage given"),
    (
        409,
        "agent_paused",
        "usage of a paused or archived agent: `details.agent_id`, `details.status`",
    ),
    (
        409,
        "usage_id_conflict",
        "record ids recorded before with other content: `details.ids`; nothing of the batch is recorded",
    ),
    (
        409,
        "model_not_allowed",
        "a reservation's estimate for a provider or model the agent's allow-list lacks: `details.provider`, `details.model`",
    ),
    (
        409,
        "reservation_id_conflict",
        "a reservation id held for another agent or amount",
    ),
    (409, "agent_already_exists", "only a racing duplicate command meets it"),
    (409, "already_member", ""),
    (409, "last_owner", ""),
    (409, "seat_limit_reached", "`details.max_seats`"),
    (409, "role_exists", ""),
    (409, "role_in_use", "`details.members`"),
    (409, "builtin_role_immutable", ""),
    (409, "invitation_pending", ""),
    (409, "invitation_not_pending", ""),
    (409, "not_impersonating", ""),
    (409, "impersonation_cannot_refresh", ""),
    (409, "idempotency_in_progress", ""),
    (409, "secret_not_replayable", "`details.original_status`"),
    (409, "tenant_already_exists", "only a racing duplicate command meets it"),
    (409, "user_already_exists", "only a racing duplicate command meets it"),
    (409, "api_key_already_exists", "only a racing duplicate command meets it"),
    (409, "llm_key_already_exists", "only a racing duplicate command meets it"),
    (409, "session_already_exists", "only a racing duplicate command meets it"),
    (410, "invitation_expired", ""),
    (410, "invitation_revoked", ""),
    (410, "invitation_used", ""),
    (410, "session_revoked", ""),
    (
        402,
        "payment_required",
        "a change in a tenant whose subscription is not paid (`details.billing_status`, `details.checkout`); reads and billing still work",
    ),
    (
        402,
        "budget_exceeded",
        "a reservation beyond a budget: `details.scope` (`tenant` or `agent`, with `agent_id`), `limit_micros`, `spent_micros`, `reserved_micros`, `resets_at`; `Retry-After` until the reset",
    ),
    (413, "payload_too_large", "the body is over 1 MiB"),
    (415, "unsupported_media_type", ""),
    (
        422,
        "action_not_covered",
        "no approval policy covers the action and the tenant refuses uncovered actions",
    ),
    (
        422,
        "validation_failed",
        "`details.fields: [{field, code, message}]`, codes below",
    ),
    (422, "invalid_query", ""),
    (422, "invalid_limit", ""),
    (422, "invalid_cursor", ""),
    (422, "invalid_status", ""),
    (422, "invalid_after", ""),
    (422, "invalid_format", "an export's `format`: ndjson or csv"),
    (422, "invalid_sequence_range", ""),
    (
        422,
        "invalid_last_event_id",
        "an event stream's `Last-Event-ID`: the sequence of the last event received",
    ),
    (422, "invalid_include", ""),
    (422, "invalid_reason", ""),
    (422, "invalid_settings", ""),
    (422, "invalid_expiry", ""),
    (422, "unknown_role", ""),
    (422, "permission_not_assignable", ""),
    (422, "no_permissions", ""),
    (422, "wrong_password", ""),
    (
        422,
        "invalid_plan_terms",
        "`details.field` and `details.field_code` name what is wrong",
    ),
    (422, "plan_has_no_trial", ""),
    (422, "invalid_range", "`from` after `to`, or more than 366 days"),
    (422, "invalid_group_by", ""),
    (422, "invalid_price_book", "the message names the price at fault"),
    (
        422,
        "price_book_effective_too_early",
        "a version that would take effect before the last one",
    ),
    (422, "invalid_batch_size", "only a command built outside the API meets it"),

    (422, "invalid_idempotency_key", ""),
    (422, "idempotency_key_reused", ""),
    (423, "tenant_suspended", ""),
    (
        429,
        "rate_limited",
        "`Retry-After` and `details.retry_after_seconds`",
    ),
    (
        429,
        "too_many_streams",
        "`details.scope` (`caller` or `tenant`) and `details.limit`: close a stream first",
    ),
    (
        500,
        "internal_error",
        "`details.request_id`; the cause is in the server's log",
    ),
    (
        503,
        "service_unavailable",
        "the database cannot be reached: `Retry-After`, `details.retry_after_seconds` and `details.request_id`",
    ),
    (
        502,
        "stripe_unavailable",
        "Stripe did not complete a call (`details.stripe_status` when it answered); retry. A webhook answered so is retried by Stripe",
    ),
    (503, "not_ready", "from `/readyz`"),
];

/// `(code, note)` of the field errors inside `details.fields`.
pub const FIELD_CODES: &[(&str, &str)] = &[
    (
        "invalid_characters",
        "a control character, or an invisible or text-direction one in a name",
    ),
    ("too_long", "a string over 16 KiB"),
    ("invalid_length", ""),
    ("invalid_actor", "an events filter's `actor`"),
    ("invalid_range", "`to` not after `from`"),
    ("invalid_email", ""),
    ("invalid_slug", ""),
    ("slug_required", "no slug can be derived from the name"),
    ("invalid_role_name", ""),
    ("invalid_policy_name", ""),
    (
        "invalid_action",
        "an action (or a prefix ending in `.`) of a-z, 0-9, `_`, `-` and `.`",
    ),
    ("invalid_approvals", "a stage needs 1 to 20 approvals"),
    ("unknown_role", "no built-in role nor role of the tenant"),
    ("invalid_expiry", ""),
    ("invalid_uncovered", "`default_policy` or `refuse`"),
    ("invalid_decision", "`approve` or `reject`"),
    ("invalid_request_id", "an approval request's id: 1 to 128 of letters, digits and `._:-`"),
    ("invalid_wait", "1 to 30 seconds"),
    ("invalid_settings", ""),
    ("settings_too_large", ""),
    (
        "unknown_permission",
        "naming at most five of the unknown names",
    ),
    ("password_too_short", ""),
    ("password_too_long", ""),
    ("unknown_provider", "naming the supported providers"),
    ("malformed_api_key", "naming the expected shape"),
    ("api_key_too_long", "over 4 KiB"),
    ("user_not_found", "a user id that names nobody"),
    ("user_deactivated", "a user id of a deactivated user"),
    ("user_erased", "a user id of an erased person"),
    ("invalid_price", "a plan's price below 0"),
    ("invalid_currency", "not three lowercase letters"),
    (
        "invalid_stripe_price",
        "a plan's `stripe_price` that is not a Stripe price id, or is one of Tenantry's own names",
    ),
    ("invalid_interval", "not month or year"),
    ("invalid_trial", "a trial over 365 days"),
    (
        "invalid_entitlement",
        "a limit of 0, a negative credit, an unknown rate tier",
    ),
    ("unknown_feature", "naming the known features"),
    (
        "invalid_model",
        "an agent's allow-list model that is not 1 to 100 of letters, digits and . _ : - /",
    ),
    ("invalid_budget", "a budget below 0"),
    (
        "unknown_agent",
        "a usage record's agent that is not one of the tenant's",
    ),
    (
        "invalid_usage_id",
        "not 1 to 128 of letters, digits and . _ : -",
    ),
    (
        "invalid_count",
        "a token or request count below 0 or over 10^12",
    ),
    (
        "invalid_occurred_at",
        "more than 35 days ago or more than 5 minutes ahead",
    ),
    (
        "invalid_attributes",
        "not an object of at most 512 bytes as JSON",
    ),
    (
        "invalid_batch_size",
        "a batch of 0 or more than 1000 records",
    ),
    (
        "duplicate_in_batch",
        "an id earlier in the batch with other content",
    ),
    (
        "invalid_amount",
        "a reservation with neither or both of amount_micros and estimate, or an amount out of range",
    ),
];

/// Whether `code` is catalogued with `status`.
pub fn is_known(status: u16, code: &str) -> bool {
    CODES.iter().any(|(s, c, _)| *s == status && *c == code)
}

pub fn is_known_field_code(code: &str) -> bool {
    FIELD_CODES.iter().any(|(c, _)| *c == code)
}

fn item(code: &str, note: &str) -> String {
    if note.is_empty() {
        format!("`{code}`")
    } else {
        format!("`{code}` ({note})")
    }
}

/// The catalogue as `docs/API.md` shows it: one line per status.
pub fn markdown() -> String {
    let mut out = String::new();
    let mut statuses: Vec<u16> = CODES.iter().map(|(s, _, _)| *s).collect();
    statuses.dedup();
    for status in statuses {
        let items: Vec<String> = CODES
            .iter()
            .filter(|(s, _, _)| *s == status)
            .map(|(_, c, n)| item(c, n))
            .collect();
        out.push_str(&format!("- {status}: {}.\n", items.join("; ")));
    }
    let fields: Vec<String> = FIELD_CODES.iter().map(|(c, n)| item(c, n)).collect();
    out.push_str(&format!(
        "- Field codes inside `details.fields`: {}.\n",
        fields.join("; ")
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const START: &str = "<!-- error-codes:start -->\n";
    const END: &str = "<!-- error-codes:end -->";

    #[test]
    fn every_code_is_catalogued_once() {
        let mut seen = std::collections::HashSet::new();
        for (_, code, _) in CODES {
            assert!(seen.insert(*code), "{code} is catalogued twice");
        }
    }

    /// `docs/API.md` lists exactly the catalogue. After a deliberate change,
    /// `TENANTRY_BLESS=1 cargo test -p tenantry-api error_codes` rewrites it.
    #[test]
    fn the_api_guide_lists_exactly_the_catalogue() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/API.md");
        let doc = std::fs::read_to_string(&path).expect("docs/API.md");
        let start = doc.find(START).expect("the start marker") + START.len();
        let end = doc.find(END).expect("the end marker");
        let listed = &doc[start..end];
        let expected = markdown();
        if listed != expected && std::env::var("TENANTRY_BLESS").is_ok_and(|v| v == "1") {
            let blessed = format!("{}{expected}{}", &doc[..start], &doc[end..]);
            std::fs::write(&path, blessed).expect("write docs/API.md");
            return;
        }
        assert_eq!(
            listed, expected,
            "docs/API.md's error codes differ from the catalogue (TENANTRY_BLESS=1 rewrites them)"
        );
    }
}
