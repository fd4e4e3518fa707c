//! Load, unload and reload: registration with Asterisk in a fixed order, undone in reverse.

use super::bindings::{self, ast_module_load_result as LoadResult};
use super::boundary::guard;
use super::config;
use super::devstate;
use super::host::{self, reload_from_astdb, Asterisk, STORE};
use crate::core::config::Config;
use crate::core::device_state::Remapped;
use crate::core::PROVIDER_LABEL;
use std::ffi::{c_int, CStr};
use std::time::{Duration, Instant};

const LABEL: &CStr = c"CustomPresence";

/// Which build this is (build.rs): where an admin looks after an upgrade, the NOTICE at load,
/// `presencestate stats` and (with the same words) `module show`'s description.
pub(crate) const IDENTITY: &str = concat!(
    "func_presencestate_rs ",
    env!("CARGO_PKG_VERSION"),
    ", build ",
    env!("FPRS_BUILD_ID")
);

/// One registration with Asterisk and its undo.
struct Registration {
    what: &'static str,
    register: fn() -> bool,
    unregister: fn(),
}

fn register_provider() -> bool {
    debug_assert_eq!(LABEL.to_bytes(), PROVIDER_LABEL.as_bytes());
    // SAFETY: LABEL is NUL-terminated (the core copies it); fprs_provider has the callback's
    // signature and stays loaded until the provider is deleted at unload.
    unsafe {
        bindings::ast_presence_state_prov_add(LABEL.as_ptr(), Some(super::function::fprs_provider))
            == 0
    }
}

fn unregister_provider() {
    // SAFETY: LABEL is NUL-terminated. The core deletes under its provider-list write lock, so
    // no provider call is running once this returns.
    unsafe { bindings::ast_presence_state_prov_del(LABEL.as_ptr()) };
}

// The shim registers and unregisters its static structs, whose callbacks live in this module.
fn register_function() -> bool {
    // SAFETY: no arguments; the shim passes its own static ast_custom_function.
    unsafe { bindings::fprs_shim_register_function() == 0 }
}

fn unregister_function() {
    // SAFETY: as above. Calls already running go on; unload waits for them (drain).
    unsafe { bindings::fprs_shim_unregister_function() };
}

fn register_cli() -> bool {
    // SAFETY: no arguments; the shim passes its own static CLI entries.
    unsafe { bindings::fprs_shim_register_cli() == 0 }
}

fn unregister_cli() {
    // SAFETY: as above. Asterisk waits for running commands before returning.
    unsafe { bindings::fprs_shim_unregister_cli() };
}

fn register_manager() -> bool {
    // SAFETY: no arguments; the shim registers its own two actions.
    unsafe { bindings::fprs_shim_register_manager() == 0 }
}

fn unregister_manager() {
    // SAFETY: as above. Asterisk waits for running actions before returning.
    unsafe { bindings::fprs_shim_unregister_manager() };
}

fn register_tests() -> bool {
    // SAFETY: no arguments; the shim passes its own static test definitions.
    unsafe { bindings::fprs_shim_register_tests() };
    true
}

fn unregister_tests() {
    // SAFETY: as above.
    unsafe { bindings::fprs_shim_unregister_tests() };
}

fn start_expiry_thread() -> bool {
    super::expiry::start()
}

fn stop_expiry_thread() {
    super::expiry::stop();
}

/// In registration order; unload undoes them in reverse (so the SIP PUBLISH service, which
/// writes through everything else, goes first, then the expiry thread, which calls into
/// everything else, is stopped and joined).
const REGISTRATIONS: &[Registration] = &[
    Registration {
        what: "the CustomPresence presence provider",
        register: register_provider,
        unregister: unregister_provider,
    },
    Registration {
        what: "the CustomPresence device-state provider ([device_state] enabled = yes)",
        register: devstate::register_provider,
        unregister: devstate::unregister_provider,
    },
    Registration {
        what: "the PRESENCE_STATE function",
        register: register_function,
        unregister: unregister_function,
    },
    Registration {
        what: "the presencestate CLI commands",
        register: register_cli,
        unregister: unregister_cli,
    },
    Registration {
        what: "the AMI actions PresenceStateSet and PresenceStateDelete",
        register: register_manager,
        unregister: unregister_manager,
    },
    Registration {
        what: "the test-framework tests",
        register: register_tests,
        unregister: unregister_tests,
    },
    Registration {
        what: "ARI's /ari/presenceStates, its events and the presence board",
        register: super::ari::register,
        unregister: super::ari::unregister,
    },
    Registration {
        what: "the presence expiry thread",
        register: start_expiry_thread,
        unregister: stop_expiry_thread,
    },
    #[cfg(feature = "sip")]
    Registration {
        what: "the SIP PUBLISH service",
        register: super::sip::start,
        unregister: super::sip::stop,
    },
];

/// Whether PRESENCE_STATE or the stock module is already there. The presence core offers no
/// lookup of providers, so a CustomPresence provider is recognised by its module.
fn someone_else_provides_presence() -> bool {
    // SAFETY: NUL-terminated literals, only read during the calls.
    unsafe {
        !bindings::ast_custom_function_find(c"PRESENCE_STATE".as_ptr()).is_null()
            || bindings::ast_module_check(c"func_presencestate.so".as_ptr()) != 0
    }
}

/// Hands each part of the module its settings from presencestate.conf; returns the presence
/// states the `[device_state]` table now maps differently.
fn apply(config: &Config) -> Remapped {
    #[cfg(feature = "cluster")]
    super::cluster::configure(&config.cluster);
    #[cfg(not(feature = "cluster"))]
    if config.cluster.enabled {
        warning!("[cluster] enabled = yes, but this module was built without the cluster feature");
    }
    STORE.set_record_changes(config.general.record_changes);
    host::set_log_changes(config.general.log_changes);
    STORE.set_suppress_identical(config.general.suppress_identical);
    #[cfg(feature = "sip")]
    super::sip::configure(&config.sip_publish);
    #[cfg(not(feature = "sip"))]
    if config.sip_publish.enabled {
        warning!("[sip_publish] enabled = yes, but this module was built without the sip feature");
    }
    STORE.set_device_states(&config.device_state.map)
}

#[no_mangle]
pub extern "C" fn fprs_load() -> LoadResult {
    guard("load", LoadResult::AST_MODULE_LOAD_DECLINE, || {
        if someone_else_provides_presence() {
            warning!(
                "PRESENCE_STATE or the CustomPresence provider is already registered (is \
                 func_presencestate.so loaded?); not loading. Add 'noload => func_presencestate.so' \
                 to modules.conf to use func_presencestate_rs."
            );
            return LoadResult::AST_MODULE_LOAD_DECLINE;
        }
        STORE.stats.reset();
        let config = config::read();
        apply(&config);
        devstate::set_enabled(config.device_state.enabled);
        // States first, so no caller sees an empty store once the function is registered; the
        // announcements last, once the provider is there to answer for not_set.
        let changed = reload_from_astdb(false);
        for (done, registration) in REGISTRATIONS.iter().enumerate() {
            if !(registration.register)() {
                error!("Could not register {}; not loading.", registration.what);
                REGISTRATIONS[..done]
                    .iter()
                    .rev()
                    .for_each(|r| (r.unregister)());
                STORE.clear();
                devstate::set_enabled(false);
                return LoadResult::AST_MODULE_LOAD_DECLINE;
            }
        }
        STORE.announce(&Asterisk, &changed);
        #[cfg(feature = "cluster")]
        super::cluster::resume();
        notice!("{IDENTITY} loaded ({} custom presence states)", STORE.len());
        LoadResult::AST_MODULE_LOAD_SUCCESS
    })
}

/// How often unload says it is still waiting for calls to leave the module.
const DRAIN_WARNING_EVERY: Duration = Duration::from_secs(5);
/// How long unload waits for channels attached to the module once no call is inside it (a
/// call that returned is detached within microseconds; `module unload -h` may leave others).
const ATTACHED_GRACE: Duration = Duration::from_secs(2);

/// Once every front door is closed: waits until no call is inside the module, and (up to
/// ATTACHED_GRACE) until no channel is attached to it. A dialplan call that found
/// PRESENCE_STATE before it was unregistered still runs, and Asterisk hangs up, once unload
/// returns, every channel still attached: the writer's dialplan would end mid-loop. A call
/// stuck inside is named every 5 s.
fn drain() {
    let started = Instant::now();
    let mut warn_at = DRAIN_WARNING_EVERY;
    loop {
        // This unload is one of the running entry points.
        let inside = super::boundary::in_flight().saturating_sub(1);
        // SAFETY: no arguments; the shim reads the loader's use count of this module.
        let attached = unsafe { bindings::fprs_shim_usecount() };
        if inside == 0 && (attached <= 0 || started.elapsed() >= ATTACHED_GRACE) {
            if attached > 0 {
                warning!(
                    "Unloading with {attached} users of the module left (channels, AMI \
                     actions); Asterisk hangs up the channels among them"
                );
            }
            return;
        }
        if started.elapsed() >= warn_at {
            warning!(
                "Unloading: still waiting for {inside} calls inside the module and {attached} \
                 users of it (channels, AMI actions) to finish"
            );
            warn_at += DRAIN_WARNING_EVERY;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Frees what the module's statics hold on the heap: dlclose unmaps them, and that memory
/// would be lost with them. The next load starts from fresh statics and reads the file again.
fn release() {
    #[cfg(feature = "cluster")]
    super::cluster::release();
    #[cfg(feature = "sip")]
    super::sip::release();
}

#[no_mangle]
pub extern "C" fn fprs_unload() -> c_int {
    guard("unload", -1, || {
        // The cluster thread writes to the store: stopped (and joined) first.
        #[cfg(feature = "cluster")]
        super::cluster::halt();
        // Front doors first, then the calls already through them, then what they use.
        REGISTRATIONS.iter().rev().for_each(|r| (r.unregister)());
        drain();
        STORE.clear();
        release();
        devstate::set_enabled(false);
        0
    })
}

/// `module reload`: re-reads presencestate.conf, picks up AstDB edits (`database put
/// CustomPresence ...`) and announces what changed.
#[no_mangle]
pub extern "C" fn fprs_reload() -> c_int {
    guard("reload", -1, || {
        let config = config::read();
        let remapped = apply(&config);
        let changed = reload_from_astdb(true);
        STORE.announce(&Asterisk, &changed);
        if devstate::follow(config.device_state.enabled) {
            notice!(
                "[device_state] enabled = {}: announced the device state of every name.",
                if config.device_state.enabled {
                    "yes"
                } else {
                    "no"
                }
            );
        } else if devstate::enabled() && !remapped.is_empty() {
            // Hints and BLF keys show the new mapping at once, not at each name's next change.
            let announced = STORE.announce_device_states(&Asterisk, remapped);
            notice!(
                "The [device_state] table changed; announced the device state of the {announced} \
                 names it maps differently."
            );
        }
        notice!(
            "Reloaded {} custom presence states from AstDB; {} changed.",
            STORE.len(),
            changed.len()
        );
        0
    })
}
