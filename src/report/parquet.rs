//! Parquet export of the sample-level table (feature `parquet`), for DuckDB, Polars or
//! Spark users. Columns as in `data/samples.csv` (see `exports`) except that the full
//! `response` text replaces the excerpt, with `value_holding_support` as Int32, the lexical
//! flags as Boolean and `topics` `|`-joined.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{ArrayRef, BooleanArray, Int32Array, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use arrow::record_batch::RecordBatch;

use super::{Error, ReportInput};

/// Write `samples.parquet` into `dir`.
pub fn write_samples(input: &ReportInput, dir: &Path) -> Result<PathBuf, Error> {
    let s = &input.samples;
    let text = |f: fn(&super::Sample) -> String| -> ArrayRef {
        Arc::new(StringArray::from(s.iter().map(f).collect::<Vec<String>>()))
    };
    let lex = |k: &'static str| -> ArrayRef {
        Arc::new(BooleanArray::from(
            s.iter()
                .map(|x| x.lex.get(k).copied())
                .collect::<Vec<Option<bool>>>(),
        ))
    };
    let cols: Vec<(&str, ArrayRef)> = vec![
        ("layered_id", text(|x| x.layered_id.clone())),
        ("model", text(|x| x.model.clone())),
        ("lab", text(|x| x.lab.clone())),
        ("cell", text(|x| x.cell.clone())),
        ("condition", text(|x| x.condition.clone())),
        ("condition_family", text(|x| x.condition_family.clone())),
        ("value_holding", text(|x| x.value_holding.clone())),
        (
            "value_holding_support",
            Arc::new(Int32Array::from(
                s.iter()
                    .map(|x| x.value_holding_support.map(|v| v as i32))
                    .collect::<Vec<_>>(),
            )),
        ),
        (
            "collapsed_primary_label",
            text(|x| x.collapsed_primary_label.clone()),
        ),
        (
            "coders_split",
            Arc::new(BooleanArray::from(
                s.iter().map(|x| x.coders_split()).collect::<Vec<bool>>(),
            )),
        ),
        ("topics", text(|x| x.topics.join("|"))),
        ("lex_service_assistant_role", lex("service_assistant_role")),
        ("lex_disownership", lex("disownership")),
        ("lex_policy_safety_frame", lex("policy_safety_frame")),
        ("source", text(|x| x.source.clone())),
        ("response", text(|x| x.response.clone())),
    ];
    let schema = Arc::new(Schema::new(
        cols.iter()
            .map(|(n, a)| {
                Field::new(
                    *n,
                    a.data_type().clone(),
                    !matches!(a.data_type(), DataType::Utf8),
                )
            })
            .collect::<Vec<_>>(),
    ));
    let batch = RecordBatch::try_new(schema.clone(), cols.into_iter().map(|(_, a)| a).collect())
        .map_err(|e| Error::Export {
            name: "samples.parquet".into(),
            msg: e.to_string(),
        })?;
    let path = dir.join("samples.parquet");
    let file = std::fs::File::create(&path).map_err(super::io_err(&path))?;
    // Snappy (pure Rust) keeps the full texts of the public corpus to a few MB.
    let props = parquet::file::properties::WriterProperties::builder()
        .set_compression(parquet::basic::Compression::SNAPPY)
        .build();
    let mut w = parquet::arrow::ArrowWriter::try_new(file, schema, Some(props)).map_err(|e| {
        Error::Export {
            name: "samples.parquet".into(),
            msg: e.to_string(),
        }
    })?;
    w.write(&batch).map_err(|e| Error::Export {
        name: "samples.parquet".into(),
        msg: e.to_string(),
    })?;
    w.close().map_err(|e| Error::Export {
        name: "samples.parquet".into(),
        msg: e.to_string(),
    })?;
    Ok(path)
}
