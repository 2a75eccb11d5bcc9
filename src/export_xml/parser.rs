//! Streaming parser for Engage's contact-export XML (SPEC §4, ENGAGE-API.md §5.2).
//!
//! It yields one [`Member`] at a time and keeps nothing else, so memory does not grow with the
//! file. Only the root, its namespace, `<new>` and `<member source="…">` with camelCase children
//! are confirmed by Voyado; the rest is tolerated:
//! - any namespace prefix (resolution, not prefix text, is compared);
//! - `contactId` as a child element or an attribute of `<member>` (any letter case);
//! - section names `new`/`created`, `updated`/`modified`/`changed`, `deleted`/`removed`;
//! - unknown fields are kept; nested elements become JSON objects, repeated ones arrays;
//! - a per-tenant field map renames elements to Engage attribute names.
//!
//! Anything else that is unexpected is an error with a byte offset, never silently skipped:
//! an element we do not understand may hold contacts we would otherwise lose.

use std::collections::BTreeMap;
use std::io::{self, BufRead, Read};

use quick_xml::events::{BytesStart, Event};
use quick_xml::name::{Namespace, ResolveResult};
use quick_xml::NsReader;
use serde_json::{Map, Value};

use crate::normalize::normalize_contact_id;

/// The namespace of the export document's root.
pub const EXPORT_NAMESPACE: &str = "http://eClub.Schemas.ExportMember";

/// Largest accepted text of one field. Real fields are short; a huge one is hostile input.
const MAX_FIELD_BYTES: usize = 1 << 20;
/// Largest accepted text of one `<member>`, all fields together.
const MAX_MEMBER_BYTES: usize = 2 << 20;
/// Most values (fields, nested fields, repeated values) accepted in one `<member>`. Engage
/// contacts have tens of attributes; the cap keeps a hostile member from costing memory and,
/// since repeated names are found by a linear search, quadratic time.
const MAX_MEMBER_VALUES: usize = 1024;
/// Deepest accepted nesting inside a `<member>`.
const MAX_FIELD_DEPTH: usize = 8;
/// Largest accepted single piece of XML (a text node, a tag with its attributes, a comment, a
/// DOCTYPE). quick-xml buffers a whole piece before it returns it, so without this bound a
/// 50 MB text node cost over 100 MB of memory before the field check could refuse it.
const MAX_TOKEN_BYTES: u64 = 2 << 20;
/// Most attributes accepted on one element. quick-xml's duplicate-attribute check is
/// quadratic: 100,000 attributes on one tag (under 1 MB) took minutes.
const MAX_ATTRIBUTES: usize = 64;

/// Which part of the file a member came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    /// `<new>`: contacts created since the last export.
    New,
    /// `<updated>`: changed contacts (treated as whole snapshots).
    Updated,
    /// `<deleted>`: only the contact id matters.
    Deleted,
}

impl Section {
    fn from_local_name(name: &str) -> Option<Section> {
        match name {
            "new" | "created" => Some(Section::New),
            "updated" | "modified" | "changed" => Some(Section::Updated),
            "deleted" | "removed" => Some(Section::Deleted),
            _ => None,
        }
    }
}

/// One `<member>`.
#[derive(Debug, Clone, PartialEq)]
pub struct Member {
    /// The section it stood in.
    pub section: Section,
    /// Normalised (lower-case) contact id.
    pub contact_id: String,
    /// Fields in document order, renamed by the field map (empty for deletes). The `source`
    /// attribute is kept as the field `source`.
    pub fields: Vec<(String, Value)>,
    /// Byte offset of the `<member>` tag, for error messages.
    pub offset: u64,
}

/// A parse failure at a byte offset (the caller turns it into file:line:column).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// Byte offset in the file.
    pub offset: u64,
    /// What is wrong, without quoting personal data.
    pub message: String,
}

/// A namespace resolution, owned.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Ns {
    Export,
    Unbound,
    Other(String),
}

/// An event, owned, with only what the parser needs.
enum Ev {
    Start {
        ns: Ns,
        name: String,
        attrs: Vec<(String, String)>,
    },
    Empty {
        ns: Ns,
        name: String,
        attrs: Vec<(String, String)>,
    },
    End,
    Text(String),
    Eof,
    Other,
}

/// Where the parser is in the document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    BeforeRoot,
    InRoot,
    InSection(Section),
    AfterRoot,
    Done,
}

/// Pull parser over an export document.
pub struct ExportParser<'m, R: BufRead> {
    reader: NsReader<TokenLimit<R>>,
    buf: Vec<u8>,
    state: State,
    field_map: &'m BTreeMap<String, String>,
    event_start: u64,
    /// What the current member may still hold: values, and bytes of text.
    member_values_left: usize,
    member_bytes_left: usize,
}

/// Counts the bytes quick-xml takes for one event and refuses to hand it more than
/// [`MAX_TOKEN_BYTES`], so one hostile piece of XML cannot make the parser buffer it whole.
/// The parser resets the count before each event.
struct TokenLimit<R> {
    inner: R,
    used: u64,
    tripped: bool,
}

impl<R: BufRead> Read for TokenLimit<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let available = self.fill_buf()?;
        let n = available.len().min(out.len());
        out[..n].copy_from_slice(&available[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl<R: BufRead> BufRead for TokenLimit<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if self.used > MAX_TOKEN_BYTES {
            self.tripped = true;
            return Err(io::Error::other("XML token too large"));
        }
        self.inner.fill_buf()
    }

    fn consume(&mut self, amount: usize) {
        self.used += amount as u64;
        self.inner.consume(amount);
    }
}

impl<'m, R: BufRead> ExportParser<'m, R> {
    /// A parser over `input` renaming fields with `field_map` (element name → attribute name).
    pub fn new(input: R, field_map: &'m BTreeMap<String, String>) -> Self {
        let mut reader = NsReader::from_reader(TokenLimit {
            inner: input,
            used: 0,
            tripped: false,
        });
        let config = reader.config_mut();
        config.check_end_names = true;
        config.allow_unmatched_ends = false;
        config.check_comments = true;
        ExportParser {
            reader,
            buf: Vec::with_capacity(4096),
            state: State::BeforeRoot,
            field_map,
            event_start: 0,
            member_values_left: MAX_MEMBER_VALUES,
            member_bytes_left: MAX_MEMBER_BYTES,
        }
    }

    /// The input the parser reads from (e.g. to ask a counting reader how far it got).
    pub fn input(&self) -> &R {
        &self.reader.get_ref().inner
    }

    /// The next member, or `None` once the document ended correctly.
    pub fn next_member(&mut self) -> Result<Option<Member>, ParseError> {
        loop {
            let ev = self.next_event()?;
            match (self.state, ev) {
                (State::Done, _) => return Ok(None),
                (State::BeforeRoot, Ev::Start { ns, name, .. }) => {
                    self.check_root(&ns, &name)?;
                    self.state = State::InRoot;
                }
                (State::BeforeRoot, Ev::Empty { ns, name, .. }) => {
                    self.check_root(&ns, &name)?;
                    self.state = State::AfterRoot;
                }
                (State::InRoot, Ev::Start { ns, name, .. }) => {
                    self.state = State::InSection(self.section(&ns, &name)?);
                }
                (State::InRoot, Ev::Empty { ns, name, .. }) => {
                    self.section(&ns, &name)?;
                }
                (State::InRoot, Ev::End) => self.state = State::AfterRoot,
                (State::InSection(_), Ev::End) => self.state = State::InRoot,
                (State::InSection(section), Ev::Start { ns, name, attrs }) => {
                    let offset = self.event_start;
                    self.check_member(&ns, &name, section)?;
                    return self.member(section, attrs, offset, false).map(Some);
                }
                (State::InSection(section), Ev::Empty { ns, name, attrs }) => {
                    let offset = self.event_start;
                    self.check_member(&ns, &name, section)?;
                    return self.member(section, attrs, offset, true).map(Some);
                }
                (State::AfterRoot, Ev::Eof) => {
                    self.state = State::Done;
                    return Ok(None);
                }
                (State::AfterRoot, Ev::Start { .. } | Ev::Empty { .. }) => {
                    return Err(self.error("content after the end of the root element"))
                }
                (_, Ev::Text(t)) if t.trim().is_empty() => {}
                (State::BeforeRoot, Ev::Text(_)) => {
                    return Err(self.error(
                        "the file starts with text, not XML (JSON, CSV or binary?); expected \
                         <contacts xmlns=\"http://eClub.Schemas.ExportMember\">",
                    ))
                }
                (_, Ev::Text(_)) => {
                    return Err(self.error("unexpected text outside of a member field"))
                }
                (State::BeforeRoot, Ev::Eof) => {
                    return Err(self.error(
                        "the file has no root element (empty or not XML); expected \
                         <contacts xmlns=\"http://eClub.Schemas.ExportMember\">",
                    ))
                }
                (_, Ev::Eof) => {
                    return Err(
                        self.error("the file ends before the root element is closed (truncated?)")
                    )
                }
                (_, Ev::Other) => {}
                (State::BeforeRoot | State::AfterRoot, Ev::End) => {
                    return Err(self.error("unexpected closing tag"))
                }
            }
        }
    }

    fn check_root(&self, ns: &Ns, name: &str) -> Result<(), ParseError> {
        if name != "contacts" {
            return Err(self.error(&format!(
                "the root element is <{name}>; expected <contacts xmlns=\"{EXPORT_NAMESPACE}\">"
            )));
        }
        match ns {
            Ns::Export => Ok(()),
            Ns::Unbound => Err(self.error(&format!(
                "the root <contacts> has no namespace; expected xmlns=\"{EXPORT_NAMESPACE}\""
            ))),
            Ns::Other(other) => Err(self.error(&format!(
                "the root <contacts> is in namespace {other:?}; expected \"{EXPORT_NAMESPACE}\""
            ))),
        }
    }

    fn section(&self, ns: &Ns, name: &str) -> Result<Section, ParseError> {
        let section = Section::from_local_name(name);
        match (ns, section) {
            (Ns::Export | Ns::Unbound, Some(s)) => Ok(s),
            _ => Err(self.error(&format!(
                "unexpected element <{name}> in <contacts>; expected <new>, <updated> or \
                 <deleted>"
            ))),
        }
    }

    fn check_member(&self, ns: &Ns, name: &str, section: Section) -> Result<(), ParseError> {
        let ok = matches!(ns, Ns::Export | Ns::Unbound) && matches!(name, "member" | "contact");
        if ok {
            Ok(())
        } else {
            Err(self.error(&format!(
                "unexpected element <{name}> in the {section:?} section; expected <member>"
            )))
        }
    }

    /// Reads a member's children up to its end tag.
    fn member(
        &mut self,
        section: Section,
        attrs: Vec<(String, String)>,
        offset: u64,
        empty: bool,
    ) -> Result<Member, ParseError> {
        let mut contact_id_raw: Option<String> = None;
        let mut fields: Vec<(String, Value)> = Vec::with_capacity(16);
        self.member_values_left = MAX_MEMBER_VALUES;
        self.member_bytes_left = MAX_MEMBER_BYTES;
        for (name, value) in attrs {
            self.spend(value.len())?;
            if name.eq_ignore_ascii_case("contactid") {
                contact_id_raw = Some(value);
            } else if section != Section::Deleted {
                let name = self.map_name(name);
                fields.push((name, Value::String(value)));
            }
        }
        if !empty {
            loop {
                match self.next_event()? {
                    Ev::End => break,
                    Ev::Start { name, .. } => {
                        self.spend(0)?;
                        let name = self.map_name(name);
                        let value = self.field_value(1)?;
                        self.take_field(name, value, &mut contact_id_raw, &mut fields, section);
                    }
                    Ev::Empty { name, attrs, .. } => {
                        self.spend(0)?;
                        let name = self.map_name(name);
                        let value = empty_value(&attrs);
                        self.take_field(name, value, &mut contact_id_raw, &mut fields, section);
                    }
                    Ev::Text(t) if t.trim().is_empty() => {}
                    Ev::Text(_) => {
                        return Err(self.error("unexpected text directly inside <member>"))
                    }
                    Ev::Eof => {
                        return Err(ParseError {
                            offset: self.event_start,
                            message: "the file ends inside a <member> (truncated?)".into(),
                        })
                    }
                    Ev::Other => {}
                }
            }
        }
        let raw = contact_id_raw.ok_or_else(|| ParseError {
            offset,
            message: "a <member> has no contactId (neither a child element nor an attribute)"
                .into(),
        })?;
        let contact_id = normalize_contact_id(&raw).ok_or_else(|| ParseError {
            offset,
            message: "a <member> has a contactId that is not a GUID".into(),
        })?;
        Ok(Member {
            section,
            contact_id,
            fields,
            offset,
        })
    }

    fn take_field(
        &self,
        name: String,
        value: Value,
        contact_id: &mut Option<String>,
        fields: &mut Vec<(String, Value)>,
        section: Section,
    ) {
        if name.eq_ignore_ascii_case("contactid") {
            if let Value::String(s) = value {
                *contact_id = Some(s);
            }
            return;
        }
        if section == Section::Deleted {
            return;
        }
        push_field(fields, name, value);
    }

    /// The value of a field element whose start tag was just read: its text, or an object of
    /// its children.
    fn field_value(&mut self, depth: usize) -> Result<Value, ParseError> {
        if depth > MAX_FIELD_DEPTH {
            return Err(self.error("fields are nested deeper than 8 levels"));
        }
        let mut text = String::new();
        let mut children: Option<Vec<(String, Value)>> = None;
        loop {
            match self.next_content_event()? {
                Ev::End => break,
                Ev::Text(t) if text.is_empty() => {
                    self.spend_text(t.len())?;
                    text = t;
                    if text.len() > MAX_FIELD_BYTES {
                        return Err(self.error("a field value is larger than 1 MiB"));
                    }
                }
                Ev::Text(t) => {
                    self.spend_text(t.len())?;
                    text.push_str(&t);
                    if text.len() > MAX_FIELD_BYTES {
                        return Err(self.error("a field value is larger than 1 MiB"));
                    }
                }
                Ev::Start { name, .. } => {
                    self.spend(0)?;
                    let value = self.field_value(depth + 1)?;
                    push_field(children.get_or_insert_with(Vec::new), name, value);
                }
                Ev::Empty { name, attrs, .. } => {
                    self.spend(0)?;
                    push_field(
                        children.get_or_insert_with(Vec::new),
                        name,
                        empty_value(&attrs),
                    );
                }
                Ev::Eof => {
                    return Err(self.error("the file ends inside a field (truncated?)"));
                }
                Ev::Other => {}
            }
        }
        Ok(match children {
            Some(list) => Value::Object(list.into_iter().collect::<Map<String, Value>>()),
            None => Value::String(trim_owned(text)),
        })
    }

    /// Counts one more value of `bytes` bytes of text against the member's limits.
    fn spend(&mut self, bytes: usize) -> Result<(), ParseError> {
        if self.member_values_left == 0 {
            return Err(self.error(&format!(
                "a <member> has more than {MAX_MEMBER_VALUES} fields and values"
            )));
        }
        self.member_values_left -= 1;
        self.spend_text(bytes)
    }

    /// Counts `bytes` bytes of text against the member's limit.
    fn spend_text(&mut self, bytes: usize) -> Result<(), ParseError> {
        self.member_bytes_left = self
            .member_bytes_left
            .checked_sub(bytes)
            .ok_or_else(|| self.error("a <member> holds more than 2 MiB of text"))?;
        Ok(())
    }

    fn map_name(&self, name: String) -> String {
        match self.field_map.get(&name) {
            Some(mapped) => mapped.clone(),
            None => name,
        }
    }

    fn error(&self, message: &str) -> ParseError {
        ParseError {
            offset: self.event_start,
            message: message.to_string(),
        }
    }

    /// Reads one event and turns it into an owned [`Ev`], checking UTF-8 and the things the
    /// spec calls malformed (DOCTYPE with entities, non-UTF-8 encodings, unknown entities).
    fn next_event(&mut self) -> Result<Ev, ParseError> {
        self.read_event(false)
    }

    /// Like [`Self::next_event`], but keeps whitespace-only text (inside a field it is content;
    /// elsewhere it is indentation, and not allocating it saves a third of the parse time).
    fn next_content_event(&mut self) -> Result<Ev, ParseError> {
        self.read_event(true)
    }

    fn read_event(&mut self, keep_blank: bool) -> Result<Ev, ParseError> {
        self.buf.clear();
        self.event_start = self.reader.buffer_position();
        self.reader.get_mut().used = 0;
        let (ns, event) = match self.reader.read_resolved_event_into(&mut self.buf) {
            Ok(pair) => pair,
            Err(e) => {
                let message = format!("not well-formed XML: {e}");
                return Err(if self.reader.get_ref().tripped {
                    ParseError {
                        offset: self.event_start,
                        message: "a single piece of XML (a text node, a tag with its attributes, \
                                  a comment or a DOCTYPE) is larger than 2 MiB; export fields \
                                  are short, so the file is damaged or not an export"
                            .into(),
                    }
                } else {
                    ParseError {
                        offset: self.reader.error_position(),
                        message,
                    }
                });
            }
        };
        let ns = match ns {
            ResolveResult::Bound(Namespace(uri)) if uri == EXPORT_NAMESPACE.as_bytes() => {
                Ns::Export
            }
            ResolveResult::Bound(Namespace(uri)) => Ns::Other(String::from_utf8_lossy(uri).into()),
            ResolveResult::Unbound => Ns::Unbound,
            ResolveResult::Unknown(prefix) => {
                return Err(ParseError {
                    offset: self.event_start,
                    message: format!(
                        "namespace prefix {:?} is not declared",
                        String::from_utf8_lossy(&prefix)
                    ),
                })
            }
        };
        let start = self.event_start;
        let utf8 = |bytes: &[u8]| -> Result<String, ParseError> {
            std::str::from_utf8(bytes)
                .map(str::to_string)
                .map_err(|e| ParseError {
                    offset: start + e.valid_up_to() as u64,
                    message: "invalid UTF-8 (export files must be UTF-8)".into(),
                })
        };
        Ok(match event {
            Event::Start(s) => {
                let (name, attrs) = element(&s, start)?;
                Ev::Start { ns, name, attrs }
            }
            Event::Empty(s) => {
                let (name, attrs) = element(&s, start)?;
                Ev::Empty { ns, name, attrs }
            }
            Event::End(_) => Ev::End,
            Event::Text(t) if !keep_blank && t.iter().all(u8::is_ascii_whitespace) => Ev::Other,
            Event::Text(t) => Ev::Text(utf8(&t)?),
            Event::CData(c) => Ev::Text(utf8(&c)?),
            Event::GeneralRef(r) => {
                if let Some(ch) = r.resolve_char_ref().map_err(|e| ParseError {
                    offset: start,
                    message: format!("invalid character reference: {e}"),
                })? {
                    Ev::Text(ch.to_string())
                } else {
                    let name = utf8(&r)?;
                    match quick_xml::escape::resolve_predefined_entity(&name) {
                        Some(s) => Ev::Text(s.to_string()),
                        None => {
                            return Err(ParseError {
                                offset: start,
                                message: format!("undefined entity &{name};"),
                            })
                        }
                    }
                }
            }
            Event::Decl(d) => {
                if let Some(Ok(enc)) = d.encoding() {
                    let enc = utf8(&enc)?;
                    if !enc.eq_ignore_ascii_case("utf-8") && !enc.eq_ignore_ascii_case("utf8") {
                        return Err(ParseError {
                            offset: start,
                            message: format!(
                                "the file declares encoding {enc:?}; export files must be UTF-8"
                            ),
                        });
                    }
                }
                Ev::Other
            }
            Event::DocType(d) => {
                let text = utf8(&d)?;
                if text.contains("<!ENTITY") {
                    return Err(ParseError {
                        offset: start,
                        message: "the file has a DOCTYPE with entity declarations, which export \
                                  files never have (and which could expand without bound)"
                            .into(),
                    });
                }
                Ev::Other
            }
            Event::Comment(c) => {
                utf8(&c)?;
                Ev::Other
            }
            Event::PI(p) => {
                utf8(&p)?;
                Ev::Other
            }
            Event::Eof => Ev::Eof,
        })
    }
}

/// Name (local part, UTF-8) and attributes (local names, unescaped values) of a start tag.
fn element(s: &BytesStart<'_>, offset: u64) -> Result<(String, Vec<(String, String)>), ParseError> {
    let bad = |message: String| ParseError { offset, message };
    let name = std::str::from_utf8(s.local_name().into_inner())
        .map_err(|_| bad("invalid UTF-8 in an element name".into()))?
        .to_string();
    let mut attrs = Vec::new();
    for (i, attr) in s.attributes().enumerate() {
        if i == MAX_ATTRIBUTES {
            return Err(bad(format!(
                "the element <{name}> has more than {MAX_ATTRIBUTES} attributes"
            )));
        }
        let attr = attr.map_err(|e| bad(format!("not well-formed XML: {e}")))?;
        let key = attr.key;
        if key.as_namespace_binding().is_some() {
            continue;
        }
        let local = std::str::from_utf8(key.local_name().into_inner())
            .map_err(|_| bad("invalid UTF-8 in an attribute name".into()))?
            .to_string();
        let value = attr
            .unescape_value()
            .map_err(|e| bad(format!("bad attribute value: {e}")))?
            .into_owned();
        attrs.push((local, value));
    }
    Ok((name, attrs))
}

/// The value of an empty element: `null` for `xsi:nil="true"`, else the empty string.
fn empty_value(attrs: &[(String, String)]) -> Value {
    if attrs.iter().any(|(k, v)| k == "nil" && v == "true") {
        Value::Null
    } else {
        Value::String(String::new())
    }
}

/// `s` without leading and trailing whitespace, reusing its allocation when there is none.
fn trim_owned(s: String) -> String {
    let trimmed = s.trim();
    if trimmed.len() == s.len() {
        s
    } else {
        trimmed.to_string()
    }
}

/// Adds a field; a repeated name turns the value into an array of all its values.
fn push_field(fields: &mut Vec<(String, Value)>, name: String, value: Value) {
    if let Some((_, existing)) = fields.iter_mut().find(|(n, _)| *n == name) {
        match existing {
            Value::Array(list) => list.push(value),
            other => {
                let first = other.take();
                *other = Value::Array(vec![first, value]);
            }
        }
    } else {
        fields.push((name, value));
    }
}
