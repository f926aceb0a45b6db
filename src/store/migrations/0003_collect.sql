-- Collection bookkeeping (collect helper): one row per `vuf collect` run and one row per
-- provider call attempt, valid or not, with its reason. The valid attempt of a work item
-- is committed in the same transaction as its `samples` row, so a killed run never counts
-- a call it did not store and never stores a call twice. `work_key` is the content hash
-- of (cell config, condition, prompt, index): see docs/design/collect.md.
CREATE TABLE collect_runs (
    id           INTEGER PRIMARY KEY,
    study_name   TEXT NOT NULL,
    study_sha256 TEXT NOT NULL,
    started_at   TEXT NOT NULL,
    finished_at  TEXT,
    status       TEXT NOT NULL,
    detail_json  TEXT
);

CREATE TABLE attempts (
    id            INTEGER PRIMARY KEY,
    work_key      TEXT NOT NULL,
    run_id        INTEGER REFERENCES collect_runs(id),
    cell          TEXT NOT NULL,
    condition     TEXT NOT NULL,
    idx           INTEGER NOT NULL,
    attempt       INTEGER NOT NULL,
    valid         INTEGER NOT NULL,
    reason        TEXT,
    retry_class   TEXT,
    http_status   INTEGER,
    error         TEXT,
    response      TEXT,
    finish_reason TEXT,
    truncated     INTEGER NOT NULL DEFAULT 0,
    input_tokens  INTEGER NOT NULL DEFAULT 0,
    output_tokens INTEGER NOT NULL DEFAULT 0,
    cost_usd      REAL,
    duration_ms   INTEGER NOT NULL,
    trace_json    TEXT NOT NULL,
    finished_at   TEXT NOT NULL,
    UNIQUE (work_key, attempt)
);
CREATE INDEX attempts_key ON attempts(work_key);
CREATE UNIQUE INDEX attempts_one_valid ON attempts(work_key) WHERE valid = 1;
