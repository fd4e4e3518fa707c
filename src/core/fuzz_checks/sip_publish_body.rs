//! Fuzz target `sip_publish_body`: a PUBLISH body through the parser and the default mapping.
//! Whatever the bytes, the parse ends (no panic), a refusal has a short WARNING text, and an
//! accepted body gives what the module documents: a note of at most `MAX_NOTE` bytes with its
//! whitespace collapsed, an activity that is an element name, and a stored value the store
//! accepts that announces exactly that state, activity and note, timed when a publication
//! writes it.

use super::check_warning_text;
use crate::core::sip_publish::body::{self, Format, MAX_NOTE};
use crate::core::sip_publish::config::StateMap;
use crate::core::sip_publish::table::{value_of, Publication};
use crate::core::value::Presence;

pub fn sip_publish_body(data: &[u8]) {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let format = if selector % 2 == 0 {
        Format::Pidf
    } else {
        Format::Xpidf
    };
    let published = match body::parse(format, body) {
        Ok(published) => published,
        Err(error) => return check_warning_text(&error),
    };
    if let Some(note) = &published.note {
        assert!(note.len() <= MAX_NOTE, "{} byte note", note.len());
        assert_eq!(note.trim(), note, "a collapsed note has no edge whitespace");
        assert!(
            !note.contains("  ") && !note.chars().any(|c| c.is_whitespace() && c != ' '),
            "whitespace is collapsed to single spaces: {note:?}"
        );
    }
    if let Some(activity) = &published.activity {
        assert!(!activity.is_empty() && !activity.contains(char::is_whitespace));
    }
    let Some((state, value)) = value_of(&published, &StateMap::default()) else {
        assert!(published.basic.is_none(), "a basic status always maps");
        return;
    };
    let presence = Presence::parse(&value).unwrap_or_else(|e| panic!("{value:?}: {e}"));
    assert_eq!(presence.state(), state);
    assert_eq!(
        presence.subtype(),
        published.activity.as_deref().unwrap_or_default().as_bytes()
    );
    assert_eq!(
        presence.message(),
        published.note.as_deref().unwrap_or_default().as_bytes()
    );
    let publication = Publication {
        etag: String::new(),
        endpoint: Vec::new(),
        name: Vec::new(),
        contact: Vec::new(),
        expires_at_ms: 3_600_000,
        modified: 0,
        state,
        value,
    };
    let timed = Presence::parse(&publication.timed_value(0)).expect("a timed value parses");
    assert_eq!(timed.expiry().map(|s| s.get()), Some(3600));
    assert!(timed.announces_same(&presence));
}
