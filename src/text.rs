//! Wording shared by every message that prints a count: "1 sample", "2 samples".

/// A count of things (any unsigned integer type).
pub trait Count: Copy {
    /// The count.
    fn get(self) -> u64;
}

macro_rules! count_types {
    ($($t:ty),*) => {$(
        impl Count for $t {
            fn get(self) -> u64 {
                self as u64
            }
        }
    )*};
}
count_types!(u8, u16, u32, u64, usize);

// SQLite hands counts back as i64; a count is never negative.
impl Count for i64 {
    fn get(self) -> u64 {
        self.max(0) as u64
    }
}

/// `n` with its noun, singular for exactly one: `count(1, "sample")` is `1 sample`,
/// `count(0, "sample")` is `0 samples`. For a noun whose plural is not the singular plus
/// `s`, use [`count_as`].
pub fn count(n: impl Count, noun: &str) -> String {
    let n = n.get();
    format!("{n} {}", plural(n, noun))
}

/// [`count`] with the plural spelled out: `count_as(2, "entry", "entries")`.
pub fn count_as(n: impl Count, singular: &str, plural: &str) -> String {
    let n = n.get();
    format!("{n} {}", if n == 1 { singular } else { plural })
}

/// The noun alone, for `n` of it: `plural(1, "cell")` is `cell`, else `cells`.
pub fn plural(n: impl Count, noun: &str) -> String {
    if n.get() == 1 {
        noun.to_string()
    } else {
        format!("{noun}s")
    }
}

/// The verb of a plain present-tense sentence for `n` subjects: `verb(1, "lacks", "lack")`.
pub fn verb<'a>(n: impl Count, one: &'a str, many: &'a str) -> &'a str {
    if n.get() == 1 {
        one
    } else {
        many
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_is_singular_and_every_other_count_plural() {
        assert_eq!(count(0u64, "sample"), "0 samples");
        assert_eq!(count(1u64, "sample"), "1 sample");
        assert_eq!(count(2u64, "sample"), "2 samples");
        assert_eq!(count(13_906u64, "sample"), "13906 samples");
        assert_eq!(count_as(1u64, "entry", "entries"), "1 entry");
        assert_eq!(count_as(3u64, "entry", "entries"), "3 entries");
        assert_eq!(plural(1u64, "small cell"), "small cell");
        assert_eq!(plural(21u64, "small cell"), "small cells");
        assert_eq!(verb(1u64, "lacks", "lack"), "lacks");
        assert_eq!(verb(0u64, "lacks", "lack"), "lack");
    }
}
