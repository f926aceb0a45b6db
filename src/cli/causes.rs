//! Failure causes on the terminal, shared by `vuf collect` (per cell) and `vuf code` (per
//! layer and coder): a few distinct causes per group, each on one escaped line, so a
//! researcher sees why calls failed without reading the store.

/// At most this many distinct causes per group are printed (the most frequent first).
pub(crate) const CAUSES_SHOWN: usize = 3;

/// `s` on one line (whitespace runs as one space), cut to `max` characters (`...` marks
/// a cut) and made safe for the terminal: errors and replies come from providers.
pub(crate) fn one_line(s: &str, max: usize) -> String {
    let flat: String = s.split_whitespace().collect::<Vec<_>>().join(" ");
    let cut: String = flat.chars().take(max).collect();
    let cut = if cut.len() < flat.len() {
        format!("{cut}...")
    } else {
        cut
    };
    vuf::report::escape::terminal(&cut).into_owned()
}

/// The first [`CAUSES_SHOWN`] items of each group, in their order (items come sorted by
/// group, most frequent cause first), and each group with more, with how many more.
pub(crate) fn first_of_each<'a, T, K: PartialEq>(
    items: &'a [T],
    group: impl Fn(&'a T) -> K,
) -> (Vec<&'a T>, Vec<(K, usize)>) {
    let mut seen: Vec<(K, usize)> = Vec::new();
    let mut out = Vec::new();
    for item in items {
        let k = group(item);
        let n = match seen.iter_mut().find(|(g, _)| *g == k) {
            Some((_, n)) => {
                *n += 1;
                *n
            }
            None => {
                seen.push((k, 1));
                1
            }
        };
        if n <= CAUSES_SHOWN {
            out.push(item);
        }
    }
    let more = seen
        .into_iter()
        .filter(|(_, n)| *n > CAUSES_SHOWN)
        .map(|(k, n)| (k, n - CAUSES_SHOWN))
        .collect();
    (out, more)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_flattened_cut_and_escaped_and_groups_keep_their_first_three() {
        assert_eq!(one_line("a\n  b\tc", 10), "a b c");
        assert_eq!(one_line("abcdef", 3), "abc...");
        assert_eq!(one_line("x\u{1b}[2Jy", 20), "x\\u{1b}[2Jy");
        let items = [("a", 1), ("a", 2), ("a", 3), ("a", 4), ("b", 5)];
        let (kept, more) = first_of_each(&items, |i| i.0);
        let kept: Vec<i32> = kept.into_iter().map(|i| i.1).collect();
        assert_eq!(kept, [1, 2, 3, 5]);
        assert_eq!(more, [("a", 1)]);
    }
}
