//! ARI's `/ari/presenceStates` (the logic is `core::ari`), Asterisk's API listing amended with
//! it, and the presence board page; registered when res_ari and res_stasis are loaded.

use super::bindings::{self, ast_ari_response, ast_json, ast_variable};
use super::boundary::{c_bytes, guard};
use super::config::{self, Loaded};
use super::function::ask_presence_core;
use super::host::{self, STORE};
use super::json::{self, Owned};
use crate::core::ari::{self, Json, Presences, Request, Response, Status};
use crate::core::meta::Source;
use crate::core::shown;
use crate::core::state::PresenceState;
use crate::core::stats::Refusal;
use crate::core::store::{Name, WriteError};
use crate::core::value::Presence;
use std::ffi::{c_char, CStr, CString};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

/// The resource's view of the module: the store and the presence core.
struct Module;

impl Presences for Module {
    fn snapshot(&self) -> Vec<(Name, Arc<Presence>)> {
        STORE.snapshot()
    }
    fn get(&self, name: &[u8]) -> Option<Arc<Presence>> {
        STORE.get(name)
    }
    fn change_of(&self, name: &[u8]) -> Option<(u64, Source<'static>)> {
        STORE.change_of(name)
    }
    fn ask(&self, provider: &[u8]) -> Option<(PresenceState, Vec<u8>, Vec<u8>)> {
        ask_presence_core(provider).ok()
    }
    fn write(
        &self,
        provider: &CString,
        value: &CString,
        source: &Source,
    ) -> Result<(), WriteError> {
        host::write(provider, value, source)
    }
    fn delete(&self, provider: &CString, source: &Source) -> Result<(), WriteError> {
        host::delete(provider, source)
    }
    fn refused(&self, refusal: Refusal) {
        STORE.stats.count(refusal);
    }
}

/// The `(name, value)` pairs of an Asterisk variable list, borrowed from it.
///
/// # Safety
/// `list` is NULL or a variable list alive and unchanged for `'a`.
unsafe fn variables<'a>(mut list: *mut ast_variable) -> Vec<(&'a [u8], &'a [u8])> {
    let mut pairs = Vec::new();
    while !list.is_null() {
        let (mut name, mut value, mut line) = (std::ptr::null(), std::ptr::null(), 0);
        // SAFETY: list is a live variable; the out-pointers are valid locals. Its strings
        // belong to it, alive for 'a.
        let next = unsafe { bindings::fprs_shim_variable(list, &mut name, &mut value, &mut line) };
        // SAFETY: as above.
        if let (Some(name), Some(value)) = unsafe { (c_bytes(name), c_bytes(value)) } {
            pairs.push((name, value));
        }
        list = next;
    }
    pairs
}

/// Fills Asterisk's response with `answer`, logging a refusal as a WARNING.
///
/// # Safety
/// `response` is the response of the request being handled.
unsafe fn respond(
    response: *mut ast_ari_response,
    what: &str,
    request: &Request<'_>,
    answer: Response,
) {
    if let Some(reason) = &answer.refusal {
        let by = request.user.as_deref().map_or(String::new(), |user| {
            format!(" by ARI user {}", shown(user))
        });
        warning!(
            "ARI {what}{by}: refused ({} {}), nothing changed: {reason}",
            answer.status.code(),
            answer.status.reason()
        );
    }
    let Some(message) = json::build(&answer.body) else {
        // SAFETY: as the caller guarantees.
        return unsafe { fail(response, "could not build the JSON answer") };
    };
    // SAFETY: response is live; the reason phrase is static (ARI keeps the pointer until it
    // sends the answer); the message reference is handed over.
    unsafe {
        bindings::fprs_shim_ari_respond(
            response,
            answer.status.code().into(),
            reason_phrase(answer.status).as_ptr(),
            message.into_raw(),
        )
    };
}

/// [`Status::reason`] as a static C string.
fn reason_phrase(status: Status) -> &'static CStr {
    match status {
        Status::Ok => c"OK",
        Status::NoContent => c"No Content",
        Status::BadRequest => c"Bad Request",
        Status::NotFound => c"Not Found",
        Status::Conflict => c"Conflict",
        Status::ServerError => c"Internal Server Error",
    }
}

/// A 500 answer, when the module itself failed (no JSON, a panic).
///
/// # Safety
/// `response` is the response of the request being handled.
unsafe fn fail(response: *mut ast_ari_response, why: &str) {
    error!("ARI /presenceStates: {why}");
    let body = Json::Object(vec![(
        "message",
        Json::Str(format!("func_presencestate_rs: {why}")),
    )]);
    let message = json::build(&body).map_or(std::ptr::null_mut(), Owned::into_raw);
    // SAFETY: response is live; the phrase is static.
    unsafe {
        bindings::fprs_shim_ari_respond(response, 500, c"Internal Server Error".as_ptr(), message)
    };
}

/// Runs a request handler, answering 500 if it panicked.
fn handle(entry: &str, response: *mut ast_ari_response, body: impl FnOnce()) {
    if !guard(entry, false, || {
        body();
        true
    }) {
        // SAFETY: response is the request's own (the handler's caller guarantees it).
        unsafe {
            fail(
                response,
                "internal error (see the ERROR above); nothing was changed",
            )
        };
    }
}

/// The request's query parameters and body (and who sent it, from its headers).
///
/// # Safety
/// The arguments are the live request's, alive for `'a`.
unsafe fn request<'a>(
    get_params: *mut ast_variable,
    headers: *mut ast_variable,
    body: *mut ast_json,
) -> Request<'a> {
    // SAFETY: as the caller guarantees.
    let (query, headers, fields) = unsafe {
        (
            variables(get_params),
            variables(headers),
            json::body_fields(body),
        )
    };
    let user = ari::ari_user(&headers, &query);
    let (body, body_not_object) = match fields {
        Ok(fields) => (fields, None),
        Err(kind) => (Vec::new(), Some(kind)),
    };
    Request {
        query,
        body,
        body_not_object,
        user,
    }
}

#[no_mangle]
pub extern "C" fn fprs_ari_list(get_params: *mut ast_variable, response: *mut ast_ari_response) {
    handle("ARI GET /presenceStates", response, || {
        // SAFETY: Asterisk's request, alive for the call.
        let request = unsafe { request(get_params, std::ptr::null_mut(), std::ptr::null_mut()) };
        let answer = ari::list(&Module, &request);
        // SAFETY: as above.
        unsafe { respond(response, "GET /presenceStates", &request, answer) };
    });
}

#[no_mangle]
pub extern "C" fn fprs_ari_get(
    name: *const c_char,
    get_params: *mut ast_variable,
    response: *mut ast_ari_response,
) {
    handle("ARI GET /presenceStates/{name}", response, || {
        // SAFETY: Asterisk's request, alive for the call.
        let (name, request) = unsafe {
            (
                c_bytes(name).unwrap_or_default(),
                request(get_params, std::ptr::null_mut(), std::ptr::null_mut()),
            )
        };
        let answer = ari::get(&Module, name, &request);
        let what = format!("GET /presenceStates/{}", shown(name));
        // SAFETY: as above.
        unsafe { respond(response, &what, &request, answer) };
    });
}

#[no_mangle]
pub extern "C" fn fprs_ari_put(
    name: *const c_char,
    get_params: *mut ast_variable,
    headers: *mut ast_variable,
    body: *mut ast_json,
    response: *mut ast_ari_response,
) {
    handle("ARI PUT /presenceStates/{name}", response, || {
        // SAFETY: Asterisk's request, alive for the call.
        let (name, request) = unsafe {
            (
                c_bytes(name).unwrap_or_default(),
                request(get_params, headers, body),
            )
        };
        let answer = ari::put(&Module, name, &request);
        let what = format!("PUT /presenceStates/{}", shown(name));
        // SAFETY: as above.
        unsafe { respond(response, &what, &request, answer) };
    });
}

#[no_mangle]
pub extern "C" fn fprs_ari_delete(
    name: *const c_char,
    get_params: *mut ast_variable,
    headers: *mut ast_variable,
    response: *mut ast_ari_response,
) {
    handle("ARI DELETE /presenceStates/{name}", response, || {
        // SAFETY: Asterisk's request, alive for the call.
        let (name, request) = unsafe {
            (
                c_bytes(name).unwrap_or_default(),
                request(get_params, headers, std::ptr::null_mut()),
            )
        };
        let answer = ari::delete(&Module, name, &request);
        let what = format!("DELETE /presenceStates/{}", shown(name));
        // SAFETY: as above.
        unsafe { respond(response, &what, &request, answer) };
    });
}

/// Adds `/api-docs/presenceStates.{format}` to Asterisk's listing when the declaration is
/// installed in `<data_dir>/rest-api/`.
#[no_mangle]
pub extern "C" fn fprs_ari_amend_listing(listing: *mut ast_json, data_dir: *const c_char) {
    guard("ARI API listing", (), || {
        // SAFETY: data_dir is Asterisk's NUL-terminated data directory (or NULL).
        let data_dir = unsafe { c_bytes(data_dir) }.unwrap_or_default();
        let declaration = Path::new(std::str::from_utf8(data_dir).unwrap_or_default())
            .join("rest-api")
            .join(ari::DECLARATION);
        // SAFETY: listing is the live listing res_ari read; the paths are read before it
        // changes.
        let paths = unsafe { json::strings_of(listing, c"apis", Some(c"path")) };
        if let Some(entry) = ari::amend_listing(&paths, declaration.is_file()) {
            // SAFETY: listing is a live object.
            let added = json::build(&entry)
                .is_some_and(|entry| unsafe { json::append_to(listing, c"apis", entry) });
            if !added {
                warning!("Could not add presenceStates to the ARI API listing");
            }
        }
    });
}

/// The presence board: one page, no build step, nothing fetched from elsewhere.
const BOARD: &str = include_str!("../../board/presence-board.html");

#[no_mangle]
pub extern "C" fn fprs_board_page(len: *mut usize) -> *const c_char {
    guard("presence board", std::ptr::null(), || {
        if !len.is_null() {
            // SAFETY: len is the shim's valid out-pointer.
            unsafe { *len = BOARD.len() };
        }
        BOARD.as_ptr().cast()
    })
}

/// Whether ARI's part is registered (res_ari and res_stasis were there at load).
static REGISTERED: AtomicBool = AtomicBool::new(false);
/// Whether the HTTP pages are linked (ARI is enabled in ari.conf).
static LINKED: AtomicBool = AtomicBool::new(false);

/// At load: the resource, the event source and its events, the listing and the board, when
/// res_ari and res_stasis are loaded; nothing (and true) when they are not.
pub(crate) fn register() -> bool {
    // SAFETY: reads whether the weak symbols resolved; no arguments.
    if unsafe { bindings::fprs_shim_have_ari() } == 0 {
        notice!(
            "res_ari or res_stasis is not loaded: /ari/presenceStates, its events and the \
             presence board are not offered (load them before this module to have them)"
        );
        return true;
    }
    // SAFETY: ARI is there (checked above); the shim passes its own static structs.
    if unsafe { bindings::fprs_shim_register_ari() } != 0 {
        error!("Could not add /ari/presenceStates to ARI");
        return false;
    }
    if !super::ari_events::start() {
        // SAFETY: undoes the registration just made.
        unsafe { bindings::fprs_shim_unregister_ari() };
        return false;
    }
    REGISTERED.store(true, Relaxed);
    if ari_enabled() {
        // SAFETY: the shim links its own static URIs.
        unsafe { bindings::fprs_shim_link_http() };
        LINKED.store(true, Relaxed);
    }
    true
}

/// `ari.conf`'s `[general] enabled`.
fn ari_enabled() -> bool {
    match config::load("ari.conf") {
        Loaded::Settings(owned) => ari::ari_enabled(&config::settings(&owned)),
        // res_ari's defaults: enabled.
        Loaded::Missing => true,
        Loaded::Invalid => false,
    }
}

/// At unload: removes everything [`register`] added, then waits until no callback of it runs.
pub(crate) fn unregister() {
    if LINKED.swap(false, Relaxed) {
        // SAFETY: unlinks the shim's own URIs, linked by register.
        unsafe { bindings::fprs_shim_unlink_http() };
    }
    if !REGISTERED.swap(false, Relaxed) {
        return;
    }
    // SAFETY: undoes fprs_shim_register_ari.
    unsafe { bindings::fprs_shim_unregister_ari() };
    wait_for_callbacks();
    super::ari_events::stop();
}

/// Waits until no ARI, event-source or HTTP callback of this module is running (a request that
/// found one of them just before it was removed may still be in it).
fn wait_for_callbacks() {
    let mut waited = Duration::ZERO;
    // SAFETY: reads an atomic counter of the shim.
    while unsafe { bindings::fprs_shim_ari_busy() } > 0 {
        std::thread::sleep(Duration::from_millis(1));
        waited += Duration::from_millis(1);
        if waited.as_millis() % 1000 == 0 {
            warning!("Unloading: still waiting for an ARI request to /presenceStates to finish");
        }
    }
}
