"""Shared steps of the integration tests: starting Asterisk with either module, AMI and CLI
helpers, and reading AstDB and the log."""
import os
import subprocess
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
    """An Asterisk with our module (mode "ours") or the stock one ("stock"), not yet started;
    `module_path` (default: FPRS_MODULE's, as the process started) names another build."""
    kwargs.setdefault("name", os.environ.get("FPRS_RUN_NAME", "run"))
    kwargs.setdefault("module_path", MODULE)
    return AsteriskInstance(mode=mode, **kwargs)


def start(mode="ours", **kwargs):
    """A started Asterisk with our module (mode "ours") or the stock one ("stock")."""
    return prepare(mode, **kwargs).start()


def prepare_with_small_astdb(mode="ours"):
    """An Asterisk (not yet started) whose AstDB lives on a 1 MB tmpfs, mounted in this test's
    private mount namespace only, so that `fill_astdb` can make AstDB refuse writes."""
    ast = prepare(mode)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "fprs-astdb", ast.host("db")], check=True)
    return ast


def fill_filesystem(directory):
    """Fills the filesystem holding `directory`; returns the filler's path."""
    filler = os.path.join(directory, "filler")
    with open(filler, "wb") as f:
        try:
            while True:
                f.write(b"\0" * 65536)
                f.flush()
        except OSError:
            pass
    return filler


def fill_astdb(ast):
    """Fills AstDB's filesystem once what was written before is committed (AstDB commits its
    transaction about once a second); returns the filler's path (unlink it to make room)."""
    time.sleep(1.5)
    filler = fill_filesystem(ast.host("db"))
    time.sleep(1.5)
    return filler


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
