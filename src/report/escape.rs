//! Escaping of untrusted text for every output format the report writes.
//!
//! Every string that comes from the data (responses, coder notes, model names, cells, lab
//! names) is model-written or study-written and therefore untrusted. Each output context
//! has exactly one function here, so a grep for the context finds its one rule:
//! HTML text and attributes ([`html`]), JSON inside a `<script>` block ([`json_for_script`]),
//! Markdown inline text and table cells ([`markdown`], [`markdown_cell`]), LaTeX
//! ([`latex`]), spreadsheet CSV cells ([`csv_cell`]) and terminal lines ([`terminal`]).
//! Identifiers that must go into
//! `id`/`href` attributes are never escaped data: they are rebuilt from a closed alphabet by
//! [`slug`].

/// Escape text for an HTML text node or a double- or single-quoted attribute value.
///
/// `&`, `<`, `>`, `"` and `'` become entities; NUL and other C0 controls except tab and
/// newline are dropped (they have no business in a report and confuse some viewers).
pub fn html(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + s.len() / 8);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\t' | '\n' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {}
            c => out.push(c),
        }
    }
    out
}

/// Serialise a JSON value so it can sit inside an inline `<script>` element.
///
/// `<`, `>` and `&` become `\u003c`, `\u003e`, `\u0026` (so no `</script>` or `<!--` can
/// appear) and U+2028/U+2029 become `\u2028`/`\u2029` (line terminators in older JS).
pub fn json_for_script(v: &serde_json::Value) -> String {
    let raw = v.to_string();
    let mut out = String::with_capacity(raw.len());
    for c in raw.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out
}

/// Escape text for Markdown prose (CommonMark with the GitHub extensions), changing only
/// the characters that would change meaning where they stand, so ordinary text stays
/// readable: `0.1.0`, `glm-5-1`, `snake_case`, `a (b)`, `R&D`, `x > y` come out as they
/// went in. No link, image, emphasis, code span, raw HTML, heading, list, quote, table or
/// math can be formed. Newlines are kept.
///
/// - Anywhere: `` ` `` `*` `[` `]` `|` `~` `$` get a backslash (code spans, emphasis, links
///   and images, table cells, strikethrough, math); `_` too, unless it sits inside a word
///   (intraword `_` never delimits emphasis); `\` when punctuation or the line end follows
///   (where it would escape or break); `<` becomes `&lt;` (no tag, comment or autolink);
///   `&` becomes `&amp;` where an entity would start (`&lt;`, `&#60;`); and the `:` of
///   `://` and the `.` of a `www.` get a backslash, so no bare URL turns into a link.
/// - At the start of a line: its indentation is dropped (four spaces would make a code
///   block); `>` (quote) gets a backslash, and so do `#` when it would start a heading,
///   `-`, `+` and `=` when they would start a list item, a rule or a heading underline, and
///   the `.` or `)` after leading digits when it would start a numbered item.
///
/// CR, NUL and the other control characters except tab and newline are dropped.
pub fn markdown(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for (i, line) in s.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
        }
        markdown_line(line, &mut out);
    }
    out
}

/// One line of [`markdown`] (no newline inside).
fn markdown_line(line: &str, out: &mut String) {
    let kept: Vec<char> = line
        .chars()
        .filter(|&c| c == '\t' || !c.is_control())
        .collect();
    let lead = kept
        .iter()
        .take_while(|c| **c == ' ' || **c == '\t')
        .count();
    let chars = &kept[lead..];
    let at = |j: usize| chars.get(j).copied();
    let blank_after = |j: usize| at(j).is_none_or(|c| c == ' ' || c == '\t');
    let word = |c: Option<char>| c.is_some_and(char::is_alphanumeric);
    // Leading digits (at most 9) then `.` or `)` then a blank: a numbered list item.
    let digits = chars.iter().take_while(|c| c.is_ascii_digit()).count();
    let numbered = (1..=9).contains(&digits)
        && matches!(at(digits), Some('.' | ')'))
        && blank_after(digits + 1);
    for (j, &c) in chars.iter().enumerate() {
        let escape = match c {
            '`' | '*' | '[' | ']' | '|' | '~' | '$' => true,
            '_' => !(j > 0 && word(at(j - 1)) && word(at(j + 1))),
            '\\' => at(j + 1).is_none_or(|n| n.is_ascii_punctuation()),
            '<' => {
                out.push_str("&lt;");
                continue;
            }
            '&' => {
                let name = chars[j + 1..]
                    .iter()
                    .take_while(|n| n.is_ascii_alphanumeric() || **n == '#')
                    .count();
                if name > 0 && at(j + 1 + name) == Some(';') {
                    out.push_str("&amp;");
                    continue;
                }
                false
            }
            ':' => at(j + 1) == Some('/') && at(j + 2) == Some('/'),
            '.' if numbered && j == digits => true,
            ')' => numbered && j == digits,
            '.' => {
                j >= 3
                    && chars[j - 3..j]
                        .iter()
                        .collect::<String>()
                        .eq_ignore_ascii_case("www")
                    && !(j > 3 && word(at(j - 4)))
            }
            // `#` to `######` then a blank: a heading (`#1` and `#tag` are not).
            '#' => {
                let run = chars.iter().take_while(|x| **x == '#').count();
                j == 0 && run <= 6 && blank_after(run)
            }
            '>' => j == 0,
            '-' | '+' | '=' => {
                j == 0 && (blank_after(1) || chars.iter().all(|&x| x == c || x == ' ' || x == '\t'))
            }
            _ => false,
        };
        if escape {
            out.push('\\');
        }
        out.push(c);
    }
}

/// Escape text for one cell of a Markdown (GFM) table: each line as by [`markdown`]
/// (trimmed, so no blank can strand a backslash before the break), joined with `<br>` so
/// the cell stays on one row.
pub fn markdown_cell(s: &str) -> String {
    s.trim()
        .split('\n')
        .map(|line| markdown(line.trim()))
        .collect::<Vec<_>>()
        .join("<br>")
        .replace('\t', " ")
}

/// Escape text for LaTeX body text (also safe inside a `tabular` cell).
///
/// The ten special characters become their text-mode commands; newlines become spaces so
/// no paragraph or row break can be injected.
pub fn latex(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\textbackslash{}"),
            '{' => out.push_str("\\{"),
            '}' => out.push_str("\\}"),
            '$' => out.push_str("\\$"),
            '&' => out.push_str("\\&"),
            '#' => out.push_str("\\#"),
            '^' => out.push_str("\\textasciicircum{}"),
            '_' => out.push_str("\\_"),
            '%' => out.push_str("\\%"),
            '~' => out.push_str("\\textasciitilde{}"),
            '\n' | '\r' | '\t' => out.push(' '),
            c if (c as u32) < 0x20 => {}
            c => out.push(c),
        }
    }
    out
}

/// Make one CSV cell safe to open in a spreadsheet and quote it when needed.
///
/// A cell that parses as a number stays as it is (numbers stay numeric, `-3.5` included).
/// Any other cell starting with `=`, `+`, `-`, `@`, tab or CR gets a leading `'` so no
/// formula runs. Cells holding a comma, quote, CR or LF are quoted with inner quotes doubled.
pub fn csv_cell(s: &str) -> String {
    let is_number = !s.is_empty() && s.trim() == s && s.parse::<f64>().is_ok();
    let guarded = if !is_number && s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}")
    } else {
        s.to_string()
    };
    if guarded.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", guarded.replace('"', "\"\""))
    } else {
        guarded
    }
}

/// A fragment identifier built only from `[a-z0-9-]`: lowercase ASCII letters and digits
/// are kept, every other run becomes one `-`. Callers add an index to keep it unique, so
/// the result never depends on escaping being right.
pub fn slug(s: &str) -> String {
    let mut out = String::new();
    let mut dash = false;
    for c in s.chars() {
        let c = c.to_ascii_lowercase();
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            out.push(c);
            dash = false;
        } else if !dash && !out.is_empty() {
            out.push('-');
            dash = true;
        }
    }
    while out.ends_with('-') {
        out.pop();
    }
    if out.is_empty() {
        out.push('x');
    }
    out
}

/// Make text safe to print on one terminal line: every control character (C0, DEL, C1:
/// escape sequences, bells, carriage returns, newlines) and every bidirectional-override
/// character is shown as its `\u{..}` escape instead of acting on the terminal. Other text,
/// including non-ASCII letters, is unchanged.
pub fn terminal(s: &str) -> std::borrow::Cow<'_, str> {
    let acts = |c: char| {
        c.is_control()
            || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
    };
    if !s.chars().any(acts) {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        if acts(c) {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOSTILE: &[&str] = &[
        "<script>alert(1)</script>",
        "<img src=x onerror=alert(1)>",
        "[click](javascript:alert(1))",
        "</textarea><b>x</b>",
        "]]><x>",
        "=HYPERLINK(\"http://x\",\"y\")",
        "\\input{/etc/passwd}",
    ];

    #[test]
    fn html_escapes_markup_and_quotes() {
        assert_eq!(
            html("<script>alert(1)</script>"),
            "&lt;script&gt;alert(1)&lt;/script&gt;"
        );
        assert_eq!(
            html("<img src=x onerror=alert(1)>"),
            "&lt;img src=x onerror=alert(1)&gt;"
        );
        assert_eq!(html("a\"b'c&d"), "a&quot;b&#39;c&amp;d");
        assert_eq!(html("</textarea>"), "&lt;/textarea&gt;");
        assert_eq!(html("]]>"), "]]&gt;");
        assert_eq!(html("a\u{0}b\u{7}c\nd"), "abc\nd");
        for h in HOSTILE {
            let e = html(h);
            assert!(
                !e.contains('<') && !e.contains('>') && !e.contains('"'),
                "{e}"
            );
        }
    }

    #[test]
    fn json_for_script_cannot_close_script() {
        let v = serde_json::json!({"r": "</script><script>alert(1)</script>\u{2028}&"});
        let s = json_for_script(&v);
        assert!(!s.contains('<') && !s.contains('>') && !s.contains('&'));
        assert!(!s.contains('\u{2028}'));
        assert!(s.contains("\\u003c/script\\u003e") && s.contains("\\u2028"));
        // Still valid JSON that decodes to the same value.
        let back: serde_json::Value = serde_json::from_str(&s).unwrap();
        assert_eq!(back, v);
    }

    #[test]
    fn markdown_breaks_links_emphasis_and_html() {
        assert_eq!(
            markdown("[click](javascript:alert(1))"),
            "\\[click\\](javascript:alert(1))"
        );
        assert_eq!(markdown("<script>"), "&lt;script>");
        assert_eq!(markdown("*a* _b_ `c`"), "\\*a\\* \\_b\\_ \\`c\\`");
        assert_eq!(markdown_cell("a|b\nc"), "a\\|b<br>c");
        for h in HOSTILE {
            let e = markdown_cell(h);
            assert!(!e.contains('\n'));
            assert!(!e.replace("<br>", "").contains('<'), "{e}");
            assert!(
                unescaped(&e, '[').is_none() && unescaped(&e, ']').is_none(),
                "{e}"
            );
            assert!(!e.contains("]]>"), "{e}");
        }
    }

    /// The first `c` in `e` that no backslash escapes (an escaped backslash does not count).
    fn unescaped(e: &str, c: char) -> Option<usize> {
        let mut escaped = false;
        for (i, x) in e.char_indices() {
            if escaped {
                escaped = false;
            } else if x == '\\' {
                escaped = true;
            } else if x == c {
                return Some(i);
            }
        }
        None
    }

    #[test]
    fn markdown_leaves_harmless_text_readable() {
        for plain in [
            "0.1.0",
            "vuf 0.1.0",
            "glm-5-1",
            "qwen3-6-35b-a3b",
            "snake_case_name",
            "a (b) c! d's \"q\" 50% #1 R&D a > b 3.5 -3.5 e.g. x: y {z} + = @home",
            "C:\\path\\file",
            "2024.5 per year",
            "-3.5",
            "#hashtag",
            "sha256 e242afea8b30",
            "model_disclosure_summary.csv",
        ] {
            assert_eq!(markdown(plain), plain);
            assert_eq!(markdown_cell(plain), plain);
        }
    }

    #[test]
    fn markdown_keeps_hostile_text_inert() {
        let cases = [
            ("**x**", "\\*\\*x\\*\\*"),
            ("__x__", "\\_\\_x\\_\\_"),
            ("_i_ a_b", "\\_i\\_ a_b"),
            ("[a](javascript:1)", "\\[a\\](javascript:1)"),
            ("![img](http://x/t.png)", "!\\[img\\](http\\://x/t.png)"),
            (
                "<script>alert(1)</script>",
                "&lt;script>alert(1)&lt;/script>",
            ),
            ("<http://evil>", "&lt;http\\://evil>"),
            ("see www.evil.com", "see www\\.evil.com"),
            (
                "&lt;b&gt; &#60; &amp;",
                "&amp;lt;b&amp;gt; &amp;#60; &amp;amp;",
            ),
            ("# Title", "\\# Title"),
            ("   ## Title", "\\## Title"),
            ("> quote", "\\> quote"),
            ("- item", "\\- item"),
            ("+ item", "\\+ item"),
            ("1. item", "1\\. item"),
            ("12) item", "12\\) item"),
            ("---", "\\---"),
            ("===", "\\==="),
            ("- - -", "\\- - -"),
            ("```js", "\\`\\`\\`js"),
            ("~~~", "\\~\\~\\~"),
            ("~~gone~~", "\\~\\~gone\\~\\~"),
            ("$x^2$", "\\$x^2\\$"),
            ("a|b", "a\\|b"),
            ("\\*", "\\\\\\*"),
            ("tail\\", "tail\\\\"),
            ("    code", "code"),
            ("a\u{0}b\rc", "abc"),
        ];
        for (hostile, want) in cases {
            assert_eq!(markdown(hostile), want, "{hostile:?}");
        }
        // In a table cell every line is a line start of its own, and the breaks are <br>.
        assert_eq!(
            markdown_cell("ok\n# h\n> q\n| x | y |\n|---|---|"),
            "ok<br>\\# h<br>\\> q<br>\\| x \\| y \\|<br>\\|---\\|---\\|"
        );
        assert_eq!(markdown_cell("a\\  \nb"), "a\\\\<br>b");
        for (hostile, _) in cases {
            let e = markdown_cell(hostile);
            assert!(
                unescaped(&e, '|').is_none() && unescaped(&e, '[').is_none(),
                "{e}"
            );
            assert!(
                unescaped(&e, '*').is_none() && unescaped(&e, '`').is_none(),
                "{e}"
            );
            assert!(!e.contains('<'), "{e}");
        }
    }

    #[test]
    fn latex_escapes_all_ten_specials() {
        assert_eq!(
            latex("\\input{/etc/passwd}"),
            "\\textbackslash{}input\\{/etc/passwd\\}"
        );
        assert_eq!(
            latex("$&#^_%~"),
            "\\$\\&\\#\\textasciicircum{}\\_\\%\\textasciitilde{}"
        );
        assert_eq!(latex("a\nb"), "a b");
        for h in HOSTILE {
            let e = latex(h);
            // Every backslash left must start one of our escapes.
            for (i, _) in e.match_indices('\\') {
                let rest = &e[i..];
                assert!(
                    [
                        "\\textbackslash{}",
                        "\\{",
                        "\\}",
                        "\\$",
                        "\\&",
                        "\\#",
                        "\\_",
                        "\\%"
                    ]
                    .iter()
                    .any(|p| rest.starts_with(p))
                        || rest.starts_with("\\textasciicircum{}")
                        || rest.starts_with("\\textasciitilde{}"),
                    "{e}"
                );
            }
        }
    }

    #[test]
    fn csv_guards_formulas_keeps_numbers() {
        assert_eq!(
            csv_cell("=HYPERLINK(\"http://x\",\"y\")"),
            "\"'=HYPERLINK(\"\"http://x\"\",\"\"y\"\")\""
        );
        assert_eq!(csv_cell("+1+2"), "'+1+2");
        assert_eq!(csv_cell("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(csv_cell("-cmd"), "'-cmd");
        assert_eq!(csv_cell("\tx"), "'\tx");
        assert_eq!(csv_cell("-3.5"), "-3.5");
        assert_eq!(csv_cell("42"), "42");
        assert_eq!(csv_cell("a,b"), "\"a,b\"");
        assert_eq!(csv_cell(""), "");
    }

    #[test]
    fn slug_is_closed_alphabet() {
        assert_eq!(slug("glm-5-1"), "glm-5-1");
        assert_eq!(slug("<script>alert(1)</script>"), "script-alert-1-script");
        assert_eq!(slug("\"><"), "x");
        assert_eq!(slug("javascript:alert(1)"), "javascript-alert-1");
    }

    #[test]
    fn terminal_shows_escape_sequences_as_text() {
        let hostile = "a\u{1b}[2J\u{1b}]0;TITLE\u{7}b\r\nc\u{9b}31m\u{202e}d";
        let t = terminal(hostile);
        assert_eq!(
            t,
            "a\\u{1b}[2J\\u{1b}]0;TITLE\\u{7}b\\u{d}\\u{a}c\\u{9b}31m\\u{202e}d"
        );
        assert!(!t.chars().any(|c| c.is_control()));
        // Plain and non-ASCII text is untouched (and not copied).
        assert!(matches!(
            terminal("glm-5.1 · 日本 é"),
            std::borrow::Cow::Borrowed(_)
        ));
    }
}
