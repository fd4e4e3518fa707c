"""Shared steps of the test_admin*.py tests: reading `presencestate show` and `stats`, the
CustomPresenceMeta family, and AMI actions of the module."""
import re

PRESENCE_CONF_ERRORS = "presencestate.conf"


def family(ami, name):
    """AstDB family `name` as {key: value} (AMI DBGetTree)."""
    response = ami.action({"Action": "DBGetTree", "Family": name})
    assert response.get("Response") == "Success" or "not found" in response.get("Message", "").lower(), response
    prefix = "/%s/" % name
    return {e.get("Key")[len(prefix):]: e.get("Val") for e in getattr(response, "events", [])}


def meta(ami):
    """The module's own family CustomPresenceMeta as {name: record}."""
    return family(ami, "CustomPresenceMeta")


def show(ast, presentity):
    """`presencestate show` as {label: value}; raises when the command failed."""
    out = ast.cli("presencestate show " + presentity)
    assert "failed" not in out, out
    fields = {}
    for line in out.splitlines():
        label, sep, value = line.partition(": ")
        if sep:
            fields[label.strip()] = value
    return fields


def stats(ast):
    """`presencestate stats` as {label: count}."""
    out = ast.cli("presencestate stats")
    counts = {}
    for line in out.splitlines():
        m = re.match(r"^\s+(.*?)\s{2,}(\d+)$", line)
        if m:
            counts[m.group(1)] = int(m.group(2))
    assert "Writes" in counts, out
    return counts


def failed(out, command):
    """Whether the CLI said `command` failed (asterisk -rx exits 0 either way)."""
    return ("Command '%s' failed." % command) in out


def set_action(ami, presentity=None, state=None, **fields):
    """AMI PresenceStateSet; returns the response."""
    action = {"Action": "PresenceStateSet"}
    if presentity is not None:
        action["Presentity"] = presentity
    if state is not None:
        action["State"] = state
    action.update(fields)
    return ami.action(action)


def delete_action(ami, presentity=None):
    action = {"Action": "PresenceStateDelete"}
    if presentity is not None:
        action["Presentity"] = presentity
    return ami.action(action)
