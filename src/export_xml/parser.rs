//! Streaming parser for Engage's contact-export XML (docs/contract.md §4, docs/engage-api.md §5.2).
//!
//! It yields one [`Member`] at a time and keeps nothing else, so memory does not grow with the
//! file (a file of up to [`WHOLE_DOCUMENT_MAX`] bytes may be read whole and parsed in memory,
//! see [`ExportParser::from_slice`]; a larger one is always streamed). Only the root, its
//! namespace, `<new>` and `<member source="…">` with camelCase children are confirmed by
//! Voyado; the rest is tolerated:
//! - any namespace prefix (resolution, not prefix text, is compared);
//! - `contactId` as a child element or an attribute of `<member>` (any letter case);
//! - section names `new`/`created`, `updated`/`modified`/`changed`, `deleted`/`removed`;
//! - unknown fields are kept; nested elements become JSON objects, repeated ones arrays;
//! - a per-tenant field map renames elements to Engage attribute names.
//!
//! Anything else that is unexpected is an error with a byte offset, never silently skipped:
//! an element we do not understand may hold contacts we would otherwise lose.
//!
//! Speed: quick-xml's events are looked at where they lie (in the read buffer, or in the
//! document itself when a small file was read whole) and only what a [`Member`] keeps is
//! allocated; namespaces are resolved for the root, section and member tags only. Building an
//! owned event per XML event and resolving every namespace took half the parse time.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::io::{self, BufRead, Read};

use quick_xml::events::{BytesStart, Event};
use quick_xml::name::{Namespace, NamespaceResolver, ResolveResult};
use quick_xml::Reader;
use serde_json::{Map, Value};

use crate::normalize::normalize_contact_id_owned;

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
/// Largest document [`ExportParser::from_slice`] is meant for (callers read files up to this
/// size whole; Engage's files of 10,000 contacts are about 5 MB). Larger ones are streamed, so
/// memory does not grow with the file.
pub const WHOLE_DOCUMENT_MAX: u64 = 8 << 20;
/// In a document in memory, a piece of XML at least this large is left to the streaming
/// parser to judge (see [`ExportParser::next_member`]). Half the token limit, well clear of
/// where the stream's limit refuses a piece; real export fields are far smaller (and a field
/// over 1 MiB is refused anyway).
const MEMORY_TOKEN_DOUBT: u64 = MAX_TOKEN_BYTES / 2;
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

/// The namespace of a root, section or member element (the only ones whose namespace is
/// compared), resolved when the parser looks at it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Ns {
    Export,
    Unbound,
    Other(String),
}

/// A start or empty tag, borrowed from the input or the read buffer. Reading it checked that
/// its name is UTF-8, its prefix declared and its attributes well-formed.
struct Elem<'b> {
    start: BytesStart<'b>,
    /// Where the local name starts in the tag's name (after the prefix and colon).
    local_at: usize,
    /// The local name, when it could be borrowed for `'b` (a document in memory); a stream's
    /// tag only lends its name for as long as the tag is borrowed, see [`Elem::name`].
    name: Option<&'b str>,
    /// Whether it has an attribute `nil="true"` (any prefix, as `xsi:nil`).
    nil: bool,
}

impl Elem<'_> {
    /// The local name (without prefix).
    fn name(&self) -> &str {
        match self.name {
            Some(name) => name,
            // UTF-8 was checked when the tag was read, so the default never shows.
            None => std::str::from_utf8(local_name(&self.start, self.local_at)).unwrap_or_default(),
        }
    }
}

/// One XML event with only what the parser needs, borrowed: nothing is allocated for an event
/// the parser does not keep (a third of all events are indentation, and most of the rest are
/// tags whose name is only compared, or text that becomes a field value).
enum Tok<'b> {
    Start(Elem<'b>),
    Empty(Elem<'b>),
    End,
    Text(Cow<'b, str>),
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
pub struct ExportParser<'m> {
    src: Source<'m>,
    xml: XmlState,
    state: State,
    field_map: &'m BTreeMap<String, String>,
    budget: Budget,
    /// Members returned so far: a document in memory that falls back to streaming skips them.
    returned: u64,
}

/// Where the events come from.
enum Source<'d> {
    /// A whole document in memory ([`ExportParser::from_slice`]): quick-xml lends each event
    /// from the document instead of copying it into a buffer, and text within `valid` (the
    /// document's longest UTF-8 prefix, checked once) needs no check of its own. Half the time
    /// of reading a stream event by event.
    Memory {
        reader: Reader<&'d [u8]>,
        data: &'d [u8],
        valid: &'d str,
    },
    /// A stream, read one event at a time into `buf` through the token limit.
    Stream {
        reader: Reader<TokenLimit<Box<dyn BufRead + 'd>>>,
        buf: Vec<u8>,
    },
}

/// The namespace scopes, kept beside quick-xml's plain reader as `NsReader` keeps them, but
/// with a tag's namespace resolved only when the parser needs it (`NsReader` resolves every
/// event, which cost a third of the raw reading time); and the offset of the current event.
struct XmlState {
    scopes: NamespaceResolver,
    /// For each open element, innermost last: whether it opened a scope in `scopes`. A tag
    /// without attributes declares nothing, so it opens none (a scope without declarations
    /// changes no resolution), and field tags, which have no attributes, cost no scope work.
    open: Vec<bool>,
    /// The last event was an end or empty tag: its scope ends before the next event is read.
    pending_pop: bool,
    /// Byte offset of the current event.
    event_start: u64,
}

/// What the current member may still hold: values, and bytes of text.
struct Budget {
    values_left: usize,
    bytes_left: usize,
}

impl Budget {
    fn full() -> Budget {
        Budget {
            values_left: MAX_MEMBER_VALUES,
            bytes_left: MAX_MEMBER_BYTES,
        }
    }

    /// Counts one more value of `bytes` bytes of text against the member's limits.
    fn spend(&mut self, bytes: usize, offset: u64) -> Result<(), ParseError> {
        if self.values_left == 0 {
            return Err(ParseError {
                offset,
                message: format!("a <member> has more than {MAX_MEMBER_VALUES} fields and values"),
            });
        }
        self.values_left -= 1;
        self.spend_text(bytes, offset)
    }

    /// Counts `bytes` bytes of text against the member's limit.
    fn spend_text(&mut self, bytes: usize, offset: u64) -> Result<(), ParseError> {
        self.bytes_left = self
            .bytes_left
            .checked_sub(bytes)
            .ok_or_else(|| ParseError {
                offset,
                message: "a <member> holds more than 2 MiB of text".into(),
            })?;
        Ok(())
    }
}

/// Lends quick-xml at most [`MAX_TOKEN_BYTES`] bytes for one event and refuses it more, so one
/// hostile piece of XML cannot make the parser buffer it whole. The parser resets the count
/// before each event. Capping what `fill_buf` lends (not only counting what was consumed)
/// makes the limit exact: a piece of XML is refused when it needs more than the limit,
/// whatever the sizes of the buffers below (a whole slice as one buffer included).
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
        let allowed = MAX_TOKEN_BYTES.saturating_sub(self.used);
        if allowed == 0 {
            self.tripped = true;
            return Err(io::Error::other("XML token too large"));
        }
        let available = self.inner.fill_buf()?;
        let n = usize::try_from(allowed).map_or(available.len(), |a| a.min(available.len()));
        Ok(&available[..n])
    }

    fn consume(&mut self, amount: usize) {
        self.used += amount as u64;
        self.inner.consume(amount);
    }
}

/// quick-xml's settings for export documents.
fn configured<R>(mut reader: Reader<R>) -> Reader<R> {
    let config = reader.config_mut();
    config.check_end_names = true;
    config.allow_unmatched_ends = false;
    config.check_comments = true;
    reader
}

impl<'m> ExportParser<'m> {
    /// A streaming parser over `input` renaming fields with `field_map` (element name →
    /// attribute name). Memory stays bounded whatever the size of the input.
    pub fn new(input: impl BufRead + 'm, field_map: &'m BTreeMap<String, String>) -> Self {
        ExportParser::with_source(Source::stream(Box::new(input)), field_map)
    }

    /// A parser over a whole document in memory (a file of at most [`WHOLE_DOCUMENT_MAX`]
    /// bytes, read whole by the caller): about twice as fast as streaming it. It returns the
    /// same members and errors as [`ExportParser::new`] would (see `next_member`).
    pub fn from_slice(data: &'m [u8], field_map: &'m BTreeMap<String, String>) -> Self {
        let valid = match std::str::from_utf8(data) {
            Ok(text) => text,
            // The prefix is valid by definition; an empty one only means no shortcut.
            Err(e) => std::str::from_utf8(&data[..e.valid_up_to()]).unwrap_or_default(),
        };
        let source = Source::Memory {
            reader: configured(Reader::from_reader(data)),
            data,
            valid,
        };
        ExportParser::with_source(source, field_map)
    }

    fn with_source(src: Source<'m>, field_map: &'m BTreeMap<String, String>) -> Self {
        ExportParser {
            src,
            xml: XmlState::new(),
            state: State::BeforeRoot,
            field_map,
            budget: Budget::full(),
            returned: 0,
        }
    }

    /// How far the parser has read: bytes from the start of the document (for progress).
    pub fn position(&self) -> u64 {
        match &self.src {
            Source::Memory { reader, .. } => reader.buffer_position(),
            Source::Stream { reader, .. } => reader.buffer_position(),
        }
    }

    /// The next member, or `None` once the document ended correctly.
    ///
    /// A document in memory is only trusted while all is well: at its first error, or at a
    /// piece of XML large enough to be near the token limit, the document is parsed again
    /// from the start as a stream, the members already returned are skipped, and the stream
    /// has the last word. So both ways give the same members and the same errors (the error
    /// messages and positions are the stream's), and an error costs a second parse of a small
    /// file.
    pub fn next_member(&mut self) -> Result<Option<Member>, ParseError> {
        match self.read_member() {
            Ok(member) => {
                self.returned += u64::from(member.is_some());
                Ok(member)
            }
            Err(e) => {
                let Source::Memory { data, .. } = self.src else {
                    return Err(e);
                };
                self.src = Source::stream(Box::new(data));
                self.xml = XmlState::new();
                self.state = State::BeforeRoot;
                for _ in 0..self.returned {
                    if self.read_member()?.is_none() {
                        return Ok(None);
                    }
                }
                self.read_member()
            }
        }
    }

    fn read_member(&mut self) -> Result<Option<Member>, ParseError> {
        loop {
            let tok = self.src.next(&mut self.xml, false)?;
            match (self.state, tok) {
                (State::Done, _) => return Ok(None),
                (State::BeforeRoot, Tok::Start(e)) => {
                    self.xml.check_root(&e)?;
                    self.state = State::InRoot;
                }
                (State::BeforeRoot, Tok::Empty(e)) => {
                    self.xml.check_root(&e)?;
                    self.state = State::AfterRoot;
                }
                (State::InRoot, Tok::Start(e)) => {
                    self.state = State::InSection(self.xml.section(&e)?);
                }
                (State::InRoot, Tok::Empty(e)) => {
                    self.xml.section(&e)?;
                }
                (State::InRoot, Tok::End) => self.state = State::AfterRoot,
                (State::InSection(_), Tok::End) => self.state = State::InRoot,
                (State::InSection(section), Tok::Start(e)) => {
                    self.xml.check_member(&e, section)?;
                    let offset = self.xml.event_start;
                    let mut member =
                        PartMember::start(&e, section, offset, &mut self.budget, self.field_map)?;
                    self.member_children(&mut member)?;
                    return member.finish().map(Some);
                }
                (State::InSection(section), Tok::Empty(e)) => {
                    self.xml.check_member(&e, section)?;
                    let offset = self.xml.event_start;
                    let member =
                        PartMember::start(&e, section, offset, &mut self.budget, self.field_map)?;
                    return member.finish().map(Some);
                }
                (State::AfterRoot, Tok::Eof) => {
                    self.state = State::Done;
                    return Ok(None);
                }
                (State::AfterRoot, Tok::Start(_) | Tok::Empty(_)) => {
                    return Err(self.xml.error("content after the end of the root element"))
                }
                (_, Tok::Text(t)) if t.trim().is_empty() => {}
                (State::BeforeRoot, Tok::Text(_)) => {
                    return Err(self.xml.error(
                        "the file starts with text, not XML (JSON, CSV or binary?); expected \
                         <contacts xmlns=\"http://eClub.Schemas.ExportMember\">",
                    ))
                }
                (_, Tok::Text(_)) => {
                    return Err(self.xml.error("unexpected text outside of a member field"))
                }
                (State::BeforeRoot, Tok::Eof) => {
                    return Err(self.xml.error(
                        "the file has no root element (empty or not XML); expected \
                         <contacts xmlns=\"http://eClub.Schemas.ExportMember\">",
                    ))
                }
                (_, Tok::Eof) => {
                    return Err(self
                        .xml
                        .error("the file ends before the root element is closed (truncated?)"))
                }
                (_, Tok::Other) => {}
                (State::BeforeRoot | State::AfterRoot, Tok::End) => {
                    return Err(self.xml.error("unexpected closing tag"))
                }
            }
        }
    }

    /// Reads a member's children up to its end tag.
    fn member_children(&mut self, member: &mut PartMember) -> Result<(), ParseError> {
        loop {
            match self.src.next(&mut self.xml, false)? {
                Tok::End => return Ok(()),
                Tok::Start(e) => {
                    let at = self.xml.event_start;
                    self.budget.spend(0, at)?;
                    let slot = member.slot(mapped_name(self.field_map, e.name()));
                    let value = self.field_value(1)?;
                    member.take(slot, value, At::Child(at))?;
                }
                Tok::Empty(e) => {
                    let at = self.xml.event_start;
                    self.budget.spend(0, at)?;
                    let slot = member.slot(mapped_name(self.field_map, e.name()));
                    member.take(slot, empty_value(&e), At::Child(at))?;
                }
                Tok::Text(t) if t.trim().is_empty() => {}
                Tok::Text(_) => {
                    return Err(self.xml.error("unexpected text directly inside <member>"))
                }
                Tok::Eof => {
                    return Err(self
                        .xml
                        .error("the file ends inside a <member> (truncated?)"))
                }
                Tok::Other => {}
            }
        }
    }

    /// The value of a field element whose start tag was just read: its text, or an object of
    /// its children.
    fn field_value(&mut self, depth: usize) -> Result<Value, ParseError> {
        if depth > MAX_FIELD_DEPTH {
            return Err(self.xml.error("fields are nested deeper than 8 levels"));
        }
        let mut text = String::new();
        let mut children: Option<Vec<(String, Value)>> = None;
        loop {
            // Whitespace is kept: inside a field it is content.
            match self.src.next(&mut self.xml, true)? {
                Tok::End => break,
                Tok::Text(t) => {
                    self.budget.spend_text(t.len(), self.xml.event_start)?;
                    if text.is_empty() {
                        text = t.into_owned();
                    } else {
                        text.push_str(&t);
                    }
                    if text.len() > MAX_FIELD_BYTES {
                        return Err(self.xml.error("a field value is larger than 1 MiB"));
                    }
                }
                Tok::Start(e) => {
                    self.budget.spend(0, self.xml.event_start)?;
                    let name = e.name().to_owned();
                    let value = self.field_value(depth + 1)?;
                    push_field(children.get_or_insert_with(Vec::new), name, value);
                }
                Tok::Empty(e) => {
                    self.budget.spend(0, self.xml.event_start)?;
                    let value = empty_value(&e);
                    push_field(
                        children.get_or_insert_with(Vec::new),
                        e.name().to_owned(),
                        value,
                    );
                }
                Tok::Eof => {
                    return Err(self.xml.error("the file ends inside a field (truncated?)"));
                }
                Tok::Other => {}
            }
        }
        Ok(match children {
            Some(list) => Value::Object(list.into_iter().collect::<Map<String, Value>>()),
            None => Value::String(trim_owned(text)),
        })
    }
}

/// Where a child field's value goes.
enum Slot {
    ContactId,
    Field(String),
    Nowhere,
}

/// Where a member's value was given: as an attribute of `<member>`, or as a child element
/// at this offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum At {
    Attribute,
    Child(u64),
}

/// Fields a contact has at most one value of (the replica's columns). Given twice with
/// different values, a member is malformed: which one Engage meant is a guess.
fn single_valued(name: &str) -> bool {
    matches!(
        name,
        "email"
            | "mobilePhone"
            | "memberNumber"
            | "externalId"
            | "socialSecurityNumber"
            | "contactType"
            | "firstName"
            | "lastName"
    )
}

/// A member being read.
struct PartMember {
    section: Section,
    contact_id_raw: Option<String>,
    /// Where the contact id was given (see [`PartMember::take`]).
    contact_id_at: Option<At>,
    fields: Vec<(String, Value)>,
    /// A bit for each field name in `fields` (see [`name_bit`]): a name whose bit is clear is
    /// new, and is added without comparing it with every name before it.
    names: u64,
    offset: u64,
}

impl PartMember {
    /// A member from its (checked) tag at `offset`, with its attributes (`contactId`,
    /// `source`, …) taken; resets the member budget.
    fn start(
        e: &Elem<'_>,
        section: Section,
        offset: u64,
        budget: &mut Budget,
        field_map: &BTreeMap<String, String>,
    ) -> Result<PartMember, ParseError> {
        let mut member = PartMember {
            section,
            contact_id_raw: None,
            contact_id_at: None,
            fields: Vec::with_capacity(16),
            names: 0,
            offset,
        };
        *budget = Budget::full();
        if e.start.attributes_raw().is_empty() {
            return Ok(member);
        }
        for_each_attribute(&e.start, e.name(), offset, |name, value| {
            budget.spend(value.len(), offset)?;
            let slot = member.slot(mapped_name(field_map, name));
            member.take(slot, Value::String(value.into_owned()), At::Attribute)
        })?;
        Ok(member)
    }

    /// Where the value of a child field named `name` (after the field map) goes: the
    /// contact id, a field (outside `<deleted>`), or nowhere. Decided before the value is
    /// read, so that a name the member does not keep is never allocated.
    fn slot(&self, name: &str) -> Slot {
        if name.eq_ignore_ascii_case("contactid") {
            Slot::ContactId
        } else if self.section == Section::Deleted {
            Slot::Nowhere
        } else {
            Slot::Field(name.to_owned())
        }
    }

    /// Takes a field's value, given `at` an attribute or a child element. A second contactId
    /// element, a contactId element and attribute that disagree, or a single-valued field
    /// ([`single_valued`]) given twice with different values or as anything but text, is a
    /// malformed member: engage-sync does not pick one. Checked only where a name repeats or
    /// a value is not text, so a well-formed member costs nothing more.
    fn take(&mut self, slot: Slot, value: Value, at: At) -> Result<(), ParseError> {
        match slot {
            Slot::ContactId => self.take_contact_id(value, at),
            Slot::Nowhere => Ok(()),
            Slot::Field(name) => {
                if !matches!(value, Value::String(_) | Value::Null) && single_valued(&name) {
                    return Err(self.twice(at, format!("its {name} is not text")));
                }
                let bit = name_bit(&name);
                if self.names & bit == 0 {
                    self.names |= bit;
                    self.fields.push((name, value));
                    return Ok(());
                }
                if single_valued(&name) {
                    if let Some((_, earlier)) = self.fields.iter().find(|(n, _)| *n == name) {
                        if *earlier == value {
                            return Ok(());
                        }
                        return Err(
                            self.twice(at, format!("it gives {name} twice, with different values"))
                        );
                    }
                }
                push_field(&mut self.fields, name, value);
                Ok(())
            }
        }
    }

    /// Takes the contact id (see [`PartMember::take`]).
    fn take_contact_id(&mut self, value: Value, at: At) -> Result<(), ParseError> {
        let Value::String(id) = value else {
            return Err(self.twice(at, "its contactId is not text".into()));
        };
        if let (Some(earlier), Some(earlier_at)) = (&self.contact_id_raw, self.contact_id_at) {
            let same = earlier.trim().eq_ignore_ascii_case(id.trim());
            let problem = match (earlier_at, at) {
                (At::Child(_), At::Child(_)) => "it has two contactId elements",
                _ if same => return Ok(()),
                (At::Attribute, At::Attribute) => "it has two contactId attributes that disagree",
                _ => "its contactId element and contactId attribute disagree",
            };
            return Err(self.twice(at, problem.into()));
        }
        self.contact_id_raw = Some(id);
        self.contact_id_at = Some(at);
        Ok(())
    }

    /// A malformed member, reported at the second value (`at`), or at the member's tag for an
    /// attribute.
    fn twice(&self, at: At, problem: String) -> ParseError {
        ParseError {
            offset: match at {
                At::Child(offset) => offset,
                At::Attribute => self.offset,
            },
            message: format!(
                "a <member> is malformed: {problem}; engage-sync does not guess which one \
                 Engage meant (no field values are quoted here)"
            ),
        }
    }

    /// The member, once it has a valid contact id.
    fn finish(self) -> Result<Member, ParseError> {
        let offset = self.offset;
        let raw = self.contact_id_raw.ok_or_else(|| ParseError {
            offset,
            message: "a <member> has no contactId (neither a child element nor an attribute)"
                .into(),
        })?;
        let contact_id = normalize_contact_id_owned(raw).ok_or_else(|| ParseError {
            offset,
            message: "a <member> has a contactId that is not a GUID".into(),
        })?;
        Ok(Member {
            section: self.section,
            contact_id,
            fields: self.fields,
            offset,
        })
    }
}

impl<'d> Source<'d> {
    fn stream(input: Box<dyn BufRead + 'd>) -> Source<'d> {
        Source::Stream {
            reader: configured(Reader::from_reader(TokenLimit {
                inner: input,
                used: 0,
                tripped: false,
            })),
            buf: Vec::with_capacity(4096),
        }
    }

    /// Reads one event. `keep_blank` keeps whitespace-only text (inside a field it is
    /// content; elsewhere it is indentation).
    fn next(&mut self, xml: &mut XmlState, keep_blank: bool) -> Result<Tok<'_>, ParseError> {
        xml.end_scope();
        match self {
            Source::Memory {
                reader,
                data,
                valid,
            } => {
                let start = reader.buffer_position();
                xml.event_start = start;
                let event = reader.read_event().map_err(|e| ParseError {
                    offset: reader.error_position(),
                    message: format!("not well-formed XML: {e}"),
                })?;
                if reader.buffer_position() - start >= MEMORY_TOKEN_DOUBT {
                    // Left to the stream (see `next_member`), which may refuse it.
                    return Err(token_too_large(start));
                }
                let (data, valid) = (*data, *valid);
                let lend = move |bytes: &[u8]| text_within(data, valid, bytes);
                xml.token(event, keep_blank, lend)
            }
            Source::Stream { reader, buf } => {
                buf.clear();
                let start = reader.buffer_position();
                xml.event_start = start;
                reader.get_mut().used = 0;
                let event = match reader.read_event_into(buf) {
                    Ok(event) => event,
                    Err(_) if reader.get_ref().tripped => return Err(token_too_large(start)),
                    Err(e) => {
                        return Err(ParseError {
                            offset: reader.error_position(),
                            message: format!("not well-formed XML: {e}"),
                        })
                    }
                };
                xml.token(event, keep_blank, |_| None)
            }
        }
    }
}

/// The error for a piece of XML over [`MAX_TOKEN_BYTES`] starting at `offset`.
fn token_too_large(offset: u64) -> ParseError {
    ParseError {
        offset,
        message: "a single piece of XML (a text node, a tag with its attributes, a comment or \
                  a DOCTYPE) is larger than 2 MiB; export fields are short, so the file is \
                  damaged or not an export"
            .into(),
    }
}

/// `bytes` as text borrowed from `valid` (the checked UTF-8 prefix of `data`), if they lie
/// within it: slicing a checked `str` costs two boundary checks, checking UTF-8 again a pass.
fn text_within<'d>(data: &'d [u8], valid: &'d str, bytes: &[u8]) -> Option<&'d str> {
    let offset = (bytes.as_ptr() as usize).checked_sub(data.as_ptr() as usize)?;
    valid.get(offset..offset.checked_add(bytes.len())?)
}

impl XmlState {
    fn new() -> XmlState {
        XmlState {
            scopes: NamespaceResolver::default(),
            open: Vec::with_capacity(16),
            pending_pop: false,
            event_start: 0,
        }
    }

    fn error(&self, message: &str) -> ParseError {
        ParseError {
            offset: self.event_start,
            message: message.to_string(),
        }
    }

    /// Ends the scope of the last end or empty tag, before the next event.
    fn end_scope(&mut self) {
        if self.pending_pop {
            if self.open.pop() == Some(true) {
                self.scopes.pop();
            }
            self.pending_pop = false;
        }
    }

    /// Turns a quick-xml event into a [`Tok`], checking UTF-8 and the things the spec calls
    /// malformed (DOCTYPE with entities, non-UTF-8 encodings, unknown entities, undeclared
    /// prefixes). `lend` borrows checked text for bytes of the event where it can.
    fn token<'b>(
        &mut self,
        event: Event<'b>,
        keep_blank: bool,
        lend: impl Fn(&[u8]) -> Option<&'b str>,
    ) -> Result<Tok<'b>, ParseError> {
        let start = self.event_start;
        let text = |bytes| text_of(bytes, start, &lend);
        Ok(match event {
            Event::Start(s) => {
                let local_at = self.open_scope(&s)?;
                Tok::Start(element(s, local_at, start, &lend)?)
            }
            Event::Empty(s) => {
                let local_at = self.open_scope(&s)?;
                self.pending_pop = true;
                Tok::Empty(element(s, local_at, start, &lend)?)
            }
            Event::End(_) => {
                // The name is the start tag's (quick-xml checks), which resolved then.
                self.pending_pop = true;
                Tok::End
            }
            Event::Text(t) if !keep_blank && t.iter().all(u8::is_ascii_whitespace) => Tok::Other,
            Event::Text(t) => Tok::Text(text(t.into_inner())?),
            Event::CData(c) => Tok::Text(text(c.into_inner())?),
            Event::GeneralRef(r) => {
                if let Some(ch) = r.resolve_char_ref().map_err(|e| ParseError {
                    offset: start,
                    message: format!("invalid character reference: {e}"),
                })? {
                    Tok::Text(Cow::Owned(ch.to_string()))
                } else {
                    let name = utf8_at(&r, start)?;
                    match quick_xml::escape::resolve_predefined_entity(name) {
                        Some(s) => Tok::Text(Cow::Borrowed(s)),
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
                    let enc = utf8_at(&enc, start)?;
                    if !enc.eq_ignore_ascii_case("utf-8") && !enc.eq_ignore_ascii_case("utf8") {
                        return Err(ParseError {
                            offset: start,
                            message: format!(
                                "the file declares encoding {enc:?}; export files must be UTF-8"
                            ),
                        });
                    }
                }
                Tok::Other
            }
            Event::DocType(d) => {
                if utf8_at(&d, start)?.contains("<!ENTITY") {
                    return Err(ParseError {
                        offset: start,
                        message: "the file has a DOCTYPE with entity declarations, which export \
                                  files never have (and which could expand without bound)"
                            .into(),
                    });
                }
                Tok::Other
            }
            Event::Comment(c) => {
                utf8_at(&c, start)?;
                Tok::Other
            }
            Event::PI(p) => {
                utf8_at(&p, start)?;
                Tok::Other
            }
            Event::Eof => Tok::Eof,
        })
    }

    /// Opens the scope of a start or empty tag (its namespace declarations) and checks that its
    /// prefix, if any, is declared: the same steps, in the same order, as `NsReader`. Returns
    /// where the local name starts in the tag's name. A bad declaration is reported at the
    /// tag (quick-xml's own error position is only set by its reader's errors, so it was 0).
    fn open_scope(&mut self, s: &BytesStart<'_>) -> Result<usize, ParseError> {
        let declares = !s.attributes_raw().is_empty();
        self.open.push(declares);
        if declares {
            if let Err(e) = self.scopes.push(s) {
                return Err(ParseError {
                    offset: self.event_start,
                    message: format!("not well-formed XML: {}", quick_xml::Error::Namespace(e)),
                });
            }
        }
        let name = s.name();
        // The colon found by hand: `QName::decompose` calls memchr, which costs more than the
        // search itself on names this short.
        let Some(colon) = name.into_inner().iter().position(|&b| b == b':') else {
            return Ok(0);
        };
        if let Some(prefix) = name.prefix() {
            if let ResolveResult::Unknown(prefix) = self.scopes.resolve_prefix(Some(prefix), true) {
                return Err(ParseError {
                    offset: self.event_start,
                    message: format!(
                        "namespace prefix {:?} is not declared",
                        String::from_utf8_lossy(&prefix)
                    ),
                });
            }
        }
        Ok(colon + 1)
    }

    /// The namespace of a tag just read (its scope is still open).
    fn ns(&self, e: &Elem<'_>) -> Ns {
        match self.scopes.resolve_element(e.start.name()).0 {
            ResolveResult::Bound(Namespace(uri)) if uri == EXPORT_NAMESPACE.as_bytes() => {
                Ns::Export
            }
            ResolveResult::Bound(Namespace(uri)) => Ns::Other(String::from_utf8_lossy(uri).into()),
            // An undeclared prefix was refused when the tag was read.
            ResolveResult::Unbound | ResolveResult::Unknown(_) => Ns::Unbound,
        }
    }

    fn check_root(&self, e: &Elem<'_>) -> Result<(), ParseError> {
        let name = e.name();
        if name != "contacts" {
            return Err(self.error(&format!(
                "the root element is <{name}>; expected <contacts xmlns=\"{EXPORT_NAMESPACE}\">"
            )));
        }
        match self.ns(e) {
            Ns::Export => Ok(()),
            Ns::Unbound => Err(self.error(&format!(
                "the root <contacts> has no namespace; expected xmlns=\"{EXPORT_NAMESPACE}\""
            ))),
            Ns::Other(other) => Err(self.error(&format!(
                "the root <contacts> is in namespace {other:?}; expected \"{EXPORT_NAMESPACE}\""
            ))),
        }
    }

    fn section(&self, e: &Elem<'_>) -> Result<Section, ParseError> {
        let name = e.name();
        let section = Section::from_local_name(name);
        match (self.ns(e), section) {
            (Ns::Export | Ns::Unbound, Some(s)) => Ok(s),
            (Ns::Other(other), Some(_)) => Err(self.error(&foreign(name, &other))),
            _ => Err(self.error(&format!(
                "unexpected element <{name}> in <contacts>; expected <new>, <updated> or \
                 <deleted>"
            ))),
        }
    }

    fn check_member(&self, e: &Elem<'_>, section: Section) -> Result<(), ParseError> {
        let name = e.name();
        let known = matches!(name, "member" | "contact");
        match self.ns(e) {
            Ns::Export | Ns::Unbound if known => Ok(()),
            Ns::Other(other) if known => Err(self.error(&foreign(name, &other))),
            _ => Err(self.error(&format!(
                "unexpected element <{name}> in the {section:?} section; expected <member>"
            ))),
        }
    }
}

/// The message for an export element in another namespace than the export's.
fn foreign(name: &str, found: &str) -> String {
    format!(
        "the element <{name}> is in namespace {found:?}, not the export's \
         \"{EXPORT_NAMESPACE}\" (check the prefix's xmlns declaration: the file mixes in \
         elements of another schema)"
    )
}

/// Text bytes of an event starting at `offset` as UTF-8: lent by `lend` where it can, else
/// checked.
fn text_of<'b>(
    bytes: Cow<'b, [u8]>,
    offset: u64,
    lend: &impl Fn(&[u8]) -> Option<&'b str>,
) -> Result<Cow<'b, str>, ParseError> {
    let bad = |e: std::str::Utf8Error| ParseError {
        offset: offset + e.valid_up_to() as u64,
        message: "invalid UTF-8 (export files must be UTF-8)".into(),
    };
    match bytes {
        Cow::Borrowed(b) => match lend(b) {
            Some(s) => Ok(Cow::Borrowed(s)),
            None => std::str::from_utf8(b).map(Cow::Borrowed).map_err(bad),
        },
        Cow::Owned(v) => String::from_utf8(v)
            .map(Cow::Owned)
            .map_err(|e| bad(e.utf8_error())),
    }
}

/// `bytes` as UTF-8; an error names the offset of the first bad byte (`bytes` start at
/// `offset`).
fn utf8_at(bytes: &[u8], offset: u64) -> Result<&str, ParseError> {
    std::str::from_utf8(bytes).map_err(|e| ParseError {
        offset: offset + e.valid_up_to() as u64,
        message: "invalid UTF-8 (export files must be UTF-8)".into(),
    })
}

/// The local name of a tag whose local name starts at `local_at`.
fn local_name<'s>(s: &'s BytesStart<'_>, local_at: usize) -> &'s [u8] {
    s.name().into_inner().get(local_at..).unwrap_or_default()
}

/// Checks a start tag: UTF-8 name, well-formed attributes, at most [`MAX_ATTRIBUTES`].
fn element<'b>(
    s: BytesStart<'b>,
    local_at: usize,
    offset: u64,
    lend: &impl Fn(&[u8]) -> Option<&'b str>,
) -> Result<Elem<'b>, ParseError> {
    let local = local_name(&s, local_at);
    let lent = lend(local);
    let name = match lent {
        Some(name) => name,
        None => std::str::from_utf8(local).map_err(|_| ParseError {
            offset,
            message: "invalid UTF-8 in an element name".into(),
        })?,
    };
    let mut nil = false;
    if !s.attributes_raw().is_empty() {
        for_each_attribute(&s, name, offset, |name, value| {
            nil |= name == "nil" && value == "true";
            Ok(())
        })?;
    }
    Ok(Elem {
        start: s,
        local_at,
        name: lent,
        nil,
    })
}

/// Calls `visit` with the local name and unescaped value of each attribute of a start tag
/// (namespace declarations left out), refusing a tag with more than [`MAX_ATTRIBUTES`].
fn for_each_attribute<'s>(
    s: &'s BytesStart<'_>,
    name: &str,
    offset: u64,
    mut visit: impl FnMut(&'s str, Cow<'s, str>) -> Result<(), ParseError>,
) -> Result<(), ParseError> {
    let bad = |message: String| ParseError { offset, message };
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
            .map_err(|_| bad("invalid UTF-8 in an attribute name".into()))?;
        let value = attr
            .unescape_value()
            .map_err(|e| bad(format!("bad attribute value: {e}")))?;
        visit(local, value)?;
    }
    Ok(())
}

/// A field name renamed by the field map.
fn mapped_name<'a>(field_map: &'a BTreeMap<String, String>, name: &'a str) -> &'a str {
    field_map.get(name).map_or(name, String::as_str)
}

/// The value of an empty element: `null` for `xsi:nil="true"`, else the empty string.
fn empty_value(e: &Elem<'_>) -> Value {
    if e.nil {
        Value::Null
    } else {
        Value::String(String::new())
    }
}

/// `s` without leading and trailing whitespace, reusing its allocation when there is none.
fn trim_owned(s: String) -> String {
    // Most values start and end with an ASCII character that is not whitespace: then there is
    // nothing to trim, and no need to decode characters at both ends to find out.
    // (`str::trim` also trims U+000B, which `is_ascii_whitespace` leaves out.)
    let solid = |b: Option<&u8>| {
        b.is_some_and(|&b| b.is_ascii() && !(b == b' ' || (b'\t'..=b'\r').contains(&b)))
    };
    if solid(s.as_bytes().first()) && solid(s.as_bytes().last()) {
        return s;
    }
    let trimmed = s.trim();
    if trimmed.len() == s.len() {
        s
    } else {
        trimmed.to_string()
    }
}

/// One of 64 bits for a field name, from its length and three of its bytes: names with
/// different bits differ.
fn name_bit(name: &str) -> u64 {
    let b = name.as_bytes();
    let byte = |i: usize| b.get(i).map_or(0, |&c| usize::from(c));
    let mix = b.len() * 7 + byte(0) * 3 + byte(b.len() / 2) * 5 + byte(b.len().wrapping_sub(1));
    1 << (mix % 64)
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
