"""Timed states (option t(<seconds>)) in a real Asterisk 22: the revert when the time passes and
its announcement, base64 with et(...), bad arguments, a new write replacing a pending expiry,
and expiries across a restart, an unload/load and a reload."""
import time

from helpers import LogWatch, astdb, getvar, presence_changes, setvar, start
from instance import manager_conf

# The harness's manager.conf plus Timestamp headers on events, to time the reverts.
MANAGER_CONF = manager_conf("timestampevents = yes")


def start_timed(**kwargs):
    configs = dict(kwargs.pop("configs", {}), **{"manager.conf": MANAGER_CONF})
    return start(configs=configs, **kwargs)


def meta(ami, name):
    """The module's own record of `name` (AstDB family CustomPresenceMeta), or None."""
    response = ami.action({"Action": "DBGet", "Family": "CustomPresenceMeta", "Key": name})
    if response.get("Response") != "Success":
        return None
    return {k: v for k, v in (f.split("=", 1) for f in response.events[0]["Val"].split(";"))}


def write_seen(ami, name, value):
    """Writes and waits for its announcement (events arrive after the response), so a mark
    taken next sees only what follows."""
    mark = ami.mark()
    assert setvar(ami, "CustomPresence:" + name, value)["Response"] == "Success", (name, value)
    ami.wait_for(lambda e: e.get("Event") == "PresenceStateChange"
                 and e.get("Presentity") == "CustomPresence:" + name, start=mark)


def change(event):
    return (event["Presentity"], event["Status"], event["Subtype"], event["Message"])


def test_an_expiry_reverts_to_the_last_untimed_state_and_is_announced():
    with start_timed(configs={"presencestate.conf": "[general]\nlog_changes = yes\n"}) as ast:
        ami = ast.ami()
        watch = LogWatch(ast)
        write_seen(ami, "alice", "available,,At my desk")
        mark = ami.mark()
        written = time.time()
        response = setvar(ami, "CustomPresence:alice", "dnd,,In a meeting,t(2)")
        assert response["Response"] == "Success", response
        first = presence_changes(ami, start=mark)[0]
        assert change(first) == ("CustomPresence:alice", "dnd", "", "In a meeting"), first
        assert getvar(ami, "CustomPresence:alice,value") == "dnd"
        # t(...) stays in the stock entry as written; the deadline lives in the module's family.
        assert astdb(ami)["alice"] == "dnd,,In a meeting,t(2)"
        record = meta(ami, "alice")
        assert record and record["revert"] == "available,,At my desk", record
        assert abs(int(record["expires_ms"]) / 1000 - (written + 2)) < 1, record
        shown = ast.cli("presencestate show CustomPresence:alice")
        assert "Expires      : " in shown and "(in 2 s)" in shown, shown
        assert "Then reverts : available,,At my desk" in shown, shown
        reverted = presence_changes(ami, start=mark, count=2, timeout=10)[1]
        assert change(reverted) == ("CustomPresence:alice", "available", "", "At my desk"), reverted
        lateness = float(reverted["Timestamp"]) - float(first["Timestamp"]) - 2
        print("expiry: dnd at %s, available at %s (%.3f s after the 2 s)"
              % (first["Timestamp"], reverted["Timestamp"], lateness))
        assert -0.05 < lateness < 1.0, (first, reverted)
        assert getvar(ami, "CustomPresence:alice,message") == "At my desk"
        assert astdb(ami)["alice"] == "available,,At my desk"
        watch.wait_for("CustomPresence:alice expired; reverted to 'available,,At my desk'", "NOTICE")
        assert meta(ami, "alice") is None or "expires_ms" not in meta(ami, "alice")
        shown = ast.cli("presencestate show CustomPresence:alice")
        assert "Expires" not in shown and "Changed by   : expiry of a timed state" in shown, shown
        time.sleep(1)
        assert len(presence_changes(ami, start=mark, count=2)) == 2, "one revert, announced once"


def test_et_with_base64_values_reverts_to_not_set_when_nothing_came_before():
    with start_timed() as ast:
        ami = ast.ami()
        mark = ami.mark()
        # "Lunch, back at 2" and "out, then in" hold commas: base64 with e, in either order.
        value = "away,THVuY2gsIGJhY2sgYXQgMg==,b3V0LCB0aGVuIGlu,et(2)"
        assert setvar(ami, "CustomPresence:bob", value)["Response"] == "Success"
        assert setvar(ami, "CustomPresence:carol", "xa,TG9uZywgdHJpcA==,,t(2)e")["Response"] == "Success"
        events = presence_changes(ami, start=mark, count=2)
        assert change(events[0]) == ("CustomPresence:bob", "away", "Lunch, back at 2", "out, then in")
        assert change(events[1]) == ("CustomPresence:carol", "xa", "Long, trip", "")
        assert getvar(ami, "CustomPresence:bob,subtype,e") == "THVuY2gsIGJhY2sgYXQgMg=="
        assert astdb(ami)["bob"] == value
        later = presence_changes(ami, start=mark, count=4, timeout=10)[2:]
        assert sorted(change(e) for e in later) == [
            ("CustomPresence:bob", "not_set", "", ""), ("CustomPresence:carol", "not_set", "", "")]
        assert getvar(ami, "CustomPresence:bob,value") == "not_set"
        assert astdb(ami)["bob"] == "not_set"


def test_bad_expiry_arguments_are_refused_and_change_nothing():
    with start_timed() as ast:
        ami = ast.ami()
        write_seen(ami, "dave", "chat,,here")
        for options, fragment in [("t()", "not a whole number"), ("t(-1)", "not a whole number"),
                                  ("t(abc)", "not a whole number"), ("t(0)", "out of range"),
                                  ("t(31536001)", "out of range"), ("t", "in parentheses"),
                                  ("et(5)t(6)", "more than once")]:
            watch, mark = LogWatch(ast), ami.mark()
            response = setvar(ami, "CustomPresence:dave", "dnd,,,%s" % options)
            assert response.get("Response") == "Error", (options, response)
            watch.wait_for("bad options '%s': " % options)
            watch.wait_for(fragment)
            assert astdb(ami)["dave"] == "chat,,here"
            assert getvar(ami, "CustomPresence:dave,value") == "chat"
            assert meta(ami, "dave") is None or "expires_ms" not in meta(ami, "dave")
            assert not ami.events(lambda e: e.get("Event") == "PresenceStateChange", start=mark)
        # The longest accepted: one year.
        assert setvar(ami, "CustomPresence:dave", "dnd,,,t(31536000)")["Response"] == "Success"


def test_a_new_write_replaces_the_pending_expiry():
    with start_timed() as ast:
        ami = ast.ami()
        write_seen(ami, "erin", "available")
        write_seen(ami, "erin", "dnd,,,t(2)")
        # A timed write over a timed one moves the deadline (and keeps the untimed revert).
        write_seen(ami, "frank", "away")
        write_seen(ami, "frank", "dnd,,,t(2)")
        mark = ami.mark()
        assert setvar(ami, "CustomPresence:erin", "chat,,untimed")["Response"] == "Success"
        assert setvar(ami, "CustomPresence:frank", "xa,,,t(4)")["Response"] == "Success"
        # The CLI writes the same values.
        out = ast.cli('presencestate change CustomPresence:gina "dnd,,by cli,t(2)"')
        assert "Changing" in out, out
        time.sleep(3)
        assert getvar(ami, "CustomPresence:erin,message") == "untimed"
        assert getvar(ami, "CustomPresence:frank,value") == "xa"
        assert getvar(ami, "CustomPresence:gina,value") == "not_set"
        erin = [e for e in ami.events(lambda e: e.get("Event") == "PresenceStateChange", start=mark)
                if e["Presentity"] == "CustomPresence:erin"]
        assert [e["Status"] for e in erin] == ["chat"], erin
        assert meta(ami, "erin") is None or "expires_ms" not in meta(ami, "erin")
        ami.wait_for(lambda e: e.get("Event") == "PresenceStateChange"
                     and e.get("Presentity") == "CustomPresence:frank" and e.get("Status") == "away",
                     timeout=5, start=mark)
        assert getvar(ami, "CustomPresence:frank,value") == "away"


def test_an_expiry_survives_a_restart_and_reverts_at_load_if_passed():
    ast = start_timed()
    try:
        ami = ast.ami()
        for name in ("passed", "pending"):
            assert setvar(ami, "CustomPresence:" + name, "available,,back")["Response"] == "Success"
        assert setvar(ami, "CustomPresence:passed", "dnd,,,t(2)")["Response"] == "Success"
        assert setvar(ami, "CustomPresence:pending", "dnd,,,t(8)")["Response"] == "Success"
        time.sleep(1.2)                  # AstDB commits about once a second
        ast.stop()
        time.sleep(2.5)                  # "passed" expires while Asterisk is down
        watch_from = len(ast.log_text())
        ast.start()
        ami = ast.ami()
        assert getvar(ami, "CustomPresence:passed,value") == "available"
        assert astdb(ami)["passed"] == "available,,back"
        assert "timed presence states expired while the module was not running" in ast.log_text()[watch_from:]
        # "pending" is re-armed and reverts on time.
        assert getvar(ami, "CustomPresence:pending,value") == "dnd"
        mark = ami.mark()
        event = ami.wait_for(lambda e: e.get("Event") == "PresenceStateChange"
                             and e.get("Presentity") == "CustomPresence:pending", timeout=10, start=mark)
        assert event["Status"] == "available", event
        assert astdb(ami)["pending"] == "available,,back"
    finally:
        ast.stop()


def test_an_expiry_survives_unload_load_and_reload():
    with start_timed() as ast:
        ami = ast.ami()
        assert setvar(ami, "CustomPresence:h", "available")["Response"] == "Success"
        assert setvar(ami, "CustomPresence:h", "dnd,,,t(2)")["Response"] == "Success"
        assert setvar(ami, "CustomPresence:i", "chat")["Response"] == "Success"
        assert setvar(ami, "CustomPresence:i", "away,,,t(6)")["Response"] == "Success"
        assert "Unloaded" in ast.cli("module unload func_presencestate_rs.so")
        time.sleep(2.5)
        mark = ami.mark()
        assert "Loaded" in ast.cli("module load func_presencestate_rs.so")
        assert getvar(ami, "CustomPresence:h,value") == "available"
        assert astdb(ami)["h"] == "available"
        assert getvar(ami, "CustomPresence:i,value") == "away"
        assert "reloaded" in ast.cli("module reload func_presencestate_rs.so").lower()
        event = ami.wait_for(lambda e: e.get("Event") == "PresenceStateChange"
                             and e.get("Presentity") == "CustomPresence:i" and e.get("Status") == "chat",
                             timeout=10, start=mark)
        assert event and getvar(ami, "CustomPresence:i,value") == "chat"


def test_ami_presence_state_set_takes_an_expiry():
    with start_timed() as ast:
        ami = ast.ami()
        write_seen(ami, "kim", "available")
        mark = ami.mark()
        response = ami.action({"Action": "PresenceStateSet", "Presentity": "CustomPresence:kim",
                               "State": "away", "Message": "Lunch, back at 2", "Expiry": "2"})
        assert response["Response"] == "Success", response
        assert astdb(ami)["kim"] == "away,,THVuY2gsIGJhY2sgYXQgMg==,et(2)"
        events = presence_changes(ami, start=mark, count=2, timeout=10)
        assert [(e["Status"], e["Message"]) for e in events] == [
            ("away", "Lunch, back at 2"), ("available", "")], events
        for bad in ("0", "abc", "-1", "31536001", "5)"):
            watch = LogWatch(ast)
            response = ami.action({"Action": "PresenceStateSet", "Presentity": "CustomPresence:kim",
                                   "State": "dnd", "Expiry": bad})
            assert response["Response"] == "Error", (bad, response)
            assert response["Message"].startswith("Expiry must be a whole number of seconds"), response
            watch.wait_for("PresenceStateSet")
            assert astdb(ami)["kim"] == "available"
