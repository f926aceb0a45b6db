//! The one table shape every output goes through: named columns, rows of typed values.
//!
//! Tables are built by the analysis (no I/O) and rendered by `output` as CSV (minimal
//! quoting, `\n` line ends, Python float repr) and as JSON (numbers, NaN as null). Keeping
//! one shape means the CSV and the JSON of a table can never disagree.

use super::pyfmt::py_float;

/// One cell value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// Text, written as is (CSV-quoted when needed).
    Str(String),
    /// An integer count.
    Int(i64),
    /// A float, written as Python `repr` (`nan` for NaN; JSON null).
    Float(f64),
    /// Nothing (empty CSV field; JSON null).
    Empty,
}

impl Value {
    /// Text for a CSV field (before quoting).
    pub fn to_field(&self) -> String {
        match self {
            Value::Str(s) => s.clone(),
            Value::Int(i) => i.to_string(),
            Value::Float(f) => py_float(*f),
            Value::Empty => String::new(),
        }
    }

    /// JSON value (NaN and infinities become null).
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Value::Str(s) => serde_json::Value::String(s.clone()),
            Value::Int(i) => serde_json::Value::from(*i),
            Value::Float(f) => serde_json::Number::from_f64(*f)
                .map(serde_json::Value::Number)
                .unwrap_or(serde_json::Value::Null),
            Value::Empty => serde_json::Value::Null,
        }
    }

    /// Float content, if any (used by tests and the report).
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Float(f) => Some(*f),
            Value::Int(i) => Some(*i as f64),
            _ => None,
        }
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Value {
        Value::Str(s.to_string())
    }
}
impl From<String> for Value {
    fn from(s: String) -> Value {
        Value::Str(s)
    }
}
impl From<&String> for Value {
    fn from(s: &String) -> Value {
        Value::Str(s.clone())
    }
}
impl From<usize> for Value {
    fn from(n: usize) -> Value {
        Value::Int(n as i64)
    }
}
impl From<f64> for Value {
    fn from(f: f64) -> Value {
        Value::Float(f)
    }
}

/// A named table (the file stem is `name`).
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    /// File stem, e.g. `model_disclosure_summary`.
    pub name: String,
    /// Column names in output order.
    pub columns: Vec<String>,
    /// Rows; each has `columns.len()` values.
    pub rows: Vec<Vec<Value>>,
    /// Write a 0-byte file (no header) when there are no rows (the lexical script's habit).
    pub empty_without_header: bool,
}

impl Table {
    /// New empty table with the given columns.
    pub fn new(name: &str, columns: &[&str]) -> Table {
        Table {
            name: name.to_string(),
            columns: columns.iter().map(|c| c.to_string()).collect(),
            rows: Vec::new(),
            empty_without_header: false,
        }
    }

    /// New empty table with owned column names.
    pub fn with_columns(name: &str, columns: Vec<String>) -> Table {
        Table {
            name: name.to_string(),
            columns,
            rows: Vec::new(),
            empty_without_header: false,
        }
    }

    /// Append a row (debug-asserts its width).
    pub fn push(&mut self, row: Vec<Value>) {
        debug_assert_eq!(
            row.len(),
            self.columns.len(),
            "row width of table {}",
            self.name
        );
        self.rows.push(row);
    }

    /// Index of a column.
    pub fn col(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c == name)
    }

    /// Render as CSV: `\n` line ends; a field is quoted when it holds a comma, a double
    /// quote, `\n` or `\r` (inner quotes doubled), the minimal quoting of Python's csv
    /// writer (which leaves a bare `\r` unquoted; see [`write_field`]).
    pub fn to_csv(&self) -> String {
        if self.rows.is_empty() && self.empty_without_header {
            return String::new();
        }
        // Sized up front: the tidy sample table is ~18 MB, and growing by doubling would
        // copy it several times over.
        let text: usize = self
            .rows
            .iter()
            .flatten()
            .map(|v| match v {
                Value::Str(s) => s.len() + 3,
                _ => 24,
            })
            .sum();
        let mut out = String::with_capacity(text + text / 64 + 1024);
        write_record(&mut out, self.columns.iter().map(|c| c.as_str()));
        // Text cells are written straight from the row (no per-cell copy): the tidy sample
        // table carries every response, so copying would double the work of this file.
        let mut num = String::new();
        for row in &self.rows {
            for (i, v) in row.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                match v {
                    Value::Str(s) => write_field(&mut out, s),
                    Value::Empty => {}
                    other => {
                        num.clear();
                        num.push_str(&other.to_field());
                        write_field(&mut out, &num);
                    }
                }
            }
            out.push('\n');
        }
        out
    }

    /// Rows as JSON objects (column -> value).
    pub fn to_json_rows(&self) -> serde_json::Value {
        let rows = self
            .rows
            .iter()
            .map(|r| {
                let mut m = serde_json::Map::new();
                for (c, v) in self.columns.iter().zip(r) {
                    m.insert(c.clone(), v.to_json());
                }
                serde_json::Value::Object(m)
            })
            .collect();
        serde_json::Value::Array(rows)
    }
}

pub(crate) fn write_record<'a>(out: &mut String, fields: impl Iterator<Item = &'a str>) {
    for (i, f) in fields.enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_field(out, f);
    }
    out.push('\n');
}

/// One CSV field with the minimal quoting of Python's csv writer.
pub(crate) fn write_field(out: &mut String, f: &str) {
    // memchr3 over the bytes: a char-set `contains` decodes every character, and this runs
    // over every response of the tidy table.
    // A bare `\r` is quoted too: the published writer leaves it bare, but CSV readers
    // take it for a line end and would split the row (same cells either way).
    let b = f.as_bytes();
    if memchr::memchr3(b',', b'"', b'\n', b).is_some() || memchr::memchr(b'\r', b).is_some() {
        out.push('"');
        for (i, part) in f.split('"').enumerate() {
            if i > 0 {
                out.push_str("\"\"");
            }
            out.push_str(part);
        }
        out.push('"');
    } else {
        out.push_str(f);
    }
}

impl serde::Serialize for Value {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Value::Str(v) => s.serialize_str(v),
            Value::Int(i) => s.serialize_i64(*i),
            Value::Float(f) if f.is_finite() => s.serialize_f64(*f),
            Value::Float(_) | Value::Empty => s.serialize_none(),
        }
    }
}

/// A table's rows as a JSON array of objects (column -> value), serialised without
/// building an intermediate `serde_json::Value` tree; same output as [`Table::to_json_rows`].
pub struct JsonRows<'a>(pub &'a Table);

impl serde::Serialize for JsonRows<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{SerializeMap, SerializeSeq};
        let t = self.0;
        let mut seq = s.serialize_seq(Some(t.rows.len()))?;
        for r in &t.rows {
            seq.serialize_element(&JsonRow(&t.columns, r))?;
        }
        return seq.end();

        struct JsonRow<'b>(&'b [String], &'b [Value]);
        impl serde::Serialize for JsonRow<'_> {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let mut m = s.serialize_map(Some(self.0.len()))?;
                for (c, v) in self.0.iter().zip(self.1) {
                    m.serialize_entry(c, v)?;
                }
                m.end()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minimal_quoting() {
        let mut t = Table::new("t", &["a", "b"]);
        t.push(vec!["x,y".into(), "say \"hi\"\nbye".into()]);
        t.push(vec![Value::Empty, Value::Float(f64::NAN)]);
        t.push(vec!["cr\ronly".into(), Value::Int(3)]);
        assert_eq!(
            t.to_csv(),
            "a,b\n\"x,y\",\"say \"\"hi\"\"\nbye\"\n,nan\n\"cr\ronly\",3\n"
        );
        // Python's csv module reads the quoted field back whole; bare, it splits the row.
    }

    #[test]
    fn empty_tables() {
        let mut t = Table::new("t", &["a"]);
        assert_eq!(t.to_csv(), "a\n");
        t.empty_without_header = true;
        assert_eq!(t.to_csv(), "");
    }
}
