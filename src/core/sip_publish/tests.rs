//! The service against a real store (with a recording host): RFC 3903's four requests, the
//! refusals, several publishers for one name, and the store's expiry handing over.

use super::*;
use crate::core::meta::Source;
use crate::core::state::PresenceState;
use crate::core::store::tests::RecordingHost;
use crate::core::store::{Expired, Store};
use std::ffi::CString;
use std::sync::atomic::Ordering;

/// The service's view of a store, as the FFI's is of the global one.
struct StoreTarget {
    store: Store,
    host: RecordingHost,
}

impl StoreTarget {
    fn new(now_ms: u64) -> StoreTarget {
        let host = RecordingHost::default();
        host.now.store(now_ms, Ordering::Relaxed);
        StoreTarget {
            store: Store::default(),
            host,
        }
    }

    fn advance_to(&self, now_ms: u64) {
        self.host.now.store(now_ms, Ordering::Relaxed);
    }

    fn value(&self, name: &str) -> String {
        self.stored(name.as_bytes())
            .map(|v| String::from_utf8(v).unwrap())
            .unwrap_or_default()
    }

    /// Runs the expiry thread's step: the service first, then the store.
    fn expire_due(&self, service: &Service) {
        let due = self.store.expiries().take_due(self.now_ms());
        for entry in &due {
            service.expiring(self, &entry.name);
        }
        self.store.expire_all(&self.host, due, &mut |_| ());
    }
}

impl Target for StoreTarget {
    fn now_ms(&self) -> u64 {
        self.host.now.load(Ordering::Relaxed)
    }
    fn set(&self, name: &[u8], value: &[u8], endpoint: &[u8]) -> Result<(), String> {
        let provider = CString::new([b"CustomPresence:", name].concat()).unwrap();
        let value = CString::new(value).unwrap();
        self.store
            .write(
                &self.host,
                &provider,
                &value,
                &Source::SipPublish(endpoint.into()),
            )
            .map_err(|e| e.to_string())
    }
    fn stored(&self, name: &[u8]) -> Option<Vec<u8>> {
        self.store.get(name).map(|p| p.stored().to_vec())
    }
    fn end(&self, name: &[u8], value: &[u8], endpoint: &[u8]) {
        if let Some(current) = self.store.get(name).filter(|p| p.stored() == value) {
            let source = Source::SipPublish(endpoint.into());
            assert_eq!(
                self.store.end_timed(&self.host, name, &current, &source),
                Expired::Reverted
            );
        }
    }
}

const AWAY: &str = r#"<presence xmlns="urn:ietf:params:xml:ns:pidf"
  xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model" xmlns:rpid="urn:ietf:params:xml:ns:pidf:rpid">
  <tuple id="t"><status><basic>open</basic></status></tuple>
  <dm:person id="p"><rpid:activities><rpid:away/></rpid:activities><dm:note>Lunch</dm:note></dm:person>
</presence>"#;

fn body(activity: &str, note: &str) -> String {
    AWAY.replace("rpid:away", &format!("rpid:{activity}"))
        .replace("Lunch", note)
}

fn enabled() -> Service {
    let service = Service::default();
    service.configure(&SipPublishConfig {
        enabled: true,
        ..SipPublishConfig::default()
    });
    service
}

fn request<'a>(endpoint: &'a str, body: Option<&'a str>) -> Request<'a> {
    Request {
        endpoint: endpoint.as_bytes(),
        event: b"presence",
        sip_uri: true,
        user: endpoint.as_bytes(),
        if_match: None,
        expires: Some(b"600"),
        content_type: body.map(|_| &b"application/pidf+xml"[..]),
        body: body.map(str::as_bytes),
        contact: b"<sip:phone@127.0.0.1:5061>",
    }
}

fn ok(response: Option<Response>) -> (String, u32) {
    let response = response.expect("a presence PUBLISH is answered");
    assert_eq!(response.status, 200, "{response:?}");
    (response.etag.unwrap(), response.expires.unwrap())
}

#[test]
fn initial_refresh_modify_remove_follow_rfc_3903() {
    let (service, target) = (enabled(), StoreTarget::new(1_000_000));
    // The untimed state written before any publication (as a dialplan write would be).
    target
        .set(b"alice", b"available,,At my desk", b"x")
        .unwrap();
    let away = body("away", "Lunch");
    let (etag, expires) = ok(service.handle(&target, &request("alice", Some(&away))));
    assert_eq!(expires, 600);
    assert_eq!(target.value("alice"), "away,away,Lunch,t(600)");
    assert_eq!(
        target.store.change_of(b"alice").unwrap().1.to_string(),
        "sip publish from endpoint alice"
    );
    // Refresh: no body, a new entity tag, the state extended.
    target.advance_to(1_300_000);
    let refresh = Request {
        if_match: Some(etag.as_bytes()),
        body: None,
        content_type: None,
        ..request("alice", None)
    };
    let (etag2, _) = ok(service.handle(&target, &refresh));
    assert_ne!(etag2, etag);
    assert_eq!(target.value("alice"), "away,away,Lunch,t(600)");
    // The old tag is gone.
    assert_eq!(service.handle(&target, &refresh).unwrap().status, 412);
    // Modify.
    let busy = body("busy", "In a call, back soon");
    let modify = Request {
        if_match: Some(etag2.as_bytes()),
        ..request("alice", Some(&busy))
    };
    let (etag3, _) = ok(service.handle(&target, &modify));
    assert_eq!(
        target.value("alice"),
        "dnd,YnVzeQ==,SW4gYSBjYWxsLCBiYWNrIHNvb24=,et(600)"
    );
    // Remove: back to what alice held before the first publication.
    let remove = Request {
        if_match: Some(etag3.as_bytes()),
        expires: Some(b"0"),
        body: None,
        content_type: None,
        ..request("alice", None)
    };
    let response = service.handle(&target, &remove).unwrap();
    assert_eq!((response.status, response.expires), (200, Some(0)));
    assert_eq!(target.value("alice"), "available,,At my desk");
    assert!(service.list(target.now_ms()).is_empty());
    let counts = service.stats.counts();
    assert_eq!(
        (
            counts.initial,
            counts.refreshed,
            counts.modified,
            counts.removed
        ),
        (1, 1, 1, 1)
    );
    assert_eq!(counts.refused_total(), 1);
}

#[test]
fn expiry_reverts_and_two_publishers_hand_over() {
    let (service, target) = (enabled(), StoreTarget::new(0));
    let (desk_body, soft_body) = (body("on-the-phone", "desk"), body("away", "soft"));
    let desk = Request {
        endpoint: b"alice-desk",
        ..request("alice", Some(&desk_body))
    };
    let mut config = service.config();
    config
        .grants
        .push((b"alice-desk".to_vec(), vec![b"alice".to_vec()]));
    service.configure(&config);
    ok(service.handle(&target, &desk));
    target.advance_to(10_000);
    let soft = Request {
        expires: Some(b"120"),
        ..request("alice", Some(&soft_body))
    };
    ok(service.handle(&target, &soft));
    assert_eq!(target.value("alice"), "away,away,soft,t(120)");
    let listed = service.list(target.now_ms());
    assert_eq!(listed.len(), 2);
    assert!(listed[0].winning && listed[0].publication.endpoint == b"alice");
    assert_eq!(listed[1].expires_in, 590);
    // The softphone's publication runs out: the desk phone's applies, still timed to its end.
    target.advance_to(130_000);
    target.expire_due(&service);
    assert_eq!(target.value("alice"), "dnd,on-the-phone,desk,t(470)");
    assert_eq!(service.stats.counts().expired, 1);
    // Then the desk phone's: nothing is left, so the name reverts (no state before: not_set).
    target.advance_to(600_000);
    target.expire_due(&service);
    assert_eq!(target.value("alice"), "not_set");
    assert!(service.list(target.now_ms()).is_empty());
}

#[test]
fn a_write_from_elsewhere_is_not_undone_by_a_removal() {
    let (service, target) = (enabled(), StoreTarget::new(0));
    let away = body("away", "x");
    let (etag, _) = ok(service.handle(&target, &request("bob", Some(&away))));
    target
        .set(b"bob", b"dnd,,set in the dialplan", b"")
        .unwrap();
    let remove = Request {
        if_match: Some(etag.as_bytes()),
        expires: Some(b"0"),
        body: None,
        ..request("bob", None)
    };
    ok(service.handle(&target, &remove));
    assert_eq!(target.value("bob"), "dnd,,set in the dialplan");
}

#[test]
fn refusals_change_nothing_and_say_why() {
    let (service, target) = (enabled(), StoreTarget::new(0));
    let away = body("away", "x");
    let status = |request: &Request<'_>| {
        let response = service.handle(&target, request).unwrap();
        assert!(response.log.is_some(), "{response:?}");
        response.status
    };
    // Another endpoint's name.
    let other = Request {
        user: b"carol",
        ..request("dave", Some(&away))
    };
    assert_eq!(status(&other), 403);
    let text = service.handle(&target, &other).unwrap().log.unwrap().1;
    assert!(
        text.contains("endpoint dave") && text.contains("CustomPresence:carol"),
        "{text}"
    );
    // Interval too brief, with Min-Expires.
    let brief = Request {
        expires: Some(b"10"),
        ..request("dave", Some(&away))
    };
    let response = service.handle(&target, &brief).unwrap();
    assert_eq!((response.status, response.min_expires), (423, Some(60)));
    let bad_expires = Request {
        expires: Some(b"soon"),
        ..request("dave", Some(&away))
    };
    assert_eq!(status(&bad_expires), 400);
    // Bodies.
    let garbage = request(
        "dave",
        Some("<presence xmlns=\"urn:ietf:params:xml:ns:pidf\"><tuple"),
    );
    assert_eq!(status(&garbage), 400);
    let big = "x".repeat(20_000);
    assert_eq!(status(&request("dave", Some(&big))), 413);
    let plain = Request {
        content_type: Some(b"text/plain"),
        ..request("dave", Some(&away))
    };
    let response = service.handle(&target, &plain).unwrap();
    assert_eq!(
        (response.status, response.accept),
        (415, Some(Format::ACCEPTED))
    );
    let nothing = r#"<presence xmlns="urn:ietf:params:xml:ns:pidf"/>"#;
    assert_eq!(status(&request("dave", Some(nothing))), 488);
    assert_eq!(status(&request("dave", None)), 400, "initial without body");
    let unknown = Request {
        if_match: Some(b"nope"),
        ..request("dave", None)
    };
    assert_eq!(status(&unknown), 412);
    let tel = Request {
        sip_uri: false,
        ..request("dave", Some(&away))
    };
    assert_eq!(status(&tel), 416);
    let comma = Request {
        user: b"a,b",
        endpoint: b"a,b",
        ..request("dave", Some(&away))
    };
    assert_eq!(status(&comma), 400);
    assert!(target.host.db.lock().unwrap().is_empty(), "nothing stored");
    // Another endpoint's entity tag is no entity tag of this one.
    let (etag, _) = ok(service.handle(&target, &request("erin", Some(&away))));
    let stolen = Request {
        if_match: Some(etag.as_bytes()),
        expires: Some(b"0"),
        ..request("dave", None)
    };
    assert_eq!(status(&stolen), 412);
    assert_eq!(target.value("erin"), "away,away,x,t(600)");
    let counts = service.stats.counts();
    assert_eq!(counts.accepted(), 1);
    assert_eq!(counts.refused_total(), 13);
}

#[test]
fn other_events_and_a_disabled_service_are_left_to_asterisk() {
    let target = StoreTarget::new(0);
    let away = body("away", "x");
    let service = enabled();
    let dialog = Request {
        event: b"dialog",
        ..request("f", Some(&away))
    };
    assert!(service.handle(&target, &dialog).is_none());
    assert!(is_presence_event(b" Presence ;id=3"));
    assert!(!is_presence_event(b"presence.winfo"));
    let off = Service::default();
    assert!(off.handle(&target, &request("f", Some(&away))).is_none());
    assert_eq!(
        service
            .handle(&target, &request("f", Some(&away)))
            .unwrap()
            .status,
        200
    );
    service.clear();
    assert!(service.list(0).is_empty());
    assert_eq!(
        target.store.get(b"f").unwrap().state(),
        PresenceState::Away,
        "the state stays, timed"
    );
}
