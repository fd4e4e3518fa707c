//! `/ari/presenceStates`: what each request answers, with which status, and why.
//!
//! | request | answers |
//! | --- | --- |
//! | `GET /presenceStates` | 200, every `CustomPresence` state |
//! | `GET /presenceStates/{name}` | 200; 404 for a `CustomPresence` name that holds no state, or a provider the presence core does not know; 400 for `CustomPresence:` with no name |
//! | `PUT /presenceStates/{name}` | 200 with the state as stored; 400 naming the field at fault (or `name`); 409 for a name of another provider; 500 when AstDB refused |
//! | `DELETE /presenceStates/{name}` | 204; 404 for a name that holds no state; 400 / 409 as for PUT |
//!
//! 401 (no or wrong credentials), 403 (a `read_only` user writing, or an ACL) and 405 (another
//! method) are ARI's own answers, given before a request reaches this resource.

use super::json::{Json, Param};
use crate::core::compose::{compose, FieldError, Fields};
use crate::core::meta::Source;
use crate::core::state::PresenceState;
use crate::core::stats::Refusal;
use crate::core::store::{name_for_write, Name, WriteError};
use crate::core::value::{Presence, MAX_EXPIRY_SECONDS};
use crate::core::{custom_presence_name, shown, PROVIDER_PREFIX};
use std::ffi::CString;
use std::sync::Arc;

/// What the resource needs from the module: the store, the presence core for other providers.
pub trait Presences {
    /// Every `CustomPresence` state, sorted by name.
    fn snapshot(&self) -> Vec<(Name, Arc<Presence>)>;
    fn get(&self, name: &[u8]) -> Option<Arc<Presence>>;
    /// When the state of `name` was set and by what, when its record says.
    fn change_of(&self, name: &[u8]) -> Option<(u64, Source<'static>)>;
    /// The presence core's answer for a provider that is not `CustomPresence`: state, subtype,
    /// message; `None` when it knows no such provider or it gave no state.
    fn ask(&self, provider: &[u8]) -> Option<(PresenceState, Vec<u8>, Vec<u8>)>;
    fn write(&self, provider: &CString, value: &CString, source: &Source)
        -> Result<(), WriteError>;
    fn delete(&self, provider: &CString, source: &Source) -> Result<(), WriteError>;
    /// Counts a refusal made here, before the store saw the request (the store counts its own).
    fn refused(&self, refusal: Refusal);
}

/// The status codes this resource answers with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Ok,
    NoContent,
    BadRequest,
    NotFound,
    Conflict,
    ServerError,
}

impl Status {
    pub fn code(self) -> u16 {
        match self {
            Status::Ok => 200,
            Status::NoContent => 204,
            Status::BadRequest => 400,
            Status::NotFound => 404,
            Status::Conflict => 409,
            Status::ServerError => 500,
        }
    }

    /// The reason phrase, as Asterisk's own resources give it.
    pub fn reason(self) -> &'static str {
        match self {
            Status::Ok => "OK",
            Status::NoContent => "No Content",
            Status::BadRequest => "Bad Request",
            Status::NotFound => "Not Found",
            Status::Conflict => "Conflict",
            Status::ServerError => "Internal Server Error",
        }
    }
}

/// An answer: status, body (`Null` for 204), and, for a request refused as bad or for a write
/// that failed, why (for the WARNING the module logs: "nothing changed").
#[derive(Debug, PartialEq)]
pub struct Response {
    pub status: Status,
    pub body: Json,
    pub refusal: Option<String>,
}

impl Response {
    fn ok(body: Json) -> Response {
        Response {
            status: Status::Ok,
            body,
            refusal: None,
        }
    }

    /// An error: `{"message": ..., "field": ...}` (ARI's error object, plus the field at
    /// fault when there is one).
    fn error(status: Status, field: Option<&'static str>, message: String) -> Response {
        let mut body = vec![("message", Json::Str(message.clone()))];
        if let Some(field) = field {
            body.push(("field", Json::Str(field.to_string())));
        }
        Response {
            status,
            body: Json::Object(body),
            refusal: Some(message),
        }
    }

    /// A 404 for a read: not a refusal of bad input, so not logged.
    fn not_found(message: String) -> Response {
        Response {
            refusal: None,
            ..Response::error(Status::NotFound, None, message)
        }
    }
}

/// A request's fields apart from the path: query (and form) parameters, then the JSON body.
#[derive(Clone, Debug, Default)]
pub struct Request<'a> {
    pub query: Vec<(&'a [u8], &'a [u8])>,
    /// The body's fields (none when there is no body).
    pub body: Vec<(&'a [u8], Param<'a>)>,
    /// The JSON type of a body that is not an object, which is refused.
    pub body_not_object: Option<&'static str>,
    /// The ARI user who sent it ([`super::ari_user`]).
    pub user: Option<Vec<u8>>,
}

/// What a request's fields hold, checked: each known field at most once, nothing unknown.
struct Checked<'a> {
    fields: Vec<(&'static str, Param<'a>)>,
}

impl<'a> Checked<'a> {
    fn get(&self, key: &str) -> Option<Param<'a>> {
        self.fields.iter().find(|(k, _)| *k == key).map(|&(_, v)| v)
    }

    /// The text of string field `key` (empty when absent).
    fn text(&self, key: &'static str) -> Result<&'a [u8], Response> {
        match self.get(key) {
            None => Ok(b""),
            Some(Param::Text(text)) => Ok(text),
            Some(Param::Int(_)) => Err(bad(key, format!("{key} must be a string, not a number"))),
            Some(Param::Other(kind)) => {
                Err(bad(key, format!("{key} must be a string, not {kind}")))
            }
        }
    }
}

fn bad(field: &'static str, message: String) -> Response {
    Response::error(Status::BadRequest, Some(field), message)
}

/// Checks `request` against the fields an operation takes (`api_key`, ARI's own, is taken
/// anywhere in the query and ignored).
fn check<'a>(request: &Request<'a>, takes: &[&'static str]) -> Result<Checked<'a>, Response> {
    if let Some(kind) = request.body_not_object {
        return Err(Response::error(
            Status::BadRequest,
            None,
            format!("the request body must be a JSON object, not {kind}"),
        ));
    }
    let query = request
        .query
        .iter()
        .filter(|(key, _)| *key != b"api_key")
        .map(|&(key, value)| (key, Param::Text(value)));
    let mut fields: Vec<(&'static str, Param<'a>)> = Vec::new();
    for (key, value) in query.chain(request.body.iter().copied()) {
        let Some(&known) = takes.iter().find(|k| k.as_bytes() == key) else {
            let takes = if takes.is_empty() {
                "none".to_string()
            } else {
                takes.join(", ")
            };
            return Err(Response::error(
                Status::BadRequest,
                None,
                format!(
                    "unknown parameter '{}' (this request takes: {takes})",
                    shown(key)
                ),
            ));
        };
        if fields.iter().any(|(k, _)| *k == known) {
            return Err(bad(known, format!("{known} is given more than once")));
        }
        fields.push((known, value));
    }
    Ok(Checked { fields })
}

/// The `PresenceState` object of a `CustomPresence` state.
pub fn custom_state_json(
    name: &[u8],
    presence: &Presence,
    change: Option<(u64, Source<'_>)>,
) -> Json {
    let mut fields = vec![
        (
            "name",
            Json::text(&[PROVIDER_PREFIX.as_bytes(), name].concat()),
        ),
        ("state", Json::Str(presence.state().name().to_string())),
        ("subtype", Json::text(presence.subtype())),
        ("message", Json::text(presence.message())),
    ];
    if let Some((changed, source)) = change {
        fields.push(("last_changed", Json::Time(changed.saturating_mul(1000))));
        fields.push(("changed_by", Json::Str(source.to_string())));
    }
    if let Some(timing) = presence.timing() {
        fields.push(("expires", Json::Time(timing.deadline_ms)));
    }
    Json::Object(fields)
}

/// The `PresenceState` object of another provider's state, as the presence core gave it.
pub fn provider_state_json(
    provider: &[u8],
    state: PresenceState,
    subtype: &[u8],
    message: &[u8],
) -> Json {
    Json::Object(vec![
        ("name", Json::text(provider)),
        ("state", Json::Str(state.name().to_string())),
        ("subtype", Json::text(subtype)),
        ("message", Json::text(message)),
    ])
}

fn stored_json(presences: &dyn Presences, name: &[u8], presence: &Presence) -> Json {
    custom_state_json(name, presence, presences.change_of(name))
}

/// `GET /presenceStates`.
pub fn list(presences: &dyn Presences, request: &Request<'_>) -> Response {
    if let Err(response) = check(request, &[]) {
        return response;
    }
    Response::ok(Json::Array(
        presences
            .snapshot()
            .iter()
            .map(|(name, presence)| stored_json(presences, name, presence))
            .collect(),
    ))
}

/// `GET /presenceStates/{name}`.
pub fn get(presences: &dyn Presences, name: &[u8], request: &Request<'_>) -> Response {
    if let Err(response) = check(request, &[]) {
        return response;
    }
    let Some(custom) = custom_presence_name(name) else {
        return match presences.ask(name) {
            Some((state, subtype, message)) => {
                Response::ok(provider_state_json(name, state, &subtype, &message))
            }
            None => Response::not_found(format!(
                "no presence state '{}': the presence core knows no such provider, or it gave \
                 no state",
                shown(name)
            )),
        };
    };
    if custom.is_empty() {
        return bad("name", format!("the name after {PROVIDER_PREFIX} is empty"));
    }
    match presences.get(custom) {
        Some(presence) => Response::ok(stored_json(presences, custom, &presence)),
        None => Response::not_found(not_set(custom)),
    }
}

fn not_set(name: &[u8]) -> String {
    format!(
        "there is no custom presence state {PROVIDER_PREFIX}{} (never set, or deleted)",
        shown(name)
    )
}

/// The name a write or delete addresses, or the answer refusing it: 409 for another
/// provider's presence (not ours to change), 400 for what is no presence name at all.
fn writable<'n>(presences: &dyn Presences, name: &'n [u8]) -> Result<&'n [u8], Response> {
    name_for_write(name).map_err(|error| {
        presences.refused(error.refusal());
        match error {
            WriteError::NotCustomPresence(_) if name.contains(&b':') => Response::error(
                Status::Conflict,
                Some("name"),
                format!(
                    "'{}' is not a {PROVIDER_PREFIX} presence state: only those can be set or \
                 deleted here",
                    shown(name)
                ),
            ),
            WriteError::NotCustomPresence(_) => bad(
                "name",
                format!(
                    "'{}' is no presence name ({PROVIDER_PREFIX}<name>)",
                    shown(name)
                ),
            ),
            error => bad("name", error.to_string()),
        }
    })
}

fn source(request: &Request<'_>) -> Source<'static> {
    Source::AriUser(request.user.clone().unwrap_or_default().into())
}

/// A refusal of a field before the store saw the request, counted.
fn refused_field(presences: &dyn Presences, refusal: Refusal, response: Response) -> Response {
    presences.refused(refusal);
    response
}

/// The value `PUT` writes, from its fields.
fn value_of(presences: &dyn Presences, fields: &Checked<'_>) -> Result<Vec<u8>, Response> {
    let texts = (|| {
        Ok((
            fields.text("state")?,
            fields.text("subtype")?,
            fields.text("message")?,
        ))
    })();
    let (state, subtype, message) =
        texts.map_err(|r| refused_field(presences, Refusal::BadValue, r))?;
    let digits;
    let expiry: &[u8] = match fields.get("expires") {
        None => b"",
        Some(Param::Text(text)) => text,
        Some(Param::Int(seconds)) => {
            digits = seconds.to_string();
            digits.as_bytes()
        }
        Some(Param::Other(kind)) => {
            return Err(refused_field(
                presences,
                Refusal::BadValue,
                bad(
                    "expires",
                    format!("expires must be a number of seconds, not {kind}"),
                ),
            ))
        }
    };
    let fields = Fields {
        state,
        subtype,
        message,
        encoded: false,
        expiry,
    };
    compose(&fields).map_err(|error| match error {
        FieldError::MissingState => refused_field(
            presences,
            Refusal::UnknownState,
            bad("state", format!("state is required ({})", state_names())),
        ),
        FieldError::UnknownState(state) => refused_field(
            presences,
            Refusal::UnknownState,
            bad(
                "state",
                format!("unknown state '{}' ({})", shown(&state), state_names()),
            ),
        ),
        FieldError::BadExpiry(text) => refused_field(
            presences,
            Refusal::BadValue,
            bad(
                "expires",
                format!(
                    "expires must be a whole number of seconds from 1 to {MAX_EXPIRY_SECONDS} \
                     (one year), not '{}'",
                    shown(&text)
                ),
            ),
        ),
        FieldError::Value(error) => refused_field(
            presences,
            Refusal::BadValue,
            Response::error(Status::BadRequest, None, error.to_string()),
        ),
    })
}

fn state_names() -> String {
    PresenceState::ALL.map(PresenceState::name).join(", ")
}

/// The answer to a write the store refused.
fn write_failed(error: WriteError) -> Response {
    match error {
        WriteError::PersistFailed(_) => {
            Response::error(Status::ServerError, None, error.to_string())
        }
        WriteError::NotSet(name) => Response::error(Status::NotFound, None, not_set(&name)),
        error => Response::error(Status::BadRequest, None, error.to_string()),
    }
}

/// `PUT /presenceStates/{name}`: `state`, `subtype`, `message`, `expires` (seconds), as query
/// parameters or JSON body fields.
pub fn put(presences: &dyn Presences, name: &[u8], request: &Request<'_>) -> Response {
    let fields = match check(request, &["state", "subtype", "message", "expires"]) {
        Ok(fields) => fields,
        Err(response) => return refused_field(presences, Refusal::BadValue, response),
    };
    let custom = match writable(presences, name) {
        Ok(custom) => custom,
        Err(response) => return response,
    };
    let value = match value_of(presences, &fields) {
        Ok(value) => value,
        Err(response) => return response,
    };
    // Names and values from Asterisk's C strings, and values made from them, hold no NUL.
    let (Ok(provider), Ok(value_c)) = (CString::new(name), CString::new(value)) else {
        return Response::error(Status::BadRequest, None, "a NUL byte in the request".into());
    };
    if let Err(error) = presences.write(&provider, &value_c, &source(request)) {
        return write_failed(error);
    }
    // The state as stored now (a write made since may have replaced it already).
    match presences.get(custom) {
        Some(presence) => Response::ok(stored_json(presences, custom, &presence)),
        None => Response::ok(custom_state_json(
            custom,
            &Presence::parse(value_c.to_bytes()).unwrap_or_else(|_| Presence::not_set()),
            None,
        )),
    }
}

/// `DELETE /presenceStates/{name}`.
pub fn delete(presences: &dyn Presences, name: &[u8], request: &Request<'_>) -> Response {
    if let Err(response) = check(request, &[]) {
        return refused_field(presences, Refusal::BadValue, response);
    }
    if let Err(response) = writable(presences, name) {
        return response;
    }
    let Ok(provider) = CString::new(name) else {
        return Response::error(Status::BadRequest, None, "a NUL byte in the name".into());
    };
    match presences.delete(&provider, &source(request)) {
        Ok(()) => Response {
            status: Status::NoContent,
            body: Json::Null,
            refusal: None,
        },
        Err(error) => write_failed(error),
    }
}

/// The file of the resource's API declaration, in Asterisk's `rest-api/` directory.
pub const DECLARATION: &str = "presenceStates.json";
/// Its path in Asterisk's API listing (`/ari/api-docs/resources.json`).
pub const LISTING_PATH: &str = "/api-docs/presenceStates.{format}";

/// The entry to add to Asterisk's API listing, whose `apis` have `paths`, when the
/// declaration is installed (`installed`) and the listing does not name it yet.
pub fn amend_listing(paths: &[&str], installed: bool) -> Option<Json> {
    (installed && !paths.contains(&LISTING_PATH)).then(|| {
        Json::Object(vec![
            ("path", Json::Str(LISTING_PATH.to_string())),
            (
                "description",
                Json::Str("Presence states (func_presencestate_rs)".to_string()),
            ),
        ])
    })
}
