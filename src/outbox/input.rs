//! JSON documents from a file or stdin: one object, a JSON array of objects, or one object per
//! line (JSON Lines). Read as a stream, one document at a time, so a till's backlog of 100,000
//! receipts needs the memory of one.
//!
//! The reading is strict, because a till's input is money and personal data and a guess is
//! worse than a refusal:
//! - a key given twice in one object (at any depth, also when the two spellings differ only in
//!   letter case or in escapes, `"matchKey"` and `"match\u004bey"`) is refused: serde_json
//!   would keep the last one silently;
//! - every document, string, key, array and object is bounded ([`MAX_DOCUMENT_BYTES`] and
//!   friends), checked while reading, so no input costs more than about a document's worth of
//!   memory.
//!
//! Refusals name the input, the item's position in it, the key path (`contact.matchKey`,
//! `items[3].sku`) and the line and column.

use std::cell::{Cell, RefCell};
use std::collections::HashSet;
use std::fmt;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use anyhow::Context;
use serde::de::{DeserializeSeed, Deserializer as _, Error as _, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

use super::OutboxError;

/// Largest accepted document (one receipt or one contact), in bytes. A receipt of 1,000 items
/// is about 300 KB.
pub const MAX_DOCUMENT_BYTES: u64 = 1 << 20;
/// Longest accepted string value anywhere in a document, in characters (free text; fields
/// with a tighter limit are checked where they are validated).
pub const MAX_STRING_CHARS: usize = 4096;
/// Longest accepted object key (an attribute name), in characters.
pub const MAX_KEY_CHARS: usize = 128;
/// Most elements accepted in one array (`items`, `paymentMethods`, …).
pub const MAX_ARRAY_ITEMS: usize = 1000;
/// Most members accepted in one object.
pub const MAX_OBJECT_MEMBERS: usize = 1000;

/// Calls `each(index, document)` for every document of `path` (`-` or `None`: stdin), in
/// order, and returns how many there were. The first error `each` returns stops the read and
/// is returned as it is.
pub fn for_each_document(
    path: Option<&Path>,
    mut each: impl FnMut(usize, Value) -> anyhow::Result<()>,
) -> anyhow::Result<usize> {
    match path.filter(|p| p.as_os_str() != "-") {
        Some(p) => {
            let file =
                std::fs::File::open(p).with_context(|| format!("cannot open {}", p.display()))?;
            read_all(BufReader::new(file), &p.display().to_string(), &mut each)
        }
        None => read_all(BufReader::new(std::io::stdin().lock()), "stdin", &mut each),
    }
}

/// The reading behind [`for_each_document`], for any reader; `name` names the input in errors.
/// Public for the fuzz target (`fuzz/`), which feeds it arbitrary bytes.
pub fn read_all<R: Read>(
    mut reader: BufReader<R>,
    name: &str,
    each: &mut impl FnMut(usize, Value) -> anyhow::Result<()>,
) -> anyhow::Result<usize> {
    let first = skip_to_content(&mut reader).with_context(|| format!("cannot read {name}"))?;
    let state = ReadState::default();
    let bounded = Bounded {
        inner: reader,
        state: &state,
    };
    let mut de = serde_json::Deserializer::from_reader(bounded);
    let result = match first {
        None => {
            return Err(
                OutboxError::Document(format!("{name} is empty: expected a JSON object")).into(),
            )
        }
        Some(b'[') => read_array(&mut de, &state, each),
        Some(_) => read_lines(&mut de, &state, each),
    };
    result.map_err(|failed| match failed {
        Failed::Caller(e) => e,
        Failed::Json(e) => state.explain(name, &e),
    })
}

/// Why a read stopped.
enum Failed {
    /// The callback's error, returned as it is.
    Caller(anyhow::Error),
    /// The JSON was refused (see [`ReadState::explain`]).
    Json(serde_json::Error),
}

type De<'s, R> = serde_json::Deserializer<serde_json::de::IoRead<Bounded<'s, R>>>;

/// A top-level array: each element is a document.
fn read_array<R: Read>(
    de: &mut De<'_, R>,
    state: &ReadState,
    each: &mut impl FnMut(usize, Value) -> anyhow::Result<()>,
) -> Result<usize, Failed> {
    let mut visitor = Each {
        each,
        state,
        stopped: None,
    };
    let result = de.deserialize_seq(&mut visitor);
    if let Some(e) = visitor.stopped {
        return Err(Failed::Caller(e));
    }
    result.map_err(Failed::Json)?;
    state.document.set(None);
    de.end().map_err(Failed::Json)?;
    Ok(state.documents.get())
}

/// One object, or objects one after another (JSON Lines).
fn read_lines<R: Read>(
    de: &mut De<'_, R>,
    state: &ReadState,
    each: &mut impl FnMut(usize, Value) -> anyhow::Result<()>,
) -> Result<usize, Failed> {
    loop {
        let index = state.documents.get();
        state.start_document(index);
        // `end` skips whitespace and says whether anything is left; it consumes nothing else.
        match de.end() {
            Ok(()) => return Ok(index),
            Err(e) if e.is_io() => return Err(Failed::Json(e)),
            Err(_) => {}
        }
        let value = Node { state }.deserialize(&mut *de).map_err(Failed::Json)?;
        each(index, value).map_err(Failed::Caller)?;
        state.documents.set(index + 1);
    }
}

/// What the reader knows about where it is, shared by the byte counter and the visitors.
#[derive(Default)]
struct ReadState {
    /// Bytes read of the current document.
    used: Cell<u64>,
    /// Set when the current document passed [`MAX_DOCUMENT_BYTES`].
    too_large: Cell<bool>,
    /// The current document's index, while one is read.
    document: Cell<Option<usize>>,
    /// Documents read completely.
    documents: Cell<usize>,
    /// The key path of the value being read.
    path: RefCell<Vec<Step>>,
    /// What the visitors refused, with the path where they refused it.
    refused: RefCell<Option<(String, String)>>,
}

/// One step of a key path.
enum Step {
    Key(String),
    Index(usize),
}

impl ReadState {
    fn start_document(&self, index: usize) {
        self.used.set(0);
        self.document.set(Some(index));
        self.path.borrow_mut().clear();
    }

    /// The path as `contact.matchKey` or `items[3].sku`, `(document)` at the top.
    fn path_text(&self, last: Option<&str>) -> String {
        let mut out = String::new();
        let path = self.path.borrow();
        let keys = path
            .iter()
            .map(|s| match s {
                Step::Key(k) => (true, k.as_str().to_string()),
                Step::Index(i) => (false, format!("[{i}]")),
            })
            .chain(last.map(|k| (true, k.to_string())));
        for (is_key, text) in keys {
            if is_key && !out.is_empty() {
                out.push('.');
            }
            out.push_str(&text);
        }
        if out.is_empty() {
            out.push_str("(document)");
        }
        out
    }

    /// Records a refusal at the current path (plus `last`, a key not yet entered) and returns
    /// the error that stops serde_json, which adds the line and column.
    fn refuse<E: serde::de::Error>(&self, last: Option<&str>, problem: String) -> E {
        let path = self.path_text(last);
        let error = E::custom(format!("{path}: {problem}"));
        *self.refused.borrow_mut() = Some((path, problem));
        error
    }

    /// The error for a refused input: which input, which document, where, and what.
    fn explain(&self, name: &str, e: &serde_json::Error) -> anyhow::Error {
        let item = match self.document.get() {
            Some(i) => format!("item {} of {name}", i + 1),
            None => name.to_string(),
        };
        let message = if self.too_large.get() {
            format!(
                "{item} is larger than {MAX_DOCUMENT_BYTES} bytes (1 MiB), the limit for one \
                 receipt or contact; nothing was stored: split the input, or check that it is \
                 what the till meant to send"
            )
        } else if let Some((path, problem)) = self.refused.borrow().as_ref() {
            // A refusal comes from a visitor inside serde_json, which always gives it the
            // position where it stopped.
            let (line, column) = (e.line(), e.column());
            format!("{item} (line {line}, column {column}): {path}: {problem}; nothing was stored")
        } else if e.is_io() {
            format!("cannot read {name}: {e}")
        } else {
            format!("{name} is not valid JSON: {e} ({item}); nothing was stored")
        };
        OutboxError::Document(message).into()
    }
}

/// The input, counting the bytes of the current document and failing past
/// [`MAX_DOCUMENT_BYTES`], before serde_json can buffer more of it.
struct Bounded<'s, R> {
    inner: BufReader<R>,
    state: &'s ReadState,
}

impl<R: Read> Read for Bounded<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let used = self.state.used.get();
        if used >= MAX_DOCUMENT_BYTES {
            self.state.too_large.set(true);
            return Err(std::io::Error::other("document too large"));
        }
        let room = usize::try_from(MAX_DOCUMENT_BYTES - used).unwrap_or(usize::MAX);
        let want = buf.len().min(room);
        let n = self.inner.read(&mut buf[..want])?;
        self.state.used.set(used + n as u64);
        Ok(n)
    }
}

/// Skips whitespace and a UTF-8 byte-order mark; returns the first byte left, if any.
fn skip_to_content<R: Read>(reader: &mut BufReader<R>) -> std::io::Result<Option<u8>> {
    let mut at_start = true;
    loop {
        let buf = reader.fill_buf()?;
        if buf.is_empty() {
            return Ok(None);
        }
        if at_start && buf.starts_with(b"\xEF\xBB\xBF") {
            reader.consume(3);
            at_start = false;
            continue;
        }
        at_start = false;
        let skip = buf.iter().take_while(|b| b.is_ascii_whitespace()).count();
        if skip < buf.len() {
            let first = buf[skip];
            reader.consume(skip);
            return Ok(Some(first));
        }
        let n = buf.len();
        reader.consume(n);
    }
}

/// Hands each element of a top-level array to the callback as it is parsed.
struct Each<'a, 's, F> {
    each: &'a mut F,
    state: &'s ReadState,
    /// The callback's error, which stops the parse.
    stopped: Option<anyhow::Error>,
}

impl<'de, F: FnMut(usize, Value) -> anyhow::Result<()>> Visitor<'de> for &mut Each<'_, '_, F> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON array of objects")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        loop {
            let index = self.state.documents.get();
            self.state.start_document(index);
            let Some(v) = seq.next_element_seed(Node { state: self.state })? else {
                return Ok(());
            };
            if let Err(e) = (self.each)(index, v) {
                self.stopped = Some(e);
                return Err(A::Error::custom("stopped by the caller"));
            }
            self.state.documents.set(index + 1);
        }
    }
}

/// Reads one JSON value as `serde_json::Value` does, but refuses duplicate keys and values
/// past the limits, recording the path (see [`ReadState::refuse`]).
#[derive(Clone, Copy)]
struct Node<'s> {
    state: &'s ReadState,
}

impl<'de> DeserializeSeed<'de> for Node<'_> {
    type Value = Value;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Node<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Value, E> {
        self.visit_string(v.to_string())
    }

    fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Value, E> {
        if v.chars().count() > MAX_STRING_CHARS {
            return Err(self.state.refuse(
                None,
                format!(
                    "the text is longer than {MAX_STRING_CHARS} characters, the limit for any \
                     text at the till"
                ),
            ));
        }
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::new();
        loop {
            self.state.path.borrow_mut().push(Step::Index(out.len()));
            let next = seq.next_element_seed(self)?;
            self.state.path.borrow_mut().pop();
            match next {
                Some(_) if out.len() == MAX_ARRAY_ITEMS => {
                    return Err(self.state.refuse(
                        None,
                        format!("the list has more than {MAX_ARRAY_ITEMS} elements, the limit"),
                    ))
                }
                Some(v) => out.push(v),
                None => return Ok(Value::Array(out)),
            }
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        // Keys without case: names that differ only in case are ambiguous to Engage too.
        let mut seen = HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            self.check_key(&key, out.len())?;
            if !seen.insert(key.to_lowercase()) {
                let first = out
                    .keys()
                    .find(|k| k.to_lowercase() == key.to_lowercase())
                    .cloned()
                    .unwrap_or_default();
                let problem = if first == key {
                    "the key is given twice in the same object; engage-sync does not guess \
                     which value is meant: remove one"
                        .to_string()
                } else {
                    format!(
                        "the key is given twice in the same object (also as {first:?}, which \
                         differs only in letter case); engage-sync does not guess which value \
                         is meant: remove one"
                    )
                };
                return Err(self.state.refuse(Some(&key), problem));
            }
            self.state.path.borrow_mut().push(Step::Key(key.clone()));
            let value = map.next_value_seed(self)?;
            self.state.path.borrow_mut().pop();
            out.insert(key, value);
        }
        Ok(Value::Object(out))
    }
}

impl Node<'_> {
    /// A key's length, and the object's size so far.
    fn check_key<E: serde::de::Error>(&self, key: &str, members: usize) -> Result<(), E> {
        if key.chars().count() > MAX_KEY_CHARS {
            let shown: String = key.chars().take(20).collect();
            return Err(self.state.refuse(
                None,
                format!(
                    "a key ({shown:?}…) is longer than {MAX_KEY_CHARS} characters, the limit for \
                     a field name"
                ),
            ));
        }
        if members == MAX_OBJECT_MEMBERS {
            return Err(self.state.refuse(
                None,
                format!("the object has more than {MAX_OBJECT_MEMBERS} keys, the limit"),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn docs(text: &str) -> anyhow::Result<Vec<Value>> {
        let mut out = Vec::new();
        read_all(BufReader::new(text.as_bytes()), "t", &mut |_, v| {
            out.push(v);
            Ok(())
        })?;
        Ok(out)
    }

    #[test]
    fn objects_arrays_and_lines_are_read() {
        assert_eq!(docs(" {\"a\":1} ").expect("one").len(), 1);
        assert_eq!(
            docs("\u{feff}[{\"a\":1},{\"a\":2}]").expect("array").len(),
            2
        );
        assert_eq!(
            docs("{\"a\":1}\n{\"a\":2}\n{\"a\":3}\n")
                .expect("lines")
                .len(),
            3
        );
        assert_eq!(
            docs("{\"a\":[1,{\"b\":null}],\"c\":true}").expect("nested")[0],
            serde_json::json!({"a": [1, {"b": null}], "c": true})
        );
        assert!(docs("").is_err());
        let e = docs("{\"a\":1}\n{\"a\":").expect_err("truncated");
        assert!(e.to_string().contains("line 2"), "{e}");
        assert!(docs("[{\"a\":1}] x").is_err());
        assert!(docs("{\"a\":1} x").is_err());
    }

    #[test]
    fn every_json_value_reads_back_as_written() {
        let text = r#"{"n":-5,"m":-9223372036854775808,"u":18446744073709551615,"f":-1.5,
                       "z":null,"t":true,"s":"x","l":[],"o":{}}"#;
        let expected: Value = serde_json::from_str(text).expect("valid");
        assert_eq!(docs(text).expect("read"), [expected]);
    }

    /// A reader that hands out `parts` in order, one per read: bytes, or an I/O error.
    struct Parts(std::collections::VecDeque<Result<&'static [u8], std::io::ErrorKind>>);

    impl Read for Parts {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            match self.0.pop_front() {
                None => Ok(0),
                Some(Err(kind)) => Err(kind.into()),
                Some(Ok(bytes)) => {
                    buf[..bytes.len()].copy_from_slice(bytes);
                    Ok(bytes.len())
                }
            }
        }
    }

    #[test]
    fn a_read_error_between_documents_stops_the_read() {
        // The error is not skipped: the documents after it may be missing or cut.
        let parts = [
            Ok(&b"{\"a\":1}\n"[..]),
            Err(std::io::ErrorKind::Other),
            Ok(b"{\"a\":2}"),
        ];
        let mut seen = Vec::new();
        let e = read_all(BufReader::new(Parts(parts.into())), "stdin", &mut |_, v| {
            seen.push(v);
            Ok(())
        })
        .expect_err("read error");
        assert!(e.to_string().starts_with("cannot read stdin: "), "{e}");
        assert_eq!(seen, [serde_json::json!({"a": 1})]);
    }

    #[test]
    fn the_byte_count_never_lets_a_read_pass_the_limit() {
        let state = ReadState::default();
        state.used.set(MAX_DOCUMENT_BYTES - 10);
        let mut bounded = Bounded {
            inner: BufReader::new(&[b' '; 100][..]),
            state: &state,
        };
        let mut buf = [0u8; 64];
        assert_eq!(bounded.read(&mut buf).expect("room for 10"), 10);
        assert_eq!(state.used.get(), MAX_DOCUMENT_BYTES);
        assert!(bounded.read(&mut buf).is_err());
        assert!(state.too_large.get());
    }

    #[test]
    fn the_callback_error_stops_the_read() {
        for input in ["[1,2,3]", "1 2 3"] {
            let mut seen = 0;
            let e = read_all(BufReader::new(input.as_bytes()), "t", &mut |i, _| {
                seen += 1;
                if i == 1 {
                    anyhow::bail!("item 1 is bad")
                }
                Ok(())
            })
            .expect_err("stopped");
            assert_eq!(e.to_string(), "item 1 is bad");
            assert_eq!(seen, 2);
        }
    }

    #[test]
    fn duplicate_keys_are_refused_with_their_path_and_position() {
        let cases = [
            (
                "{\"id\":1,\n\"id\":2}",
                "item 1 of t (line 2, column 5): id:",
            ),
            (
                "[{\"a\":1},{\"contact\":{\"matchKey\":\"x\",\"matchKey\":\"y\"}}]",
                "item 2 of t (line 1, column 47): contact.matchKey:",
            ),
            (
                "{\"items\":[{\"sku\":\"1\"},{\"sku\":\"2\",\"SKU\":\"3\"}]}",
                "items[1].SKU:",
            ),
            ("{\"a\":{\"b\":1,\"b\\u0000\":2,\"\\u0062\":3}}", "a.b:"),
        ];
        for (input, needle) in cases {
            let e = docs(input).expect_err(input).to_string();
            assert!(e.contains(needle), "{input}: {e}");
            assert!(e.contains("twice"), "{input}: {e}");
        }
        // A spelling that differs only in case is named; the same spelling is not repeated.
        let e = docs("{\"Sku\":1,\"n\":2,\"SKU\":3}")
            .expect_err("case")
            .to_string();
        assert!(
            e.contains("SKU: the key is given twice in the same object (also as \"Sku\","),
            "{e}"
        );
        let e = docs("{\"n\":1,\"sku\":1,\"sku\":2}")
            .expect_err("same")
            .to_string();
        assert!(
            e.contains("sku: the key is given twice in the same object; "),
            "{e}"
        );
        // Same names in different objects are fine.
        assert_eq!(
            docs("{\"a\":{\"x\":1},\"b\":{\"x\":1}}").expect("ok").len(),
            1
        );
    }

    #[test]
    fn a_text_or_key_of_the_limit_is_read() {
        let text = "x".repeat(MAX_STRING_CHARS);
        let key = "k".repeat(MAX_KEY_CHARS);
        let read = docs(&format!("{{\"{key}\":\"{text}\"}}")).expect("at the limits");
        assert_eq!(read[0][key.as_str()], text.as_str());
    }

    #[test]
    fn limits_are_enforced_while_reading() {
        let long = "x".repeat(MAX_STRING_CHARS + 1);
        let e = docs(&format!("{{\"note\":\"{long}\"}}")).expect_err("long text");
        assert!(
            e.to_string().contains("note: the text is longer than 4096"),
            "{e}"
        );
        let key = "k".repeat(MAX_KEY_CHARS + 1);
        assert!(docs(&format!("{{\"{key}\":1}}")).is_err());
        let many = vec!["0"; MAX_ARRAY_ITEMS + 1].join(",");
        let e = docs(&format!("{{\"items\":[{many}]}}")).expect_err("many");
        assert!(
            e.to_string().contains("items: the list has more than 1000"),
            "{e}"
        );
        let members: Vec<String> = (0..=MAX_OBJECT_MEMBERS)
            .map(|i| format!("\"k{i}\":0"))
            .collect();
        assert!(docs(&format!("{{{}}}", members.join(","))).is_err());
        // A document past the byte limit is refused before it is read whole; the one before
        // it was read.
        let inner = format!("[{}1]", "1,".repeat(999));
        let filler = format!("{inner},").repeat(600);
        let mut seen = 0;
        let e = read_all(
            BufReader::new(format!("{{\"a\":1}}\n{{\"a\":[{filler}1]}}").as_bytes()),
            "t",
            &mut |_, _| {
                seen += 1;
                Ok(())
            },
        )
        .expect_err("too large");
        assert!(e.to_string().contains("item 2 of t is larger than"), "{e}");
        assert_eq!(seen, 1);
        // Many documents of reasonable size are fine: the limit is per document.
        let one = format!("{{\"s\":\"{}\"}}\n", "y".repeat(4000));
        assert_eq!(docs(&one.repeat(400)).expect("many docs").len(), 400);
    }
}
