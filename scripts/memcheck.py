#!/usr/bin/env python3
"""Runs Asterisk 22 with func_presencestate_rs under valgrind memcheck through a scenario that
touches every entry point of the module (read, read2, write, the presence and device-state
providers, timed writes and the expiry thread, CLI and its completion, AMI actions, ARI's
/presenceStates, its events and the board page, the config file, the test framework,
load/unload/reload), then reports the errors and definite leaks
valgrind found, and which of them have a frame in the module.

    scripts/memcheck [--keep]      (builds the module first)

Exit status 0 when no error is attributable to the module.
"""
import os
import re
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "asterisk-test-suite", "lib"))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
import instance  # noqa: E402
import ari  # noqa: E402  (the ARI tests' HTTP and websocket clients)
import requests  # noqa: E402

VALGRIND = ["valgrind", "--tool=memcheck", "--leak-check=full", "--show-leak-kinds=definite",
            "--errors-for-leak-kinds=definite", "--keep-debuginfo=yes", "--num-callers=40",
            "--log-file=%s/log/valgrind.%%p.txt"]
OURS = re.compile(r"func_presencestate_rs|fprs_|src/(ffi|core|shim)/")

DIALPLAN = """[general]
[mc]
exten => rw,1,Set(PRESENCE_STATE(CustomPresence:dp)=away,${BASE64_ENCODE(sub)},${BASE64_ENCODE(msg, with comma)},e)
 same => n,Set(r=${PRESENCE_STATE(CustomPresence:dp,value)}|${PRESENCE_STATE(CustomPresence:dp,message)}|${PRESENCE_STATE(CustomPresence:dp,subtype,e)})
 same => n,Set(bad=${PRESENCE_STATE(CustomPresence:dp,nosuchfield)})
 same => n,Set(PRESENCE_STATE(CustomPresence:dp)=away,,Lunch, see you)
 same => n,Set(PRESENCE_STATE(CustomPresence:dp)=not_set,,cleared)
 same => n,Set(agg=${PRESENCE_STATE(CustomPresence:dp&CustomPresence:alice,value)})
 same => n,UserEvent(MemcheckDone,Result: ${r})
 same => n,Hangup()
exten => 1001,hint,,CustomPresence:alice
exten => 1002,hint,PJSIP/nobody,CustomPresence:dp
exten => 1003,hint,Custom:phone1003&CustomPresence:alice
"""

DEVICE_TABLE = """[general]
suppress_identical = yes
[device_state]
enabled = yes
away = ONHOLD
xa = sleepy
"""

CONFIG = """[general]
log_changes = yes
colour = blue
garbage line
[device_state]
enabled = yes
"""


def scenario():
    module = os.environ["FPRS_MODULE"]
    ast = instance.AsteriskInstance(mode="ours", module_path=module, name="memcheck",
                                    configs={"extensions.conf": DIALPLAN, "presencestate.conf": CONFIG,
                                             **instance.ari_configs()})
    ast.wrapper = [arg.replace("%s", ast.dir) for arg in VALGRIND]
    started = time.monotonic()
    ast.start(timeout=900)
    print("Asterisk under valgrind booted in %.0fs" % (time.monotonic() - started), flush=True)
    ami = ast.ami(timeout=120, events="call,user")
    steps = []

    def step(name, fn):
        fn()
        steps.append(name)

    step("write (AMI SetVar), plain and refused", lambda: [
        ami.action({"Action": "SetVar", "Variable": "PRESENCE_STATE(CustomPresence:alice)", "Value": v}, 120)
        for v in ("away,lunch,back soon", "dnd,,x" * 3, "bored", "chat,%%%,,e")])
    step("read (AMI Getvar: fixed buffer), incl. refused and core path", lambda: [
        ami.action({"Action": "Getvar", "Variable": "PRESENCE_STATE(%s)" % a}, 120)
        for a in ("CustomPresence:alice,value", "CustomPresence:alice,message,e", "CustomPresence:x,status",
                  "NoSuch:thing,value", "CustomPresence:nobody,subtype")])
    mark = ami.mark()
    step("read2/write through the dialplan, not_set via the provider", lambda: (
        ami.action({"Action": "Originate", "Channel": "Local/rw@mc", "Application": "Wait", "Data": "1"}, 300),
        ami.wait_for(lambda e: e.get("UserEvent") == "MemcheckDone", start=mark, timeout=300)))
    step("provider through the presence core (AMI PresenceState, hints)", lambda: (
        ami.action({"Action": "PresenceState", "Provider": "CustomPresence:alice"}, 120),
        ast.cli("core show hints", timeout=120)))
    step("CLI list, change (ok, e, refused), completion", lambda: [
        ast.cli(c, timeout=120) for c in (
            "presencestate list", 'presencestate change CustomPresence:team/c "xa,aGk=,,e"',
            "presencestate change CustomPresence:c bored", "presencestate change",
            '_command matchesarray "presencestate change CustomPresence:c " "A"')])
    step("AMI PresenceStateSet/Delete, ok and refused", lambda: [
        ami.action(dict(a, Action=name), 120) for name, a in (
            ("PresenceStateSet", {"Presentity": "CustomPresence:ami", "State": "away", "Subtype": "a, b", "Message": "c, d"}),
            ("PresenceStateSet", {"Presentity": "CustomPresence:ami2", "State": "xa", "Message": "aGk=", "Encoded": "yes"}),
            ("PresenceStateSet", {"State": "away"}),
            ("PresenceStateSet", {"Presentity": "CustomPresence:ami", "State": "bored"}),
            ("PresenceStateSet", {"Presentity": "CustomPresence:ami", "State": "away", "Message": "%%", "Encoded": "yes"}),
            ("PresenceStateSet", {"Presentity": "CustomPresence:ami", "State": "away", "Encoded": "maybe"}),
            ("PresenceStateDelete", {"Presentity": "CustomPresence:ami2"}),
            ("PresenceStateDelete", {"Presentity": "CustomPresence:nobody"}),
            ("PresenceStateDelete", {}))])
    mark = ami.mark()
    step("timed writes (t(1), et(3600), AMI Expiry, refused t(0)), an expiry, show of a timed state", lambda: (
        [ami.action({"Action": "SetVar", "Variable": "PRESENCE_STATE(CustomPresence:%s)" % n, "Value": v}, 120)
         for n, v in (("timed", "available"), ("timed", "dnd,,meeting,t(1)"), ("pending", "away,,,t(5)"),
                      ("pending", "xa,aGk=,,et(3600)"), ("timed", "dnd,,,t(0)"))],
        ami.action({"Action": "PresenceStateSet", "Presentity": "CustomPresence:amitimed", "State": "away",
                    "Expiry": "1"}, 120),
        ami.action({"Action": "PresenceStateSet", "Presentity": "CustomPresence:amitimed", "State": "away",
                    "Expiry": "abc"}, 120),
        ast.cli("presencestate show CustomPresence:pending", timeout=120),
        ami.wait_for(lambda e: e.get("Event") == "PresenceStateChange" and e.get("Presentity") ==
                     "CustomPresence:timed" and e.get("Status") == "available", start=mark, timeout=300)))
    step("device state: provider, DEVICE_STATE(), a joined hint, a table change and suppress_identical by reload", lambda: (
        [ami.action({"Action": "Getvar", "Variable": "DEVICE_STATE(CustomPresence:%s)" % n}, 120)
         for n in ("alice", "nobody", "timed")],
        ami.action({"Action": "SetVar", "Variable": "DEVICE_STATE(Custom:phone1003)", "Value": "INUSE"}, 120),
        ami.action({"Action": "ExtensionState", "Exten": "1003", "Context": "mc"}, 120),
        open(ast.host("etc", "presencestate.conf"), "w").write(DEVICE_TABLE),
        ast.cli("module reload func_presencestate_rs.so", timeout=300),
        [ami.action({"Action": "SetVar", "Variable": "PRESENCE_STATE(CustomPresence:alice)", "Value": v}, 120)
         for v in ("away,lunch,back soon", "away,lunch,back soon")]))
    step("CLI show, list like, stats, delete (ok, unknown), name completion", lambda: [
        ast.cli(c, timeout=120) for c in (
            "presencestate show CustomPresence:ami", "presencestate show CustomPresence:team/c",
            "presencestate show CustomPresence:nobody", "presencestate list like team",
            "presencestate stats", "presencestate delete CustomPresence:team/c",
            "presencestate delete CustomPresence:nobody",
            '_command matchesarray "presencestate show CustomPresence:a" "CustomPresence:a"')])
    step("config and AstDB reload (edited entry, broken meta record, garbage config)", lambda: (
        ast.cli('database put CustomPresence edited "dnd,,by hand"', timeout=120),
        ast.cli("database put CustomPresenceMeta ami garbage", timeout=120),
        open(ast.host("etc", "presencestate.conf"), "w").write(CONFIG + "record_changes = maybe\n"),
        ast.cli("module reload func_presencestate_rs.so", timeout=300),
        ast.cli("presencestate show CustomPresence:edited", timeout=120)))
    step("ARI /presenceStates: list, get (ours, another provider), put (query, JSON, timed, a '/'), "
         "refused (400, 409, 404, 401, 403), delete; the API listing; the board", lambda: ari_requests(ast))
    board = ari.Events("memcheck-board", subscribe_all=True, timeout=120)
    step("ARI events: presence:, one name, subscribeAll; a write, an expiry, a delete; unsubscribe",
         lambda: ari_events(ami, board))
    step("test framework", lambda: ast.cli("test execute category /funcs/func_presencestate_rs/", timeout=600))
    step("unload/load/reload x3, an ARI app connected (subscribeAll, taken again at each load)", lambda: [
        ast.cli("module %s func_presencestate_rs.so" % verb, timeout=300)
        for _ in range(3) for verb in ("unload", "load", "reload")])
    step("ARI event after the reloads", lambda: (
        ari.session().put(ari.url("CustomPresence:after"), params={"state": "dnd"}, timeout=120),
        board.wait_presence("CustomPresence:after", "dnd", timeout=120)))
    board.close()
    ast.stop(timeout=600)
    return ast.host_dir, steps


def ari_requests(ast):
    s, reader = ari.session(), ari.session(ari.READER, ari.READER_PASSWORD)
    for method, name, kwargs in (
            ("PUT", "CustomPresence:web", {"params": {"state": "away", "message": "a, b"}}),
            ("PUT", "CustomPresence:web", {"json": {"state": "dnd", "expires": 3600}}),
            ("PUT", "CustomPresence:team/web", {"params": {"state": "xa"}}),
            ("PUT", "CustomPresence:web", {"params": {"state": "bored"}}),
            ("PUT", "CustomPresence:web", {"json": {"state": ["x"], "expires": "soon"}}),
            ("PUT", "CustomPresence:web", {"data": "[1]", "headers": {"Content-Type": "application/json"}}),
            ("PUT", "CustomPresence:web", {"params": {"state": "away", "nosuch": "1"}}),
            ("PUT", "Lamp:desk", {"params": {"state": "away"}}),
            ("PUT", "nocolon", {"params": {"state": "away"}}),
            ("GET", "CustomPresence:web", {}), ("GET", "CustomPresence:nobody", {}),
            ("GET", "NoSuch:thing", {}), ("GET", "CustomPresence:", {}), ("GET", None, {}),
            ("DELETE", "CustomPresence:team/web", {}), ("DELETE", "CustomPresence:team/web", {}),
            ("DELETE", "Lamp:desk", {})):
        s.request(method, ari.url(name), timeout=120, **kwargs)
    reader.put(ari.url("CustomPresence:web"), params={"state": "away"}, timeout=120)
    requests.get(ari.url(), timeout=120)
    s.get(ari.BASE + "/ari/api-docs/resources.json", timeout=120)
    s.get(ari.BASE + "/presence-board", timeout=120)
    s.post(ari.BASE + "/presence-board", timeout=120)


def ari_events(ami, board):
    panel = ari.Events("memcheck-panel", timeout=120)
    ari.subscribe("memcheck-panel", "presence:CustomPresence:web", timeout=120)
    ari.subscribe("memcheck-panel", "presence:", timeout=120)
    ari.subscribe("memcheck-panel", "presence:nocolon", timeout=120)
    ami.action({"Action": "SetVar", "Variable": "PRESENCE_STATE(CustomPresence:web)",
                "Value": "chat,,soon,t(1)"}, 120)
    panel.wait_presence("CustomPresence:web", "chat", timeout=120)
    board.wait_presence("CustomPresence:web", "chat", timeout=120)
    ari.session().delete(ari.url("CustomPresence:web"), timeout=120)
    panel.wait_presence("CustomPresence:web", "not_set", timeout=120)
    requests.delete(ari.BASE + "/ari/applications/memcheck-panel/subscription",
                        params={"eventSource": "presence:"}, auth=(ari.USER, ari.PASSWORD), timeout=120)
    panel.close()


def report(run_dir):
    logs = [os.path.join(run_dir, "log", f) for f in os.listdir(os.path.join(run_dir, "log"))
            if f.startswith("valgrind.")]
    total = ours = 0
    summaries, attributable = [], []
    for path in logs:
        text = open(path, errors="replace").read()
        if "asterisk" not in text.split("Command:", 1)[-1].splitlines()[0]:
            continue                      # a helper process valgrind followed, not Asterisk
        summaries += [l for l in text.splitlines() if "ERROR SUMMARY" in l or "definitely lost:" in l]
        # Error blocks are separated by blank lines after the '==PID== ' prefix.
        blocks = re.split(r"\n==\d+== \n", text)
        for block in blocks:
            if re.search(r"Invalid|uninitialised|Mismatched|definitely lost in|overlap|Syscall param", block):
                total += 1
                if OURS.search(block):
                    ours += 1
                    attributable.append(block)
    return total, ours, summaries, attributable, logs


def main():
    if not os.environ.get(instance.NS_ENV):
        os.environ["FPRS_MODULE"] = sys.argv[-1]
        os.environ["PYTHONPATH"] = HERE
        run_dir, steps = instance.in_namespace("memcheck:scenario", timeout=3600)
        total, ours, summaries, attributable, logs = report(run_dir)
        print("scenario steps: " + "; ".join(steps))
        print("valgrind logs: " + ", ".join(logs))
        for line in summaries:
            print("  " + line)
        print("memcheck: %d error/leak records in all, %d with a frame in func_presencestate_rs" % (total, ours))
        for block in attributable:
            print(block)
        print("%d passed, %d failed" % (0 if ours else 1, 1 if ours else 0))
        return 1 if ours else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
