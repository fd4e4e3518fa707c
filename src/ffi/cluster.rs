//! The cluster at run time: one dispatch thread owning the CPG connection, the store's commit
//! hook, and the module's versions in AstDB.
//!
//! The thread polls the CPG fd and a wake socket (written by the commit hook), dispatches CPG
//! callbacks, sends what the replica queued (retrying `CS_ERR_TRY_AGAIN` itself: the dialplan
//! never waits for the network), and reconnects every `reconnect_interval` while corosync is
//! unreachable. `stop` (unload) sets a flag, wakes it and joins it; the connection is
//! finalized by the thread, outside any callback.

use super::bindings;
use super::cluster_cpg::{describe, Connection, Events, SendError};
use super::host::{with_astdb_family, Asterisk, STORE};
use crate::core::cluster::config::ClusterConfig;
use crate::core::cluster::replica::{Replica, VersionStore};
use crate::core::cluster::resync::Member;
use crate::core::cluster::status::{self, Status};
use crate::core::cluster::version::wall_clock_ms;
use crate::core::cluster::wire::MAX_MESSAGE;
use crate::core::expiry::Join;
use crate::core::store::Version;
use crate::core::{shown, PROVIDER_PREFIX};
use std::ffi::{c_int, CStr, CString};
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

/// The module's own AstDB family for versions (`wall_ms.counter.node fingerprint`), apart
/// from the stock `CustomPresence` family. To be folded into `CustomPresenceMeta` records.
const VERSION_FAMILY: &CStr = c"CustomPresenceVersion";
/// Local writes are sent at most this often, packed together: under load, one CPG message
/// (and one wake-up of this thread) carries many writes instead of one each.
const COALESCE: Duration = Duration::from_millis(1);
/// Tombstones past `tombstone_ttl` are looked for this often.
const PURGE_EVERY: Duration = Duration::from_secs(60);
/// At most one WARNING about dropped messages per this long.
const DROP_WARNING_EVERY: Duration = Duration::from_secs(10);

struct Shared {
    replica: Replica,
    config: ClusterConfig,
    stop: AtomicBool,
    wake_pending: AtomicBool,
    waker: UnixStream,
    drops: Mutex<(Option<Instant>, u64)>,
}

impl Shared {
    fn wake(&self) {
        if !self.wake_pending.swap(true, Ordering::AcqRel) {
            // Non-blocking; a full socket already holds a wake-up.
            let _ = (&self.waker).write(&[1]);
        }
    }
}

static ACTIVE: RwLock<Option<Arc<Shared>>> = RwLock::new(None);
static THREAD: Mutex<Option<Join>> = Mutex::new(None);

fn active() -> Option<Arc<Shared>> {
    ACTIVE
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .clone()
}

/// The store's stamp hook (under the name's write lock, only while replicating): the
/// version of the local change about to enter memory; `None` when the cluster is not running.
pub(crate) fn stamp() -> Option<Version> {
    ACTIVE
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .as_ref()
        .map(|shared| shared.replica.local_stamp())
}

/// The store's commit hook (under the same lock): queues the change with its version.
pub(crate) fn committed(
    name: &[u8],
    value: Option<&CStr>,
    revert: Option<&[u8]>,
    version: Version,
) {
    if let Some(shared) = ACTIVE
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .as_ref()
    {
        shared
            .replica
            .local_commit(name, value.map(CStr::to_bytes), revert, version);
        shared.wake();
    }
}

/// The running cluster's configuration (None when off).
fn running_config() -> Option<ClusterConfig> {
    active().map(|s| s.config.clone())
}

/// `[cluster]` as presencestate.conf last gave it, and whether the module is loaded (between
/// [`resume`] and [`halt`]): only then does a new configuration start or stop the thread.
static WANTED: Mutex<(Option<ClusterConfig>, bool)> = Mutex::new((None, false));

/// Restarts the cluster if `config` differs from what runs (none when it is off).
fn reconcile(config: &ClusterConfig) {
    if running_config().as_ref() != config.enabled.then_some(config) {
        stop();
        start(config.clone());
    }
}

/// Takes `[cluster]` from presencestate.conf (load and reload, see `module::apply`): while the
/// module is loaded, the cluster is started, stopped or restarted to match it.
pub(crate) fn configure(config: &ClusterConfig) {
    let mut wanted = WANTED.lock().unwrap_or_else(PoisonError::into_inner);
    wanted.0 = Some(config.clone());
    if wanted.1 {
        reconcile(config);
    }
}

/// At load, once everything is registered: starts the cluster as configured.
pub(crate) fn resume() {
    let mut wanted = WANTED.lock().unwrap_or_else(PoisonError::into_inner);
    wanted.1 = true;
    if let Some(config) = wanted.0.clone() {
        reconcile(&config);
    }
}

/// At unload, before anything is unregistered: stops the cluster and joins its thread.
pub(crate) fn halt() {
    WANTED.lock().unwrap_or_else(PoisonError::into_inner).1 = false;
    stop();
}

/// At unload, once halted: the settings' memory is freed (see `module::release`).
pub(crate) fn release() {
    *WANTED.lock().unwrap_or_else(PoisonError::into_inner) = (None, false);
}

struct AstdbVersions;

impl VersionStore for AstdbVersions {
    fn save(&self, name: &[u8], record: &[u8]) {
        if let (Ok(name), Ok(record)) = (CString::new(name), CString::new(record)) {
            // SAFETY: three NUL-terminated strings, only read during the call.
            let stored = unsafe {
                bindings::ast_db_put(VERSION_FAMILY.as_ptr(), name.as_ptr(), record.as_ptr())
            };
            if stored != 0 {
                warning!(
                    "AstDB refused the cluster version of {}; after a restart that state \
                     counts as older than any other server's",
                    shown(name.to_bytes())
                );
            }
        }
    }

    fn forget(&self, name: &[u8]) {
        if let Ok(name) = CString::new(name) {
            // SAFETY: two NUL-terminated strings, only read during the call. A record already
            // gone is no error worth a word.
            unsafe { bindings::ast_db_del(VERSION_FAMILY.as_ptr(), name.as_ptr()) };
        }
    }
}

/// Starts the cluster when `config.enabled`.
fn start(config: ClusterConfig) {
    if !config.enabled {
        return;
    }
    let (waker, wakee) = match UnixStream::pair() {
        Ok(pair) => pair,
        Err(e) => {
            error!("Presence cluster not started: no wake socket ({e})");
            return;
        }
    };
    if waker.set_nonblocking(true).is_err() || wakee.set_nonblocking(true).is_err() {
        error!("Presence cluster not started: cannot make its wake socket non-blocking");
        return;
    }
    let replica = Replica::new(0).keeping_tombstones(config.tombstone_ttl);
    let (versions, tombstones) = with_astdb_family(VERSION_FAMILY, |records| {
        replica.load_versions(&STORE, records)
    });
    let shared = Arc::new(Shared {
        replica,
        config,
        stop: AtomicBool::new(false),
        wake_pending: AtomicBool::new(false),
        waker,
        drops: Mutex::new((None, 0)),
    });
    // Versioned from the first write on: the hook is on before the thread can join.
    *ACTIVE.write().unwrap_or_else(PoisonError::into_inner) = Some(Arc::clone(&shared));
    STORE.replicate(true);
    let for_thread = Arc::clone(&shared);
    let spawned = super::thread::spawn(c"fprs-cluster", Box::new(move || run(for_thread, wakee)));
    match spawned {
        Ok(handle) => {
            notice!(
                "Presence cluster: joining CPG group '{}' ({versions} stored versions, \
                 {tombstones} tombstones)",
                shared.config.group
            );
            *THREAD.lock().unwrap_or_else(PoisonError::into_inner) = Some(handle);
        }
        Err(e) => {
            STORE.replicate(false);
            *ACTIVE.write().unwrap_or_else(PoisonError::into_inner) = None;
            error!("Presence cluster not started: cannot start its thread ({e})");
        }
    }
}

/// Stops the dispatch thread and waits for it (it leaves the group and finalizes).
fn stop() {
    STORE.replicate(false);
    let shared = ACTIVE
        .write()
        .unwrap_or_else(PoisonError::into_inner)
        .take();
    if let Some(shared) = &shared {
        shared.stop.store(true, Ordering::Release);
        shared.wake_pending.store(false, Ordering::Release);
        shared.wake();
    }
    let thread = THREAD.lock().unwrap_or_else(PoisonError::into_inner).take();
    if let Some(join) = thread {
        join();
    }
}

/// `presencestate cluster`.
pub(crate) fn status_text() -> String {
    let Some(shared) = active() else {
        return status::disabled();
    };
    let members = shared.replica.members();
    let last = shared.replica.last_resync();
    status::render(&Status {
        group: &shared.config.group,
        node: shared.replica.node(),
        connected: shared.replica.is_joined(),
        members: &members,
        stats: &shared.replica.stats,
        last_resync: last.as_ref(),
        now_unix_ms: wall_clock_ms(),
        tombstones: shared.replica.tombstones(),
        tombstone_ttl: shared.config.tombstone_ttl,
    })
}

/// What the dispatch callbacks do, on the dispatch thread.
struct Dispatcher(Arc<Shared>);

impl Events for Dispatcher {
    fn delivered(&self, from: Member, message: &[u8]) {
        let shared = &self.0;
        if shared.stop.load(Ordering::Acquire) {
            return; // unloading: a large resynchronisation must not hold `module unload` up
        }
        if let Err(reason) =
            shared
                .replica
                .receive(from, message, &STORE, &Asterisk, &AstdbVersions)
        {
            let mut drops = shared.drops.lock().unwrap_or_else(PoisonError::into_inner);
            drops.1 += 1;
            let due = drops.0.is_none_or(|at| at.elapsed() >= DROP_WARNING_EVERY);
            if due {
                warning!(
                    "Presence cluster: dropped a message from node {} pid {} ({} bytes): {reason}; \
                     nothing was changed ({} dropped since the last warning)",
                    from.node,
                    from.pid,
                    message.len(),
                    drops.1
                );
                *drops = (Some(Instant::now()), 0);
            }
        }
    }

    fn membership(&self, members: &[Member], left: &[Member], joined: &[Member]) {
        let list = |l: &[Member]| {
            l.iter()
                .map(|m| m.node.to_string())
                .collect::<Vec<_>>()
                .join(",")
        };
        notice!(
            "Presence cluster: {} members (joined: [{}], left: [{}])",
            members.len(),
            list(joined),
            list(left)
        );
        self.0
            .replica
            .membership(&STORE, members, left, !joined.is_empty());
    }
}

#[repr(C)]
struct PollFd {
    fd: c_int,
    events: i16,
    revents: i16,
}

extern "C" {
    fn poll(fds: *mut PollFd, count: u64, timeout_ms: c_int) -> c_int;
}
const POLLIN: i16 = 1;

/// Waits up to `timeout` for the wake socket or the CPG fd; true when CPG has something.
fn wait(wakee: &UnixStream, cpg_fd: Option<c_int>, timeout: Duration) -> bool {
    let mut fds = [
        PollFd {
            fd: wakee.as_raw_fd(),
            events: POLLIN,
            revents: 0,
        },
        PollFd {
            fd: cpg_fd.unwrap_or(-1),
            events: POLLIN,
            revents: 0,
        },
    ];
    let ms = c_int::try_from(timeout.as_millis()).unwrap_or(c_int::MAX);
    // SAFETY: fds is a valid array of 2 pollfd-layout structs for the call (a negative fd is
    // ignored by poll).
    let ready = unsafe { poll(fds.as_mut_ptr(), 2, ms) };
    let mut drain = [0u8; 64];
    while matches!((&*wakee).read(&mut drain), Ok(n) if n > 0) {}
    ready > 0 && fds[1].revents != 0
}

/// The dispatch thread.
fn run(shared: Arc<Shared>, wakee: UnixStream) {
    let dispatcher = Dispatcher(Arc::clone(&shared));
    let interval = shared.config.reconnect_interval;
    let mut connection: Option<Connection> = None;
    let mut next_attempt = Instant::now();
    let mut warned = false;
    let mut reported_resync = None;
    let mut last_send = Instant::now();
    let mut last_purge: Option<Instant> = None;
    while !shared.stop.load(Ordering::Acquire) {
        if connection.is_none() && Instant::now() >= next_attempt {
            match Connection::open(&shared.config.group) {
                Ok(c) => {
                    notice!(
                        "Presence cluster: joined CPG group '{}' as node {} (pid {})",
                        shared.config.group,
                        c.me.node,
                        c.me.pid
                    );
                    shared.replica.joined(c.me);
                    connection = Some(c);
                    warned = false;
                }
                Err(reason) => {
                    if !warned {
                        warning!(
                            "Presence cluster: cannot join CPG group '{}': {reason}. This server \
                             keeps working alone and retries every {} s; it resynchronises once \
                             it is back.",
                            shared.config.group,
                            interval.as_secs()
                        );
                        warned = true;
                    }
                    next_attempt = Instant::now() + interval;
                }
            }
        }
        let mut retry_soon = false;
        let mut broken = None;
        if let Some(c) = &connection {
            if shared.replica.has_outgoing() {
                let since = last_send.elapsed();
                if since < COALESCE {
                    std::thread::sleep(COALESCE - since);
                }
                last_send = Instant::now();
            }
            while let Some(message) = shared.replica.next_message(&AstdbVersions) {
                match c.send(&message) {
                    Ok(()) => shared.replica.sent(),
                    Err(SendError::TryAgain) => {
                        shared.replica.retry_later(message);
                        retry_soon = true;
                        break;
                    }
                    Err(SendError::Broken(status)) => {
                        broken = Some(format!("cpg_mcast_joined: {}", describe(status)));
                        break;
                    }
                }
            }
        }
        let timeout = if retry_soon {
            Duration::from_millis(2)
        } else if connection.is_none() {
            next_attempt
                .saturating_duration_since(Instant::now())
                .min(Duration::from_millis(500))
        } else {
            Duration::from_millis(250)
        };
        shared.wake_pending.store(false, Ordering::Release);
        if broken.is_none()
            && wait(&wakee, connection.as_ref().map(|c| c.fd), timeout)
            && !shared.stop.load(Ordering::Acquire)
        {
            if let Some(c) = &connection {
                if let Err(reason) = c.dispatch(&dispatcher) {
                    broken = Some(reason);
                }
            }
        }
        if let Some(reason) = broken {
            warning!(
                "Presence cluster: lost corosync ({reason}). This server keeps working alone \
                 and retries every {} s; it resynchronises once it is back.",
                interval.as_secs()
            );
            // Finalized here, on this thread, outside any callback.
            connection = None;
            shared.replica.left_group();
            warned = true;
            next_attempt = Instant::now() + interval;
        }
        shared.replica.tick(&STORE);
        if last_purge.is_none_or(|at| at.elapsed() >= PURGE_EVERY) {
            last_purge = Some(Instant::now());
            shared
                .replica
                .purge_tombstones(wall_clock_ms(), &AstdbVersions);
        }
        for name in shared.replica.take_too_large() {
            warning!(
                "Presence cluster: {PROVIDER_PREFIX}{} is larger than one cluster message \
                 carries ({MAX_MESSAGE} bytes); it stays on this server only",
                shown(&name)
            );
        }
        if let Some(report) = shared.replica.last_resync() {
            if reported_resync != Some(report.finished_unix_ms) {
                reported_resync = Some(report.finished_unix_ms);
                notice!(
                    "Presence cluster: resynchronised with {} members in {} ms: {} names \
                     applied, {} sent",
                    report.members,
                    report.took.as_millis(),
                    report.names_applied,
                    report.names_sent
                );
            }
        }
    }
    drop(connection);
}
