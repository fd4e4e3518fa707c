"""The CustomPresence device-state provider is opt-in. Stock has none, so with no
presencestate.conf (or the sample one) a hint naming `CustomPresence:x` among its devices must
ignore presence and DEVICE_STATE(CustomPresence:x) answer as with stock: each scenario below
runs with the stock module and with ours, and what AMI shows must be the same. Then the
provider switched on and off again by `module reload`."""
import os
import time

from helpers import presence_changes, setvar, start

HERE = os.path.dirname(os.path.abspath(__file__))
SAMPLE = os.path.join(HERE, "..", "..", "configs", "presencestate.conf.sample")

# The hints of the upstream testsuite's tests/manager/exten_state_list, and one on the
# presence alone.
HINTS = """[general]
static = yes
writeprotect = yes

[default]
exten => eggs,hint,Custom:eggs&CustomPresence:eggs
exten => ham,hint,Custom:ham&CustomPresence:ham
exten => 300,hint,CustomPresence:erin
"""
EXTENS = ("eggs", "ham", "300")
QUIET = 0.5     # how long after the writes an extra ExtensionStatus would have shown by now


def getvar(ami, variable):
    response = ami.action({"Action": "Getvar", "Variable": variable})
    assert response.get("Response") == "Success", response
    return response.get("Value", "")


def hint_states(ami):
    states = {}
    for exten in EXTENS:
        response = ami.action({"Action": "ExtensionState", "Exten": exten, "Context": "default"})
        states[exten] = (response.get("Status"), response.get("StatusText"))
    return states


def observe(mode, configs):
    """What a PBX sees of device state and hints while presence changes."""
    with start(mode, configs=dict(configs, **{"extensions.conf": HINTS})) as ast:
        ami = ast.ami()
        seen = {"before": getvar(ami, "DEVICE_STATE(CustomPresence:eggs)")}
        mark = ami.mark()
        response = ami.action({"Action": "SetVar", "Variable": "DEVICE_STATE(Custom:eggs)",
                               "Value": "INUSE"})
        assert response["Response"] == "Success", response
        ami.wait_for(lambda e: e.get("Event") == "ExtensionStatus" and e.get("Exten") == "eggs"
                     and e.get("StatusText") == "InUse", start=mark, timeout=10)
        mark = ami.mark()
        for name, value in (("eggs", "dnd"), ("ham", "available"), ("erin", "dnd"),
                            ("eggs", "away")):
            assert setvar(ami, "CustomPresence:" + name, value)["Response"] == "Success"
        presence_changes(ami, start=mark, count=4)
        time.sleep(QUIET)
        seen["after"] = {name: getvar(ami, "DEVICE_STATE(CustomPresence:%s)" % name)
                         for name in ("eggs", "ham", "erin", "nobody")}
        seen["hints"] = hint_states(ami)
        seen["ExtensionStatus"] = [(e.get("Exten"), e.get("StatusText")) for e in ami.events(
            lambda e: e.get("Event") == "ExtensionStatus", start=mark)]
        return seen


def test_by_default_hints_and_device_state_are_as_with_stock():
    stock = observe("stock", {})
    print("stock: %r" % stock)
    # What stock answers: no such device-state provider, so INVALID, and the hints show only
    # Custom:eggs (in use) and Custom:ham (never set).
    assert stock["before"] == "INVALID" and set(stock["after"].values()) == {"INVALID"}, stock
    assert stock["hints"]["eggs"][1] == "InUse", stock
    with open(SAMPLE) as f:
        sample = f.read()
    for configs in ({}, {"presencestate.conf": sample}):
        ours = observe("ours", configs)
        assert ours == stock, ("with presencestate.conf" if configs else "without one", ours)


def test_a_reload_switches_the_provider_on_and_off_again():
    with start(configs={"extensions.conf": HINTS}) as ast:
        ami = ast.ami()
        assert setvar(ami, "CustomPresence:erin", "dnd")["Response"] == "Success"
        off = hint_states(ami)["300"]
        assert getvar(ami, "DEVICE_STATE(CustomPresence:erin)") == "INVALID"

        with open(ast.host("etc", "presencestate.conf"), "w") as f:
            f.write("[device_state]\nenabled = yes\n")
        mark = ami.mark()
        ast.cli("module reload func_presencestate_rs.so")
        # No write: the reload announces every name, so the hint follows at once.
        ami.wait_for(lambda e: e.get("Event") == "ExtensionStatus" and e.get("Exten") == "300"
                     and e.get("StatusText") == "Busy", start=mark, timeout=10)
        assert getvar(ami, "DEVICE_STATE(CustomPresence:erin)") == "BUSY"
        assert "[device_state] enabled = yes" in ast.log_text()

        os.unlink(ast.host("etc", "presencestate.conf"))
        mark = ami.mark()
        ast.cli("module reload func_presencestate_rs.so")
        ami.wait_for(lambda e: e.get("Event") == "ExtensionStatus" and e.get("Exten") == "300"
                     and (e.get("Status"), e.get("StatusText")) == off, start=mark, timeout=10)
        assert getvar(ami, "DEVICE_STATE(CustomPresence:erin)") == "INVALID"
        mark = ami.mark()
        assert setvar(ami, "CustomPresence:erin", "available")["Response"] == "Success"
        presence_changes(ami, start=mark, count=1)
        time.sleep(QUIET)
        assert not ami.events(lambda e: e.get("Event") == "ExtensionStatus", start=mark), \
            "off again: a presence write changes no device state"
