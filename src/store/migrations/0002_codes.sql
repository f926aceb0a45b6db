-- Codes: per-coder codes (facts), consensus (recomputable), the coder failure ledger and
-- the coder request cache. See src/store/codes.rs for the contract.
CREATE TABLE codes (
    id                INTEGER PRIMARY KEY,
    sample_id         INTEGER NOT NULL REFERENCES samples(id),
    layer             TEXT NOT NULL CHECK (layer IN ('a', 'b')),
    coder             TEXT NOT NULL,
    source            TEXT NOT NULL,   -- published | models | offline
    rubric_hash       TEXT NOT NULL,
    topics_json       TEXT,            -- Layer A: JSON list of topic keys
    parse_clean       INTEGER,         -- Layer A
    label             TEXT,            -- Layer B: collapsed label (as recorded)
    original_label    TEXT,            -- Layer B: label before normalisation / draft mapping
    value_holding     TEXT,
    secondary_texture TEXT,
    boundary_flag     INTEGER,
    notes             TEXT,
    confidence        REAL,
    raw_text          TEXT,
    raw_json          TEXT,
    params_json       TEXT,
    flags_json        TEXT,            -- parse flags / unclean reason
    origin            TEXT NOT NULL,   -- 'import:<path>:<line>' or 'live:<run>'
    coded_at          TEXT NOT NULL,
    UNIQUE (sample_id, layer, coder, source, rubric_hash)
);
CREATE INDEX codes_layer_source ON codes(layer, source);

CREATE TABLE consensus (
    sample_id                INTEGER NOT NULL REFERENCES samples(id),
    layer                    TEXT NOT NULL CHECK (layer IN ('a', 'b')),
    source                   TEXT NOT NULL,
    rubric_hash              TEXT NOT NULL,
    label                    TEXT,
    label_support            INTEGER,
    label_votes_json         TEXT,
    value_holding            TEXT,
    value_holding_support    INTEGER,
    value_holding_votes_json TEXT,
    topics_json              TEXT,     -- Layer A: [{topic_key, supporting_coders}]
    has_disagreement         INTEGER NOT NULL,
    record_json              TEXT,     -- imported: the original line; computed: the coders
    PRIMARY KEY (sample_id, layer, source)
);

CREATE TABLE coder_failures (
    id          INTEGER PRIMARY KEY,
    sample_id   INTEGER NOT NULL REFERENCES samples(id),
    layer       TEXT NOT NULL CHECK (layer IN ('a', 'b')),
    coder       TEXT NOT NULL,
    rubric_hash TEXT NOT NULL,
    kind        TEXT NOT NULL,         -- call_failed | parse_failed | unclean
    error       TEXT NOT NULL,
    raw_text    TEXT,
    attempt     INTEGER NOT NULL DEFAULT 1,
    failed_at   TEXT NOT NULL,
    resolved    INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX coder_failures_open ON coder_failures(resolved, layer, coder);

CREATE TABLE code_cache (
    key        TEXT PRIMARY KEY,       -- sha256 of coder, rubric hash, params, request text
    reply_json TEXT NOT NULL,
    created_at TEXT NOT NULL
);
