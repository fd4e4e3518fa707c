//! The resource and the event source against a real store (with a recording host).

use super::*;
use crate::core::meta::Source;
use crate::core::state::PresenceState;
use crate::core::stats::Refusal;
use crate::core::store::tests::RecordingHost;
use crate::core::store::{Name, Store, WriteError};
use crate::core::value::Presence;
use std::ffi::CString;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};

/// The store as the module has it, and a presence core that knows one other provider.
#[derive(Default)]
struct Module {
    store: Store,
    host: RecordingHost,
    refusals: Mutex<Vec<Refusal>>,
}

impl Presences for Module {
    fn snapshot(&self) -> Vec<(Name, Arc<Presence>)> {
        self.store.snapshot()
    }
    fn get(&self, name: &[u8]) -> Option<Arc<Presence>> {
        self.store.get(name)
    }
    fn change_of(&self, name: &[u8]) -> Option<(u64, Source<'static>)> {
        self.store.change_of(name)
    }
    fn ask(&self, provider: &[u8]) -> Option<(PresenceState, Vec<u8>, Vec<u8>)> {
        (provider == b"Lamp:desk").then(|| (PresenceState::Chat, b"green".to_vec(), vec![]))
    }
    fn write(
        &self,
        provider: &CString,
        value: &CString,
        source: &Source,
    ) -> Result<(), WriteError> {
        self.store.write(&self.host, provider, value, source)
    }
    fn delete(&self, provider: &CString, source: &Source) -> Result<(), WriteError> {
        self.store.delete(&self.host, provider, source)
    }
    fn refused(&self, refusal: Refusal) {
        self.refusals.lock().unwrap().push(refusal);
    }
}

fn by(user: &str) -> Request<'static> {
    Request {
        user: Some(user.as_bytes().to_vec()),
        ..Request::default()
    }
}

fn query(pairs: &[(&'static str, &'static str)]) -> Request<'static> {
    Request {
        query: pairs
            .iter()
            .map(|(k, v)| (k.as_bytes(), v.as_bytes()))
            .collect(),
        ..by("reception")
    }
}

fn field(response: &Response) -> Option<&str> {
    response.body.get("field").and_then(Json::as_str)
}

fn message(response: &Response) -> &str {
    response
        .body
        .get("message")
        .and_then(Json::as_str)
        .unwrap_or("")
}

#[test]
fn put_stores_the_stock_value_and_answers_the_state_as_get_does() {
    let module = Module::default();
    module.host.now.store(1_000_000, Relaxed);
    let request = query(&[
        ("state", "dnd"),
        ("message", "In a meeting, back at 3"),
        ("expires", "600"),
        ("api_key", "reception:pw"),
    ]);
    let put = put(&module, b"CustomPresence:alice", &request);
    assert_eq!(put.status, Status::Ok, "{put:?}");
    let stored = module.store.get(b"alice").unwrap();
    assert_eq!(
        stored.stored(),
        b"dnd,,SW4gYSBtZWV0aW5nLCBiYWNrIGF0IDM=,et(600)"
    );
    assert_eq!(
        put.body.get("name"),
        Some(&Json::text(b"CustomPresence:alice"))
    );
    assert_eq!(
        put.body.get("message"),
        Some(&Json::text(b"In a meeting, back at 3"))
    );
    assert_eq!(put.body.get("expires"), Some(&Json::Time(1_600_000)));
    assert_eq!(
        put.body.get("changed_by"),
        Some(&Json::Str("ARI user reception".into()))
    );
    let get = get(&module, b"CustomPresence:alice", &Request::default());
    assert_eq!((get.status, &get.body), (Status::Ok, &put.body));
    assert_eq!(
        module.store.change_of(b"alice").map(|(_, s)| s),
        Some(Source::AriUser(b"reception".to_vec().into()))
    );
}

#[test]
fn a_json_body_gives_the_same_write_as_query_parameters() {
    let module = Module::default();
    let request = Request {
        body: vec![
            (b"state", Param::Text(b"away")),
            (b"subtype", Param::Text(b"lunch")),
            (b"expires", Param::Int(60)),
        ],
        ..by("board")
    };
    assert_eq!(
        put(&module, b"CustomPresence:bob", &request).status,
        Status::Ok
    );
    assert_eq!(
        module.store.get(b"bob").unwrap().stored(),
        b"away,lunch,,t(60)"
    );
}

#[test]
fn bad_fields_are_400_naming_the_field_and_change_nothing() {
    let module = Module::default();
    let body = |fields: Vec<(&'static [u8], Param<'static>)>| Request {
        body: fields,
        ..by("x")
    };
    for (request, want_field, want) in [
        (query(&[]), Some("state"), "state is required"),
        (
            query(&[("state", "bored")]),
            Some("state"),
            "unknown state 'bored'",
        ),
        (
            query(&[("state", "dnd"), ("expires", "0")]),
            Some("expires"),
            "from 1 to 31536000",
        ),
        (
            query(&[("state", "dnd"), ("expires", "1.5")]),
            Some("expires"),
            "not '1.5'",
        ),
        (
            body(vec![
                (b"expires", Param::Int(-5)),
                (b"state", Param::Text(b"dnd")),
            ]),
            Some("expires"),
            "not '-5'",
        ),
        (
            body(vec![(b"state", Param::Int(3))]),
            Some("state"),
            "must be a string",
        ),
        (
            body(vec![
                (b"state", Param::Text(b"away")),
                (b"expires", Param::Other("an array")),
            ]),
            Some("expires"),
            "not an array",
        ),
        (
            query(&[("state", "away"), ("mesage", "typo")]),
            None,
            "unknown parameter 'mesage'",
        ),
        (
            Request {
                body: vec![(b"state", Param::Text(b"dnd"))],
                ..query(&[("state", "away")])
            },
            Some("state"),
            "more than once",
        ),
        (
            Request {
                body_not_object: Some("an array"),
                ..by("x")
            },
            None,
            "must be a JSON object",
        ),
    ] {
        let response = put(&module, b"CustomPresence:carol", &request);
        assert_eq!(response.status, Status::BadRequest, "{request:?}");
        assert_eq!(field(&response), want_field, "{response:?}");
        assert!(message(&response).contains(want), "{response:?}");
        assert!(response.refusal.is_some());
    }
    assert!(module.store.is_empty());
    assert!(module.host.db.lock().unwrap().is_empty());
    assert_eq!(module.refusals.lock().unwrap().len(), 10);
}

#[test]
fn names_that_are_not_ours_are_409_and_no_names_400() {
    let module = Module::default();
    let set = query(&[("state", "away")]);
    for (name, status) in [
        (&b"PJSIP/100:x"[..], Status::Conflict),
        (b"Lamp:desk", Status::Conflict),
        (b"alice", Status::BadRequest),
        (b"CustomPresence:", Status::BadRequest),
        (b"CustomPresence:a,b", Status::BadRequest),
    ] {
        for response in [put(&module, name, &set), delete(&module, name, &by("x"))] {
            assert_eq!(response.status, status, "{name:?} {response:?}");
            assert_eq!(field(&response), Some("name"));
        }
    }
    assert!(module.host.db.lock().unwrap().is_empty());
}

#[test]
fn delete_is_204_then_404() {
    let module = Module::default();
    put(&module, b"CustomPresence:dave", &query(&[("state", "xa")]));
    let first = delete(&module, b"CustomPresence:dave", &by("x"));
    assert_eq!(
        (first.status, &first.body),
        (Status::NoContent, &Json::Null)
    );
    assert!(module.store.get(b"dave").is_none());
    let second = delete(&module, b"CustomPresence:dave", &by("x"));
    assert_eq!(second.status, Status::NotFound);
    assert!(message(&second).contains("no custom presence state CustomPresence:dave"));
    assert!(
        second.refusal.is_some(),
        "a delete of nothing is refused and logged"
    );
}

#[test]
fn get_answers_for_any_provider_and_404_for_unknown() {
    let module = Module::default();
    let lamp = get(&module, b"Lamp:desk", &Request::default());
    assert_eq!(lamp.status, Status::Ok);
    assert_eq!(lamp.body.get("state"), Some(&Json::Str("chat".into())));
    assert_eq!(lamp.body.get("last_changed"), None);
    for name in [&b"CustomPresence:nobody"[..], b"Nope:x", b"plain"] {
        let response = get(&module, name, &Request::default());
        assert_eq!(response.status, Status::NotFound, "{name:?}");
        assert_eq!(response.refusal, None, "a read of nothing is no bad input");
    }
    let empty = get(&module, b"CustomPresence:", &Request::default());
    assert_eq!(
        (empty.status, field(&empty)),
        (Status::BadRequest, Some("name"))
    );
    let extra = get(&module, b"Lamp:desk", &query(&[("state", "x")]));
    assert_eq!(extra.status, Status::BadRequest);
}

#[test]
fn list_holds_every_state_sorted_with_its_change() {
    let module = Module::default();
    for name in [&b"CustomPresence:zed"[..], b"CustomPresence:amy"] {
        put(&module, name, &query(&[("state", "available")]));
    }
    module
        .store
        .write(
            &module.host,
            c"CustomPresence:mid",
            c"away,\xff,",
            &Source::Cli,
        )
        .unwrap();
    let list = list(&module, &query(&[("api_key", "a:b")]));
    let Json::Array(items) = &list.body else {
        panic!("{list:?}")
    };
    let names: Vec<_> = items
        .iter()
        .filter_map(|i| i.get("name")?.as_str())
        .collect();
    assert_eq!(
        names,
        [
            "CustomPresence:amy",
            "CustomPresence:mid",
            "CustomPresence:zed"
        ]
    );
    assert_eq!(items[1].get("changed_by"), Some(&Json::Str("CLI".into())));
    assert_eq!(
        items[1].get("subtype"),
        Some(&Json::Str("\u{fffd}".into())),
        "lossy UTF-8"
    );
    assert_eq!(items[0].get("expires"), None);
}

#[test]
fn a_refused_astdb_write_is_500() {
    let module = Module {
        host: RecordingHost {
            fail: true,
            ..RecordingHost::default()
        },
        ..Module::default()
    };
    let response = put(&module, b"CustomPresence:erin", &query(&[("state", "dnd")]));
    assert_eq!(response.status, Status::ServerError);
    assert!(message(&response).contains("AstDB refused"), "{response:?}");
    assert!(module.store.get(b"erin").is_none());
}

#[test]
fn status_codes_and_reasons() {
    for (status, code, reason) in [
        (Status::Ok, 200, "OK"),
        (Status::NoContent, 204, "No Content"),
        (Status::BadRequest, 400, "Bad Request"),
        (Status::NotFound, 404, "Not Found"),
        (Status::Conflict, 409, "Conflict"),
        (Status::ServerError, 500, "Internal Server Error"),
    ] {
        assert_eq!((status.code(), status.reason()), (code, reason));
    }
}

#[test]
fn subscriptions_by_name_and_for_all() {
    let subs = Subscriptions::default();
    assert!(Subscriptions::accepts(b"CustomPresence:alice"));
    for bad in [&b""[..], b"alice", b":x", b"CustomPresence:"] {
        assert!(!Subscriptions::accepts(bad), "{bad:?}");
    }
    subs.subscribe(b"panel", Some(b"custompresence:alice"));
    subs.subscribe(b"wall", None);
    assert_eq!(subs.recipients(b"CustomPresence:alice").len(), 2);
    assert_eq!(
        subs.recipients(b"CustomPresence:bob"),
        vec![b"wall".to_vec()]
    );
    assert!(subs.is_subscribed(b"panel", Some(b"CustomPresence:alice")));
    assert!(!subs.is_subscribed(b"panel", Some(b"CustomPresence:bob")));
    // Asterisk unsubscribes a leaving app with no id: everything goes.
    assert!(subs.is_subscribed(b"panel", None));
    assert!(subs.unsubscribe(b"panel", None));
    assert!(subs.recipients(b"CustomPresence:alice") == vec![b"wall".to_vec()]);
    assert!(!subs.unsubscribe(b"panel", Some(b"CustomPresence:alice")));
    subs.subscribe(b"wall", Some(b"Lamp:desk"));
    assert!(subs.unsubscribe(b"wall", Some(b"Lamp:desk")));
    assert!(subs.is_subscribed(b"wall", None), "still subscribed to all");
    subs.forget(b"wall");
    assert!(subs.is_empty());
}

#[test]
fn subscribe_all_apps_are_recognised_by_their_three_all_ids() {
    let all = ["__AST_CHANNEL_ALL_TOPIC"];
    assert!(subscribes_all(
        &all,
        &["__AST_BRIDGE_ALL_TOPIC"],
        &["__AST_ENDPOINT_ALL_TOPIC"]
    ));
    assert!(!subscribes_all(&all, &[], &["__AST_ENDPOINT_ALL_TOPIC"]));
    assert!(!subscribes_all(&["1234.5"], &[], &[]));
}

#[test]
fn the_event_and_the_listing_entry() {
    let event = changed_event(Json::Null, 5);
    assert_eq!(event.get("type"), Some(&Json::Str(EVENT_TYPE.into())));
    assert_eq!(event.get("timestamp"), Some(&Json::Time(5)));
    let entry = amend_listing(&["/api-docs/asterisk.{format}"], true).unwrap();
    assert_eq!(entry.get("path"), Some(&Json::Str(LISTING_PATH.into())));
    assert_eq!(amend_listing(&[LISTING_PATH], true), None);
    assert_eq!(
        amend_listing(&[], false),
        None,
        "not listed when not installed"
    );
}
