"""Shared steps of the integration tests: starting Asterisk with either module, AMI and CLI
helpers, and reading AstDB and the log."""
import os
import time

from instance import DEFAULT_MODULE, AsteriskInstance

MODULE = os.environ.get("FPRS_MODULE", DEFAULT_MODULE)


def requires(*dependencies):
    """Marks a test as needing things a minimal Asterisk build may lack: ("module", "res_pjsip")
    installed in the Asterisk under test, ("app", "sipp") in its root. run.py checks them before
    the test: an unmet one fails it, or with --skip-unmet skips it with the reason (as
    asterisk-test-suite/run does)."""
    def mark(test):
        test.dependencies = dependencies
        return test
    return mark


def prepare(mode="ours", **kwargs):
    """An Asterisk with our module (mode "ours") or the stock one ("stock"), not yet started."""
    kwargs.setdefault("name", os.environ.get("FPRS_RUN_NAME", "run"))
    return AsteriskInstance(mode=mode, module_path=MODULE, **kwargs)


def start(mode="ours", **kwargs):
    """A started Asterisk with our module (mode "ours") or the stock one ("stock")."""
    return prepare(mode, **kwargs).start()


def setvar(ami, provider, value):
    """Writes through the function; returns the AMI response."""
    return ami.action({"Action": "SetVar", "Variable": "PRESENCE_STATE(%s)" % provider, "Value": value})


def getvar(ami, arguments):
    """Reads through the function; returns the value (empty when the read failed)."""
    response = ami.action({"Action": "Getvar", "Variable": "PRESENCE_STATE(%s)" % arguments})
    assert response.get("Response") == "Success", response
    return response.get("Value", "")


def astdb(ami):
    """The CustomPresence AstDB family as {name: value}, exactly (AMI DBGetTree)."""
    response = ami.action({"Action": "DBGetTree", "Family": "CustomPresence"})
    assert response.get("Response") == "Success" or "not found" in response.get("Message", "").lower(), response
    prefix = "/CustomPresence/"
    return {event.get("Key")[len(prefix):]: event.get("Val") for event in getattr(response, "events", [])}


class LogWatch:
    """What the Asterisk log gained since this watch was made."""

    def __init__(self, ast):
        self.ast = ast
        self.start = len(ast.log_text())

    def new(self):
        return self.ast.log_text()[self.start:]

    def wait_for(self, fragment, level="WARNING", timeout=5):
        """The new log line at `level` that holds `fragment` (the logger writes asynchronously)."""
        deadline = time.monotonic() + timeout
        while True:
            for line in self.new().splitlines():
                if level + "[" in line and fragment in line:
                    return line
            if time.monotonic() > deadline:
                raise AssertionError("no %s holding %r in the log; new lines:\n%s" % (level, fragment, self.new()))
            time.sleep(0.05)


def presence_changes(ami, start=0, count=1, timeout=10):
    """`count` PresenceStateChange events from event index `start` on."""
    events = ami.wait_for(lambda e: e.get("Event") == "PresenceStateChange", timeout=timeout, start=start, count=count)
    return [events] if count == 1 else events
