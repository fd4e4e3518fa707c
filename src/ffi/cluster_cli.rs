//! `presencestate cluster`, and the `[cluster]` section of presencestate.conf.
//!
//! The section is read here with a minimal loader until the module's configuration loader
//! (presencestate.conf, all sections) lands; then only `core::cluster::config::parse` stays.

use super::bindings::{self, RESULT_FAILURE, RESULT_SHOWUSAGE, RESULT_SUCCESS};
use super::boundary::{c_bytes, guard};
use crate::core::cluster::config::{self, ClusterConfig};
use std::ffi::{c_char, c_int, c_void};

const CONFIG_FILE: &std::ffi::CStr = c"presencestate.conf";

#[no_mangle]
pub extern "C" fn fprs_cli_cluster(fd: c_int, argc: c_int, _argv: *const *const c_char) -> c_int {
    guard("presencestate cluster", RESULT_FAILURE as c_int, || {
        if argc != 2 {
            return RESULT_SHOWUSAGE as c_int;
        }
        let text = super::cluster::status_text();
        // SAFETY: text is valid for its length and only read during the call.
        unsafe { bindings::fprs_shim_cli_print(fd, text.as_ptr().cast(), text.len()) };
        RESULT_SUCCESS as c_int
    })
}

type Items = Vec<(String, String, u32)>;

extern "C" fn collect(data: *mut c_void, name: *const c_char, value: *const c_char, lineno: c_int) {
    guard("reading presencestate.conf", (), || {
        // SAFETY: data is the &mut Items `read` passes, alive and unaliased during the call.
        let items = unsafe { &mut *data.cast::<Items>() };
        // SAFETY: Asterisk's NUL-terminated variable name and value, alive during the call.
        let (name, value) = unsafe { (c_bytes(name), c_bytes(value)) };
        items.push((
            String::from_utf8_lossy(name.unwrap_or_default()).into_owned(),
            String::from_utf8_lossy(value.unwrap_or_default()).into_owned(),
            u32::try_from(lineno).unwrap_or(0),
        ));
    })
}

/// `[cluster]` of presencestate.conf; warnings go to the log. A missing file is all defaults.
pub(crate) fn read() -> ClusterConfig {
    let mut items: Items = Vec::new();
    // SAFETY: NUL-terminated literals; collect matches the callback type and gets &mut items,
    // which outlives the call.
    let status = unsafe {
        bindings::fprs_shim_config_section(
            CONFIG_FILE.as_ptr(),
            c"cluster".as_ptr(),
            Some(collect),
            (&mut items as *mut Items).cast(),
        )
    };
    if status != 0 {
        warning!("presencestate.conf does not parse; the presence cluster stays off");
        return ClusterConfig::default();
    }
    let borrowed: Vec<(&str, &str, u32)> = items
        .iter()
        .map(|(k, v, l)| (k.as_str(), v.as_str(), *l))
        .collect();
    let (config, warnings) = config::parse(&borrowed);
    for text in warnings {
        warning!("{text}");
    }
    config
}
