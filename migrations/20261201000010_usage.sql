-- Usage. `usage_ids` is a side table of the write side: each ingested
-- record's client id with a hash of its content, inserted in the same
-- transaction as the batch's UsageRecorded event (a record is counted once;
-- the same id with other content is refused). `usage_daily` and
-- `price_book_view` are read models (projections `usage` and `price_book`).
CREATE TABLE usage_ids (
    tenant_id    UUID NOT NULL,
    id           TEXT NOT NULL,
    content_hash BYTEA NOT NULL,
    batch_id     UUID NOT NULL,
    PRIMARY KEY (tenant_id, id)
);

CREATE TABLE usage_daily (
    tenant_id           UUID NOT NULL,
    day                 DATE NOT NULL,
    agent_id            UUID NOT NULL,
    provider            TEXT NOT NULL,
    model               TEXT NOT NULL,
    records             BIGINT NOT NULL,
    requests            BIGINT NOT NULL,
    input_tokens        BIGINT NOT NULL,
    output_tokens       BIGINT NOT NULL,
    cached_input_tokens BIGINT NOT NULL,
    cost_micros         BIGINT NOT NULL,
    unpriced_records    BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, day, agent_id, provider, model)
);

CREATE TABLE price_book_view (
    version        INTEGER PRIMARY KEY,
    currency       TEXT NOT NULL,
    effective_from TIMESTAMPTZ NOT NULL,
    prices         JSONB NOT NULL,
    published_at   TIMESTAMPTZ NOT NULL
);

-- The live credit reservations (read model of the `usage` projection): the
-- sweeper finds the ledgers whose holds ran out.
CREATE TABLE holds_view (
    ledger_id     UUID NOT NULL,
    id            TEXT NOT NULL,
    tenant_id     UUID NOT NULL,
    agent_id      UUID NOT NULL,
    amount_micros BIGINT NOT NULL,
    expires_at    TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (ledger_id, id)
);
CREATE INDEX holds_view_expiry ON holds_view (expires_at);
