//! JSON as the resource builds and reads it, free of any JSON library: the FFI layer builds
//! Asterisk's own JSON (jansson) from a [`Json`], and hands request fields over as [`Param`]s.

/// A JSON value to send. Text is `String`: JSON is Unicode, so presence bytes that are not
/// UTF-8 reach it with U+FFFD in their place (see [`Json::text`]).
#[derive(Clone, Debug, PartialEq)]
pub enum Json {
    Null,
    Int(i64),
    Str(String),
    /// A point in time, unix milliseconds: ARI's `Date` (`2026-01-05T10:00:00.000+0000`).
    Time(u64),
    Array(Vec<Json>),
    /// Fields in order.
    Object(Vec<(&'static str, Json)>),
}

impl Json {
    /// Bytes as a JSON string, lossily.
    pub fn text(bytes: &[u8]) -> Json {
        Json::Str(String::from_utf8_lossy(bytes).into_owned())
    }

    /// The field `key` of an object.
    pub fn get(&self, key: &str) -> Option<&Json> {
        match self {
            Json::Object(fields) => fields.iter().find(|(k, _)| *k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// The text of a string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Json::Str(text) => Some(text),
            _ => None,
        }
    }
}

/// A request field as it came: a query or form parameter is always text; a JSON body field
/// is text, a number, or something else (named by its JSON type, for the error).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Param<'a> {
    Text(&'a [u8]),
    Int(i64),
    Other(&'static str),
}
