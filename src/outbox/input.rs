//! JSON documents from a file or stdin: one object, a JSON array of objects, or one object per
//! line (JSON Lines). Read as a stream, one document at a time, so a till's backlog of 100,000
//! receipts needs the memory of one.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use anyhow::Context;
use serde::de::{Deserializer as _, Error as _, SeqAccess, Visitor};
use serde_json::Value;

use super::OutboxError;

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
    let bad =
        |e: serde_json::Error| OutboxError::Document(format!("{name} is not valid JSON: {e}"));
    match first {
        None => {
            Err(OutboxError::Document(format!("{name} is empty: expected a JSON object")).into())
        }
        Some(b'[') => {
            let mut de = serde_json::Deserializer::from_reader(reader);
            let mut visitor = Each {
                each,
                count: 0,
                stopped: None,
            };
            let result = (&mut de).deserialize_seq(&mut visitor);
            if let Some(e) = visitor.stopped {
                return Err(e);
            }
            result.map_err(bad)?;
            de.end().map_err(bad)?;
            Ok(visitor.count)
        }
        Some(_) => {
            let mut count = 0;
            for value in serde_json::Deserializer::from_reader(reader).into_iter::<Value>() {
                each(count, value.map_err(bad)?)?;
                count += 1;
            }
            Ok(count)
        }
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
struct Each<'a, F> {
    each: &'a mut F,
    count: usize,
    /// The callback's error, which stops the parse.
    stopped: Option<anyhow::Error>,
}

impl<'de, F: FnMut(usize, Value) -> anyhow::Result<()>> Visitor<'de> for &mut Each<'_, F> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON array of objects")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(v) = seq.next_element::<Value>()? {
            if let Err(e) = (self.each)(self.count, v) {
                self.stopped = Some(e);
                return Err(A::Error::custom("stopped by the caller"));
            }
            self.count += 1;
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
        assert!(docs("").is_err());
        let e = docs("{\"a\":1}\n{\"a\":").expect_err("truncated");
        assert!(e.to_string().contains("line 2"), "{e}");
        assert!(docs("[{\"a\":1}] x").is_err());
    }

    #[test]
    fn the_callback_error_stops_the_read() {
        let mut seen = 0;
        let e = read_all(BufReader::new("[1,2,3]".as_bytes()), "t", &mut |i, _| {
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
