-- Raw payloads are about two thirds of a corpus store's bytes. Beside `samples` rather
-- than inside it, they no longer sit in the pages every whole-store read walks through
-- (analysis, coding, export), and they are read only where a trace is rebuilt.
CREATE TABLE sample_payloads (
    sample_id INTEGER PRIMARY KEY REFERENCES samples(id),
    payload   TEXT NOT NULL
);
INSERT INTO sample_payloads (sample_id, payload) SELECT id, payload FROM samples;
ALTER TABLE samples DROP COLUMN payload;

-- Covering indexes for the provenance of an analysis (which rubric versions and coders
-- stand behind a source), which otherwise scans both tables.
CREATE INDEX consensus_layer_source_rubric ON consensus(layer, source, rubric_hash);
DROP INDEX codes_layer_source;
CREATE INDEX codes_layer_source_coder ON codes(layer, source, coder);
