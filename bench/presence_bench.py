"""The benchmark's work inside the namespace: one Asterisk 22, both presence modules in its
module directory, neither autoloaded; each round loads one, runs the workloads, unloads it, and
loads the other (see bench/run and docs/BENCHMARKS.md).

Every elapsed time is taken inside Asterisk: the dialplan stores ${STRFTIME(,,%s.%6q)} in a
global variable before and after its loop and reports both in a UserEvent at the end; for
hint_fanout the end is the `Timestamp` Asterisk stamps on the last PresenceStatus event
(manager.conf timestampevents); for load_100k it is Asterisk's clock read by AMI Getvar just
before and just after the ModuleLoad action (one AMI round trip, measured and reported).
"""

import glob
import json
import os
import re
import shutil
import statistics
import subprocess
import time

import instance
from instance import OUR_SO, STOCK_SO, AsteriskError, AsteriskInstance

MODULES = {"stock": STOCK_SO, "ours": OUR_SO}
WORKLOADS = ("floor", "writes", "reads", "concurrent_writes", "load_100k", "hint_fanout")
EXTRAS = ("db_put", "db_get")            # AstDB alone through DB(): the floor of a write / read
# Run in this order in every round (reads need the states writes left; each loop's floor is
# measured in the same round).
SMALL_WORKLOADS = ("floor", "db_put", "writes", "reads", "db_get", "concurrent_writes",
                   "hint_fanout")
NOW = "${STRFTIME(,,%s.%6q)}"

FULL = {"iterations": 20000, "names": 1000, "cw_channels": 8, "cw_iterations": 5000,
        "load_states": 100000, "hints": 1000, "rounds": 5, "warmup": 1}
QUICK = {"iterations": 2000, "names": 100, "cw_channels": 8, "cw_iterations": 500,
         "load_states": 10000, "hints": 100, "rounds": 2, "warmup": 1}


def say(text):
    print(time.strftime("%H:%M:%S ") + text, flush=True)


# -- configuration ---------------------------------------------------------------------

def loop(exten, body, n="${N}"):
    """A timed While loop of `n` iterations running `body` (with ${i} the counter)."""
    return f"""\
exten => {exten},1,Answer()
 same => n,Set(i=0)
 same => n,Set(GLOBAL(t0_${{TAG}})={NOW})
 same => n,While($[${{i}} < {n}])
 same => n,{body}
 same => n,Set(i=$[${{i}} + 1])
 same => n,EndWhile()
 same => n,Set(GLOBAL(t1_${{TAG}})={NOW})
 same => n,UserEvent(BenchDone,Tag: ${{TAG}},T0: ${{GLOBAL(t0_${{TAG}})}},T1: ${{GLOBAL(t1_${{TAG}})}},Last: ${{x}})
 same => n,Hangup()
"""


def dialplan(sizes):
    m = sizes["names"]
    name = f"n$[${{i}} % {m}]"
    return "\n".join([
        "[general]\nstatic = yes\nwriteprotect = yes\n",
        "[default]\n",
        "[bench]",
        loop("floor", f"Set(x=${{LEN({name})}})"),
        # A step that sets no variable (a write sets none either; each variable set is a
        # Stasis message): bench/callgrind's baseline for what a write causes on other threads
        loop("noop", f"NoOp({name})"),
        loop("writes", f"Set(PRESENCE_STATE(CustomPresence:{name})=away,sub${{i}},msg${{i}})"),
        loop("reads", f"Set(x=${{PRESENCE_STATE(CustomPresence:{name},message)}})"),
        loop("db_put", f"Set(DB(CustomPresence/{name})=away,sub${{i}},msg${{i}})"),
        loop("db_get", f"Set(x=${{DB(CustomPresence/{name})}})"),
        # hint_fanout: a distinct hinted name per write, the TAG as subtype (a change each time)
        loop("hints", "Set(PRESENCE_STATE(CustomPresence:h${i})=away,${TAG},m${i})"),
        # concurrent_writes: each channel K waits at a barrier (GLOBAL(go_TAG)), then writes
        f"""\
exten => cw,1,Answer()
 same => n,Set(i=0)
 same => n,Set(GLOBAL(ready_${{TAG}}_${{K}})=1)
 same => n,While($["${{GLOBAL(go_${{TAG}})}}" != "1"])
 same => n,Wait(0.002)
 same => n,EndWhile()
 same => n,Set(GLOBAL(t0_${{TAG}}_${{K}})={NOW})
 same => n,While($[${{i}} < ${{N}}])
 same => n,Set(PRESENCE_STATE(CustomPresence:{name})=away,c${{K}},m${{i}})
 same => n,Set(i=$[${{i}} + 1])
 same => n,EndWhile()
 same => n,Set(GLOBAL(t1_${{TAG}}_${{K}})={NOW})
 same => n,UserEvent(BenchDone,Tag: ${{TAG}}_${{K}},T0: ${{GLOBAL(t0_${{TAG}}_${{K}})}},T1: ${{GLOBAL(t1_${{TAG}}_${{K}})}},Last: )
 same => n,Hangup()
""",
        '#include "bench_hints.conf"',
        "",
    ])


def hints_conf(count):
    lines = ["[bench-hints]"]
    lines += ["exten => h%d,hint,,CustomPresence:h%d" % (i, i) for i in range(count)]
    return "\n".join(lines) + "\n"


def configs(sizes):
    return {
        "extensions.conf": dialplan(sizes),
        "bench_hints.conf": hints_conf(0),
        # The harness's manager.conf plus timestampevents: every event carries Asterisk's clock.
        # Per-step dialplan events off (the sample manager.conf's own suggestion): otherwise each
        # loop iteration queues about 7 AMI events, some 100 MB of event queue per loop.
        "manager.conf": instance.manager_conf("timestampevents = yes",
                                              "disabledevents = Newexten,VarSet"),
        # No verbose logging: each dialplan step would otherwise write a log line.
        "logger.conf": "[general]\ndateformat = %F %T.%3q\n\n[logfiles]\nmessages => notice,warning,error\n",
        # Neither presence module autoloads (the harness noloads the stock one in mode "ours");
        # the benchmark loads and unloads them itself.
        "modules.conf": "[modules]\nnoload => %s\n" % OUR_SO,
    }


# -- one Asterisk --------------------------------------------------------------------------

class Bench:
    def __init__(self, ast, sizes):
        self.ast = ast
        self.sizes = sizes
        self.pid = ast.proc.pid                      # chroot execs asterisk: the same process
        self.ami = ast.ami(timeout=30, events="user")  # only UserEvents: the loops' reports
        # Root console verbosity 0 (asterisk.conf says 3): otherwise every dialplan step
        # formats an "Executing ..." line. Through AMI: `asterisk -rx` would set only its own.
        self.command("core set verbose 0")
        if "Root console verbosity:      0" not in self.command("core show settings"):
            raise AsteriskError("could not set the root console verbosity to 0")
        # hint_fanout's listener, connected once for the whole run; Asterisk sends it only
        # PresenceStatus events (an AMI filter), so Python parses little while Asterisk works.
        self.listener = ast.ami(timeout=30, events="call")
        r = self.listener.action({"Action": "Filter", "Operation": "Add",
                                  "Filter": "Event: PresenceStatus"})
        if r.get("Response") != "Success":
            raise AsteriskError("AMI Filter: %r" % dict(r))
        self.tags = 0
        self.loaded = None

    # Asterisk's process, seen through the namespace's /proc (mounted in the root).
    def _proc(self, name):
        with open("%s/proc/%d/%s" % (self.ast.root, self.pid, name)) as f:
            return f.read()

    def rss_kib(self):
        for line in self._proc("status").splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise AsteriskError("no VmRSS for Asterisk")

    def cpu_ticks(self):
        fields = self._proc("stat").rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])     # utime + stime, all threads

    def settle(self, timeout=300):
        """Waits until Asterisk is idle (queued Stasis work done): two quiet 0.2 s windows."""
        deadline = time.monotonic() + timeout
        quiet = 0
        last = self.cpu_ticks()
        while quiet < 2:
            time.sleep(0.2)
            now = self.cpu_ticks()
            quiet = quiet + 1 if now - last <= 1 else 0
            last = now
            if time.monotonic() > deadline:
                raise AsteriskError("Asterisk stayed busy for %ss" % timeout)

    def command(self, cli, timeout=60):
        r = self.ami.action({"Action": "Command", "Command": cli}, timeout)
        if r.get("Response") not in ("Success", "Follows"):
            raise AsteriskError("CLI %r failed: %r" % (cli, dict(r)))
        return "\n".join(v for k, v in r.headers if k.lower() == "output")

    def getvar(self, name):
        r = self.ami.action({"Action": "Getvar", "Variable": name})
        if r.get("Response") != "Success":
            raise AsteriskError("Getvar %s: %r" % (name, dict(r)))
        return r.get("Value", "")

    def clock(self):
        return float(self.getvar("STRFTIME(,,%s.%6q)"))

    # -- modules -----------------------------------------------------------------------

    def module(self, action, mod, timeout=600):
        so = MODULES[mod]
        r = self.ami.action({"Action": "ModuleLoad", "LoadType": action, "Module": so}, timeout)
        if r.get("Response") != "Success":
            raise AsteriskError("module %s %s: %r\n%s" % (action, so, dict(r), self.ast._tail()))
        if self.ast.module_loaded(so) != (action == "load"):
            raise AsteriskError("module %s %s did not take effect" % (action, so))
        self.loaded = mod if action == "load" else None

    def load(self, mod):
        self.module("load", mod)
        self.settle()

    def unload(self):
        if self.loaded:
            self.module("unload", self.loaded)
            self.settle()

    # -- dialplan loops ----------------------------------------------------------------

    def tag(self):
        self.tags += 1
        return "b%d" % self.tags

    def originate(self, exten, tag, n, **variables):
        variables.update(TAG=tag, N=n)
        r = self.ami.action({"Action": "Originate", "Channel": "Local/%s@bench" % exten,
                             "Application": "Wait", "Data": "3600", "Async": "true",
                             "Variable": ["%s=%s" % kv for kv in variables.items()]})
        if r.get("Response") != "Success":
            raise AsteriskError("Originate %s: %r" % (exten, dict(r)))

    def done(self, tags, timeout=600):
        """The BenchDone UserEvents of `tags`: {tag: (t0, t1, last)}."""
        wanted = set(tags)
        events = self.ami.wait_for(
            lambda e: e.get("Event") == "UserEvent" and e.get("UserEvent") == "BenchDone"
            and e.get("Tag") in wanted, timeout=timeout, count=len(wanted))
        events = [events] if len(wanted) == 1 else events
        return {e["Tag"]: (float(e["T0"]), float(e["T1"]), e.get("Last", "")) for e in events}

    def run_loop(self, exten, n):
        tag = self.tag()
        self.originate(exten, tag, n)
        t0, t1, last = self.done([tag])[tag]
        return t1 - t0, last

    def concurrent_writes(self):
        s = self.sizes
        tag = self.tag()
        ks = range(s["cw_channels"])
        for k in ks:
            self.originate("cw", tag, s["cw_iterations"], K=k)
        deadline = time.monotonic() + 60
        while not all(self.getvar("ready_%s_%d" % (tag, k)) == "1" for k in ks):
            if time.monotonic() > deadline:
                raise AsteriskError("concurrent_writes: the channels never got ready")
            time.sleep(0.02)
        self.ami.action({"Action": "SetVar", "Variable": "go_" + tag, "Value": "1"})
        got = self.done(["%s_%d" % (tag, k) for k in ks])
        starts = [t0 for t0, _, _ in got.values()]
        return max(t1 for _, t1, _ in got.values()) - min(starts), max(starts) - min(starts)

    def set_hints(self, count):
        with open(self.ast.host("etc", "bench_hints.conf"), "w") as f:
            f.write(hints_conf(count))
        self.command("dialplan reload")
        out = self.command("core show hints")
        if count and "%d hints registered" % count not in out:
            raise AsteriskError("expected %d hints, got: %s" % (count, out[-200:]))

    def hint_fanout(self):
        """Time from the start of `hints` writes until the last PresenceStatus is emitted."""
        n = self.sizes["hints"]
        self.set_hints(n)
        self.settle()
        listener = self.listener
        tag = self.tag()
        mark = listener.mark()
        self.originate("hints", tag, n)
        t0, _, _ = self.done([tag])[tag]
        deadline = time.monotonic() + 300
        while True:
            found = listener.events(lambda e: e.get("Event") == "PresenceStatus"
                                    and e.get("Subtype") == tag, start=mark)
            if len(found) >= n:
                break
            if time.monotonic() > deadline:
                raise AsteriskError("hint_fanout: %d of %d PresenceStatus events" % (len(found), n))
            time.sleep(0.05)
        if len({e.get("Exten") for e in found}) != n:
            raise AsteriskError("hint_fanout: events for %d distinct hints, wanted %d"
                                % (len({e.get("Exten") for e in found}), n))
        elapsed = max(float(e["Timestamp"]) for e in found) - t0
        self.settle()
        self.set_hints(0)
        self.settle()
        return elapsed

    def check_state(self, name, want_message):
        got = self.getvar("PRESENCE_STATE(CustomPresence:%s,message)" % name)
        if got != want_message:
            raise AsteriskError("%s read back %r, expected %r" % (name, got, want_message))

    def small_workload(self, w):
        """One run of workload `w` with a module loaded: (seconds, start skew or None)."""
        s, n = self.sizes, self.sizes["iterations"]
        last_i = n - 1
        if w == "concurrent_writes":
            return self.concurrent_writes()
        if w == "hint_fanout":
            return self.hint_fanout(), None
        elapsed, last = self.run_loop(w, n)
        if w == "writes":
            self.settle()
            self.check_state("n%d" % (last_i % s["names"]), "msg%d" % last_i)
        elif w == "reads" and last != "msg%d" % last_i:
            raise AsteriskError("reads: the last read gave %r, expected msg%d" % (last, last_i))
        elif w == "db_get" and last != "away":  # UserEvent cuts "away,sub..,msg.." at its comma
            raise AsteriskError("db_get: the last read gave %r" % last)
        return elapsed, None

    # -- load_100k -----------------------------------------------------------------------

    def fill_astdb(self, count):
        """`count` states CustomPresence/load<k> written into AstDB by one SQL statement."""
        self.command("database query \"WITH RECURSIVE c(k) AS (SELECT 0 UNION ALL SELECT k + 1 "
                     "FROM c WHERE k < %d) INSERT OR REPLACE INTO astdb (key, value) SELECT "
                     "'/CustomPresence/load' || k, 'away,lunch,Back at ' || (k %% 1440) FROM c\""
                     % (count - 1), timeout=300)
        stored = self.count_astdb()
        if stored < count:
            raise AsteriskError("AstDB holds %d CustomPresence states, wanted >= %d" % (stored, count))
        return stored

    def count_astdb(self):
        out = self.command("database query \"SELECT count(*) AS states FROM astdb WHERE key "
                           "LIKE '/CustomPresence/%'\"")
        for line in out.splitlines():
            if line.strip().startswith("states"):
                return int(line.split()[-1])
        raise AsteriskError("database query gave no count: %r" % out)

    def timed_load(self, mod):
        """module load with `mod`: Asterisk's clock just before and after (one AMI round trip
        each), RSS before, at return, and once the queued announcements are processed."""
        rss0 = self.rss_kib()
        t0 = self.clock()
        self.ami.action({"Action": "ModuleLoad", "LoadType": "load", "Module": MODULES[mod]}, 600)
        t1 = self.clock()
        rss1 = self.rss_kib()
        if not self.ast.module_loaded(MODULES[mod]):
            raise AsteriskError("module load %s failed\n%s" % (mod, self.ast._tail()))
        self.loaded = mod
        self.settle()
        rss2 = self.rss_kib()
        return {"elapsed": t1 - t0, "rss_before_kib": rss0, "rss_at_return_kib": rss1,
                "rss_settled_kib": rss2}

    def ami_overhead(self):
        """The same clock-read pair around a no-op action (Ping)."""
        t0 = self.clock()
        self.ami.action({"Action": "Ping"})
        return self.clock() - t0


def order(round_no):
    """Alternate which module goes first, so drift during a run hits both alike."""
    return ("stock", "ours") if round_no % 2 == 0 else ("ours", "stock")


def summary(values):
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def start_instance(module_path, sizes, name):
    ast = AsteriskInstance(mode="ours", module_path=module_path, configs=configs(sizes), name=name)
    ast.start(timeout=120)
    stock_copy(ast)
    return ast


def stock_copy(ast):
    """AMI ModuleLoad refuses a module whose real path is outside the module directory: the
    stock module must be a copy there, as ours is, not a link to the packaged file."""
    link = ast.host("modules", STOCK_SO)
    if os.path.islink(link):
        os.unlink(link)
        shutil.copyfile(ast.root + instance.PKG_MODDIR + "/" + STOCK_SO, link)


def run(module_path, sizes, keep=False):
    """The whole benchmark; returns raw samples, memory figures and context (JSON-able)."""
    samples = {w: {"stock": [], "ours": []} for w in WORKLOADS + EXTRAS}
    skews, load_runs, overhead = [], {"stock": [], "ours": []}, []
    ast = start_instance(module_path, sizes, "bench")
    try:
        b = Bench(ast, sizes)
        version = ast.cli("core show version").strip()
        say("Asterisk up (%s), pid %d, RSS %d KiB" % (version.split()[1], b.pid, b.rss_kib()))
        for mod in MODULES.values():
            if ast.module_loaded(mod):
                raise AsteriskError("%s is loaded at start; the benchmark loads it itself" % mod)
        b.settle()
        log_start = len(ast.log_text())           # warnings of start-up are not the run's
        total = sizes["warmup"] + sizes["rounds"]
        # Each workload runs with one module and at once with the other, so the two runs
        # compared lie seconds apart: this VM's speed changes by up to 2x over tens of seconds.
        for r in range(total):
            label = "warm-up" if r < sizes["warmup"] else "round %d/%d" % (r - sizes["warmup"] + 1, sizes["rounds"])
            for i, w in enumerate(SMALL_WORKLOADS):
                got = {}
                for mod in order(r + i):
                    b.load(mod)
                    got[mod], skew = b.small_workload(w)
                    b.unload()
                    if r >= sizes["warmup"]:
                        samples[w][mod].append(got[mod])
                        if skew is not None:
                            skews.append(skew)
                say("%-11s %-17s stock %.3f  ours %.3f" % (label, w, got["stock"], got["ours"]))
        say("load_100k: writing %d states into AstDB" % sizes["load_states"])
        stored = b.fill_astdb(sizes["load_states"])
        b.settle()
        say("AstDB holds %d CustomPresence states" % stored)
        for r in range(total):
            label = "warm-up" if r < sizes["warmup"] else "round %d/%d" % (r - sizes["warmup"] + 1, sizes["rounds"])
            for mod in order(r):
                m = b.timed_load(mod)
                b.unload()
                overhead.append(b.ami_overhead())
                say("%-11s %-5s load_100k %.3f s  RSS %d -> %d (return) -> %d KiB (settled)" % (
                    label, mod, m["elapsed"], m["rss_before_kib"], m["rss_at_return_kib"],
                    m["rss_settled_kib"]))
                if r >= sizes["warmup"]:
                    samples["load_100k"][mod].append(m["elapsed"])
                    load_runs[mod].append(m)
        warnings = [l for l in ast.log_text()[log_start:].splitlines()
                    if "WARNING[" in l or "ERROR[" in l]
        # A burst of announcements fills Stasis queues past their high-water mark of 500
        # (load_100k with either module): counted apart from other warnings.
        queue_warnings = [l for l in warnings if "queue reached" in l]
        warnings = [l for l in warnings if "queue reached" not in l]
    finally:
        if keep:
            ast.stop()
            say("kept run directory %s" % ast.host_dir)
        else:
            ast.cleanup()
    memory = {mod: memory_probe(module_path, sizes, mod, keep) for mod in MODULES}
    return {"asterisk": version, "samples": samples, "stored_states": stored,
            "concurrent_start_skew": skews, "load_runs": load_runs,
            "ami_clock_overhead": overhead, "memory": memory,
            "log_warnings": warnings[-20:], "log_warning_count": len(warnings),
            "queue_warning_count": len(queue_warnings)}


def memory_probe(module_path, sizes, mod, keep):
    """RSS growth from loading `mod` over the same AstDB in a fresh Asterisk (in the shared
    instance, memory freed by earlier rounds is reused, so its RSS deltas understate)."""
    ast = start_instance(module_path, sizes, "benchmem")
    try:
        b = Bench(ast, sizes)
        stored = b.fill_astdb(sizes["load_states"])
        b.settle()
        m = b.timed_load(mod)
        m["bytes_per_state_at_return"] = (m["rss_at_return_kib"] - m["rss_before_kib"]) * 1024 / stored
        m["bytes_per_state_settled"] = (m["rss_settled_kib"] - m["rss_before_kib"]) * 1024 / stored
        m["states"] = stored
        say("memory %-5s fresh Asterisk: load %.3f s, RSS %d -> %d (return) -> %d KiB (settled): "
            "%.0f bytes/state settled" % (mod, m["elapsed"], m["rss_before_kib"], m["rss_at_return_kib"],
                                          m["rss_settled_kib"], m["bytes_per_state_settled"]))
        return m
    finally:
        if keep:
            ast.stop()
        else:
            ast.cleanup()


# -- bench/callgrind ---------------------------------------------------------------------

VALGRIND_FILES = ("callgrind-amd64-linux", "vgpreload_core-amd64-linux.so", "default.supp")


# bench/callgrind's loops per operation, each dumped apart (callgrind.out.<2, 3, ...>-<thread>):
# the floor (${LEN()}: Asterisk's function call), the baseline for the other threads (a loop
# that differs from the operation's only by the operation), then the operation's.
PHASES = {"write": ("floor", "noop", "writes"), "read": ("floor", "reads"), "load": ("load",)}


def callgrind_profile(module_path, mod, op, ops, states, out_dir, conf=None):
    """bench/callgrind's work in the namespace: one Asterisk under valgrind --tool=callgrind
    (every thread counted apart), `mod` loaded, then operation `op` (`conf`: the text of
    presencestate.conf, if any). Callgrind dumps every thread's counts (through vgdb) before
    the loops of PHASES[op] and once Asterisk is idle after each, so each dump holds what one
    loop caused on each thread; the files go to `out_dir` (`callgrind.out.<2 + the loop's
    index>-<thread>`) with `threads.json`, each valgrind thread's LWP and name. Returns the
    states in AstDB."""
    sizes = dict(FULL)
    files = configs(sizes)
    # No CDRs: the CDR engine's work per dialplan step varies by thousands of instructions
    # from run to run (with either module), which the floor cannot take out.
    files["cdr.conf"] = "[general]\nenable = no\n"
    if conf is not None:
        files["presencestate.conf"] = conf
    ast = AsteriskInstance(mode="ours", module_path=module_path, configs=files,
                           name="callgrind-%s-%s" % (mod, op))
    ast._write_configs()          # as AsteriskInstance.start(), but Asterisk under valgrind
    ast._populate_dirs()
    stock_copy(ast)
    vg = ast.host("valgrind")
    os.makedirs(vg)
    shutil.copy("/usr/bin/valgrind.bin", os.path.join(vg, "valgrind"))
    shutil.copy("/usr/bin/vgdb", os.path.join(vg, "vgdb"))
    for name in VALGRIND_FILES:
        shutil.copy(os.path.join("/usr/libexec/valgrind", name), vg)
    os.makedirs(ast.host("log", "callgrind"))
    inner_out = ast.dir + "/log/callgrind/callgrind.out"
    vgdb_prefix = ast.dir + "/log/vgdb"        # this run's own pipes, not the root's /tmp

    def monitor(*command):
        """A callgrind monitor command (dump, v.info scheduler) through vgdb."""
        r = subprocess.run(["chroot", ast.root, ast.dir + "/valgrind/vgdb",
                            "--vgdb-prefix=" + vgdb_prefix, "--pid=%d" % ast.proc.pid]
                           + list(command), capture_output=True, text=True, timeout=600)
        if r.returncode != 0:
            raise AsteriskError("vgdb %s: %s%s" % (" ".join(command), r.stdout, r.stderr))
        return r.stdout

    with open(ast.host("log", "console"), "ab") as console:
        ast.proc = subprocess.Popen(
            ["chroot", ast.root, "env", "VALGRIND_LIB=" + ast.dir + "/valgrind",
             ast.dir + "/valgrind/valgrind", "--tool=callgrind", "--separate-threads=yes",
             "--vgdb=yes", "--vgdb-prefix=" + vgdb_prefix, "--callgrind-out-file=" + inner_out,
             "asterisk", "-f", "-C", ast.conf],
            stdin=subprocess.DEVNULL, stdout=console, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 600
        while not os.path.exists(ast.host("run", "asterisk.ctl")):
            if ast.proc.poll() is not None or time.monotonic() > deadline:
                raise AsteriskError("Asterisk under valgrind did not start\n" + ast._tail())
            time.sleep(0.5)
        ast.cli("core waitfullybooted", timeout=600)
        b = Bench(ast, sizes)
        # Only the harness's UserEvent connection stays logged in (so the manager formats
        # events as for any AMI client); hint_fanout's listener would add its filter's regex
        # matching of every event to the counts.
        b.listener.close()
        b.settle(timeout=600)
        if op == "load":
            b.fill_astdb(states)
            b.settle(timeout=600)
        else:
            b.module("load", mod)
            b.settle(timeout=600)
        if op == "read":
            b.run_loop("writes", ops)
            b.settle(timeout=600)
        monitor("dump", "before")
        if op == "load":
            b.module("load", mod)
            b.settle(timeout=600)
            monitor("dump", op)
        else:
            # The baselines in the same instance, just before: the cost of a loop iteration
            # varies between instances by more than a write costs.
            for loop in PHASES[op]:
                b.run_loop(loop, ops)
                b.settle(timeout=600)
                monitor("dump", loop)
        threads = thread_names(ast, monitor("v.info", "scheduler"))
        count = b.count_astdb()
    finally:
        ast.stop(timeout=600)
    os.makedirs(out_dir, exist_ok=True)
    for path in glob.glob(ast.host("log", "callgrind", "callgrind.out.*-*")):
        if not os.path.basename(path).startswith("callgrind.out.1-"):   # (before the phases)
            shutil.copy(path, out_dir)
    with open(os.path.join(out_dir, "threads.json"), "w") as f:
        json.dump(threads, f, indent=1)
    ast.cleanup()
    return count


def thread_names(ast, scheduler):
    """{valgrind thread number: {"lwp", "name"}} of the threads alive now: Asterisk's name for
    the threads it registered (`core show threads`: the start function, as
    "db_sync_thread"), the kernel's for the others (the module's Rust threads name
    themselves), "main" for the first."""
    registered = {}
    for line in ast.cli("core show threads").splitlines():
        m = re.match(r"^0x[0-9a-f]+ (\d+) (.*?)\s+started at \[\s*\d+\] (\S+)", line)
        if m:
            registered[int(m.group(1))] = "%s (%s)" % (m.group(2), m.group(3))
    threads = {}
    for m in re.finditer(r"^Thread (\d+): status = (\S+).*?\(lwpid (\d+)\)", scheduler, re.M):
        tid, status, lwp = int(m.group(1)), m.group(2), int(m.group(3))
        if status == "VgTs_Empty":
            continue
        name = registered.get(lwp)
        if name is None:
            try:
                with open("%s/proc/%d/task/%d/comm" % (ast.root, ast.proc.pid, lwp)) as f:
                    name = f.read().strip()
            except OSError:
                name = "?"
            name = "main" if tid == 1 else name
        threads[tid] = {"lwp": lwp, "name": name}
    return threads
