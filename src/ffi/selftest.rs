//! Tests run inside Asterisk by its test framework (`test execute category
//! /funcs/func_presencestate_rs/`): the real function, AstDB and Stasis, no mock.

use super::bindings::{
    self, ast_presence_state as ast_state, ast_test, ast_test_result_state as TestResult,
};
use super::bindings::{stasis_message, stasis_subscription};
use super::boundary::{c_string, guard};
use super::host::{presence_message, reload_from_astdb, with_astdb_entries, Asterisk, STORE};
use crate::core::base64;
use crate::core::value::{Presence, STOCK_INVALID, STOCK_VALID};
use std::ffi::c_void;
use std::sync::{Condvar, Mutex, PoisonError};
use std::time::Duration;

/// Collects failures and reports them to the test framework.
struct Check {
    test: *mut ast_test,
    passed: bool,
}

impl Check {
    fn new(test: *mut ast_test) -> Check {
        Check { test, passed: true }
    }

    fn expect(&mut self, ok: bool, what: impl FnOnce() -> String) {
        if !ok {
            self.passed = false;
            let text = what();
            // SAFETY: test is the framework's handle for the running test; text is only read.
            unsafe { bindings::fprs_shim_test_status(self.test, text.as_ptr().cast(), text.len()) };
        }
    }

    fn result(&self) -> TestResult {
        if self.passed {
            TestResult::AST_TEST_PASS
        } else {
            TestResult::AST_TEST_FAIL
        }
    }
}

/// Runs a test body, turning a panic into a failure.
fn run(test: *mut ast_test, body: impl FnOnce(&mut Check)) -> TestResult {
    guard("self-test", TestResult::AST_TEST_FAIL, || {
        let mut check = Check::new(test);
        body(&mut check);
        check.result()
    })
}

/// A presence-state message as a subscriber received it.
#[derive(Clone, Debug, PartialEq)]
struct Published {
    state: ast_state::Type,
    provider: Vec<u8>,
    subtype: Vec<u8>,
    message: Vec<u8>,
}

#[derive(Default)]
struct Inbox {
    received: Mutex<Vec<Published>>,
    arrived: Condvar,
}

extern "C" fn on_presence_message(
    data: *mut c_void,
    _sub: *mut stasis_subscription,
    msg: *mut stasis_message,
) {
    guard("self-test subscriber", (), || {
        // SAFETY: msg is the message being delivered; its fields are copied here.
        let Some(got) = (unsafe { presence_message(msg) }) else {
            return;
        };
        let published = Published {
            state: got.state,
            provider: got.provider.to_vec(),
            subtype: got.subtype.to_vec(),
            message: got.message.to_vec(),
        };
        // SAFETY: data is the Inbox the Subscription owns; it outlives the subscription, which
        // is joined before the Inbox is dropped.
        let inbox = unsafe { &*(data as *const Inbox) };
        inbox
            .received
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(published);
        inbox.arrived.notify_all();
    })
}

/// A subscription to every presence-state change, joined on drop.
struct Subscription {
    handle: *mut stasis_subscription,
    inbox: Box<Inbox>,
}

impl Subscription {
    fn new() -> Option<Subscription> {
        let inbox = Box::<Inbox>::default();
        let data = &*inbox as *const Inbox as *mut c_void;
        // SAFETY: the callback matches stasis_subscription_cb; data stays valid until drop
        // joins the subscription (the Box never moves its contents).
        let handle =
            unsafe { bindings::fprs_shim_subscribe_presence(Some(on_presence_message), data) };
        (!handle.is_null()).then_some(Subscription { handle, inbox })
    }

    /// The first message for `provider` published after subscribing, within 5 seconds.
    fn wait_for(&self, provider: &[u8]) -> Option<Published> {
        let received = self
            .inbox
            .received
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let (mut received, _) = self
            .inbox
            .arrived
            .wait_timeout_while(received, Duration::from_secs(5), |r| {
                !r.iter().any(|p| p.provider == provider)
            })
            .unwrap_or_else(PoisonError::into_inner);
        let index = received.iter().position(|p| p.provider == provider)?;
        Some(received.remove(index))
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        // SAFETY: handle came from stasis_subscribe; after the join no callback runs, so the
        // Inbox may be dropped next.
        unsafe { bindings::stasis_unsubscribe_and_join(self.handle) };
    }
}

fn func_write(function: &str, value: &[u8]) -> i32 {
    let (Some(function), Some(value)) = (c_string(function.as_bytes()), c_string(value)) else {
        return -1;
    };
    // SAFETY: NUL-terminated strings; a NULL channel is allowed for this function.
    unsafe { bindings::ast_func_write(std::ptr::null_mut(), function.as_ptr(), value.as_ptr()) }
}

/// Reads through `ast_func_read2`, as `${...}` substitution into dynamic strings does.
fn func_read2(function: &str) -> Result<Vec<u8>, i32> {
    let function = c_string(function.as_bytes()).ok_or(-1)?;
    // SAFETY: creates an empty dynamic string from Asterisk's allocator, freed below.
    let mut buf = unsafe { bindings::fprs_shim_str_create(16) };
    if buf.is_null() {
        return Err(-1);
    }
    // SAFETY: function is NUL-terminated; buf is a valid dynamic string handle.
    let result =
        unsafe { bindings::ast_func_read2(std::ptr::null_mut(), function.as_ptr(), &mut buf, 0) };
    let mut len = 0;
    // SAFETY: buf is valid; its buffer holds len bytes, copied before buf is freed.
    let bytes = unsafe {
        let ptr = bindings::fprs_shim_str_bytes(buf, &mut len);
        std::slice::from_raw_parts(ptr.cast::<u8>(), len).to_vec()
    };
    // SAFETY: buf came from Asterisk's allocator and is not used after this.
    unsafe { bindings::fprs_shim_free(buf.cast()) };
    if result == 0 {
        Ok(bytes)
    } else {
        Err(result)
    }
}

/// Reads through `ast_func_read` into a fixed buffer of `size` bytes.
fn func_read(function: &str, size: usize) -> (i32, Vec<u8>) {
    let Some(function) = c_string(function.as_bytes()) else {
        return (-1, Vec::new());
    };
    let mut buf = vec![0u8; size];
    // SAFETY: function is NUL-terminated; buf is writable for size bytes.
    let result = unsafe {
        bindings::ast_func_read(
            std::ptr::null_mut(),
            function.as_ptr(),
            buf.as_mut_ptr().cast(),
            size,
        )
    };
    let len = buf.iter().position(|&b| b == 0).unwrap_or(size);
    buf.truncate(len);
    (result, buf)
}

/// Removes a test's state from AstDB and from the store.
fn forget(name: &str) {
    if let Some(key) = c_string(name.as_bytes()) {
        for family in [c"CustomPresence", c"CustomPresenceMeta"] {
            // SAFETY: NUL-terminated strings, only read during the call.
            unsafe { bindings::ast_db_del(family.as_ptr(), key.as_ptr()) };
        }
    }
    STORE.announce(&Asterisk, &reload_from_astdb(true));
}

fn stored_in_astdb(name: &str) -> Option<Vec<u8>> {
    with_astdb_entries(|entries| {
        entries
            .iter()
            .find(|(key, _)| *key == name.as_bytes())
            .map(|(_, value)| value.to_vec())
    })
}

/// Writes `value` through the function and checks what subscribers received.
fn write_and_expect(
    check: &mut Check,
    name: &str,
    value: &[u8],
    expected: (ast_state::Type, &[u8], &[u8]),
) {
    let Some(subscription) = Subscription::new() else {
        return check.expect(false, || "could not subscribe to presence changes".into());
    };
    let written = func_write(&format!("PRESENCE_STATE(CustomPresence:{name})"), value);
    check.expect(written == 0, || format!("the write returned {written}"));
    let provider = format!("CustomPresence:{name}");
    match subscription.wait_for(provider.as_bytes()) {
        None => check.expect(false, || {
            format!("nothing was published for {provider} within 5 s")
        }),
        Some(got) => {
            let want = Published {
                state: expected.0,
                provider: provider.clone().into_bytes(),
                subtype: expected.1.to_vec(),
                message: expected.2.to_vec(),
            };
            check.expect(got == want, || {
                format!(
                    "published state {} subtype {} bytes message {} bytes; expected state {} subtype {} bytes message {} bytes",
                    got.state, got.subtype.len(), got.message.len(), want.state, want.subtype.len(), want.message.len()
                )
            });
        }
    }
    check.expect(stored_in_astdb(name).as_deref() == Some(value), || {
        "AstDB does not hold the text as written".into()
    });
}

#[no_mangle]
pub extern "C" fn fprs_test_parse_valid(test: *mut ast_test) -> TestResult {
    run(test, |check| {
        for case in STOCK_VALID {
            let parsed = Presence::parse(case.text);
            let ok = parsed.as_ref().is_ok_and(|p| case.matches(p));
            check.expect(ok, || {
                format!(
                    "'{}' parsed to {parsed:?}",
                    String::from_utf8_lossy(case.text)
                )
            });
        }
    })
}

#[no_mangle]
pub extern "C" fn fprs_test_parse_invalid(test: *mut ast_test) -> TestResult {
    run(test, |check| {
        for text in STOCK_INVALID {
            let parsed = Presence::parse(text);
            check.expect(parsed.is_err(), || {
                format!("'{}' was accepted", String::from_utf8_lossy(text))
            });
        }
    })
}

const SUBTYPE: &[u8] = b"down the hall";
const MESSAGE: &[u8] = b"Quarterly financial meeting";

#[no_mangle]
pub extern "C" fn fprs_test_publish(test: *mut ast_test) -> TestResult {
    run(test, |check| {
        let name = "fprs_selftest_publish";
        write_and_expect(
            check,
            name,
            b"away,down the hall,Quarterly financial meeting",
            (ast_state::AST_PRESENCE_AWAY, SUBTYPE, MESSAGE),
        );
        write_and_expect(check, name, b"DND", (ast_state::AST_PRESENCE_DND, b"", b""));
        forget(name);
    })
}

#[no_mangle]
pub extern "C" fn fprs_test_base64(test: *mut ast_test) -> TestResult {
    run(test, |check| {
        let name = "fprs_selftest_base64";
        let value = [
            &b"away,"[..],
            &base64::encode(SUBTYPE),
            b",",
            &base64::encode(MESSAGE),
            b",e",
        ]
        .concat();
        write_and_expect(
            check,
            name,
            &value,
            (ast_state::AST_PRESENCE_AWAY, SUBTYPE, MESSAGE),
        );
        let read = func_read2(&format!("PRESENCE_STATE(CustomPresence:{name},message,e)"));
        check.expect(read == Ok(base64::encode(MESSAGE)), || {
            format!("read with e gave {read:?}")
        });
        forget(name);
    })
}

#[no_mangle]
pub extern "C" fn fprs_test_long_values(test: *mut ast_test) -> TestResult {
    run(test, |check| {
        let name = "fprs_selftest_long";
        let long: Vec<u8> = b"0123456789abcdef"
            .iter()
            .cycle()
            .take(100_000)
            .copied()
            .collect();
        let plain = [&b"xa,"[..], &long[..50_000], b",", &long].concat();
        write_and_expect(
            check,
            name,
            &plain,
            (ast_state::AST_PRESENCE_XA, &long[..50_000], &long),
        );
        let encoded = [
            &b"chat,"[..],
            &base64::encode(&long[..3_000]),
            b",",
            &base64::encode(&long),
            b",e",
        ]
        .concat();
        write_and_expect(
            check,
            name,
            &encoded,
            (ast_state::AST_PRESENCE_CHAT, &long[..3_000], &long),
        );

        let function = format!("PRESENCE_STATE(CustomPresence:{name},message)");
        let read = func_read2(&function);
        check.expect(read.as_deref() == Ok(&long[..]), || {
            format!("read2 gave {:?} bytes", read.as_ref().map(Vec::len))
        });
        let (result, cut) = func_read(&function, 4096);
        check.expect(result == -1 && cut.is_empty(), || {
            format!(
                "a 4096-byte buffer read returned {result} with {} bytes instead of refusing",
                cut.len()
            )
        });
        forget(name);
    })
}

#[no_mangle]
pub extern "C" fn fprs_test_read_after_write(test: *mut ast_test) -> TestResult {
    run(test, |check| {
        let name = "fprs_selftest_raw";
        let target = format!("PRESENCE_STATE(CustomPresence:{name})");
        check.expect(func_write(&target, b"away,,first") == 0, || {
            "first write failed".into()
        });
        check.expect(func_write(&target, b"dnd,,second") == 0, || {
            "second write failed".into()
        });
        let value = func_read2(&format!("PRESENCE_STATE(CustomPresence:{name},value)"));
        let message = func_read2(&format!("PRESENCE_STATE(CustomPresence:{name},message)"));
        check.expect(value.as_deref() == Ok(&b"dnd"[..]), || {
            format!("value read {value:?}")
        });
        check.expect(message.as_deref() == Ok(&b"second"[..]), || {
            format!("message read {message:?}")
        });
        forget(name);
    })
}
