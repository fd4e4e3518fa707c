//! SIP PUBLISH in a running Asterisk: the PJSIP service's callback (src/shim/sip.c hands each
//! PUBLISH with Event: presence here), its registration with res_pjsip when `[sip_publish]`
//! says so, the store as the publications' [`Target`], `presencestate publications`.

use super::bindings::{self, fprs_sip_request, fprs_sip_response, RESULT_FAILURE};
use super::bindings::{RESULT_SHOWUSAGE, RESULT_SUCCESS};
use super::boundary::{c_str, guard};
use super::host::{self, Asterisk, STORE};
use crate::core::meta::Source;
use crate::core::sip_publish::{self, LogLevel, Request, Service, SipPublishConfig, Target};
use crate::core::store::{Expired, Host};
use crate::core::{shown, PROVIDER_PREFIX};
use std::ffi::{c_char, c_int, CStr, CString};
use std::sync::{LazyLock, Mutex, PoisonError};

/// Every publication while the module is loaded.
static SERVICE: LazyLock<Service> = LazyLock::new(Service::default);

/// The `Accept` header of a 415, as the core lists the formats.
const ACCEPT: &CStr = c"application/pidf+xml, application/xpidf+xml";

/// Whether the module is running (between `start` and `stop`) and the service registered.
#[derive(Default)]
struct Running {
    started: bool,
    registered: bool,
}

static RUNNING: Mutex<Running> = Mutex::new(Running {
    started: false,
    registered: false,
});

/// The store, as the publications see it.
struct Presence;

impl Target for Presence {
    fn now_ms(&self) -> u64 {
        Asterisk.now_ms()
    }

    fn set(&self, name: &[u8], value: &[u8], endpoint: &[u8]) -> Result<(), String> {
        let provider = CString::new([PROVIDER_PREFIX.as_bytes(), name].concat())
            .map_err(|_| "the name holds a NUL byte".to_string())?;
        let value = CString::new(value).map_err(|_| "the value holds a NUL byte".to_string())?;
        host::write(&provider, &value, &Source::SipPublish(endpoint.into()))
            .map_err(|error| error.to_string())
    }

    fn stored(&self, name: &[u8]) -> Option<Vec<u8>> {
        STORE.get(name).map(|p| p.stored().to_vec())
    }

    fn end(&self, name: &[u8], value: &[u8], endpoint: &[u8]) {
        let Some(current) = STORE.get(name).filter(|p| p.stored() == value) else {
            return;
        };
        let source = Source::SipPublish(endpoint.into());
        if STORE.end_timed(&Asterisk, name, &current, &source) == Expired::PersistFailed {
            warning!(
                "{PROVIDER_PREFIX}{}: its last SIP publication was removed, but AstDB refused \
                 the revert; the state stays until its expiry",
                shown(name)
            );
        }
    }
}

/// `len` bytes at `ptr` (NULL: empty).
///
/// # Safety
/// `ptr` is NULL or valid for `len` bytes for `'a`.
unsafe fn bytes<'a>(ptr: *const c_char, len: usize) -> &'a [u8] {
    if ptr.is_null() || len == 0 {
        &[]
    } else {
        // SAFETY: as the caller guarantees.
        unsafe { std::slice::from_raw_parts(ptr.cast(), len) }
    }
}

#[no_mangle]
pub extern "C" fn fprs_sip_publish(
    req: *const fprs_sip_request,
    resp: *mut fprs_sip_response,
) -> c_int {
    if req.is_null() || resp.is_null() {
        return 0;
    }
    // SAFETY: resp points to the shim's response on its stack, ours for the call. Set before
    // the body runs, so a panic answers 500.
    unsafe { (*resp).status = 500 };
    guard("SIP PUBLISH", 1, || {
        // SAFETY: req is the shim's request, alive for the call; each pointer is NULL or valid
        // for its length (ranges of pjsip's message, which outlives the call).
        let request = unsafe {
            let r = &*req;
            Request {
                endpoint: bytes(r.endpoint, r.endpoint_len),
                event: bytes(r.event, r.event_len),
                sip_uri: r.sip_uri != 0,
                user: bytes(r.user, r.user_len),
                if_match: (r.has_if_match != 0).then(|| bytes(r.if_match, r.if_match_len)),
                expires: (r.has_expires != 0).then(|| bytes(r.expires, r.expires_len)),
                content_type: (!r.content_type.is_null())
                    .then(|| bytes(r.content_type, r.content_type_len)),
                body: (r.has_body != 0).then(|| bytes(r.body, r.body_len)),
                contact: bytes(r.contact, r.contact_len),
            }
        };
        let Some(answer) = SERVICE.handle(&Presence, &request) else {
            return 0;
        };
        match &answer.log {
            Some((LogLevel::Warning, text)) => warning!("{text}"),
            Some((LogLevel::Notice, text)) => notice!("{text}"),
            None => {}
        }
        // SAFETY: as above; the etag buffer is written within its size, NUL-terminated.
        let resp = unsafe { &mut *resp };
        resp.status = c_int::from(answer.status);
        resp.expires = answer
            .expires
            .map_or(-1, |e| e.min(i32::MAX as u32) as c_int);
        resp.min_expires = answer
            .min_expires
            .map_or(-1, |e| e.min(i32::MAX as u32) as c_int);
        resp.accept = answer.accept.map_or(std::ptr::null(), |_| ACCEPT.as_ptr());
        let etag = answer.etag.as_deref().unwrap_or_default().as_bytes();
        let n = etag.len().min(resp.etag.len() - 1);
        for (slot, &byte) in resp.etag.iter_mut().zip(&etag[..n]) {
            *slot = byte as c_char;
        }
        resp.etag[n] = 0;
        1
    })
}

/// Whether res_pjsip's functions were found at load (looked up then, while Asterisk counts
/// us as res_pjsip's user: `optional_modules`).
static HAVE_SIP: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

fn have_sip() -> bool {
    HAVE_SIP.load(std::sync::atomic::Ordering::Relaxed)
}

/// Registers or unregisters the service so that it runs exactly when the module runs and
/// `[sip_publish] enabled = yes`.
fn settle(running: &mut Running, enabled: bool) {
    let wanted = running.started && enabled;
    if wanted && !running.registered {
        if !have_sip() {
            notice!(
                "[sip_publish] enabled = yes, but res_pjsip was not running when this module \
                 loaded: SIP PUBLISH does not set presence. Load res_pjsip, then unload and \
                 load this module."
            );
            return;
        }
        // SAFETY: no arguments; the shim registers its own static pjsip module.
        let problem = unsafe { bindings::fprs_shim_sip_register() };
        if problem.is_null() {
            running.registered = true;
            notice!("SIP PUBLISH (Event: presence) from every endpoint now sets its presence.");
        } else {
            // SAFETY: the shim returns a static NUL-terminated string.
            let problem = unsafe { c_str(problem) }.to_string_lossy();
            error!(
                "SIP PUBLISH stays off: {problem}. Build the module against pjproject headers \
                 made by scripts/pjproject-headers for this very Asterisk."
            );
        }
    } else if !wanted && running.registered {
        // SAFETY: no arguments; unregisters the module registered above, and returns once no
        // callback of it runs.
        unsafe { bindings::fprs_shim_sip_unregister() };
        running.registered = false;
        SERVICE.clear();
    }
}

fn running() -> std::sync::MutexGuard<'static, Running> {
    RUNNING.lock().unwrap_or_else(PoisonError::into_inner)
}

/// `[sip_publish]` from presencestate.conf, at load and at reload.
pub(crate) fn configure(config: &SipPublishConfig) {
    SERVICE.configure(config);
    settle(&mut running(), config.enabled);
}

/// The module is running: the service is registered if configured.
pub(crate) fn start() -> bool {
    SERVICE.stats.reset();
    // SAFETY: no arguments; looks up res_pjsip's functions by name in the global scope.
    let found = unsafe { bindings::fprs_shim_have_sip() != 0 };
    HAVE_SIP.store(found, std::sync::atomic::Ordering::Relaxed);
    let mut running = running();
    running.started = true;
    settle(&mut running, SERVICE.config().enabled);
    true
}

/// Unload: the service is unregistered (no callback runs once this returns) and the
/// publications are forgotten; the states they set stay, timed, and revert at their expiry.
pub(crate) fn stop() {
    let mut running = running();
    running.started = false;
    settle(&mut running, false);
    SERVICE.clear();
}

/// At unload, once stopped: the settings' memory is freed (see `module::release`).
pub(crate) fn release() {
    SERVICE.release();
}

/// The expiry thread is about to revert `name`: another publication of it may take over.
pub(crate) fn expiring(name: &[u8]) {
    SERVICE.expiring(&Presence, name);
}

/// The SIP PUBLISH lines of `presencestate stats`.
pub(crate) fn stats_text() -> String {
    sip_publish::stats::render(&SERVICE.stats.counts())
}

#[no_mangle]
pub extern "C" fn fprs_cli_publications(
    fd: c_int,
    argc: c_int,
    _argv: *const *const c_char,
) -> c_int {
    guard(
        "presencestate publications",
        RESULT_FAILURE as c_int,
        || {
            if argc != 2 {
                return RESULT_SHOWUSAGE as c_int;
            }
            let mut text = String::new();
            if !running().registered {
                text +=
                    "SIP PUBLISH is off ([sip_publish] enabled = no, or res_pjsip not loaded)\n";
            }
            text += &sip_publish::render_list(&SERVICE.list(Asterisk.now_ms()));
            // SAFETY: text is valid for its length and only read during the call.
            unsafe { bindings::fprs_shim_cli_print(fd, text.as_ptr().cast(), text.len()) };
            RESULT_SUCCESS as c_int
        },
    )
}
