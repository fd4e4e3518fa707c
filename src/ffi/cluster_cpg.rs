//! The Corosync CPG client: libcpg opened at run time, one connection, its two callbacks.
//!
//! libcpg.so.4 is opened with dlopen the first time the cluster starts (never for
//! `enabled = no`), with RTLD_NODELETE: libqb, which it brings, keeps process-wide state and
//! must not be unmapped at `module unload`. The types come from `corosync/cpg.h` (bindgen, see
//! build.rs); the function signatures below are cpg.h's, unchanged since corosync 2.0.
//! Callbacks run on the dispatch thread inside `cpg_dispatch`; each catches panics
//! ([`guard`]) and never calls `cpg_initialize`/`cpg_finalize`.

#[allow(
    non_upper_case_globals,
    non_camel_case_types,
    non_snake_case,
    dead_code,
    clippy::all
)]
mod raw {
    include!(concat!(env!("OUT_DIR"), "/cpg.rs"));
}

use super::boundary::guard;
use crate::core::cluster::resync::Member;
use raw::{cpg_address, cpg_handle_t, cpg_model_data_t, cpg_model_v1_data_t, cpg_name};
use raw::{cpg_guarantee_t, cpg_model_t, cs_dispatch_flags_t, cs_error_t};
use std::ffi::{c_char, c_int, c_uint, c_void, CStr};
use std::io::IoSlice;
use std::sync::OnceLock;

type Status = cs_error_t::Type;
type ModelInitialize = unsafe extern "C" fn(
    *mut cpg_handle_t,
    cpg_model_t::Type,
    *mut cpg_model_data_t,
    *mut c_void,
) -> Status;
type Finalize = unsafe extern "C" fn(cpg_handle_t) -> Status;
type FdGet = unsafe extern "C" fn(cpg_handle_t, *mut c_int) -> Status;
type Dispatch = unsafe extern "C" fn(cpg_handle_t, cs_dispatch_flags_t::Type) -> Status;
type Join = unsafe extern "C" fn(cpg_handle_t, *const cpg_name) -> Status;
type McastJoined =
    unsafe extern "C" fn(cpg_handle_t, cpg_guarantee_t::Type, *const IoSlice<'_>, c_uint) -> Status;
type LocalGet = unsafe extern "C" fn(cpg_handle_t, *mut c_uint) -> Status;

extern "C" {
    fn dlopen(filename: *const c_char, flags: c_int) -> *mut c_void;
    fn dlsym(handle: *mut c_void, symbol: *const c_char) -> *mut c_void;
    fn dlerror() -> *const c_char;
}
const RTLD_NOW: c_int = 2;
const RTLD_NODELETE: c_int = 0x1000;
const LIBCPG: &CStr = c"libcpg.so.4";

/// libcpg's entry points.
struct Library {
    model_initialize: ModelInitialize,
    finalize: Finalize,
    fd_get: FdGet,
    dispatch: Dispatch,
    join: Join,
    mcast_joined: McastJoined,
    local_get: LocalGet,
}

static LIBRARY: OnceLock<Result<Library, String>> = OnceLock::new();

fn dl_error() -> String {
    // SAFETY: dlerror returns NULL or a NUL-terminated message valid until the next dl call
    // on this thread; it is copied at once.
    let text = unsafe { dlerror() };
    if text.is_null() {
        "unknown error".into()
    } else {
        // SAFETY: non-NULL, NUL-terminated, as above.
        unsafe { CStr::from_ptr(text) }
            .to_string_lossy()
            .into_owned()
    }
}

fn open_library() -> Result<Library, String> {
    // SAFETY: a NUL-terminated literal; the flags are glibc's.
    let handle = unsafe { dlopen(LIBCPG.as_ptr(), RTLD_NOW | RTLD_NODELETE) };
    if handle.is_null() {
        return Err(format!(
            "cannot open {} ({}); install libcpg4 (corosync's client library)",
            LIBCPG.to_string_lossy(),
            dl_error()
        ));
    }
    let symbol = |name: &CStr| -> Result<*mut c_void, String> {
        // SAFETY: handle is a live dlopen handle (never closed: RTLD_NODELETE and no
        // dlclose); name is NUL-terminated.
        let address = unsafe { dlsym(handle, name.as_ptr()) };
        if address.is_null() {
            Err(format!(
                "{} lacks {}",
                LIBCPG.to_string_lossy(),
                name.to_string_lossy()
            ))
        } else {
            Ok(address)
        }
    };
    // SAFETY: each symbol is the libcpg function of that name, whose C signature (cpg.h) the
    // type it is transmuted to repeats; the library stays mapped for the process's life.
    unsafe {
        Ok(Library {
            model_initialize: std::mem::transmute::<*mut c_void, ModelInitialize>(symbol(
                c"cpg_model_initialize",
            )?),
            finalize: std::mem::transmute::<*mut c_void, Finalize>(symbol(c"cpg_finalize")?),
            fd_get: std::mem::transmute::<*mut c_void, FdGet>(symbol(c"cpg_fd_get")?),
            dispatch: std::mem::transmute::<*mut c_void, Dispatch>(symbol(c"cpg_dispatch")?),
            join: std::mem::transmute::<*mut c_void, Join>(symbol(c"cpg_join")?),
            mcast_joined: std::mem::transmute::<*mut c_void, McastJoined>(symbol(
                c"cpg_mcast_joined",
            )?),
            local_get: std::mem::transmute::<*mut c_void, LocalGet>(symbol(c"cpg_local_get")?),
        })
    }
}

fn library() -> Result<&'static Library, String> {
    LIBRARY
        .get_or_init(open_library)
        .as_ref()
        .map_err(Clone::clone)
}

/// What the dispatch thread does with what CPG delivers (called inside `dispatch`).
pub(crate) trait Events {
    fn delivered(&self, from: Member, message: &[u8]);
    fn membership(&self, members: &[Member], left: &[Member], joined: &[Member]);
}

thread_local! {
    /// The events of the dispatch running on this thread (set only during `dispatch`).
    static EVENTS: std::cell::Cell<Option<*const (dyn Events + 'static)>> =
        const { std::cell::Cell::new(None) };
}

fn with_events(f: impl FnOnce(&dyn Events)) {
    if let Some(events) = EVENTS.with(|e| e.get()) {
        // SAFETY: set by `Connection::dispatch` from a reference that outlives the call, and
        // cleared before it returns; callbacks run only inside that call, on this thread.
        f(unsafe { &*events })
    }
}

fn members(list: *const cpg_address, count: usize) -> Vec<Member> {
    if list.is_null() {
        return Vec::new();
    }
    // SAFETY: corosync passes `count` addresses at `list`, valid during the callback.
    unsafe { std::slice::from_raw_parts(list, count) }
        .iter()
        .map(|a| Member {
            node: a.nodeid,
            pid: a.pid,
        })
        .collect()
}

extern "C" fn on_deliver(
    _handle: cpg_handle_t,
    _group: *const cpg_name,
    nodeid: u32,
    pid: u32,
    msg: *mut c_void,
    msg_len: usize,
) {
    guard("cluster message", (), || {
        let bytes: &[u8] = if msg.is_null() {
            &[]
        } else {
            // SAFETY: corosync passes msg_len bytes at msg, valid during the callback.
            unsafe { std::slice::from_raw_parts(msg.cast::<u8>(), msg_len) }
        };
        with_events(|e| e.delivered(Member { node: nodeid, pid }, bytes));
    })
}

extern "C" fn on_confchg(
    _handle: cpg_handle_t,
    _group: *const cpg_name,
    member_list: *const cpg_address,
    member_count: usize,
    left_list: *const cpg_address,
    left_count: usize,
    joined_list: *const cpg_address,
    joined_count: usize,
) {
    guard("cluster membership change", (), || {
        let (all, left, joined) = (
            members(member_list, member_count),
            members(left_list, left_count),
            members(joined_list, joined_count),
        );
        with_events(|e| e.membership(&all, &left, &joined));
    })
}

/// Why a send did not happen.
pub(crate) enum SendError {
    /// Corosync's queue is full (CS_ERR_TRY_AGAIN): send it again shortly.
    TryAgain,
    /// The connection is broken (corosync stopped): reconnect.
    Broken(u32),
}

/// One CPG connection joined to a group. Finalized when dropped (never inside a callback:
/// only the dispatch thread owns it, outside `dispatch`).
pub(crate) struct Connection {
    library: &'static Library,
    handle: cpg_handle_t,
    pub fd: c_int,
    pub me: Member,
}

fn group_name(group: &str) -> cpg_name {
    let mut name = cpg_name {
        length: 0,
        value: [0; raw::CPG_MAX_NAME_LENGTH as usize],
    };
    let bytes = &group.as_bytes()[..group.len().min(name.value.len())];
    for (slot, &byte) in name.value.iter_mut().zip(bytes) {
        *slot = byte as c_char;
    }
    name.length = bytes.len() as u32;
    name
}

impl Connection {
    /// Connects to the local corosync and joins `group`.
    pub fn open(group: &str) -> Result<Connection, String> {
        let library = library()?;
        let mut model = cpg_model_v1_data_t {
            model: cpg_model_t::CPG_MODEL_V1,
            cpg_deliver_fn: Some(on_deliver),
            cpg_confchg_fn: Some(on_confchg),
            cpg_totem_confchg_fn: None,
            flags: 0,
        };
        let mut handle: cpg_handle_t = 0;
        // SAFETY: handle and model are valid for the call; libcpg copies the model's callbacks,
        // which are 'static functions. No context pointer is used.
        let status = unsafe {
            (library.model_initialize)(
                &mut handle,
                cpg_model_t::CPG_MODEL_V1,
                (&mut model as *mut cpg_model_v1_data_t).cast(),
                std::ptr::null_mut(),
            )
        };
        if status != cs_error_t::CS_OK {
            return Err(format!("cpg_initialize: {}", describe(status)));
        }
        // From here on, dropping `connection` finalizes the handle.
        let mut connection = Connection {
            library,
            handle,
            fd: -1,
            me: Member {
                node: 0,
                pid: std::process::id(),
            },
        };
        let mut fd: c_int = -1;
        // SAFETY: a live handle and a valid out-pointer.
        let status = unsafe { (library.fd_get)(handle, &mut fd) };
        if status != cs_error_t::CS_OK {
            return Err(format!("cpg_fd_get: {}", describe(status)));
        }
        connection.fd = fd;
        let mut node: c_uint = 0;
        // SAFETY: a live handle and a valid out-pointer.
        let status = unsafe { (library.local_get)(handle, &mut node) };
        if status != cs_error_t::CS_OK {
            return Err(format!("cpg_local_get: {}", describe(status)));
        }
        connection.me.node = node;
        let name = group_name(group);
        for _ in 0..50 {
            // SAFETY: a live handle; name is valid for the call (libcpg copies it).
            match unsafe { (library.join)(handle, &name) } {
                cs_error_t::CS_OK => return Ok(connection),
                cs_error_t::CS_ERR_TRY_AGAIN => {
                    std::thread::sleep(std::time::Duration::from_millis(20))
                }
                status => return Err(format!("cpg_join {group}: {}", describe(status))),
            }
        }
        Err(format!(
            "cpg_join {group}: corosync kept answering 'try again'"
        ))
    }

    /// Runs the callbacks for everything pending, calling `events`. `Err`: the connection is
    /// broken.
    pub fn dispatch(&self, events: &(dyn Events + 'static)) -> Result<(), String> {
        EVENTS.with(|e| e.set(Some(events as *const _)));
        // SAFETY: a live handle; the callbacks it runs are ours and see `events` through
        // EVENTS, cleared below before `events` can go away.
        let status =
            unsafe { (self.library.dispatch)(self.handle, cs_dispatch_flags_t::CS_DISPATCH_ALL) };
        EVENTS.with(|e| e.set(None));
        match status {
            cs_error_t::CS_OK | cs_error_t::CS_ERR_TRY_AGAIN => Ok(()),
            status => Err(format!("cpg_dispatch: {}", describe(status))),
        }
    }

    /// Multicasts `message` to the group, AGREED order.
    pub fn send(&self, message: &[u8]) -> Result<(), SendError> {
        let iov = [IoSlice::new(message)];
        // SAFETY: a live handle; IoSlice has struct iovec's layout; the bytes are only read
        // during the call (libcpg copies them into its IPC buffer).
        let status = unsafe {
            (self.library.mcast_joined)(
                self.handle,
                cpg_guarantee_t::CPG_TYPE_AGREED,
                iov.as_ptr(),
                1,
            )
        };
        match status {
            cs_error_t::CS_OK => Ok(()),
            cs_error_t::CS_ERR_TRY_AGAIN => Err(SendError::TryAgain),
            status => Err(SendError::Broken(status)),
        }
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        // SAFETY: the handle came from cpg_model_initialize and is finalized once, here,
        // outside any callback (only the dispatch thread holds a Connection).
        unsafe { (self.library.finalize)(self.handle) };
    }
}

/// corosync's cs_error_t in words.
pub(crate) fn describe(status: u32) -> String {
    let name = match status {
        cs_error_t::CS_ERR_LIBRARY => "cannot reach corosync (CS_ERR_LIBRARY)",
        cs_error_t::CS_ERR_TRY_AGAIN => "try again (CS_ERR_TRY_AGAIN)",
        cs_error_t::CS_ERR_ACCESS => {
            "access denied (CS_ERR_ACCESS: add a uidgid entry for Asterisk's user to corosync)"
        }
        cs_error_t::CS_ERR_BAD_HANDLE => "bad handle (CS_ERR_BAD_HANDLE)",
        cs_error_t::CS_ERR_NOT_EXIST => "not there (CS_ERR_NOT_EXIST)",
        _ => "error",
    };
    format!("{name}, status {status}")
}
