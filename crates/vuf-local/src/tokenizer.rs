//! Byte-level BPE tokenizer built from a GGUF's own metadata.
//!
//! Offline there is no `tokenizer.json`, but a GGUF with `tokenizer.ggml.model = "gpt2"`
//! carries everything needed: the vocabulary (`tokenizer.ggml.tokens`, id = index), the
//! merge list in rank order (`tokenizer.ggml.merges`, `"left right"`), and token types
//! (`tokenizer.ggml.token_type`; 3 = control, 4 = user-defined). Encoding is:
//!
//! 1. split out special tokens (control and user-defined), matched as whole strings,
//!    longest first, when the caller asks for it (rendered chat templates contain them);
//! 2. pre-tokenise each remaining span with the model's pre-tokeniser (`tokenizer.ggml.pre`);
//!    for `smollm` (and the StarCoder family) every digit is split off alone first, then
//!    the GPT-2 rule applies: contractions `'s 't 're 've 'm 'll 'd`, ` ?letters`,
//!    ` ?digits`, ` ?other` runs, and whitespace runs that leave their last space to the
//!    next word;
//! 3. map each piece's UTF-8 bytes to GPT-2's printable byte alphabet and apply merges,
//!    lowest rank first (leftmost on ties), until none applies.
//!
//! Other tokenizer models (SentencePiece `llama`, WordPiece, ...) and pre-tokenisers this
//! module does not implement are refused with an error naming them, rather than producing
//! plausible-looking wrong ids. Letters and numbers are Rust's Unicode `Alphabetic` and
//! `Numeric` properties, which equal `\p{L}` / `\p{N}` except for some combining marks.

use std::collections::HashMap;

use crate::gguf::Gguf;
use crate::Error;

/// Token kinds of `tokenizer.ggml.token_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenType {
    /// Ordinary text token.
    Normal,
    /// The unknown token.
    Unknown,
    /// Control token (`<|im_start|>`): never produced from text unless specials are parsed.
    Control,
    /// User-defined token, matched whole like a control token.
    UserDefined,
    /// Unused slot.
    Unused,
    /// Raw byte token (`<0x0A>`).
    Byte,
}

impl TokenType {
    fn from_i64(v: i64) -> TokenType {
        match v {
            2 => TokenType::Unknown,
            3 => TokenType::Control,
            4 => TokenType::UserDefined,
            5 => TokenType::Unused,
            6 => TokenType::Byte,
            _ => TokenType::Normal,
        }
    }
}

/// Pre-tokenisers implemented here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pre {
    /// GPT-2's rule alone.
    Gpt2,
    /// Each digit split off first, then GPT-2's rule (`smollm`, `starcoder`, `refact`).
    DigitsThenGpt2,
}

/// The tokenizer.
pub struct Tokenizer {
    tokens: Vec<String>,
    types: Vec<TokenType>,
    vocab: HashMap<String, u32>,
    merges: HashMap<(u32, u32), (u32, u32)>,
    specials: Vec<(String, u32)>,
    byte_to_char: [char; 256],
    char_to_byte: HashMap<char, u8>,
    pre: Pre,
    /// Beginning-of-sequence token.
    pub bos: Option<u32>,
    /// End-of-sequence token.
    pub eos: Option<u32>,
    /// Whether the model wants `bos` prepended (`tokenizer.ggml.add_bos_token`).
    pub add_bos: bool,
    eog: Vec<u32>,
}

/// GPT-2's reversible map from bytes to printable characters: printable Latin-1 bytes map
/// to themselves, the others to U+0100 onwards in byte order.
fn byte_alphabet() -> [char; 256] {
    let mut map = ['\0'; 256];
    let mut next = 256u32;
    for b in 0..=255u8 {
        let keep = (b'!'..=b'~').contains(&b) || (0xa1..=0xac).contains(&b) || b >= 0xae;
        map[b as usize] = if keep {
            char::from(b)
        } else {
            let c = char::from_u32(next).unwrap_or('\u{fffd}');
            next += 1;
            c
        };
    }
    map
}

fn strings(g: &Gguf, key: &str) -> Result<Vec<String>, Error> {
    let arr = g
        .get(key)
        .and_then(|v| v.as_array())
        .ok_or_else(|| Error::Tokenizer(format!("metadata {key} is missing or not an array")))?;
    arr.iter()
        .map(|v| {
            v.as_str()
                .map(str::to_string)
                .ok_or_else(|| Error::Tokenizer(format!("{key} holds a non-string")))
        })
        .collect()
}

impl Tokenizer {
    /// Build the tokenizer from GGUF metadata.
    pub fn from_gguf(g: &Gguf) -> Result<Tokenizer, Error> {
        let model = g
            .get("tokenizer.ggml.model")
            .and_then(|v| v.as_str())
            .unwrap_or("(none)");
        if model != "gpt2" {
            return Err(Error::Tokenizer(format!(
                "tokenizer model {model:?} is not supported: vuf's engine implements byte-level BPE (\"gpt2\") only"
            )));
        }
        let pre_name = g
            .get("tokenizer.ggml.pre")
            .and_then(|v| v.as_str())
            .unwrap_or("gpt-2");
        let pre = match pre_name {
            "gpt-2" | "gpt2" => Pre::Gpt2,
            "smollm" | "starcoder" | "refact" => Pre::DigitsThenGpt2,
            other => {
                return Err(Error::Tokenizer(format!(
                    "pre-tokenizer {other:?} is not supported (vuf implements gpt-2, smollm, starcoder, refact)"
                )))
            }
        };
        let tokens = strings(g, "tokenizer.ggml.tokens")?;
        let types: Vec<TokenType> = match g
            .get("tokenizer.ggml.token_type")
            .and_then(|v| v.as_array())
        {
            Some(a) if a.len() == tokens.len() => a
                .iter()
                .map(|v| match v {
                    crate::gguf::Value::Int(i) => TokenType::from_i64(*i),
                    crate::gguf::Value::UInt(u) => TokenType::from_i64(*u as i64),
                    _ => TokenType::Normal,
                })
                .collect(),
            Some(a) => {
                return Err(Error::Tokenizer(format!(
                    "tokenizer.ggml.token_type has {} entries for {} tokens",
                    a.len(),
                    tokens.len()
                )))
            }
            None => vec![TokenType::Normal; tokens.len()],
        };
        let vocab: HashMap<String, u32> = tokens
            .iter()
            .enumerate()
            .map(|(i, t)| (t.clone(), i as u32))
            .collect();
        let merge_list = strings(g, "tokenizer.ggml.merges")?;
        let mut merges = HashMap::with_capacity(merge_list.len());
        for (rank, m) in merge_list.iter().enumerate() {
            let Some((a, b)) = m.split_once(' ') else {
                return Err(Error::Tokenizer(format!("merge {rank} {m:?} has no space")));
            };
            let (Some(&ia), Some(&ib), Some(&im)) =
                (vocab.get(a), vocab.get(b), vocab.get(&format!("{a}{b}")))
            else {
                continue;
            };
            merges.entry((ia, ib)).or_insert((rank as u32, im));
        }
        let mut specials: Vec<(String, u32)> = tokens
            .iter()
            .zip(&types)
            .enumerate()
            .filter(|(_, (t, ty))| {
                !t.is_empty() && matches!(ty, TokenType::Control | TokenType::UserDefined)
            })
            .map(|(i, (t, _))| (t.clone(), i as u32))
            .collect();
        specials.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then(a.1.cmp(&b.1)));
        let id = |key: &str| {
            g.get(key)
                .and_then(|v| v.as_u64())
                .map(|v| v as u32)
                .filter(|&v| (v as usize) < tokens.len())
        };
        let bos = id("tokenizer.ggml.bos_token_id");
        let eos = id("tokenizer.ggml.eos_token_id");
        let mut eog: Vec<u32> = [
            eos,
            id("tokenizer.ggml.eot_token_id"),
            id("tokenizer.ggml.eom_token_id"),
        ]
        .into_iter()
        .flatten()
        .collect();
        for name in [
            "<|im_end|>",
            "<|endoftext|>",
            "<|eot_id|>",
            "<|end_of_text|>",
            "<end_of_turn>",
            "<|end|>",
        ] {
            if let Some(&i) = vocab.get(name) {
                if types[i as usize] == TokenType::Control && !eog.contains(&i) {
                    eog.push(i);
                }
            }
        }
        let byte_to_char = byte_alphabet();
        let char_to_byte = byte_to_char
            .iter()
            .enumerate()
            .map(|(b, c)| (*c, b as u8))
            .collect();
        let add_bos = matches!(
            g.get("tokenizer.ggml.add_bos_token"),
            Some(crate::gguf::Value::Bool(true))
        );
        Ok(Tokenizer {
            tokens,
            types,
            vocab,
            merges,
            specials,
            byte_to_char,
            char_to_byte,
            pre,
            bos,
            eos,
            add_bos,
            eog,
        })
    }

    /// Vocabulary size.
    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    /// Whether the vocabulary is empty.
    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    /// The text of a token, as stored.
    pub fn token_text(&self, id: u32) -> Option<&str> {
        self.tokens.get(id as usize).map(String::as_str)
    }

    /// Whether `id` ends a generation (EOS, end-of-turn and similar control tokens).
    pub fn is_end_of_generation(&self, id: u32) -> bool {
        self.eog.contains(&id)
    }

    /// Encode `text`. With `parse_special`, control and user-defined token strings in the
    /// text become their tokens (a rendered chat template needs this); without, they are
    /// tokenised as plain text.
    pub fn encode(&self, text: &str, parse_special: bool) -> Vec<u32> {
        let mut out = Vec::new();
        let mut rest = text;
        let mut i = 0usize;
        if parse_special {
            while i < rest.len() {
                let hit = self
                    .specials
                    .iter()
                    .find(|(s, _)| rest[i..].starts_with(s.as_str()));
                match hit {
                    Some((s, id)) => {
                        self.encode_plain(&rest[..i], &mut out);
                        out.push(*id);
                        rest = &rest[i + s.len()..];
                        i = 0;
                    }
                    None => {
                        i += rest[i..].chars().next().map_or(1, char::len_utf8);
                    }
                }
            }
        }
        self.encode_plain(rest, &mut out);
        out
    }

    fn encode_plain(&self, text: &str, out: &mut Vec<u32>) {
        if text.is_empty() {
            return;
        }
        let chars: Vec<char> = text.chars().collect();
        let mut pieces: Vec<(usize, usize)> = Vec::new();
        match self.pre {
            Pre::Gpt2 => gpt2_split(&chars, 0, chars.len(), &mut pieces),
            Pre::DigitsThenGpt2 => {
                let mut start = 0;
                for (i, c) in chars.iter().enumerate() {
                    if is_number(*c) {
                        gpt2_split(&chars, start, i, &mut pieces);
                        pieces.push((i, i + 1));
                        start = i + 1;
                    }
                }
                gpt2_split(&chars, start, chars.len(), &mut pieces);
            }
        }
        let mut buf = [0u8; 4];
        for (a, b) in pieces {
            let mut syms: Vec<u32> = Vec::new();
            let mut mapped = String::new();
            for c in &chars[a..b] {
                for byte in c.encode_utf8(&mut buf).bytes() {
                    mapped.push(self.byte_to_char[byte as usize]);
                }
            }
            let mut s = String::new();
            for mc in mapped.chars() {
                s.clear();
                s.push(mc);
                match self.vocab.get(&s) {
                    Some(&id) => syms.push(id),
                    // A byte with no token of its own: nothing sensible to emit.
                    None => continue,
                }
            }
            self.bpe(&mut syms);
            out.extend(syms);
        }
    }

    /// Apply merges in rank order until none applies.
    fn bpe(&self, syms: &mut Vec<u32>) {
        loop {
            let mut best: Option<(u32, usize, u32)> = None;
            for i in 0..syms.len().saturating_sub(1) {
                if let Some(&(rank, merged)) = self.merges.get(&(syms[i], syms[i + 1])) {
                    if best.is_none_or(|(r, _, _)| rank < r) {
                        best = Some((rank, i, merged));
                    }
                }
            }
            let Some((_, i, merged)) = best else { return };
            syms[i] = merged;
            syms.remove(i + 1);
        }
    }

    /// The bytes a token stands for (empty for control tokens unless `specials`).
    pub fn token_bytes(&self, id: u32, specials: bool) -> Vec<u8> {
        let Some(t) = self.tokens.get(id as usize) else {
            return Vec::new();
        };
        match self.types[id as usize] {
            TokenType::Control
            | TokenType::UserDefined
            | TokenType::Unknown
            | TokenType::Unused => {
                if specials {
                    t.as_bytes().to_vec()
                } else {
                    Vec::new()
                }
            }
            _ => t
                .chars()
                .flat_map(|c| match self.char_to_byte.get(&c) {
                    Some(b) => vec![*b],
                    None => c.to_string().into_bytes(),
                })
                .collect(),
        }
    }

    /// Decode ids to text (invalid UTF-8 becomes U+FFFD; control tokens are dropped).
    pub fn decode(&self, ids: &[u32]) -> String {
        let bytes: Vec<u8> = ids
            .iter()
            .flat_map(|&i| self.token_bytes(i, false))
            .collect();
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// Id of a token text, if in the vocabulary.
    pub fn token_id(&self, text: &str) -> Option<u32> {
        self.vocab.get(text).copied()
    }
}

fn is_number(c: char) -> bool {
    c.is_numeric()
}

fn is_letter(c: char) -> bool {
    c.is_alphabetic() && !c.is_numeric()
}

/// GPT-2's pre-tokenisation regex, hand-written over `chars[start..end]`:
/// `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`.
fn gpt2_split(chars: &[char], start: usize, end: usize, out: &mut Vec<(usize, usize)>) {
    let at = |i: usize| if i < end { Some(chars[i]) } else { None };
    let mut pos = start;
    while pos < end {
        let c = chars[pos];
        let begin = pos;
        if c == '\'' {
            if let Some(n) = at(pos + 1) {
                if matches!(n, 's' | 't' | 'm' | 'd') {
                    out.push((begin, pos + 2));
                    pos += 2;
                    continue;
                }
                if let Some(n2) = at(pos + 2) {
                    if matches!((n, n2), ('r', 'e') | ('v', 'e') | ('l', 'l')) {
                        out.push((begin, pos + 3));
                        pos += 3;
                        continue;
                    }
                }
            }
        }
        // The class of the run: the char itself, or the one after an optional space.
        let (lead, body) = if c == ' ' {
            (1, at(pos + 1))
        } else {
            (0, Some(c))
        };
        if let Some(b) = body {
            let class = |x: char| -> u8 {
                if is_letter(x) {
                    1
                } else if is_number(x) {
                    2
                } else if x.is_whitespace() {
                    3
                } else {
                    4
                }
            };
            let k = class(b);
            if k != 3 {
                let mut p = pos + lead;
                while at(p).is_some_and(|x| class(x) == k) {
                    p += 1;
                }
                out.push((begin, p));
                pos = p;
                continue;
            }
        }
        let mut n = 0;
        while at(pos + n).is_some_and(char::is_whitespace) {
            n += 1;
        }
        if n > 1 && at(pos + n).is_some() {
            // `\s+(?!\S)`: leave the last whitespace to the word that follows.
            out.push((begin, pos + n - 1));
            pos += n - 1;
        } else if n > 0 {
            out.push((begin, pos + n));
            pos += n;
        } else {
            out.push((begin, pos + 1));
            pos += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(s: &str) -> Vec<String> {
        let chars: Vec<char> = s.chars().collect();
        let mut p = Vec::new();
        gpt2_split(&chars, 0, chars.len(), &mut p);
        p.into_iter()
            .map(|(a, b)| chars[a..b].iter().collect())
            .collect()
    }

    #[test]
    fn gpt2_pre_tokenisation_by_hand() {
        assert_eq!(split("Hello world"), ["Hello", " world"]);
        assert_eq!(
            split("I'm here, they'll see"),
            ["I", "'m", " here", ",", " they", "'ll", " see"]
        );
        assert_eq!(split("a  b"), ["a", " ", " b"]);
        assert_eq!(split("x\n\n"), ["x", "\n\n"]);
        assert_eq!(split("ok!!  ?"), ["ok", "!!", " ", " ?"]);
        assert_eq!(split("café 42"), ["café", " 42"]);
    }

    fn gguf_with(model: &str, pre: &str) -> Gguf {
        let bytes = crate::gguf::tests::Writer::new()
            .str("tokenizer.ggml.model", model)
            .str("tokenizer.ggml.pre", pre)
            .strs(
                "tokenizer.ggml.tokens",
                &["a", "b", "ab", "\u{120}", "<|im_end|>"],
            )
            .strs("tokenizer.ggml.merges", &["a b"])
            .finish();
        let p = crate::gguf::tests::write_tmp(&bytes, &format!("tok-{model}-{pre}.gguf"));
        Gguf::open(&p).unwrap()
    }

    #[test]
    fn unsupported_tokenizers_are_refused_by_name() {
        let e = Tokenizer::from_gguf(&gguf_with("llama", "default"))
            .err()
            .unwrap()
            .to_string();
        assert!(
            e.contains("\"llama\"") && e.contains("not supported"),
            "{e}"
        );
        let e = Tokenizer::from_gguf(&gguf_with("gpt2", "qwen2"))
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("qwen2"), "{e}");
        let t = Tokenizer::from_gguf(&gguf_with("gpt2", "smollm")).unwrap();
        // "ab" merges; "ba" does not; without types every token is normal text.
        assert_eq!(t.encode("ab", false), vec![2]);
        assert_eq!(t.encode("ba", false), vec![1, 0]);
    }

    #[test]
    fn byte_alphabet_is_a_bijection() {
        let m = byte_alphabet();
        assert_eq!(m[b'A' as usize], 'A');
        assert_eq!(m[b' ' as usize], '\u{120}');
        assert_eq!(m[b'\n' as usize], '\u{10a}');
        let mut seen: Vec<char> = m.to_vec();
        seen.sort();
        seen.dedup();
        assert_eq!(seen.len(), 256);
    }
}
