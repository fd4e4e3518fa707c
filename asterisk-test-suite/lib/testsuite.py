"""Runner for tests written in the layout and YAML schema of the public Asterisk testsuite.

Only the subset our tests use is implemented; any other key makes the test FAIL with
"unsupported key ..." rather than be silently ignored. Layout:

    tests/tests.yaml                 tests: [- dir: funcs]  /  [- test: name]
    tests/<group>/<name>/test-config.yaml
    tests/<group>/<name>/configs/ast1/*.conf    laid over the harness's base configs

Supported test objects: test_case.TestCaseModule, test_case.SimpleTestCase,
sipp.SIPpTestCase (scenarios in the test's sipp/ directory).
Supported modules: pluggable_modules.EventActionModule (events ami-start, test-start,
ami-events; actions ami-actions, sipp, stop_test, logger), pluggable_modules.Originator,
ami.AMIEventModule (headermatch, orderedheadermatch). Every key a test may use is one the
upstream testsuite understands, with the upstream meaning: a test that passes here must run
unchanged there.

Differences from upstream, on purpose:
  - A reactor timeout FAILS the test (upstream TestCaseModule just stops): every test must end
    itself (stop_test action, `action: stop`, or SimpleTestCase's expected events).
  - ami-actions are sent in order, each after the previous one's response (upstream sends
    them at once; Asterisk handles the actions of one AMI session in order all the same).
    Responses are logged, never judged, as upstream: a test checks results through events.
  - Event matches are re.match (anchored at the start only) on the header value with
    surrounding white space stripped, as upstream: end a pattern with $ to match a whole value.
  - Once the verdict is FAIL the test stops after FAIL_GRACE seconds instead of waiting.
  - A missing dependency is a FAIL (the provisioned root should have everything), not a skip
    (--skip-unmet: a skip, as upstream).
    The python dependencies `twisted` and `starpy` are what upstream's harness is built on;
    this runner stands in for that harness, so they count as met.

Each test runs in its own namespace (instance.in_namespace) with a fresh Asterisk, laid out
as upstream's harness lays out an instance (testsuite_instance.py). The full list of what
differs from upstream's harness is in ../README.md.
"""

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import traceback

import yaml

LIB = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, LIB)
import instance  # noqa: E402
from ami import AMIError  # noqa: E402
from testsuite_instance import TestsuiteInstance  # noqa: E402

SUITE = os.path.dirname(LIB)
REPO = os.path.dirname(SUITE)
DEFAULT_TIMEOUT = 30        # upstream TestCase's reactor-timeout default
FAIL_GRACE = 1.0            # seconds a failed test keeps running to collect events
ACTION_TIMEOUT = 30         # seconds to wait for the response to an ami-actions action
HARNESS_PYTHON = {"twisted", "starpy"}      # upstream's harness; this runner replaces it


class Unsupported(Exception):
    """A key or value this runner does not implement: the test fails, never runs half-way."""


class Skip(Exception):
    pass


class NotMet(Exception):
    """A dependency is missing: on the provisioned root that is a failure, not a skip."""


def check_keys(where, conf, allowed, required=()):
    if conf is None:
        conf = {}
    if not isinstance(conf, dict):
        raise Unsupported("%s: expected a mapping, got %r" % (where, conf))
    for k in conf:
        if k not in allowed:
            raise Unsupported("unsupported key '%s' in %s" % (k, where))
    for k in required:
        if k not in conf:
            raise Unsupported("%s: missing required key '%s'" % (where, k))
    return conf


def as_list(conf):
    return conf if isinstance(conf, list) else [conf]


def truth(value):
    return str(value).lower() in ("true", "yes", "1")


# Channel snapshot headers: left out of failure messages, which should show the rest.
SNAPSHOT = {h.lower() for h in (
    "Privilege", "Channel", "ChannelState", "ChannelStateDesc", "CallerIDNum", "CallerIDName",
    "ConnectedLineNum", "ConnectedLineName", "Language", "AccountCode", "Context", "Exten",
    "Priority", "Uniqueid", "Linkedid", "SystemName")}


def brief(event):
    return "{%s}" % ", ".join("%s: %s" % (k, shorten(v)) for k, v in event.headers
                              if k.lower() not in SNAPSHOT)


def shorten(text, limit=100):
    """A long header value, cut for a failure message (its length kept)."""
    return text if len(text) <= limit else "%s...(%d bytes)" % (text[:limit - 30], len(text))


def value(event, key):
    """A header's value as upstream's AMI client (starpy) hands it over: stripped."""
    return event[key].strip()


def version_tuple(text):
    return tuple(int(x) for x in re.findall(r"\d+", str(text)))


# -- the test object ---------------------------------------------------------------------

class Test:
    """What the modules plug into (upstream: TestCase): observers, pass/fail, stop."""

    def __init__(self, test_dir, mode, module_path, log):
        self.dir = test_dir
        self.mode = mode
        self.module_path = module_path
        self.log = log
        self.passed = None          # None: nobody reported a result (fails, as upstream)
        self.reasons = []
        self.stop_at = None         # monotonic time at which to stop
        self.stopping = False
        self.ami = None
        self.ast = None
        self.start_observers, self.ami_observers, self.event_observers = [], [], []
        # The test object's own AMI-connect step runs after the modules' (as upstream), so
        # that e.g. ami-start actions are done before SIPp scenarios or calls start.
        self.object_ami_observers = []
        self.stop_observers = []
        self.result_checks, self.pollers = [], []
        self.action_errors = []     # never judged (as upstream); named in a failure's reason

    def set_passed(self, value, reason=None):
        if not value and reason:
            self.reasons.append(reason)
            self.log("FAIL: " + reason)
        if self.passed is not False:        # a failure sticks
            self.passed = bool(value)
        if not value:
            # The verdict cannot change any more: end soon rather than at the reactor
            # timeout, leaving a moment for further events that help diagnose.
            self.stop(FAIL_GRACE)

    def fail(self, reason):
        self.set_passed(False, reason)

    def stop(self, delay=0):
        when = time.monotonic() + float(delay or 0)
        self.stop_at = when if self.stop_at is None else min(self.stop_at, when)

    def originate(self, action, ignore_failure, what):
        """Send an Originate without blocking; its response is checked by the main loop."""
        action_id = self.ami.send(action)
        self.log("-> %s" % action)

        def poll():
            r = self.ami.poll_response(action_id)
            if r is None:
                return False
            self.log("<- %s: %s" % (what, dict(r)))
            if r.get("Response") != "Success" and not ignore_failure:
                self.fail("%s failed: %s" % (what, r.get("Message")))
            return True
        self.pollers.append(poll)


# -- AMI event matching (ami.AMIEventModule instances and ami-events) ---------------------

class HeaderMatch:
    KEYS = ("type", "id", "conditions", "requirements", "count", "action")

    def __init__(self, test, conf, where, extra_keys=(), types=("headermatch",), trigger=None):
        check_keys(where, conf, self.KEYS + tuple(extra_keys), ("conditions",))
        self.test, self.where, self.trigger = test, where, trigger
        self.type = conf.get("type", "headermatch")
        if self.type not in types:
            raise Unsupported("%s: unsupported type '%s'" % (where, self.type))
        if str(conf.get("id", "0")) != "0":
            raise Unsupported("%s: only one Asterisk instance (id 0) is supported" % where)
        cond = check_keys(where + ".conditions", conf["conditions"], ("match", "nomatch"),
                          ("match",))
        self.match, self.nomatch = cond["match"] or {}, cond.get("nomatch") or {}
        if "Event" not in self.match:
            raise Unsupported("%s: conditions.match must name an Event" % where)
        reqs = conf.get("requirements") or ({} if self.type == "headermatch" else [])
        if self.type == "headermatch":
            reqs = [reqs]
        if not isinstance(reqs, list):
            raise Unsupported("%s: orderedheadermatch requirements must be a list" % where)
        self.requirements = [check_keys(where + ".requirements", r, ("match", "nomatch"))
                             for r in reqs]
        self.min, self.max = self._count(conf.get("count"))
        self.action = conf.get("action", "none")
        if self.action not in ("none", "stop"):
            raise Unsupported("%s: unsupported action '%s'" % (where, self.action))
        self.trigger_on_count = truth(conf.get("trigger-on-count", False))
        self.seen = 0
        self.first = None           # first matching event, shown when the count is wrong
        self.ok = True
        test.event_observers.append(self.on_event)
        test.result_checks.append(self.check_result)

    def _count(self, count):
        if count is None:
            return 0, float("inf")
        text = str(count).strip()
        try:
            if text.startswith("<"):
                return 0, int(text[1:])
            if text.startswith(">"):
                return int(text[1:]), float("inf")
            return int(text), int(text)
        except ValueError:
            raise Unsupported("%s: bad count %r" % (self.where, count))

    @staticmethod
    def _matches(event, patterns, negate=False):
        # Upstream semantics: the header must exist; re.match (anchored at the start only).
        for key, pattern in patterns.items():
            if key not in event:
                return False
            if bool(re.match(str(pattern), value(event, key))) == negate:
                return False
        return True

    def describe(self):
        return "%s (%s)" % (self.where, ", ".join("%s: %s" % kv for kv in self.match.items()))

    def on_event(self, event):
        if not (self._matches(event, self.match) and self._matches(event, self.nomatch, True)):
            return
        self.seen += 1
        self.first = self.first or event
        if self.type == "headermatch":
            req = self.requirements[0]
        elif self.seen <= len(self.requirements):
            req = self.requirements[self.seen - 1]
        else:
            req = {}           # requirements exhausted: further events are allowed
        for key, pattern in (req.get("match") or {}).items():
            if key not in event or not re.match(str(pattern), value(event, key)):
                self._bad("requirement %s: '%s' not met in %s" % (key, pattern, brief(event)))
        for key, pattern in (req.get("nomatch") or {}).items():
            if key not in event or re.match(str(pattern), value(event, key)):
                self._bad("requirement %s: must not match '%s' in %s"
                          % (key, pattern, brief(event)))
        if self.seen == self.min and self.action == "stop":
            self.test.stop()
        if self.trigger and self.ok and (not self.trigger_on_count or self.seen == self.min):
            self.trigger(event)

    def _bad(self, why):
        if self.ok:                 # report the first bad event; the rest add nothing
            self.test.fail("%s: %s" % (self.describe(), why))
        self.ok = False

    def check_result(self):
        if not self.min <= self.seen <= self.max:
            want = ("%d" % self.min if self.min == self.max else
                    "at least %d" % self.min if self.max == float("inf") else
                    "at most %d" % self.max)
            self.test.fail("%s: seen %d times, expected %s%s" % (
                self.describe(), self.seen, want,
                "; first: " + brief(self.first) if self.first else ""))
        else:
            self.test.set_passed(self.ok)


class AMIEventModule:
    """ami.AMIEventModule: a list of headermatch / orderedheadermatch instances."""

    def __init__(self, test, conf, where):
        for i, inst in enumerate(as_list(conf)):
            HeaderMatch(test, inst, "%s[%d]" % (where, i),
                        types=("headermatch", "orderedheadermatch"))


# -- pluggable_modules.EventActionModule ---------------------------------------------------

class AMIStartEvent:
    def __init__(self, test, conf, where, trigger):
        check_keys(where, conf, ("id",))
        test.ami_observers.append(lambda: trigger(None))


class TestStartEvent:
    def __init__(self, test, conf, where, trigger):
        check_keys(where, conf, ())
        test.start_observers.append(lambda: trigger(None))


class AMIEvents:
    def __init__(self, test, conf, where, trigger):
        for i, inst in enumerate(as_list(conf)):
            HeaderMatch(test, inst, "%s[%d]" % (where, i), ("trigger-on-count",),
                        trigger=trigger)


def var_replace(text, event):
    """Upstream's {header} substitution from the triggering AMI event."""
    if not isinstance(text, str) or event is None:
        return text
    for var in re.findall(r"(?<!\\){([^}]*)(?<!\\)}", text):
        if var not in event:
            raise Unsupported("cannot replace {%s}: no such header in the event" % var)
        text = text.replace("{%s}" % var, value(event, var))
    return text


class AMIActions:
    def __init__(self, test, conf, where):
        self.test, self.where = test, where
        self.items = []
        for i, inst in enumerate(as_list(conf)):
            w = "%s[%d]" % (where, i)
            check_keys(w, inst, ("action", "id"), ("action",))
            if str(inst.get("id", 0)) != "0":
                raise Unsupported("%s: only one Asterisk instance (id 0) is supported" % w)
            if not isinstance(inst["action"], dict) or "Action" not in inst["action"]:
                raise Unsupported("%s.action: expected a mapping with an Action" % w)
            self.items.append((w, inst))

    def run(self, event):
        for w, inst in self.items:
            action = {k: var_replace(str(v), event) for k, v in inst["action"].items()}
            self.test.log("-> %s" % action)
            # Wait for the response only to log it (a list action: once its list is
            # complete); upstream does not look at it, and neither does a test here.
            r = self.test.ami.action(action, timeout=ACTION_TIMEOUT)
            self.test.log("<- %s" % dict(r))
            if r.get("Response") == "Error":
                self.test.action_errors.append("%s %s: %s" % (
                    w, action["Action"], r.get("Message")))


class StopTestAction:
    def __init__(self, test, conf, where):
        check_keys(where, conf, ())
        self.test = test

    def run(self, event):
        self.test.stop()


class LoggerAction:
    def __init__(self, test, conf, where):
        self.message = check_keys(where, conf, ("message",), ("message",))["message"]
        self.test = test

    def run(self, event):
        self.test.log("logger: %s" % self.message)


EVENT_PLUGINS = {"ami-start": AMIStartEvent, "test-start": TestStartEvent,
                 "ami-events": AMIEvents}
ACTION_PLUGINS = {"ami-actions": AMIActions, "stop_test": StopTestAction,
                  "logger": LoggerAction, "sipp": None}      # sipp: SIPpAction, set below


class EventActionModule:
    def __init__(self, test, conf, where):
        if isinstance(conf, dict) and "mapping" in conf:
            conf = check_keys(where, conf, ("mapping",))["mapping"]
        for i, plug_set in enumerate(as_list(conf)):
            w = "%s[%d]" % (where, i)
            if not isinstance(plug_set, dict):
                raise Unsupported("%s: expected a mapping of events and actions" % w)
            actions = []

            def trigger(event, actions=actions):
                if not test.stopping:
                    for a in actions:
                        a.run(event)
            n_events = 0
            for name, plug_conf in plug_set.items():
                if name in EVENT_PLUGINS:
                    EVENT_PLUGINS[name](test, plug_conf, "%s.%s" % (w, name), trigger)
                    n_events += 1
                elif name in ACTION_PLUGINS:
                    actions.append(ACTION_PLUGINS[name](test, plug_conf, "%s.%s" % (w, name)))
                else:
                    raise Unsupported("unsupported key '%s' in %s" % (name, w))
            if not n_events:
                raise Unsupported("%s: an event/action set needs at least one event" % w)


# -- pluggable_modules.Originator ------------------------------------------------------------

class Originator:
    def __init__(self, test, conf, where):
        conf = check_keys(where, conf, (
            "channel", "application", "data", "context", "exten", "priority",
            "ignore-originate-failure", "trigger", "event", "id", "async", "timeout"))
        if str(conf.get("id", "0")) != "0":
            raise Unsupported("%s: only one Asterisk instance (id 0) is supported" % where)
        self.test, self.conf, self.where = test, conf, where
        trigger = conf.get("trigger", "scenario_start")
        if trigger == "ami_connect":
            test.ami_observers.append(self.originate)
        elif trigger == "event":
            if "event" not in conf:
                raise Unsupported("%s: trigger 'event' needs an 'event'" % where)
            # Upstream originates on every matching event (no trigger-on-count here).
            HeaderMatch(test, conf["event"], where + ".event", trigger=lambda ev: self.originate())
        else:
            raise Unsupported("%s: unsupported trigger '%s'" % (where, trigger))

    def originate(self):
        c = self.conf
        action = {"Action": "Originate", "Channel": c.get("channel", "Local/s@default")}
        if c.get("context"):
            action.update(Context=c["context"], Exten=c.get("exten", ""),
                          Priority=c.get("priority", ""))
        else:
            action.update(Application=c.get("application", "Echo"), Data=c.get("data", ""))
        if truth(c.get("async", False)):
            action["Async"] = "true"
        if c.get("timeout"):
            action["Timeout"] = int(float(c["timeout"]) * 1000)
        self.test.originate(action, truth(c.get("ignore-originate-failure", "no")), self.where)


# -- test objects ------------------------------------------------------------------------------

OBJECT_KEYS = {
    "test_case.TestCaseModule": ("reactor-timeout", "connect-ami", "asterisk-instances"),
    "sipp.SIPpTestCase": ("reactor-timeout", "fail-on-any", "test-iterations",
                          "stop-after-scenarios"),
    "test_case.SimpleTestCase": ("reactor-timeout", "test-iterations", "expected_events",
                                 "ignore-originate-failures", "spawn-after-hangup",
                                 "end-test-delay"),
}
MODULES = {"pluggable_modules.EventActionModule": EventActionModule,
           "pluggable_modules.Originator": Originator,
           "ami.AMIEventModule": AMIEventModule}


class SimpleTestCase:
    """Originate each test iteration; pass when `expected_events` UserEvents arrived."""

    def __init__(self, test, conf):
        self.test = test
        self.iterations = []
        for i, it in enumerate(conf.get("test-iterations") or
                               [{"channel": "Local/100@test", "application": "Echo"}]):
            check_keys("test-iterations[%d]" % i, it, (
                "channel", "application", "context", "exten", "priority", "async"),
                ("channel",))
            self.iterations.append(it)
        self.expected = int(conf.get("expected_events", 1))
        self.ignore_failures = truth(conf.get("ignore-originate-failures", False))
        self.spawn_after_hangup = truth(conf.get("spawn-after-hangup", False))
        self.end_delay = float(conf.get("end-test-delay") or 0)
        self.current, self.user_events = 0, 0
        self.channels = {}                    # channel name -> iteration, from VarSet
        test.object_ami_observers.append(self.start_call)
        test.event_observers.append(self.on_event)
        test.result_checks.append(self.check_result)

    def start_call(self):
        if self.current >= len(self.iterations):
            self.test.stop(self.end_delay)
            return
        it = self.iterations[self.current]
        action = {"Action": "Originate", "Channel": it["channel"],
                  "Variable": "testuniqueid=%d" % self.current}
        if "application" in it:
            action["Application"] = it["application"]
        else:
            action.update(Context=it.get("context"), Exten=it.get("exten"),
                          Priority=it.get("priority"))
        if truth(it.get("async", False)):
            action["Async"] = "true"
        self.test.originate(action, self.ignore_failures, "test-iterations[%d]" % self.current)

    def on_event(self, ev):
        name = ev.get("Event")
        if name == "VarSet" and ev.get("Variable") == "testuniqueid":
            self.channels[ev.get("Channel")] = ev.get("Value")
        elif name == "Hangup" and self.spawn_after_hangup and \
                self.channels.pop(ev.get("Channel"), None) == str(self.current):
            self.current += 1
            self.start_call()
        elif name == "UserEvent" and self.expected:
            self.user_events += 1
            if self.user_events == self.expected:
                self.test.set_passed(True)
                self.test.stop(self.end_delay)
            elif not self.spawn_after_hangup:
                self.current += 1
                self.start_call()

    def check_result(self):
        if self.user_events < self.expected:
            self.test.fail("test_case.SimpleTestCase: %d of %d UserEvents"
                           % (self.user_events, self.expected))


def check_scenarios(where, scenarios):
    """Validate a list of scenarios {key-args: {scenario: x.xml, ...}, ordered-args, target}."""
    if not isinstance(scenarios, list) or not scenarios:
        raise Unsupported("%s: expected a non-empty list of scenarios" % where)
    for j, sc in enumerate(scenarios):
        check_keys("%s[%d]" % (where, j), sc, ("key-args", "ordered-args", "target"),
                   ("key-args",))
        if "scenario" not in (sc["key-args"] or {}):
            raise Unsupported("%s[%d]: key-args needs a scenario" % (where, j))
    return scenarios


class SIPpSequence:
    """Sets of SIPp scenarios run one set after another, the scenarios of a set in parallel.

    Scenario files are the test's sipp/ directory (copied into the run, as SIPp runs in the
    chroot). A scenario passes when SIPp exits 0. As upstream's SIPpScenario: defaults
    -p 5061 -m 1 -i 127.0.0.1 -timeout 20s, target 127.0.0.1, and -nr (no retransmissions)
    unless ordered-args hold -enable-retrans; -inf/-slave_cfg/-oocsf name files in sipp/.
    fail_on_any: a failed scenario fails the test and stops it. A failure is always reported;
    success is reported only when `report_pass` (SIPpTestCase), as upstream.
    """

    DEFAULTS = {"-p": "5061", "-m": "1", "-i": "127.0.0.1", "-timeout": "20s"}
    PATH_ARGS = ("-inf", "-slave_cfg", "-oocsf")

    def __init__(self, test, sets, fail_on_any, stop_after, report_pass, on_done=None):
        self.test, self.sets = test, sets
        self.fail_on_any, self.stop_after = fail_on_any, stop_after
        self.report_pass, self.on_done = report_pass, on_done
        self.current = -1
        self.running = []                  # (name, Popen, stderr log path)
        test.stop_observers.append(self.kill)

    def start(self):
        self.current = -1
        self.next_set()

    def next_set(self):
        self.current += 1
        if self.current >= len(self.sets):
            if self.on_done:
                self.on_done()
            if self.stop_after:
                self.test.stop()
            return
        ast = self.test.ast
        src = os.path.join(self.test.dir, "sipp")
        dst = ast.host("sipp")
        if not os.path.isdir(dst):
            shutil.copytree(src, dst)
        for j, sc in enumerate(self.sets[self.current]):
            args = dict(self.DEFAULTS)
            args.update({str(k): str(v) for k, v in sc["key-args"].items()})
            name = args.pop("scenario")
            for key in self.PATH_ARGS:
                if key in args:
                    args[key] = ast.dir + "/sipp/" + args[key]
            argv = ["chroot", ast.root, "sipp", str(sc.get("target", "127.0.0.1")),
                    "-sf", ast.dir + "/sipp/" + name, "-nostdin", "-skip_rlimit"]
            for k, v in args.items():
                argv += [k, v]
            ordered = [str(a) for a in sc.get("ordered-args") or []]
            if "-enable-retrans" in ordered:
                argv += [a for a in ordered if a != "-enable-retrans"]
            else:
                argv += ["-nr"] + ordered
            log = ast.host("sipp", "%d-%d-%s" % (self.current, j, name))
            self.test.log("sipp: %s" % " ".join(argv))
            # stderr apart: it holds SIPp's reason for failing (stdout: screens of stats).
            with open(log + ".out", "wb") as out, open(log + ".err", "wb") as err:
                proc = subprocess.Popen(argv, cwd=dst, stdin=subprocess.DEVNULL, stdout=out,
                                        stderr=err, env=dict(os.environ, TERM="vt100"))
            self.running.append((name, proc, log + ".err"))
        self.test.pollers.append(self.poll)

    def poll(self):
        if any(p.poll() is None for _, p, _ in self.running):
            return False
        for name, proc, log in self.running:
            if proc.returncode == 0:
                self.test.log("SIPp scenario %s passed" % name)
                if self.report_pass:
                    self.test.set_passed(True)
            else:
                with open(log, errors="replace") as f:
                    why = " ".join(f.read().split())[:600]      # one line, bounded
                self.test.fail("SIPp scenario %s exited with %s: %s"
                               % (name, proc.returncode, why))
                if self.fail_on_any:
                    self.test.stop()
        self.running = []
        if not self.test.stopping and self.test.stop_at is None:
            self.next_set()
        return True

    def kill(self):
        for name, proc, _ in self.running:
            if proc.poll() is None:
                self.test.fail("SIPp scenario %s still running at the end" % name)
                proc.kill()
                proc.wait()


class SIPpTestCase:
    """sipp.SIPpTestCase: the scenario sets of test-iterations, started once AMI is up."""

    def __init__(self, test, conf):
        sets = []
        for i, it in enumerate(conf.get("test-iterations") or []):
            w = "test-iterations[%d]" % i
            check_keys(w, it, ("scenarios",), ("scenarios",))
            sets.append(check_scenarios(w + ".scenarios", it["scenarios"]))
        if not sets:
            raise Unsupported("sipp.SIPpTestCase needs test-iterations")
        self.sequence = SIPpSequence(test, sets, truth(conf.get("fail-on-any", True)),
                                     truth(conf.get("stop-after-scenarios", True)),
                                     report_pass=True)
        test.object_ami_observers.append(self.sequence.start)


class SIPpAction:
    """The `sipp` action of EventActionModule: run one set of scenarios (in parallel) each
    time the set's event fires. As upstream, a passing scenario does not by itself pass the
    test: another module (e.g. an ami-events match) must."""

    def __init__(self, test, conf, where):
        conf = check_keys(where, conf, ("scenarios", "fail-on-any", "stop-after-scenarios"),
                          ("scenarios",))
        scenarios = check_scenarios(where + ".scenarios", conf["scenarios"])
        self.sequence = SIPpSequence(test, [scenarios], truth(conf.get("fail-on-any", True)),
                                     truth(conf.get("stop-after-scenarios", True)),
                                     report_pass=False)

    def run(self, event):
        self.sequence.start()


OBJECTS = {"test_case.SimpleTestCase": SimpleTestCase, "sipp.SIPpTestCase": SIPpTestCase}
ACTION_PLUGINS["sipp"] = SIPpAction


# -- parsing test-config.yaml ---------------------------------------------------------------

class TestSpec:
    """test-config.yaml, validated. Building modules needs a Test, so it happens later."""

    def __init__(self, test_dir):
        self.dir = test_dir
        with open(os.path.join(test_dir, "test-config.yaml")) as f:
            cfg = yaml.safe_load(f) or {}
        self.cfg = cfg
        info = check_keys("testinfo", cfg.get("testinfo"),
                          ("summary", "description", "skip", "issues"))
        self.skip = info.get("skip")
        props = check_keys("properties", cfg.get("properties"), (
            "minversion", "maxversion", "dependencies", "tags", "expectedResult"))
        self.minversion, self.maxversion = props.get("minversion"), props.get("maxversion")
        self.dependencies = props.get("dependencies") or []
        self.tags = [str(t) for t in props.get("tags") or []]
        self.expected = props.get("expectedResult", True) not in (False, "False", "false")
        tm = check_keys("test-modules", cfg.get("test-modules"), ("test-object", "modules"),
                        ("test-object",))
        obj = check_keys("test-modules.test-object", tm["test-object"],
                         ("config-section", "typename"), ("typename",))
        self.typename = obj["typename"]
        if self.typename not in OBJECT_KEYS:
            raise Unsupported("unsupported test object '%s'" % self.typename)
        used = {"testinfo", "properties", "test-modules"}
        self.object_conf = self._section(cfg, obj.get("config-section"), used)
        check_keys(obj.get("config-section") or "test-object", self.object_conf,
                   OBJECT_KEYS[self.typename])
        self.timeout = float(self.object_conf.get("reactor-timeout", DEFAULT_TIMEOUT))
        if int(self.object_conf.get("asterisk-instances", 1)) != 1:
            raise Unsupported("asterisk-instances: only 1 is supported")
        connect = self.object_conf.get("connect-ami", False)
        if not isinstance(connect, bool):
            raise Unsupported("connect-ami: only True/False is supported")
        self.connect_ami = connect or self.typename in OBJECTS     # these always use AMI
        self.modules = []
        for i, m in enumerate(tm.get("modules") or []):
            w = "test-modules.modules[%d]" % i
            check_keys(w, m, ("config-section", "typename", "minversion", "maxversion"),
                       ("config-section", "typename"))
            if m["typename"] not in MODULES:
                raise Unsupported("unsupported module '%s'" % m["typename"])
            section = self._section(cfg, m["config-section"], used)
            self.modules.append((m, section))
        for key in cfg:
            if key not in used:
                raise Unsupported("unsupported key '%s' in test-config.yaml" % key)

    @staticmethod
    def _section(cfg, name, used):
        if name is None:
            return {}
        if name not in cfg:
            raise Unsupported("config-section '%s' not found" % name)
        used.add(name)
        return cfg[name]


def version_ok(version, minv, maxv):
    return ((minv is None or version >= version_tuple(minv)) and
            (maxv is None or version < version_tuple(maxv)))


def check_dependencies(spec, inst, mode, module_path):
    """Raise Skip / Unsupported / NotMet for unmet properties; return the version."""
    root = inst.root
    version = version_tuple(inst.version().split("+")[0])
    if spec.skip:
        raise Skip(str(spec.skip))
    if not version_ok(version, spec.minversion, spec.maxversion):
        raise Skip("Asterisk %s outside [%s, %s)" % (
            ".".join(map(str, version)), spec.minversion, spec.maxversion))
    for dep in spec.dependencies:
        if not isinstance(dep, dict) or len(dep) != 1:
            raise Unsupported("unsupported dependency %r" % (dep,))
        (kind, name), = dep.items()
        if kind == "python":
            try:
                ok = name in HARNESS_PYTHON or bool(__import__(name))
            except ImportError:
                ok = False
        elif kind == "app":
            ok = any(os.access(root + d + "/" + name, os.X_OK)
                     for d in ("/usr/bin", "/usr/sbin", "/bin", "/sbin"))
        elif kind in ("asterisk", "module"):
            # Installed, as upstream checks; in mode ours our build counts as installed.
            ok = (os.path.exists("%s%s/%s.so" % (root, inst.moddir, name)) or
                  (mode == "ours" and name == instance.OUR_SO[:-3]
                   and os.path.exists(module_path or "")))
        elif kind == "buildoption":
            with open(root + inst.include_dir + "/asterisk/buildopts.h") as f:
                ok = re.search(r"#define %s\b" % re.escape(name), f.read()) is not None
        else:
            raise Unsupported("unsupported dependency kind '%s'" % kind)
        if not ok:
            raise NotMet("dependency not met: %s: %s" % (kind, name))
    return version


def test_path(test_dir):
    """The test's path below the tests/ directory (upstream names its run directories by it)."""
    parts = os.path.abspath(test_dir).rstrip("/").split("/")
    if "tests" in parts:
        i = len(parts) - 1 - parts[::-1].index("tests")
        return "/".join(parts[i + 1:])
    return parts[-1]


def read_configs(test_dir):
    configs = {}
    base = os.path.join(test_dir, "configs")
    if os.path.isdir(base):
        for entry in sorted(os.listdir(base)):
            if entry != "ast1":
                raise Unsupported("configs/%s: only one Asterisk instance (ast1)" % entry)
        ast1 = os.path.join(base, "ast1")
        for name in sorted(os.listdir(ast1)):
            path = os.path.join(ast1, name)
            if not os.path.isfile(path):
                raise Unsupported("configs/ast1/%s: only plain files are supported" % name)
            with open(path) as f:
                configs[name] = f.read()
    return configs


# -- running one test (inside its namespace) --------------------------------------------------

def run_test(test_dir, mode, module_path, keep=False, skip_unmet=False):
    """Run one test; returns {"status": pass|fail|skip, "reason": str, "run_dir": str|None}.

    `infra` marks failures of the harness or of Asterisk itself, which expectedResult never
    turns into a pass. skip_unmet: an unmet dependency skips the test (upstream's way)
    instead of failing it.
    """
    inst = instance.Installation()
    try:
        spec = TestSpec(test_dir)
        version = check_dependencies(spec, inst, mode, module_path)
        configs = read_configs(test_dir)
    except Skip as e:
        return {"status": "skip", "reason": str(e), "run_dir": None}
    except NotMet as e:
        return {"status": "skip" if skip_unmet else "fail", "reason": str(e), "run_dir": None}
    except (Unsupported, NotMet, yaml.YAMLError, OSError) as e:
        return {"status": "fail", "reason": str(e), "run_dir": None}
    except (ValueError, TypeError, KeyError) as e:      # e.g. reactor-timeout: 'soon'
        return {"status": "fail", "reason": "bad value in test-config.yaml: %r" % (e,),
                "run_dir": None}

    lines = []                  # test.log: buffered until the run directory exists

    def log(msg):
        lines.append("[%.3f] %s\n" % (time.monotonic(), msg))
        if logf:
            logf.writelines(lines)
            logf.flush()
            lines.clear()
    logf = None
    test = Test(test_dir, mode, module_path, log)
    try:
        build_modules(spec, test, version)
    except Unsupported as e:
        return {"status": "fail", "reason": str(e), "run_dir": None}
    except (ValueError, TypeError, KeyError) as e:
        return {"status": "fail", "reason": "bad value in test-config.yaml: %r" % (e,),
                "run_dir": None}

    deps = [str(v) for d in spec.dependencies for k, v in d.items()
            if k in ("asterisk", "module")]
    ast = TestsuiteInstance(mode, module_path, configs, test_path(test_dir), deps,
                            installation=inst)
    logf = open(ast.host("test.log"), "w")
    log("test %s, mode %s" % (test_dir, mode))
    infra = None
    try:
        rc = _execute(spec, test, ast, log)
        if rc != 0:
            infra = "Asterisk exited with status %s" % rc
    except Unsupported as e:
        test.fail(str(e))
    except Exception as e:                  # Asterisk/AMI trouble, or a bug here
        infra = "%s: %s" % (type(e).__name__, e)
        log(traceback.format_exc())
    finally:
        try:
            rc = ast.stop()                 # None unless _execute failed half-way
            if rc not in (None, 0):         # e.g. -11: it crashed, which broke the AMI
                infra = "%sAsterisk exited with status %s" % (
                    infra + "; " if infra else "", rc)
        except Exception as e:
            infra = infra or "stopping Asterisk: %s" % e
        if test.ami is not None:
            with open(ast.host("ami-events.log"), "w") as f:
                for ev in test.ami.history:
                    f.write("".join("%s: %s\n" % kv for kv in ev.headers) + "\n")
        logf.close()

    passed = test.passed is True and not test.reasons
    reason = "; ".join(test.reasons) or ("no module reported a result" if not passed else "")
    # Every test is judged the same way in both modes: under --stock a test of a stock
    # defect (tag stock-defect) simply FAILs, with its reason.
    expected = spec.expected
    if infra:
        status, reason = "fail", infra
    elif passed == expected:
        status = "pass"
        reason = "" if expected else "expected failure: " + reason
    else:
        status = "fail"
        if not expected:
            reason = "expected to fail (expectedResult: False) but passed"
        elif test.action_errors:
            reason += " [AMI actions answered Error: %s]" % "; ".join(test.action_errors)
    if status == "pass" and not keep:
        ast.cleanup()
        return {"status": status, "reason": reason, "run_dir": None}
    return {"status": status, "reason": reason, "run_dir": ast.host_dir}


def build_modules(spec, test, version):
    if spec.typename in OBJECTS:
        OBJECTS[spec.typename](test, spec.object_conf)
    for m, section in spec.modules:
        if version_ok(version, m.get("minversion"), m.get("maxversion")):
            MODULES[m["typename"]](test, section, m["config-section"])
    if (test.event_observers or test.ami_observers) and not spec.connect_ami:
        raise Unsupported("AMI modules need 'connect-ami: True' in the test object")


def _execute(spec, test, ast, log):
    ast.start()
    log("Asterisk started in %s (mode %s)" % (ast.host_dir, test.mode))
    test.ast = ast
    deadline = time.monotonic() + spec.timeout      # reactor-timeout counts from start
    for cb in test.start_observers:
        cb()
    if spec.connect_ami:
        test.ami = ast.ami()
        for cb in test.ami_observers + test.object_ami_observers:
            cb()
    cursor = 0
    timed_out = False
    while True:
        now = time.monotonic()
        if test.stop_at is not None and now >= test.stop_at:
            break
        if now >= deadline:
            timed_out = True
            break
        if test.ami is not None:
            cursor = _dispatch(test, cursor)
            test.pollers = [p for p in test.pollers if not p()]
            if test.ami.closed:
                raise AMIError("AMI connection lost (%s)" % test.ami.close_reason)
            wait_until = min(deadline, test.stop_at or deadline)
            test.ami.wait_event(max(0.0, min(0.2, wait_until - time.monotonic())), cursor)
        else:
            time.sleep(0.05)
    # Stop Asterisk first (as upstream), then judge with every event that arrived before.
    test.stopping = True
    for cb in test.stop_observers:
        cb()
    rc = ast.stop()
    log("Asterisk stopped: %s" % rc)
    if test.ami is not None:
        _dispatch(test, cursor)
    if timed_out:
        test.fail("reactor timeout after %gs" % spec.timeout)
    for check in test.result_checks:
        check()
    return rc


def _dispatch(test, cursor):
    for ev in test.ami.events(start=cursor):
        cursor += 1
        test.log("event %s" % dict(ev))
        for observer in list(test.event_observers):
            observer(ev)
    return cursor


# -- the host side: discovery, build, one namespace per test -------------------------------

def discover(path, tags=()):
    """Tests under `path` in tests.yaml order (or `path` itself if it holds a test)."""
    path = os.path.abspath(path)
    if os.path.exists(os.path.join(path, "test-config.yaml")):
        return [path]
    index = os.path.join(path, "tests.yaml")
    if not os.path.exists(index):
        raise SystemExit("no test-config.yaml or tests.yaml in %s" % path)
    with open(index) as f:
        entries = (yaml.safe_load(f) or {}).get("tests") or []
    found = []
    for entry in entries:
        if not isinstance(entry, dict) or len(entry) != 1 or \
                not set(entry) <= {"test", "dir"}:
            raise SystemExit("%s: unsupported entry %r" % (index, entry))
        (kind, name), = entry.items()
        sub = os.path.join(path, str(name))
        if kind == "test" and not os.path.exists(os.path.join(sub, "test-config.yaml")):
            raise SystemExit("%s: test '%s' has no test-config.yaml" % (index, name))
        found += discover(sub) if kind == "dir" else [sub]
    return found


def has_tags(test_dir, tags):
    if not tags:
        return True
    try:
        with open(os.path.join(test_dir, "test-config.yaml")) as f:
            have = set(map(str, ((yaml.safe_load(f) or {}).get("properties") or {})
                           .get("tags") or []))
    except (OSError, yaml.YAMLError, AttributeError):
        return True                         # let the run report the broken file
    return set(tags) <= have


def reactor_timeout(test_dir):
    try:
        with open(os.path.join(test_dir, "test-config.yaml")) as f:
            cfg = yaml.safe_load(f)
        obj = cfg["test-modules"]["test-object"].get("config-section")
        return float(cfg[obj].get("reactor-timeout", DEFAULT_TIMEOUT))
    except Exception:
        return DEFAULT_TIMEOUT


def script(name):
    """Run scripts/<name> (progress on stderr) and return the path it prints."""
    r = subprocess.run([os.path.join(REPO, "scripts", name)], stdout=subprocess.PIPE,
                       text=True)
    if r.returncode != 0:
        raise SystemExit("scripts/%s failed (exit %s)" % (name, r.returncode))
    return r.stdout.strip().splitlines()[-1]


def main(argv=None):
    p = argparse.ArgumentParser(prog="run", description=__doc__.split("\n")[0])
    p.add_argument("--stock", action="store_true",
                   help="test Asterisk's stock func_presencestate.so instead of ours")
    p.add_argument("--module", help="use this built module instead of running "
                   "scripts/build-module")
    p.add_argument("-t", "--tag", action="append", default=[],
                   help="run only tests having this tag (repeatable: all must match)")
    p.add_argument("--keep", action="store_true", help="keep run directories of passed tests")
    p.add_argument("--skip-unmet", action="store_true",
                   help="skip a test whose dependencies are not met, as upstream does (default: "
                   "fail it; e.g. a source build without PJSIP has no res_pjsip)")
    p.add_argument("tests", nargs="*", help="test directories or directories with tests.yaml "
                   "(default: tests/)")
    args = p.parse_args(argv)

    root = script("asterisk-root")
    os.environ["ASTERISK_ROOT"] = root
    mode = "stock" if args.stock else "ours"
    module_path = args.module
    if module_path is None and not args.stock:
        if not os.path.exists(os.path.join(REPO, "scripts", "build-module")):
            raise SystemExit("scripts/build-module is missing: only --stock can run")
        module_path = script("build-module")
    if module_path:
        module_path = os.path.abspath(module_path)

    tests = []
    for path in args.tests or [os.path.join(SUITE, "tests")]:
        tests += [t for t in discover(path) if has_tags(t, args.tag)]

    passed = failed = 0
    for t in tests:
        name = os.path.relpath(t, SUITE) if t.startswith(SUITE + "/") else t
        with tempfile.TemporaryFile() as out:
            try:
                res = instance.in_namespace("testsuite:run_test", t, mode, module_path,
                                            args.keep, args.skip_unmet, root=root, output=out,
                                            timeout=reactor_timeout(t) + 150)
            except instance.AsteriskError as e:
                out.seek(0)
                tail = out.read().decode("utf-8", "replace").strip().splitlines()[-5:]
                res = {"status": "fail", "reason": " | ".join([str(e)] + tail),
                       "run_dir": None}
        where = " (logs: %s)" % res["run_dir"] if res["run_dir"] else ""
        if res["status"] == "skip":
            print("SKIP %s: %s" % (name, res["reason"]), flush=True)
        elif res["status"] == "pass":
            passed += 1
            print("PASS %s%s" % (name, " (%s)" % res["reason"] if res["reason"] else ""),
                  flush=True)
        else:
            failed += 1
            print("FAIL %s: %s%s" % (name, res["reason"], where), flush=True)
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed or not tests else 0


if __name__ == "__main__":
    sys.exit(main())
