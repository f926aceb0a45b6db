//! `analysis.json`: every table, numbers as numbers, NaN as null. The sample-level rows
//! are in `samples.jsonl` instead (see `samples`).

use serde_json::{json, Value as J};

use super::super::table::{JsonRows, Table};
use super::super::Analysis;

pub(crate) fn analysis_json(a: &Analysis) -> String {
    #[derive(serde::Serialize)]
    struct Doc<'a> {
        vuf_version: &'static str,
        source: &'static str,
        provenance: J,
        messages: &'a [String],
        sample_level_rows: &'static str,
        tables: Tables<'a>,
    }
    struct Tables<'a>(&'a [Table]);
    impl serde::Serialize for Tables<'_> {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            use serde::ser::SerializeMap;
            let mut m = s.serialize_map(None)?;
            for t in self.0 {
                m.serialize_entry(&t.name, &JsonRows(t))?;
            }
            m.end()
        }
    }
    let inputs: Vec<J> = a
        .provenance
        .inputs
        .iter()
        .map(|f| json!({"name": f.name, "rows": f.rows, "sha256": f.sha256}))
        .collect();
    let doc = Doc {
        vuf_version: env!("CARGO_PKG_VERSION"),
        source: a.source.as_str(),
        provenance: {
            let mut p = json!({"inputs": inputs, "n_rows": a.provenance.n_rows, "n_excluded": a.provenance.n_excluded});
            for (k, v) in &a.provenance.code_provenance {
                p[k.as_str()] = J::String(v.clone());
            }
            p
        },
        messages: &a.messages,
        sample_level_rows: "samples.jsonl",
        tables: Tables(&a.tables),
    };
    let mut s = serde_json::to_string_pretty(&doc).unwrap_or_default();
    s.push('\n');
    s
}
