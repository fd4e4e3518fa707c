#!/usr/bin/env python3
"""Starts a real Asterisk with func_presencestate_rs (the stock module noloaded) in its own
network, mount and PID namespace, and shows presence being set, read, listed and announced.
Debian's Asterisk 22 in the provisioned root, or the one ASTERISK_ROOT / ASTERISK_PREFIX select
(see asterisk-test-suite/README.md, "Which Asterisk").

    scripts/demo.py [--console] MODULE_PATH

--console: afterwards, attach an Asterisk console (asterisk -r) to the running instance;
Asterisk stops when the console exits.
"""
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "asterisk-test-suite", "lib"))
import instance  # noqa: E402

DIALPLAN = r"""
[demo]
; A dialplan writes presence, plain and base64-encoded (commas and all), then reads it back.
exten => set,1,Set(PRESENCE_STATE(CustomPresence:alice)=away,lunch,Back at 2)
 same => n,Set(PRESENCE_STATE(CustomPresence:team/bob)=dnd,${BASE64_ENCODE(meeting)},${BASE64_ENCODE(Room B, until 15:00)},e)
 same => n,UserEvent(DemoRead,Alice: ${PRESENCE_STATE(CustomPresence:alice,value)} / ${PRESENCE_STATE(CustomPresence:alice,subtype)} / ${PRESENCE_STATE(CustomPresence:alice,message)},Bob: ${PRESENCE_STATE(CustomPresence:team/bob,value)} / ${PRESENCE_STATE(CustomPresence:team/bob,subtype)} / (message, base64) ${PRESENCE_STATE(CustomPresence:team/bob,message,e)})
 same => n,Hangup()

; Phones subscribe to these hints (BLF / presence keys).
exten => 1001,hint,,CustomPresence:alice
exten => 1002,hint,,CustomPresence:team/bob
; A phone's BLF key showing presence as device state ([device_state] enabled = yes below).
exten => 1003,hint,Custom:phone1003&CustomPresence:carol
"""

# The device-state provider is opt-in (stock has none); the demo shows it switched on.
CONFIG = """[device_state]
enabled = yes
"""


def banner(text):
    print("\n=== %s" % text, flush=True)


def show_event(event, fields):
    print("  %-20s %s" % (event["Event"], "  ".join("%s=%r" % (f, event.get(f, "")) for f in fields)))


def scenario(console):
    module = os.environ["FPRS_MODULE"]
    ast = instance.AsteriskInstance(mode="ours", module_path=module, name="demo",
                                    configs={"extensions.conf": "[general]\n" + DIALPLAN,
                                             "presencestate.conf": CONFIG})
    ast.start()
    try:
        banner("Asterisk %s is up with:" % ast.cli("core show version").split()[1])
        print(ast.cli("module show like presence").rstrip())
        ami = ast.ami()

        banner("The dialplan sets alice and team/bob (Local/set@demo), AMI events follow")
        mark = ami.mark()
        ami.action({"Action": "Originate", "Channel": "Local/set@demo", "Application": "Wait",
                    "Data": "1", "Async": "true"})
        ami.wait_for(lambda e: e.get("Event") == "UserEvent", start=mark, timeout=10)
        ami.wait_for(lambda e: e.get("Event") == "PresenceStatus", start=mark, count=2, timeout=10)
        for event in ami.events(start=mark):
            if event.get("Event") == "PresenceStateChange":
                show_event(event, ("Presentity", "Status", "Subtype", "Message"))
            elif event.get("Event") == "PresenceStatus":
                show_event(event, ("Exten", "Status", "Subtype", "Message"))
            elif event.get("Event") == "UserEvent":
                show_event(event, ("Alice", "Bob"))

        banner("AMI sets carol; AMI reads her back")
        mark = ami.mark()
        ami.action({"Action": "SetVar", "Variable": "PRESENCE_STATE(CustomPresence:carol)",
                    "Value": "chat,,Ask me anything"})
        show_event(ami.wait_for(lambda e: e.get("Event") == "PresenceStateChange", start=mark),
                   ("Presentity", "Status", "Message"))
        for field in ("value", "message"):
            value = ami.action({"Action": "Getvar",
                                "Variable": "PRESENCE_STATE(CustomPresence:carol,%s)" % field})["Value"]
            print("  Getvar PRESENCE_STATE(CustomPresence:carol,%s) = %r" % (field, value))

        banner("[device_state] enabled = yes: carol's chat is a device state, hint 1003 follows")
        device = ami.action({"Action": "Getvar", "Variable": "DEVICE_STATE(CustomPresence:carol)"})
        print("  Getvar DEVICE_STATE(CustomPresence:carol) = %r" % device["Value"])
        mark = ami.mark()
        ami.action({"Action": "SetVar", "Variable": "PRESENCE_STATE(CustomPresence:carol)",
                    "Value": "dnd,,In a meeting"})
        show_event(ami.wait_for(lambda e: e.get("Event") == "ExtensionStatus"
                                and e.get("Exten") == "1003" and e.get("StatusText") == "Busy",
                                start=mark), ("Exten", "Hint", "StatusText"))

        banner("AMI PresenceStateList")
        for event in ami.action({"Action": "PresenceStateList"}).events:
            show_event(event, ("Presentity", "Status", "Subtype", "Message"))

        banner("CLI: presencestate change, then presencestate list")
        print(ast.cli('presencestate change CustomPresence:carol "available,,Back from lunch"').rstrip())
        print(ast.cli("presencestate list").rstrip())

        banner("A bad write is refused with a WARNING, and nothing changes")
        response = ami.action({"Action": "SetVar", "Variable": "PRESENCE_STATE(CustomPresence:carol)",
                               "Value": "away,,Lunch, back at 2"})
        print("  SetVar answered: %s (%s)" % (response.get("Response"), response.get("Message")))
        # The logger writes asynchronously: give the line a moment to arrive.
        deadline = time.monotonic() + 5
        while True:
            warnings = [l for l in ast.log_text().splitlines() if "WARNING" in l and "src/ffi" in l]
            if warnings or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        print("  log: " + (warnings[-1] if warnings else "(no warning?)"))
        print("  carol is still: %r" % ami.action(
            {"Action": "Getvar", "Variable": "PRESENCE_STATE(CustomPresence:carol,message)"})["Value"])

        if console:
            banner("Attaching a console (type 'exit' to leave; Asterisk stops with it)")
            subprocess.call(["chroot", ast.root, ast.inst.binary, "-C", ast.conf, "-r"])
        else:
            banner("Done. For a console on such an instance: scripts/demo --console")
    finally:
        ast.stop()
        ast.cleanup()


def main():
    console = "--console" in sys.argv[1:]
    paths = [a for a in sys.argv[1:] if a != "--console"]
    if os.environ.get(instance.NS_ENV):
        os.environ["FPRS_MODULE"] = paths[0]
        scenario(console)
        return 0
    # Re-run this script as the init of a fresh namespace, keeping the terminal for --console.
    root = instance.default_root()
    script = ('mount --rbind /dev "$R/dev" && ip link set lo up && export %s="$R" && exec "$@"'
              % instance.NS_ENV)
    return subprocess.call(instance._unshare(root) + ["env", "R=" + root, "sh", "-c", script, "sh",
                                                      sys.executable, os.path.abspath(__file__)]
                           + sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
