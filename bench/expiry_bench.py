"""The timed-states benchmark's work inside the namespace (see bench/expiry and
docs/BENCHMARKS.md, "Timed states").

Three fresh Asterisk 22 instances, each given its states by one SQL statement into AstDB before
`module load` (so 100,000 states take seconds, not minutes of dialplan writes):

  untimed  N states 'dnd,,In a meeting,t(3600)' whose CustomPresenceMeta record has no expiry
           (a t(...) the stock module wrote: not timed), each with a record of its last change;
  timed    the same N states and records, the records also holding an expiry an hour away and
           the state to revert to ('available'): N pending expiries after the load;
  burst    the timed N plus B more due together one minute after the load.

Measured: Asterisk's RSS before and after the load (the difference between untimed and timed
is the cost of N pending expiries); with N pending, the CPU time of the whole Asterisk process
and of the module's expiry thread over an idle window; the lateness of L timed writes made
through AMI with t(2) while N are pending (their deadline from their record, their revert from
the Timestamp of its PresenceStateChange); and for the B reverts due at once, when AstDB
held the first and all of them (the module stores a revert before it announces it) and the
lateness of their announcements (PresenceStateChange Timestamps: Stasis and the manager
deliver them after the module has published them).
"""

import os
import statistics
import time

import presence_bench as pb
from instance import OUR_SO, AsteriskError, AsteriskInstance, manager_conf

FULL = {"pending": 100000, "idle_seconds": 30, "late": 200, "burst": 10000}
QUICK = {"pending": 5000, "idle_seconds": 5, "late": 20, "burst": 500}

VALUE = "dnd,,In a meeting,t(3600)"
REVERT = "available"


def value_fnv(text):
    """FNV-1a 64 of a stored value, hex, as core/meta.rs writes `value_fnv`."""
    h = 0xcbf29ce484222325
    for byte in text.encode():
        h = ((h ^ byte) * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return "%016x" % h


def configs():
    return {
        "manager.conf": manager_conf("timestampevents = yes", "disabledevents = Newexten,VarSet"),
        "logger.conf": "[general]\ndateformat = %F %T.%3q\n\n[logfiles]\nmessages => notice,warning,error\n",
        "extensions.conf": "[general]\nstatic = yes\nwriteprotect = yes\n\n[bench]\n",
        "modules.conf": "[modules]\nnoload => %s\n" % OUR_SO,
    }


def fill(b, prefix, count, deadline_ms):
    """`count` states <prefix><k> and their records, by SQL; timed when `deadline_ms`."""
    fnv = value_fnv(VALUE)
    record = "changed=1764500000;source=cli;value_fnv=%s" % fnv
    if deadline_ms:
        record += ";expires_ms=%d;revert=%s;expires_value_fnv=%s" % (deadline_ms, REVERT, fnv)
    for family, value in (("CustomPresence", VALUE), ("CustomPresenceMeta", record)):
        b.command("database query \"WITH RECURSIVE c(k) AS (SELECT 0 UNION ALL SELECT k + 1 "
                  "FROM c WHERE k < %d) INSERT OR REPLACE INTO astdb (key, value) SELECT "
                  "'/%s/%s' || k, '%s' FROM c\"" % (count - 1, family, prefix, value), timeout=300)


def expiry_thread_ticks(b):
    """utime + stime of the module's expiry thread (named presence-expiry)."""
    task_dir = "%s/proc/%d/task" % (b.ast.root, b.pid)
    for tid in os.listdir(task_dir):
        try:
            with open("%s/%s/comm" % (task_dir, tid)) as f:
                if f.read().strip() != "presence-expiry":
                    continue
            with open("%s/%s/stat" % (task_dir, tid)) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            return int(fields[11]) + int(fields[12])
        except FileNotFoundError:
            continue
    raise AsteriskError("no presence-expiry thread in Asterisk")


def reverted_in_astdb(b, prefix):
    """How many states <prefix><k> AstDB holds as reverted."""
    out = b.command("database query \"SELECT count(*) AS reverted FROM astdb WHERE key LIKE "
                    "'/CustomPresence/%s%%' AND value = '%s'\"" % (prefix, REVERT))
    for line in out.splitlines():
        if line.strip().startswith("reverted"):
            return int(line.split()[-1])
    raise AsteriskError("database query gave no count: %r" % out)


def idle_cpu(b, seconds):
    """CPU seconds of Asterisk and of the expiry thread over `seconds` of idling."""
    hz = os.sysconf("SC_CLK_TCK")
    cpu0, thread0, t0 = b.cpu_ticks(), expiry_thread_ticks(b), time.monotonic()
    time.sleep(seconds)
    cpu1, thread1, t1 = b.cpu_ticks(), expiry_thread_ticks(b), time.monotonic()
    return {"seconds": round(t1 - t0, 2), "asterisk_cpu_s": (cpu1 - cpu0) / hz,
            "expiry_thread_cpu_s": (thread1 - thread0) / hz,
            "expiry_thread_cpu_since_load_s": thread1 / hz}


def start(module_path, name):
    ast = AsteriskInstance(mode="ours", module_path=module_path, configs=configs(), name=name)
    ast.start(timeout=120)
    b = pb.Bench(ast, pb.QUICK)
    b.settle()
    return ast, b


def load_and_measure(b):
    before = b.rss_kib()
    started = time.monotonic()
    b.module("load", "ours", timeout=900)
    b.settle(timeout=900)
    return before, b.rss_kib(), time.monotonic() - started


def presence_listener(ast, prefix):
    """An AMI connection that gets only the PresenceStateChange events of names <prefix>..."""
    ami = ast.ami(timeout=60, events="call")
    for line in ("Event: PresenceStateChange", "Presentity: CustomPresence:%s" % prefix):
        r = ami.action({"Action": "Filter", "Operation": "Add", "Filter": line})
        if r.get("Response") != "Success":
            raise AsteriskError("AMI Filter: %r" % dict(r))
    return ami


def lateness_figures(values):
    values = sorted(values)
    return {"count": len(values), "median_s": statistics.median(values), "max_s": values[-1],
            "min_s": values[0], "p99_s": values[int(0.99 * (len(values) - 1))]}


def run(module_path, sizes, keep=False):
    n = sizes["pending"]
    res = {"sizes": sizes}

    pb.say("untimed: %d states without a recorded expiry" % n)
    ast, b = start(module_path, "expiry-untimed")
    try:
        fill(b, "p", n, None)
        res["untimed"] = dict(zip(("rss_before_kib", "rss_after_kib", "load_s"), load_and_measure(b)))
        res["asterisk"] = ast.cli("core show version").strip()
        # The same idle window with nothing pending: Asterisk's own housekeeping.
        res["idle_baseline"] = idle_cpu(b, sizes["idle_seconds"])
    finally:
        ast.stop() if keep else ast.cleanup()

    pb.say("timed: %d pending expiries, one hour away" % n)
    ast, b = start(module_path, "expiry-timed")
    try:
        fill(b, "p", n, int(time.time() * 1000) + 3600 * 1000)
        res["timed"] = dict(zip(("rss_before_kib", "rss_after_kib", "load_s"), load_and_measure(b)))
        pending = b.command("presencestate show CustomPresence:p%d" % (n - 1))
        if "Expires" not in pending:
            raise AsteriskError("the loaded states are not timed:\n" + pending)
        # CPU while waiting: nothing is due for an hour.
        res["idle"] = idle_cpu(b, sizes["idle_seconds"])
        # Lateness of single reverts with N pending.
        listener = presence_listener(b.ast, "late")
        mark = listener.mark()
        late = sizes["late"]
        for k in range(late):
            r = b.ami.action({"Action": "SetVar", "Variable": "PRESENCE_STATE(CustomPresence:late%d)" % k,
                              "Value": "away,,,t(2)"})
            if r.get("Response") != "Success":
                raise AsteriskError("timed write refused: %r" % dict(r))
        deadlines = {}
        for k in range(late):
            r = b.ami.action({"Action": "DBGet", "Family": "CustomPresenceMeta", "Key": "late%d" % k})
            fields = dict(f.split("=", 1) for f in r.events[0]["Val"].split(";"))
            deadlines["CustomPresence:late%d" % k] = int(fields["expires_ms"]) / 1000
        events = listener.wait_for(lambda e: e.get("Status") == "not_set", timeout=120, start=mark,
                                   count=late)
        events = [events] if late == 1 else events
        res["late"] = lateness_figures(
            [float(e["Timestamp"]) - deadlines[e["Presentity"]] for e in events])
    finally:
        ast.stop() if keep else ast.cleanup()

    burst = sizes["burst"]
    pb.say("burst: %d pending an hour away, %d due together" % (n, burst))
    ast, b = start(module_path, "expiry-burst")
    try:
        now_ms = int(time.time() * 1000)
        fill(b, "p", n, now_ms + 3600 * 1000)
        due_ms = now_ms + 60 * 1000
        fill(b, "burst", burst, due_ms)
        load_and_measure(b)
        if time.time() * 1000 > due_ms - 5000:
            raise AsteriskError("the load took too long for the burst to be due after it")
        listener = presence_listener(b.ast, "burst")
        # When the reverts are stored: AstDB holds each revert before it is announced.
        stored_at = []
        while len(stored_at) < 2:
            count = reverted_in_astdb(b, "burst")
            if count and not stored_at:
                stored_at.append(time.time())            # the first ones are in
            if count == burst:
                stored_at.append(time.time())            # all of them
            elif time.time() * 1000 > due_ms + 300 * 1000:
                raise AsteriskError("only %d of %d burst states reverted" % (count, burst))
            time.sleep(0.05)
        res["burst_stored"] = {"first_s": stored_at[0] - due_ms / 1000,
                               "all_s": stored_at[1] - due_ms / 1000}
        events = listener.wait_for(lambda e: e.get("Status") == REVERT, timeout=300, count=burst)
        events = [events] if burst == 1 else events
        res["burst"] = lateness_figures([float(e["Timestamp"]) - due_ms / 1000 for e in events])
        res["burst"]["expiry_thread_cpu_s"] = expiry_thread_ticks(b) / os.sysconf("SC_CLK_TCK")
    finally:
        ast.stop() if keep else ast.cleanup()

    res["bytes_per_pending"] = (res["timed"]["rss_after_kib"] - res["timed"]["rss_before_kib"]
                                - res["untimed"]["rss_after_kib"] + res["untimed"]["rss_before_kib"]
                                ) * 1024 / n
    return res
