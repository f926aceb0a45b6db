-- Core tables: cells, samples (every trace, valid or not, payload kept losslessly),
-- model metadata, import provenance and runs. See src/store/mod.rs for the contract.
CREATE TABLE cells (
    cell         TEXT PRIMARY KEY,
    source_model TEXT NOT NULL,
    model        TEXT NOT NULL,
    first_seen   INTEGER NOT NULL
);

CREATE TABLE samples (
    id              INTEGER PRIMARY KEY,
    cell            TEXT NOT NULL REFERENCES cells(cell),
    condition       TEXT NOT NULL,
    idx             INTEGER NOT NULL,
    layered_id      TEXT UNIQUE,
    valid           INTEGER NOT NULL,
    prompt          TEXT NOT NULL,
    response        TEXT,
    provider        TEXT,
    model_returned  TEXT,
    model_requested TEXT,
    duration_ms     INTEGER,
    finish_reason   TEXT,
    truncated       INTEGER NOT NULL DEFAULT 0,
    upstream_error  INTEGER NOT NULL DEFAULT 0,
    answer_source   TEXT,
    error           TEXT,
    invalid_reason  TEXT,
    http_status     INTEGER,
    usage_json      TEXT,
    payload         TEXT NOT NULL,
    origin          TEXT NOT NULL,
    content_sha256  TEXT NOT NULL,
    imported_at     TEXT NOT NULL,
    UNIQUE (cell, condition, idx)
);
CREATE INDEX samples_valid ON samples(valid);

CREATE TABLE models (
    model        TEXT PRIMARY KEY,
    display_name TEXT,
    lab          TEXT,
    family       TEXT,
    release_date TEXT,
    origin       TEXT NOT NULL
);

CREATE TABLE import_files (
    id          INTEGER PRIMARY KEY,
    path        TEXT NOT NULL,
    format      TEXT NOT NULL,
    sha256      TEXT NOT NULL,
    rows        INTEGER NOT NULL,
    skipped     INTEGER NOT NULL,
    errors      INTEGER NOT NULL,
    imported_at TEXT NOT NULL
);

CREATE UNIQUE INDEX import_files_content ON import_files(path, format, sha256);

CREATE TABLE runs (
    id          INTEGER PRIMARY KEY,
    command     TEXT NOT NULL,
    started_at  TEXT NOT NULL,
    finished_at TEXT,
    status      TEXT NOT NULL,
    detail_json TEXT
);
