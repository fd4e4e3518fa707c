//! Reading `presencestate.conf` with Asterisk's config API, at load and at `module reload`
//! (and `ari.conf`'s `enabled`, see `ari`).

use super::bindings;
use super::boundary::c_bytes;
use crate::core::config::{self, Config};
use crate::core::setting::{Setting, FILE_NAME};
use std::ffi::{c_char, c_int, CString};

/// One option copied out of Asterisk's config: section, key, value, line.
pub(crate) type OwnedSetting = (Vec<u8>, Vec<u8>, Vec<u8>, u32);

/// Reads the file and logs what is wrong in it. A missing file means all defaults; a file
/// Asterisk cannot parse (it logs the line) means all defaults too. The caller hands each
/// component its settings (see `module::apply`), so nothing here is kept between calls.
pub(crate) fn read() -> Config {
    let owned = match load(FILE_NAME) {
        Loaded::Settings(owned) => owned,
        Loaded::Missing => return Config::default(),
        Loaded::Invalid => {
            warning!(
                "{FILE_NAME} could not be parsed (Asterisk logged the line above); using the \
                 defaults for every option"
            );
            return Config::default();
        }
    };
    let (config, warnings) = config::parse(&settings(&owned));
    for warning in warnings {
        warning!("{warning}");
    }
    config
}

/// What loading a config file gave.
pub(crate) enum Loaded {
    Settings(Vec<OwnedSetting>),
    Missing,
    /// Asterisk could not parse it (and logged why).
    Invalid,
}

/// The settings of `owned` as the core reads them.
pub(crate) fn settings(owned: &[OwnedSetting]) -> Vec<Setting<'_>> {
    owned
        .iter()
        .map(|(section, key, value, line)| Setting {
            section,
            key,
            value,
            line: *line,
        })
        .collect()
}

/// Every option of config file `file` (in Asterisk's configuration directory), copied out.
pub(crate) fn load(file: &str) -> Loaded {
    let Ok(file) = CString::new(file) else {
        return Loaded::Missing;
    };
    let mut status: c_int = 0;
    // SAFETY: file is NUL-terminated and status a valid out-pointer, both only used during the
    // call; the config returned (or NULL) is ours to destroy, below.
    let cfg = unsafe { bindings::fprs_shim_config_load(file.as_ptr(), &mut status) };
    if cfg.is_null() {
        return if status == 2 {
            Loaded::Invalid
        } else {
            Loaded::Missing
        };
    }
    let mut owned: Vec<OwnedSetting> = Vec::new();
    let mut category: *mut c_char = std::ptr::null_mut();
    loop {
        // SAFETY: cfg is a live config; category is NULL or the name it returned last time.
        category = unsafe { bindings::ast_category_browse(cfg, category) };
        if category.is_null() {
            break;
        }
        // SAFETY: category is a NUL-terminated name owned by cfg, alive until it is destroyed.
        let section = unsafe { c_bytes(category) }.unwrap_or_default();
        // SAFETY: cfg is live and category one of its category names.
        let mut var = unsafe { bindings::ast_variable_browse(cfg, category) };
        while !var.is_null() {
            let (mut name, mut value, mut line): (*const c_char, *const c_char, c_int) =
                (std::ptr::null(), std::ptr::null(), 0);
            // SAFETY: var is a variable of cfg; the out-pointers are valid for the call.
            let next =
                unsafe { bindings::fprs_shim_variable(var, &mut name, &mut value, &mut line) };
            // SAFETY: name and value are NUL-terminated strings owned by cfg (or NULL); they
            // are copied here, before cfg is destroyed.
            let (name, value) = unsafe { (c_bytes(name), c_bytes(value)) };
            owned.push((
                section.to_vec(),
                name.unwrap_or_default().to_vec(),
                value.unwrap_or_default().to_vec(),
                u32::try_from(line).unwrap_or(0),
            ));
            var = next;
        }
    }
    // SAFETY: cfg came from ast_config_load and nothing of it is used after this.
    unsafe { bindings::ast_config_destroy(cfg) };
    Loaded::Settings(owned)
}
