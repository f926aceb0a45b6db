//! Minimal RFC 4180 CSV reading (the analysis tables) and spreadsheet-safe writing.
//!
//! The analysis writes CSVs the way Python's `csv` module does: `\n` line ends, minimal
//! quoting, doubled inner quotes. Reading needs only that, so a forty-line parser avoids a
//! dependency. Writing goes through [`crate::report::escape::csv_cell`] so no exported cell
//! can run as a spreadsheet formula.

use super::escape;

/// Parse CSV text into records. Errors carry the 1-based line where the problem starts.
pub fn parse(text: &str) -> Result<Vec<Vec<String>>, (usize, String)> {
    let mut records = Vec::new();
    let mut record: Vec<String> = Vec::new();
    let mut field = String::new();
    let mut in_quotes = false;
    let mut after_quote = false;
    let mut line = 1usize;
    let mut record_line = 1usize;
    let mut chars = text.chars().peekable();
    let mut any = false;
    while let Some(c) = chars.next() {
        any = true;
        if in_quotes {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    field.push('"');
                }
                '"' => {
                    in_quotes = false;
                    after_quote = true;
                }
                '\n' => {
                    line += 1;
                    field.push(c);
                }
                c => field.push(c),
            }
            continue;
        }
        match c {
            '"' if field.is_empty() && !after_quote => in_quotes = true,
            ',' => {
                record.push(std::mem::take(&mut field));
                after_quote = false;
            }
            '\r' if chars.peek() == Some(&'\n') => {}
            '\n' => {
                record.push(std::mem::take(&mut field));
                records.push(std::mem::take(&mut record));
                after_quote = false;
                line += 1;
                record_line = line;
                any = false;
            }
            c if after_quote => {
                return Err((
                    line,
                    format!("unexpected character {c:?} after closing quote"),
                ))
            }
            c => field.push(c),
        }
    }
    if in_quotes {
        return Err((record_line, "unterminated quoted field".into()));
    }
    if any || !record.is_empty() || !field.is_empty() {
        record.push(field);
        records.push(record);
    }
    Ok(records)
}

/// Render records as CSV with every cell passed through [`escape::csv_cell`].
pub fn write_safe(header: &[String], rows: &[Vec<String>]) -> String {
    let mut out = String::new();
    for r in std::iter::once(header).chain(rows.iter().map(|r| r.as_slice())) {
        let cells: Vec<String> = r.iter().map(|c| escape::csv_cell(c)).collect();
        out.push_str(&cells.join(","));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_quotes_and_multiline_fields() {
        let t = "a,b,c\n1,\"x, \"\"y\"\"\",\n2,\"line1\nline2\",z\n";
        let r = parse(t).unwrap();
        assert_eq!(r.len(), 3);
        assert_eq!(r[1], vec!["1", "x, \"y\"", ""]);
        assert_eq!(r[2], vec!["2", "line1\nline2", "z"]);
    }

    #[test]
    fn reports_line_of_bad_quote() {
        let t = "a,b\n1,\"open\n";
        assert_eq!(parse(t).unwrap_err().0, 2);
        assert_eq!(parse("a\n\"x\"y\n").unwrap_err().0, 2);
    }

    #[test]
    fn empty_file_has_no_records() {
        assert!(parse("").unwrap().is_empty());
    }

    #[test]
    fn roundtrip_of_safe_writer() {
        let h = vec!["model".to_string(), "rate".to_string()];
        let rows = vec![vec!["=cmd|' /C calc'!A0".to_string(), "-1.5".to_string()]];
        let s = write_safe(&h, &rows);
        let back = parse(&s).unwrap();
        assert_eq!(back[1], vec!["'=cmd|' /C calc'!A0", "-1.5"]);
    }
}
