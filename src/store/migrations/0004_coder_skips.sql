-- Coders not asked by design (sequential majority, src/code/sequential.rs): the coders
-- already asked agreed, so the rest could not change the consensus. Not a failure: a
-- skip is never retried, and a code that arrives later for the same coder supersedes it.
CREATE TABLE coder_skips (
    sample_id   INTEGER NOT NULL REFERENCES samples(id),
    layer       TEXT NOT NULL CHECK (layer IN ('a', 'b')),
    coder       TEXT NOT NULL,
    rubric_hash TEXT NOT NULL,
    reason      TEXT NOT NULL,         -- sequential_majority
    origin      TEXT NOT NULL,         -- 'live:<run>'
    skipped_at  TEXT NOT NULL,
    PRIMARY KEY (sample_id, layer, coder, rubric_hash)
);
