//! Asterisk's JSON (its jansson API) and the core's [`Json`] / [`Param`]: building a response
//! or an event, and reading the fields of a request body.

use super::bindings::{self, ast_json, ast_json_type as kind};
use super::boundary::c_bytes;
use crate::core::ari::{Json, Param};
use std::ffi::{CStr, CString};

/// An owned reference to an Asterisk JSON value, released on drop.
pub(crate) struct Owned(*mut ast_json);

impl Owned {
    /// Takes over `ptr` (a new reference, or NULL).
    pub(crate) fn new(ptr: *mut ast_json) -> Option<Owned> {
        (!ptr.is_null()).then_some(Owned(ptr))
    }

    pub(crate) fn as_ptr(&self) -> *mut ast_json {
        self.0
    }

    /// Hands the reference to Asterisk (which steals it).
    pub(crate) fn into_raw(self) -> *mut ast_json {
        let ptr = self.0;
        std::mem::forget(self);
        ptr
    }
}

impl Drop for Owned {
    fn drop(&mut self) {
        // SAFETY: self holds one reference, given up here.
        unsafe { bindings::ast_json_unref(self.0) };
    }
}

/// `json` as Asterisk's JSON; `None` if Asterisk could not allocate it.
pub(crate) fn build(json: &Json) -> Option<Owned> {
    match json {
        // SAFETY: returns a new reference to JSON null.
        Json::Null => Owned::new(unsafe { bindings::ast_json_null() }),
        // SAFETY: returns a new integer (or NULL).
        Json::Int(n) => Owned::new(unsafe { bindings::ast_json_integer_create(*n) }),
        Json::Str(text) => {
            // A Rust String is UTF-8, as jansson requires; Asterisk's text holds no NUL.
            let text = CString::new(text.as_str()).ok()?;
            // SAFETY: text is NUL-terminated UTF-8, copied by the call.
            Owned::new(unsafe { bindings::ast_json_string_create(text.as_ptr()) })
        }
        // SAFETY: returns a new string in ARI's date format (or NULL).
        Json::Time(ms) => Owned::new(unsafe {
            bindings::fprs_shim_json_time(i64::try_from(*ms).unwrap_or(i64::MAX))
        }),
        Json::Array(items) => {
            // SAFETY: returns a new empty array (or NULL).
            let array = Owned::new(unsafe { bindings::ast_json_array_create() })?;
            for item in items {
                let item = build(item)?;
                // SAFETY: array is live; append steals item's reference.
                let appended =
                    unsafe { bindings::ast_json_array_append(array.as_ptr(), item.into_raw()) };
                if appended != 0 {
                    return None;
                }
            }
            Some(array)
        }
        Json::Object(fields) => {
            // SAFETY: returns a new empty object (or NULL).
            let object = Owned::new(unsafe { bindings::ast_json_object_create() })?;
            for (key, value) in fields {
                let key = CString::new(*key).ok()?;
                let value = build(value)?;
                // SAFETY: object is live, key NUL-terminated (copied); set steals value's
                // reference.
                let set = unsafe {
                    bindings::ast_json_object_set(object.as_ptr(), key.as_ptr(), value.into_raw())
                };
                if set != 0 {
                    return None;
                }
            }
            Some(object)
        }
    }
}

/// The name of a JSON type, for a message saying a field has the wrong one.
fn type_name(json_kind: kind::Type) -> &'static str {
    match json_kind {
        kind::AST_JSON_OBJECT => "an object",
        kind::AST_JSON_ARRAY => "an array",
        kind::AST_JSON_STRING => "a string",
        kind::AST_JSON_INTEGER => "an integer",
        kind::AST_JSON_REAL => "a fraction",
        kind::AST_JSON_TRUE | kind::AST_JSON_FALSE => "a boolean",
        _ => "null",
    }
}

/// What a request body holds: its fields (`Ok`, empty for no body or JSON `null`), or the
/// type of a body that is not an object (`Err`).
///
/// # Safety
/// `body` is NULL or a JSON value that stays alive and unchanged for `'a`.
pub(crate) unsafe fn body_fields<'a>(
    body: *mut ast_json,
) -> Result<Vec<(&'a [u8], Param<'a>)>, &'static str> {
    if body.is_null() {
        return Ok(Vec::new());
    }
    // SAFETY: body is a live JSON value.
    match unsafe { bindings::ast_json_typeof(body) } {
        kind::AST_JSON_NULL => return Ok(Vec::new()),
        kind::AST_JSON_OBJECT => {}
        other => return Err(type_name(other)),
    }
    let mut fields = Vec::new();
    // SAFETY: body is a live object; its iterator, keys and values belong to it, alive for 'a.
    let mut iter = unsafe { bindings::ast_json_object_iter(body) };
    while !iter.is_null() {
        // SAFETY: iter points into body (see above).
        let (key, value) = unsafe {
            (
                c_bytes(bindings::ast_json_object_iter_key(iter)).unwrap_or_default(),
                bindings::ast_json_object_iter_value(iter),
            )
        };
        // SAFETY: value is a live member of body.
        let param = match unsafe { bindings::ast_json_typeof(value) } {
            kind::AST_JSON_STRING => Param::Text(
                // SAFETY: a string value's text belongs to it, alive for 'a.
                unsafe { c_bytes(bindings::ast_json_string_get(value)) }.unwrap_or_default(),
            ),
            // SAFETY: value is an integer (intmax_t, 64 bits here).
            kind::AST_JSON_INTEGER => Param::Int(unsafe { bindings::ast_json_integer_get(value) }),
            other => Param::Other(type_name(other)),
        };
        fields.push((key, param));
        // SAFETY: iter is body's iterator, advanced once.
        iter = unsafe { bindings::ast_json_object_iter_next(body, iter) };
    }
    Ok(fields)
}

/// The strings of array `key` of `object` (or, with `field`, of that field of each object of
/// the array); missing ones and ones that are not strings are skipped.
///
/// # Safety
/// `object` is NULL or a JSON value alive and unchanged for `'a`.
pub(crate) unsafe fn strings_of<'a>(
    object: *mut ast_json,
    key: &CStr,
    field: Option<&CStr>,
) -> Vec<&'a str> {
    if object.is_null() {
        return Vec::new();
    }
    // SAFETY: object is live; the member (or NULL) belongs to it.
    let array = unsafe { bindings::ast_json_object_get(object, key.as_ptr()) };
    if array.is_null() {
        return Vec::new();
    }
    // SAFETY: array is a live member (size is 0 for a non-array).
    let size = unsafe { bindings::ast_json_array_size(array) };
    (0..size)
        .filter_map(|i| {
            // SAFETY: i < size; the element, its member and their text belong to array
            // (ast_json_object_get and ast_json_string_get answer NULL for other types).
            let text = unsafe {
                let mut item = bindings::ast_json_array_get(array, i);
                if let Some(field) = field {
                    item = bindings::ast_json_object_get(item, field.as_ptr());
                }
                c_bytes(bindings::ast_json_string_get(item))
            }?;
            std::str::from_utf8(text).ok()
        })
        .collect()
}

/// Appends `item` to array `key` of `object`; false when there is no such array.
///
/// # Safety
/// `object` is a live JSON object.
pub(crate) unsafe fn append_to(object: *mut ast_json, key: &CStr, item: Owned) -> bool {
    // SAFETY: object is live; the member belongs to it.
    let array = unsafe { bindings::ast_json_object_get(object, key.as_ptr()) };
    // SAFETY: array is NULL (checked) or a member of object; append steals item.
    !array.is_null() && unsafe { bindings::ast_json_array_append(array, item.into_raw()) } == 0
}
