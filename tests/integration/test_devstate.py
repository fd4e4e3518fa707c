"""Presence as device state in a real Asterisk 22: off by default (hints and DEVICE_STATE() as
with stock), switched on and off by a reload; with `[device_state] enabled = yes`,
DEVICE_STATE(CustomPresence:x) after each presence state, hints on CustomPresence:x (alone and joined with a phone's device), the
[device_state] table changed by a reload, suppress_identical on and off, and an ordinary SIP
phone (SIPp, Event: dialog, no Digium User-Agent) whose BLF NOTIFY follows a presence write."""
import os
import re
import subprocess
import time

from helpers import LogWatch, astdb, getvar, presence_changes, requires, setvar, start

HERE = os.path.dirname(os.path.abspath(__file__))

HINTS = """[general]
static = yes
writeprotect = yes

[default]
exten => 300,hint,CustomPresence:erin
exten => 301,hint,Custom:phone301&CustomPresence:frank
"""

# The provider is opt-in (stock has none): every test of it switches it on.
ENABLED = "[device_state]\nenabled = yes\n"

DEFAULT_MAP = {"not_set": "UNKNOWN", "unavailable": "UNAVAILABLE", "available": "NOT_INUSE",
               "away": "UNAVAILABLE", "xa": "UNAVAILABLE", "chat": "NOT_INUSE", "dnd": "BUSY"}


def device_state(ami, name):
    return getvar_device(ami, "CustomPresence:" + name)


def getvar_device(ami, device):
    response = ami.action({"Action": "Getvar", "Variable": "DEVICE_STATE(%s)" % device})
    assert response.get("Response") == "Success", response
    return response.get("Value", "")


def extension_status(ami, exten, start, status_text, timeout=10):
    return ami.wait_for(lambda e: e.get("Event") == "ExtensionStatus" and e.get("Exten") == exten
                        and e.get("StatusText") == status_text, timeout=timeout, start=start)


def hint_settles_on(ami, exten, status_text, timeout=10):
    """Polls AMI ExtensionState until hint `exten` shows `status_text` (hints follow device
    state changes asynchronously)."""
    deadline = time.monotonic() + timeout
    while True:
        response = ami.action({"Action": "ExtensionState", "Exten": exten, "Context": "default"})
        if response.get("StatusText") == status_text:
            return
        assert time.monotonic() < deadline, (exten, status_text, response)
        time.sleep(0.05)


def test_device_state_follows_every_presence_state_write_delete_and_expiry():
    with start(configs={"presencestate.conf": ENABLED}) as ast:
        ami = ast.ami()
        assert device_state(ami, "erin") == "UNKNOWN"
        for state, device in DEFAULT_MAP.items():
            assert setvar(ami, "CustomPresence:erin", state + ",,x")["Response"] == "Success"
            assert device_state(ami, "erin") == device, (state, device_state(ami, "erin"))
        assert setvar(ami, "CustomPresence:erin", "dnd,,,t(1)")["Response"] == "Success"
        assert device_state(ami, "erin") == "BUSY"
        time.sleep(2)
        assert device_state(ami, "erin") == "BUSY", "reverted to the last untimed state, dnd"
        assert setvar(ami, "CustomPresence:erin", "available")["Response"] == "Success"
        assert setvar(ami, "CustomPresence:erin", "away,,,t(1)")["Response"] == "Success"
        assert device_state(ami, "erin") == "UNAVAILABLE"
        time.sleep(2)
        assert device_state(ami, "erin") == "NOT_INUSE"
        assert "deleted" in ast.cli("presencestate delete CustomPresence:erin").lower()
        assert device_state(ami, "erin") == "UNKNOWN"


def test_hints_on_custom_presence_change_their_extension_status():
    with start(configs={"extensions.conf": HINTS, "presencestate.conf": ENABLED}) as ast:
        ami = ast.ami()
        # A hint on the presence alone.
        for state, text in [("dnd", "Busy"), ("available", "Idle"), ("away", "Unavailable"),
                            ("chat", "Idle"), ("dnd", "Busy")]:
            mark = ami.mark()
            assert setvar(ami, "CustomPresence:erin", state)["Response"] == "Success"
            event = extension_status(ami, "300", mark, text)
            assert event["Hint"].startswith("CustomPresence:erin"), event
        # Joined with a phone: away never hides the phone's own state (idle, in use or
        # unregistered), dnd shows busy, available shows idle even when the phone is offline.
        for state, phone, text in [("away", "NOT_INUSE", "Idle"), ("dnd", "NOT_INUSE", "Busy"),
                                   ("away", "INUSE", "InUse"), ("away", "UNAVAILABLE", "Unavailable"),
                                   ("available", "UNAVAILABLE", "Idle")]:
            response = ami.action({"Action": "SetVar", "Variable": "DEVICE_STATE(Custom:phone301)",
                                   "Value": phone})
            assert response["Response"] == "Success", response
            assert setvar(ami, "CustomPresence:frank", state)["Response"] == "Success"
            hint_settles_on(ami, "301", text)


def test_a_reload_applies_a_changed_device_state_table_and_reannounces():
    with start(configs={"extensions.conf": HINTS, "presencestate.conf": ENABLED}) as ast:
        ami = ast.ami()
        mark = ami.mark()
        assert setvar(ami, "CustomPresence:erin", "away")["Response"] == "Success"
        assert setvar(ami, "CustomPresence:frank", "xa")["Response"] == "Success"
        presence_changes(ami, start=mark, count=2)
        assert device_state(ami, "erin") == "UNAVAILABLE"
        with open(ast.host("etc", "presencestate.conf"), "w") as f:
            f.write(ENABLED + "away = ONHOLD\nxa = sleepy\nlunch = BUSY\n")
        watch, mark = LogWatch(ast), ami.mark()
        ast.cli("module reload func_presencestate_rs.so")
        # No write: the reload itself re-announces, so the hint changes.
        extension_status(ami, "300", mark, "Hold")
        assert device_state(ami, "erin") == "ONHOLD"
        watch.wait_for("[device_state] option 'xa' = 'sleepy' is not a device state")
        watch.wait_for("[device_state] unknown option 'lunch'")
        assert device_state(ami, "frank") == "UNAVAILABLE", "a bad value keeps the default"
        assert not ami.events(lambda e: e.get("Event") == "PresenceStateChange", start=mark)
        # Back to the default table.
        with open(ast.host("etc", "presencestate.conf"), "w") as f:
            f.write(ENABLED)
        mark = ami.mark()
        ast.cli("module reload func_presencestate_rs.so")
        extension_status(ami, "300", mark, "Unavailable")
        assert device_state(ami, "erin") == "UNAVAILABLE"


@requires(("module", "res_manager_devicestate"))
def test_only_names_holding_a_slash_enter_asterisks_device_state_cache():
    """A name without '/' is announced not cachable (Asterisk asks the provider, and its
    57-bucket topic pool does not grow by one topic per name); one with '/' must be cached,
    since Asterisk never asks the provider about it. Both reach AMI, DEVICE_STATE() and hints."""
    with start(configs={"extensions.conf": HINTS, "presencestate.conf": ENABLED}) as ast:
        ami = ast.ami()
        mark = ami.mark()
        assert setvar(ami, "CustomPresence:erin", "dnd")["Response"] == "Success"
        assert setvar(ami, "CustomPresence:team/zoe", "away")["Response"] == "Success"
        for device, state in (("CustomPresence:erin", "BUSY"),
                              ("CustomPresence:team/zoe", "UNAVAILABLE")):
            ami.wait_for(lambda e: e.get("Event") == "DeviceStateChange"
                         and e.get("Device") == device and e.get("State") == state, start=mark)
            assert getvar_device(ami, device) == state, device
        extension_status(ami, "300", mark, "Busy")
        listed = ami.action({"Action": "DeviceStateList"})
        cached = {e.get("Device"): e.get("State") for e in listed.events
                  if e.get("Event") == "DeviceStateChange"}
        assert cached.get("CustomPresence:team/zoe") == "UNAVAILABLE", cached
        assert "CustomPresence:erin" not in cached, cached


def write_seen(ami, name, value):
    mark = ami.mark()
    assert setvar(ami, "CustomPresence:" + name, value)["Response"] == "Success"
    time.sleep(0.3)
    return [e for e in ami.events(lambda e: e.get("Event") == "PresenceStateChange", start=mark)
            if e["Presentity"] == "CustomPresence:" + name]


def test_suppress_identical_off_announces_every_write_on_only_changes():
    with start(configs={"extensions.conf": HINTS, "presencestate.conf": ENABLED}) as ast:
        ami = ast.ami()
        assert len(write_seen(ami, "erin", "away,,lunch")) == 1
        assert len(write_seen(ami, "erin", "away,,lunch")) == 1, "off (the default): as stock"
        with open(ast.host("etc", "presencestate.conf"), "w") as f:
            f.write(ENABLED + "[general]\nsuppress_identical = yes\n")
        ast.cli("module reload func_presencestate_rs.so")
        mark = ami.mark()
        assert write_seen(ami, "erin", "away,,lunch") == []
        # The same thing written base64-encoded is identical too; still stored as written.
        assert write_seen(ami, "erin", "AWAY,,bHVuY2g=,e") == []
        assert astdb(ami)["erin"] == "AWAY,,bHVuY2g=,e"
        assert not ami.events(lambda e: e.get("Event") == "ExtensionStatus" and e.get("Exten") == "300",
                              start=mark)
        changed = write_seen(ami, "erin", "away,,back soon")
        assert [e["Message"] for e in changed] == ["back soon"]
        with open(ast.host("etc", "presencestate.conf"), "w") as f:
            f.write(ENABLED + "[general]\nsuppress_identical = maybe\n")
        watch = LogWatch(ast)
        ast.cli("module reload func_presencestate_rs.so")
        watch.wait_for("'suppress_identical' = 'maybe' is not a boolean")
        assert len(write_seen(ami, "erin", "away,,back soon")) == 1, "bad value: the default, off"


PJSIP_CONF = """[transport-udp]
type = transport
protocol = udp
bind = 127.0.0.1:5060

; The SIPp phone, identified by its address.
[phone]
type = endpoint
context = phones
disallow = all
allow = ulaw

[phone-ip]
type = identify
endpoint = phone
match = 127.0.0.1

; Erin's phone, not registered: its device state is UNAVAILABLE.
[erin]
type = aor
max_contacts = 1

[erin]
type = endpoint
context = phones
aors = erin
disallow = all
allow = ulaw
"""

PHONES = """[general]
static = yes
writeprotect = yes

[phones]
exten => 300,hint,PJSIP/erin&CustomPresence:erin
"""


def received_notifies(trace):
    """The dialog-info NOTIFYs in SIPp's message log, each once (SIPp logs a message it
    answers by itself, -aa, a second time as unexpected)."""
    return [m for m in trace.split("\n\n----") if re.search(r"^UDP message received \[", m, re.M)
            and "NOTIFY sip:" in m and "<state>" in m]


@requires(("module", "res_pjsip"), ("app", "sipp"))
def test_an_ordinary_sip_phone_sees_presence_on_its_blf_key():
    with start(configs={"pjsip.conf": PJSIP_CONF, "extensions.conf": PHONES,
                        "presencestate.conf": ENABLED}) as ast:
        ami = ast.ami()
        mark = ami.mark()
        assert setvar(ami, "CustomPresence:erin", "available")["Response"] == "Success"
        # The phone is unregistered (UNAVAILABLE), presence available: the hint is idle.
        ami.wait_for(lambda e: e.get("Event") == "ExtensionStatus" and e.get("Exten") == "300"
                     and e.get("StatusText") == "Idle", timeout=10, start=mark)
        os.makedirs(ast.host("sipp"), exist_ok=True)
        with open(os.path.join(HERE, "sipp", "dialog_blf.xml")) as src, \
                open(ast.host("sipp", "dialog_blf.xml"), "w") as dst:
            dst.write(src.read())
        trace = ast.dir + "/sipp/messages.log"
        sipp = subprocess.Popen(
            ["chroot", ast.root, "sipp", "127.0.0.1:5060", "-sf", ast.dir + "/sipp/dialog_blf.xml",
             "-p", "5061", "-i", "127.0.0.1", "-m", "1", "-nr", "-aa", "-timeout", "30s", "-nostdin",
             "-skip_rlimit", "-trace_msg", "-message_file", trace],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)

        def states_seen():
            try:
                text = open(ast.root + trace, errors="replace").read()
            except FileNotFoundError:
                return []
            return [n.split("<state>", 1)[1].split("<", 1)[0] for n in received_notifies(text)]

        def wait_until(predicate):
            deadline = time.monotonic() + 5
            while not predicate(states_seen()):
                assert time.monotonic() < deadline and sipp.poll() is None, states_seen()
                time.sleep(0.05)

        try:
            wait_until(lambda states: len(states) >= 1)
            assert setvar(ami, "CustomPresence:erin", "dnd")["Response"] == "Success"
            wait_until(lambda states: "confirmed" in states)
            assert setvar(ami, "CustomPresence:erin", "available")["Response"] == "Success"
            wait_until(lambda states: "terminated" in states[states.index("confirmed"):])
            output, _ = sipp.communicate(timeout=40)
        finally:
            if sipp.poll() is None:
                sipp.kill()
        messages = open(ast.root + trace, errors="replace").read()
        assert sipp.returncode == 0, (sipp.returncode, output[-2000:], messages[-4000:])
        notifies = received_notifies(messages)
        states = [n.split("<state>", 1)[1].split("<", 1)[0] for n in notifies]
        # Idle first, busy after the dnd write, idle again after the available one.
        assert states[0] == "terminated" and "confirmed" in states and states[-1] == "terminated", states
        busy = next(n for n in notifies if "<state>confirmed</state>" in n)
        assert "User-Agent: Yealink" in messages and "digium" not in messages.lower()
        print("NOTIFY states in order: %s" % ", ".join(states))
        print("BLF NOTIFY after dnd:\n" + busy.split("<?xml", 1)[1].strip())
        assert [e["Status"] for e in presence_changes(ami, start=mark, count=3)] == [
            "available", "dnd", "available"]


def test_device_states_are_back_after_a_restart_and_a_module_reload_of_the_same_table():
    ast = start(configs={"extensions.conf": HINTS, "presencestate.conf": ENABLED})
    try:
        ami = ast.ami()
        for name, value in (("erin", "dnd"), ("team/zoe", "away"), ("frank", "chat")):
            assert setvar(ami, "CustomPresence:" + name, value)["Response"] == "Success"
        time.sleep(1.2)                  # AstDB commits about once a second
        ast.restart()
        ami = ast.ami()
        # Announced at load: a name holding '/' (which Asterisk never asks the provider
        # about) reads from the cache the load filled.
        assert device_state(ami, "erin") == "BUSY"
        assert device_state(ami, "team/zoe") == "UNAVAILABLE"
        assert device_state(ami, "frank") == "NOT_INUSE"
        hint_settles_on(ami, "300", "Busy")
        # A reload with an unchanged table re-announces nothing.
        mark = ami.mark()
        ast.cli("module reload func_presencestate_rs.so")
        time.sleep(0.5)
        assert not ami.events(lambda e: e.get("Event") == "ExtensionStatus", start=mark)
    finally:
        ast.stop()
