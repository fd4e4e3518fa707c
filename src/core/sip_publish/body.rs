//! What a PUBLISH body says: PIDF (RFC 3863) with RPID (RFC 4480) and the data model's
//! `<person>` (RFC 4479), or the older XPIDF that some phones still send.
//!
//! Parsed with quick-xml's namespace-resolving pull parser: elements are matched by namespace
//! and local name, whatever prefixes the phone chose. No DTD is accepted (a `<!DOCTYPE>` is an
//! error, so nothing can be declared or expanded), an entity reference other than the five
//! predefined ones and character references is an error, and nothing is fetched.
//!
//! Which part wins when a document holds several tuples or persons:
//! - the **basic status** is open when any `<tuple>` says open (the presentity can be reached
//!   through one of its devices), closed when every tuple that says anything says closed;
//! - the **activity** is the first RPID activity of the first `<person>` that has one, else of
//!   the first `<tuple>` that has one (older clients put it there), else of anything else
//!   (a `<device>`);
//! - the **note** is the first `<note>` in document order (presence, tuple or person note),
//!   its whitespace collapsed to single spaces.
//!
//! XPIDF (`application/xpidf+xml`): `<status status="open|closed|inuse|inactive">` gives the
//! basic status (`inuse` is open with activity `on-the-phone`), `<msnsubstatus substatus=...>`
//! the activity under its RPID name (`onthephone` is `on-the-phone`, `outtolunch` `lunch`,
//! `berightback` and `idle` `away`, `busy` `busy`, `away` `away`); the first `<note>` if any.

use quick_xml::events::{BytesStart, Event};
use quick_xml::name::{Namespace, ResolveResult};
use quick_xml::NsReader;
use std::fmt;

const PIDF: &str = "urn:ietf:params:xml:ns:pidf";
const RPID: &str = "urn:ietf:params:xml:ns:pidf:rpid";
const DATA_MODEL: &str = "urn:ietf:params:xml:ns:pidf:data-model";

/// Elements nested deeper than this are refused (no phone nests beyond a dozen).
const MAX_DEPTH: usize = 32;
/// A note longer than this (in bytes, after collapsing whitespace) is refused.
pub const MAX_NOTE: usize = 1024;

/// The body formats a publication may use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Pidf,
    Xpidf,
}

impl Format {
    /// The format of a `Content-Type` value (`type/subtype;params`, any case), if supported.
    pub fn of(content_type: &[u8]) -> Option<Format> {
        let media = content_type
            .split(|&b| b == b';')
            .next()
            .unwrap_or_default()
            .trim_ascii();
        if media.eq_ignore_ascii_case(b"application/pidf+xml") {
            Some(Format::Pidf)
        } else if media.eq_ignore_ascii_case(b"application/xpidf+xml") {
            Some(Format::Xpidf)
        } else {
            None
        }
    }

    /// For the `Accept` header of a 415.
    pub const ACCEPTED: &'static str = "application/pidf+xml, application/xpidf+xml";
}

/// A tuple's `<basic>` status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Basic {
    Open,
    Closed,
}

/// What a body says, before the admin's mapping turns it into a presence state.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Published {
    pub basic: Option<Basic>,
    /// An RPID activity's local name (`away`, `on-the-phone`, ...).
    pub activity: Option<String>,
    pub note: Option<String>,
}

/// Why a body was refused. `Display` gives the WARNING text.
#[derive(Debug, PartialEq, Eq)]
pub enum BodyError {
    NotUtf8,
    Xml(String),
    Doctype,
    Entity(String),
    TooDeep,
    /// The root element is not what the format has (its namespace and local name).
    WrongRoot(String),
    BadBasic(String),
    NoteTooLong(usize),
    /// A character XML 1.0 does not allow (a control character, U+FFFE, U+FFFF), raw or as
    /// a character reference.
    BadChar(u32),
}

impl fmt::Display for BodyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BodyError::NotUtf8 => write!(f, "the body is not UTF-8"),
            BodyError::Xml(error) => write!(f, "the body is not well-formed XML: {error}"),
            BodyError::Doctype => write!(f, "the body holds a DOCTYPE (DTDs are not accepted)"),
            BodyError::Entity(name) => write!(
                f,
                "the body refers to the undeclared entity '&{};'",
                super::super::shown(name.as_bytes())
            ),
            BodyError::TooDeep => write!(f, "the body nests elements deeper than {MAX_DEPTH}"),
            BodyError::WrongRoot(root) => write!(
                f,
                "the body's root element is {}",
                super::super::shown(root.as_bytes())
            ),
            BodyError::BadBasic(text) => write!(
                f,
                "a <basic> status is '{}', not open or closed",
                super::super::shown(text.as_bytes())
            ),
            BodyError::NoteTooLong(len) => {
                write!(f, "its note is {len} bytes long, more than {MAX_NOTE}")
            }
            BodyError::BadChar(code) => {
                write!(f, "the body holds U+{code:04X}, which XML does not allow")
            }
        }
    }
}

/// Where an element sits, as far as the winning rules care.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Scope {
    Person,
    Tuple,
    Other,
}

/// What the parse has seen so far.
#[derive(Default)]
struct Seen {
    any_open: bool,
    any_closed: bool,
    /// The first activity found in a person, a tuple, and anywhere else.
    activities: [Option<String>; 3],
    note: Option<String>,
}

impl Seen {
    fn activity(&mut self, scope: Scope, name: &str) {
        let slot = &mut self.activities[scope as usize];
        if slot.is_none() {
            *slot = Some(name.to_string());
        }
    }

    fn basic(&mut self, text: &str) -> Result<(), BodyError> {
        match text.trim() {
            "open" => self.any_open = true,
            "closed" => self.any_closed = true,
            other => return Err(BodyError::BadBasic(other.to_string())),
        }
        Ok(())
    }

    fn published(self) -> Published {
        let basic = if self.any_open {
            Some(Basic::Open)
        } else if self.any_closed {
            Some(Basic::Closed)
        } else {
            None
        };
        let [person, tuple, other] = self.activities;
        Published {
            basic,
            activity: person.or(tuple).or(other),
            note: self.note,
        }
    }
}

/// Whether XML 1.0 allows `c` in a document (its `Char` production).
fn xml_char(c: char) -> bool {
    !matches!(c, '\u{0}'..='\u{8}' | '\u{b}' | '\u{c}' | '\u{e}'..='\u{1f}' | '\u{fffe}' | '\u{ffff}')
}

fn checked_char(c: char) -> Result<char, BodyError> {
    if xml_char(c) {
        Ok(c)
    } else {
        Err(BodyError::BadChar(u32::from(c)))
    }
}

/// Parses a body of `format`.
pub fn parse(format: Format, body: &[u8]) -> Result<Published, BodyError> {
    let text = std::str::from_utf8(body).map_err(|_| BodyError::NotUtf8)?;
    // quick-xml passes raw control characters through: refused here, so no NUL or escape
    // sequence reaches a note.
    if let Some(bad) = text.chars().find(|&c| !xml_char(c)) {
        return Err(BodyError::BadChar(u32::from(bad)));
    }
    let mut reader = NsReader::from_str(text);
    reader.config_mut().check_end_names = true;
    match format {
        Format::Pidf => parse_pidf(&mut reader),
        Format::Xpidf => parse_xpidf(&mut reader),
    }
}

/// quick-xml's error text, which quotes names from the body: cut as log lines quote user text.
fn xml_error(error: impl fmt::Display) -> BodyError {
    BodyError::Xml(super::super::shown(error.to_string().as_bytes()))
}

fn in_ns(ns: &ResolveResult<'_>, uri: &str) -> bool {
    matches!(ns, ResolveResult::Bound(Namespace(bound)) if *bound == uri)
}

/// The text of a predefined entity reference, or the error for any other.
fn entity_text(name: &str) -> Result<char, BodyError> {
    match name {
        "amp" => Ok('&'),
        "lt" => Ok('<'),
        "gt" => Ok('>'),
        "quot" => Ok('"'),
        "apos" => Ok('\''),
        _ => Err(BodyError::Entity(name.to_string())),
    }
}

/// Collects the text of a `<note>` (or `<basic>`): text, CDATA and references, up to its end.
struct TextCapture {
    depth: usize,
    text: String,
    is_note: bool,
}

/// Shared walk of both formats: depth, text capture, refusals. `start` sees every element
/// start (and empty element) with its namespace, `stack` the scopes of the open elements.
fn walk(
    reader: &mut NsReader<&[u8]>,
    seen: &mut Seen,
    mut start: impl FnMut(
        &ResolveResult<'_>,
        &BytesStart<'_>,
        &[Scope],
        &mut Seen,
    ) -> Result<Option<(Scope, bool)>, BodyError>,
) -> Result<(), BodyError> {
    // Each open element's scope, and whether its text is being captured.
    let mut stack: Vec<Scope> = Vec::new();
    let mut capture: Option<TextCapture> = None;
    loop {
        let (ns, event) = reader.read_resolved_event().map_err(xml_error)?;
        match event {
            Event::Start(ref e) | Event::Empty(ref e) => {
                let empty = matches!(event, Event::Empty(_));
                if stack.len() >= MAX_DEPTH {
                    return Err(BodyError::TooDeep);
                }
                if e.local_name().as_ref().is_empty() {
                    // quick-xml takes `<r: busy/>` as an element with a prefix and no name.
                    return Err(BodyError::Xml(
                        "an element has no name after its prefix".into(),
                    ));
                }
                let (scope, text) = start(&ns, e, &stack, seen)?
                    .unwrap_or((stack.last().copied().unwrap_or(Scope::Other), false));
                if !empty {
                    stack.push(scope);
                    if text && capture.is_none() {
                        capture = Some(TextCapture {
                            depth: stack.len(),
                            text: String::new(),
                            is_note: e.local_name().as_ref() == "note",
                        });
                    }
                }
            }
            Event::End(_) => {
                if capture.as_ref().is_some_and(|c| c.depth == stack.len()) {
                    let done = capture.take().expect("checked above");
                    if done.is_note {
                        if seen.note.is_none() {
                            let note = collapse(&done.text);
                            if note.len() > MAX_NOTE {
                                return Err(BodyError::NoteTooLong(note.len()));
                            }
                            seen.note = Some(note);
                        }
                    } else {
                        seen.basic(&done.text)?;
                    }
                }
                stack.pop();
            }
            Event::Text(ref t) => {
                if let Some(c) = capture.as_mut() {
                    c.text.push_str(&t.xml10_content());
                }
            }
            Event::CData(ref t) => {
                if let Some(c) = capture.as_mut() {
                    c.text.push_str(&t.clone().into_inner());
                }
            }
            Event::GeneralRef(ref r) => {
                let ch = if r.is_char_ref() {
                    r.resolve_char_ref()
                        .map_err(xml_error)?
                        .map(checked_char)
                        .transpose()?
                } else {
                    Some(entity_text(r)?)
                };
                if let (Some(c), Some(ch)) = (capture.as_mut(), ch) {
                    c.text.push(ch);
                }
            }
            Event::DocType(_) => return Err(BodyError::Doctype),
            Event::Eof => {
                if !stack.is_empty() {
                    return Err(BodyError::Xml("the document ends inside an element".into()));
                }
                return Ok(());
            }
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) => {}
        }
    }
}

/// Whitespace runs (XML indentation, line breaks) as single spaces, trimmed.
fn collapse(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn local(e: &BytesStart<'_>) -> String {
    e.local_name().as_ref().to_string()
}

fn root_name(ns: &ResolveResult<'_>, e: &BytesStart<'_>) -> String {
    match ns {
        ResolveResult::Bound(Namespace(uri)) => {
            format!("<{}> in {uri}", local(e))
        }
        _ => format!("<{}> in no namespace", local(e)),
    }
}

fn parse_pidf(reader: &mut NsReader<&[u8]>) -> Result<Published, BodyError> {
    let mut seen = Seen::default();
    let mut activities_scope: Option<(usize, Scope)> = None;
    let mut found_root = false;
    walk(reader, &mut seen, |ns, e, stack, seen| {
        let depth = stack.len();
        let name = e.local_name();
        let name = name.as_ref();
        if depth == 0 {
            if found_root || !in_ns(ns, PIDF) || name != "presence" {
                return Err(BodyError::WrongRoot(root_name(ns, e)));
            }
            found_root = true;
            return Ok(Some((Scope::Other, false)));
        }
        // Children of an <rpid:activities> are the activities themselves.
        if let Some((at, scope)) = activities_scope {
            if depth == at + 1 && in_ns(ns, RPID) {
                seen.activity(scope, &local(e));
                return Ok(None);
            }
            if depth <= at {
                activities_scope = None;
            }
        }
        let scope = stack.last().copied().unwrap_or(Scope::Other);
        if in_ns(ns, PIDF) && name == "tuple" && depth == 1 {
            return Ok(Some((Scope::Tuple, false)));
        }
        if in_ns(ns, DATA_MODEL) && name == "person" && depth == 1 {
            return Ok(Some((Scope::Person, false)));
        }
        if in_ns(ns, RPID) && name == "activities" {
            activities_scope = Some((depth, scope));
            return Ok(None);
        }
        if in_ns(ns, PIDF) && name == "basic" && scope == Scope::Tuple {
            return Ok(Some((scope, true)));
        }
        if (in_ns(ns, PIDF) || in_ns(ns, DATA_MODEL)) && name == "note" {
            return Ok(Some((scope, true)));
        }
        Ok(None)
    })?;
    if !found_root {
        return Err(BodyError::Xml("the body holds no element".into()));
    }
    Ok(seen.published())
}

/// An XPIDF `<msnsubstatus>` value under its RPID activity name.
fn xpidf_activity(substatus: &str) -> Option<&'static str> {
    match substatus.trim().to_ascii_lowercase().as_str() {
        "away" | "berightback" | "idle" => Some("away"),
        "busy" => Some("busy"),
        "onthephone" => Some("on-the-phone"),
        "outtolunch" => Some("lunch"),
        _ => None,
    }
}

fn attribute(e: &BytesStart<'_>, name: &str) -> Result<Option<String>, BodyError> {
    for attribute in e.attributes() {
        let attribute = attribute.map_err(xml_error)?;
        if attribute.key.local_name().as_ref() == name {
            let value = attribute.normalized_value(quick_xml::XmlVersion::Implicit1_0);
            return Ok(Some(
                value
                    .map_err(|error| match error {
                        quick_xml::Error::Escape(
                            quick_xml::escape::EscapeError::UnrecognizedEntity(_, name),
                        ) => BodyError::Entity(name),
                        other => xml_error(other),
                    })?
                    .into_owned(),
            ));
        }
    }
    Ok(None)
}

fn parse_xpidf(reader: &mut NsReader<&[u8]>) -> Result<Published, BodyError> {
    let mut seen = Seen::default();
    let mut found_root = false;
    walk(reader, &mut seen, |ns, e, stack, seen| {
        let name = e.local_name();
        let name = name.as_ref();
        if stack.is_empty() {
            if found_root || name != "presence" {
                return Err(BodyError::WrongRoot(root_name(ns, e)));
            }
            found_root = true;
            return Ok(Some((Scope::Other, false)));
        }
        match name {
            "status" => match attribute(e, "status")?.as_deref().map(str::trim) {
                Some("open") => seen.any_open = true,
                Some("closed") | Some("inactive") => seen.any_closed = true,
                Some("inuse") => {
                    seen.any_open = true;
                    seen.activity(Scope::Tuple, "on-the-phone");
                }
                Some(other) => return Err(BodyError::BadBasic(other.to_string())),
                None => {}
            },
            "msnsubstatus" => {
                if let Some(activity) = attribute(e, "substatus")?
                    .as_deref()
                    .and_then(xpidf_activity)
                {
                    seen.activity(Scope::Person, activity);
                }
            }
            "note" => return Ok(Some((Scope::Other, true))),
            _ => {}
        }
        Ok(None)
    })?;
    if !found_root {
        return Err(BodyError::Xml("the body holds no element".into()));
    }
    Ok(seen.published())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pidf(body: &str) -> Result<Published, BodyError> {
        parse(Format::Pidf, body.as_bytes())
    }

    fn published(basic: Option<Basic>, activity: Option<&str>, note: Option<&str>) -> Published {
        Published {
            basic,
            activity: activity.map(str::to_string),
            note: note.map(str::to_string),
        }
    }

    /// What Linphone sends for "Away" (basic open, RPID activity in the person).
    const LINPHONE_AWAY: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model"
  xmlns:rpid="urn:ietf:params:xml:ns:pidf:rpid" entity="sip:alice@example.org">
  <tuple id="t1"><status><basic>open</basic></status><contact>sip:alice@192.0.2.1</contact></tuple>
  <dm:person id="p1">
    <rpid:activities><rpid:away/></rpid:activities>
    <dm:note>Back at 2,
       promise</dm:note>
  </dm:person>
</presence>"#;

    #[test]
    fn a_person_activity_and_note_are_read_whatever_the_prefixes() {
        assert_eq!(
            pidf(LINPHONE_AWAY).unwrap(),
            published(Some(Basic::Open), Some("away"), Some("Back at 2, promise"))
        );
        let other_prefixes = LINPHONE_AWAY
            .replace("dm:", "d:")
            .replace("xmlns:dm", "xmlns:d")
            .replace("rpid:", "r:")
            .replace("xmlns:rpid", "xmlns:r");
        assert_eq!(pidf(&other_prefixes).unwrap(), pidf(LINPHONE_AWAY).unwrap());
    }

    #[test]
    fn several_tuples_open_wins_and_the_person_activity_beats_a_tuples() {
        let body = r#"<presence xmlns="urn:ietf:params:xml:ns:pidf"
              xmlns:r="urn:ietf:params:xml:ns:pidf:rpid" xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model">
            <tuple id="a"><status><basic>closed</basic></status>
              <r:activities><r:meeting/></r:activities><note>tuple &amp; note &#x263A;</note></tuple>
            <tuple id="b"><status><basic> open </basic></status></tuple>
            <dm:person id="p"><r:activities><r:on-the-phone/><r:busy/></r:activities></dm:person>
            <dm:person id="q"><r:activities><r:vacation/></r:activities></dm:person>
          </presence>"#;
        assert_eq!(
            pidf(body).unwrap(),
            published(
                Some(Basic::Open),
                Some("on-the-phone"),
                Some("tuple & note \u{263a}")
            )
        );
        let tuples_only = r#"<presence xmlns="urn:ietf:params:xml:ns:pidf"
              xmlns:r="urn:ietf:params:xml:ns:pidf:rpid">
            <tuple id="a"><status><basic>closed</basic></status>
              <r:activities><r:meeting/></r:activities></tuple>
            <tuple id="b"><status><basic>closed</basic></status></tuple></presence>"#;
        assert_eq!(
            pidf(tuples_only).unwrap(),
            published(Some(Basic::Closed), Some("meeting"), None)
        );
    }

    #[test]
    fn hostile_or_broken_bodies_are_refused_with_the_reason() {
        let billion_laughs = r#"<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">]>
            <presence xmlns="urn:ietf:params:xml:ns:pidf"><note>&lol;</note></presence>"#;
        assert_eq!(pidf(billion_laughs), Err(BodyError::Doctype));
        assert_eq!(
            pidf(r#"<presence xmlns="urn:ietf:params:xml:ns:pidf"><note>&lol;</note></presence>"#),
            Err(BodyError::Entity("lol".into()))
        );
        assert!(matches!(
            pidf(r#"<presence xmlns="urn:ietf:params:xml:ns:pidf"><tuple>"#),
            Err(BodyError::Xml(_))
        ));
        assert!(matches!(
            pidf(r#"<presence xmlns="urn:ietf:params:xml:ns:pidf"></tuple></presence>"#),
            Err(BodyError::Xml(_))
        ));
        assert_eq!(
            pidf("<presence><tuple/></presence>"),
            Err(BodyError::WrongRoot("<presence> in no namespace".into()))
        );
        assert!(matches!(pidf("<html/>"), Err(BodyError::WrongRoot(_))));
        assert!(matches!(pidf(""), Err(BodyError::Xml(_))));
        assert_eq!(parse(Format::Pidf, b"<a>\xff</a>"), Err(BodyError::NotUtf8));
        let deep = format!(
            "<presence xmlns=\"urn:ietf:params:xml:ns:pidf\">{}{}</presence>",
            "<x>".repeat(40),
            "</x>".repeat(40)
        );
        assert_eq!(pidf(&deep), Err(BodyError::TooDeep));
        assert_eq!(
            pidf(
                r#"<presence xmlns="urn:ietf:params:xml:ns:pidf"><tuple id="t"><status>
                <basic>maybe</basic></status></tuple></presence>"#
            ),
            Err(BodyError::BadBasic("maybe".into()))
        );
        let long = format!(
            "<presence xmlns=\"urn:ietf:params:xml:ns:pidf\"><note>{}</note></presence>",
            "x".repeat(MAX_NOTE + 1)
        );
        assert_eq!(pidf(&long), Err(BodyError::NoteTooLong(MAX_NOTE + 1)));
        let ns = r#"<presence xmlns="urn:ietf:params:xml:ns:pidf">"#;
        assert!(matches!(
            pidf(&format!(
                "{ns}<r:  busy xmlns:r='urn:ietf:params:xml:ns:pidf:rpid'/></presence>"
            )),
            Err(BodyError::Xml(_))
        ));
        assert_eq!(
            pidf(&format!("{ns}<note>a\u{0}b</note></presence>")),
            Err(BodyError::BadChar(0))
        );
        assert_eq!(
            pidf(&format!("{ns}<note>a&#x1b;[31m</note></presence>")),
            Err(BodyError::BadChar(0x1b))
        );
        assert!(
            pidf(r#"<presence xmlns="urn:ietf:params:xml:ns:pidf"/><presence xmlns="urn:ietf:params:xml:ns:pidf"/>"#)
                .is_err(),
            "two roots"
        );
    }

    #[test]
    fn a_document_saying_nothing_parses_to_nothing() {
        assert_eq!(
            pidf(r#"<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:a@b"/>"#).unwrap(),
            Published::default()
        );
    }

    #[test]
    fn xpidf_status_and_substatus_map_to_basic_and_rpid_names() {
        let body = r#"<?xml version="1.0"?>
            <presence><presentity uri="sip:bob@example.org;method=SUBSCRIBE"/>
            <atom id="1"><address uri="sip:bob@example.org;user=ip" priority="0.800000">
            <status status="open"/><msnsubstatus substatus="outtolunch"/></address></atom></presence>"#;
        assert_eq!(
            parse(Format::Xpidf, body.as_bytes()).unwrap(),
            published(Some(Basic::Open), Some("lunch"), None)
        );
        let inuse = body
            .replace("\"open\"", "\"inuse\"")
            .replace("outtolunch", "online");
        assert_eq!(
            parse(Format::Xpidf, inuse.as_bytes()).unwrap(),
            published(Some(Basic::Open), Some("on-the-phone"), None)
        );
        let closed = body.replace("\"open\"", "\"closed\"");
        assert_eq!(
            parse(Format::Xpidf, closed.as_bytes()).unwrap().basic,
            Some(Basic::Closed)
        );
    }

    #[test]
    fn content_types_are_matched_without_case_and_parameters() {
        assert_eq!(
            Format::of(b"application/PIDF+xml; charset=UTF-8"),
            Some(Format::Pidf)
        );
        assert_eq!(Format::of(b" application/xpidf+xml"), Some(Format::Xpidf));
        assert_eq!(Format::of(b"text/plain"), None);
        assert_eq!(Format::of(b""), None);
    }
}
