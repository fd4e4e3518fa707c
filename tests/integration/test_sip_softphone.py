"""A real softphone that nobody here wrote, Debian's baresip, registered to Asterisk 22 as
alice, sets its presence with its own `/presence online|offline` command (a PUBLISH with a
PIDF body, RFC 3903 refresh and removal as baresip does them); a colleague's phone (SIPp)
subscribed with Event: presence to alice's hint receives the NOTIFY with the new state, and
PRESENCE_STATE() reads it."""
import json
import os
import re
import signal
import socket
import subprocess
import time

import test_sip_publish as publish
from helpers import getvar, requires, setvar, start

BARESIP_CONFIG = """module_path /usr/lib/baresip/modules
sip_listen 127.0.0.1:5090
sip_transports udp
net_interface 127.0.0.1
audio_player null
audio_source null
module_app account.so
module_app presence.so
module_app ctrl_tcp.so
ctrl_tcp_listen 127.0.0.1:4444
"""

# Registered (regint), publishing every 60 s (pubint), as alice with her digest password.
ACCOUNTS = "<sip:alice@127.0.0.1:5060;transport=udp>;auth_pass=secret-alice;regint=600;pubint=60\n"


class Baresip:
    def __init__(self, ast):
        self.ast = ast
        self.dir = ast.host("baresip")
        os.makedirs(self.dir, exist_ok=True)
        for name, text in (("config", BARESIP_CONFIG), ("accounts", ACCOUNTS), ("contacts", "")):
            with open(os.path.join(self.dir, name), "w") as f:
                f.write(text)
        self.log = open(os.path.join(self.dir, "output"), "wb")
        self.process = subprocess.Popen(
            ["chroot", ast.root, "baresip", "-f", ast.dir + "/baresip"],
            stdin=subprocess.PIPE, stdout=self.log, stderr=subprocess.STDOUT)

    def output(self):
        with open(os.path.join(self.dir, "output"), errors="replace") as f:
            return f.read()

    def command(self, text, timeout=10):
        """Runs a baresip command through its ctrl_tcp module (JSON in a netstring)."""
        command, _, params = text.partition(" ")
        payload = json.dumps({"command": command, "params": params, "token": "t"}).encode()
        deadline = time.monotonic() + timeout
        while True:
            try:
                with socket.create_connection(("127.0.0.1", 4444), timeout=timeout) as s:
                    s.sendall(b"%d:%s," % (len(payload), payload))
                    answer = s.recv(65536)
                    return answer.decode(errors="replace")
            except ConnectionRefusedError:
                assert time.monotonic() < deadline, "baresip's ctrl_tcp never listened:\n" + self.output()
                time.sleep(0.1)

    def stop(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()


def notifies(messages):
    """The NOTIFYs SIPp received, bodies included, each once."""
    return [m for m in messages.split("\n\n----") if re.search(r"^UDP message received", m, re.M)
            and re.search(r"^NOTIFY sip:", m, re.M)]


@requires(("module", "res_pjsip"), ("app", "sipp"), ("app", "baresip"))
def test_baresip_sets_its_presence_and_a_watcher_is_notified():
    with start(configs=publish.CONFIGS) as ast:
        ami = ast.ami()
        assert setvar(ami, "CustomPresence:alice", "away,,Before baresip")["Response"] == "Success"
        sipp = publish.Sipp(ast)
        watcher, trace = sipp.start("presence_watcher.xml", "watcher", fields=("alice",),
                                    watch_ms=15000, timeout=40)
        phone = Baresip(ast)
        try:
            # baresip registers, then publishes "online" (basic open): available.
            publish.wait_for_state(ami, "alice", "available", timeout=15)
            print("baresip's first PUBLISH set alice to:", publish.state(ami, "alice"))
            answer = phone.command("presence offline")
            print("baresip /presence offline ->", answer)
            publish.wait_for_state(ami, "alice", "unavailable", timeout=10)
            assert getvar(ami, "CustomPresence:alice,value") == "unavailable"
            stored = publish.state(ami, "alice")
            print("AstDB CustomPresence/alice =", stored)
            assert re.fullmatch(r"unavailable,,,t\(\d+\)", stored), stored
            shown = ast.cli("presencestate show CustomPresence:alice")
            print(shown)
            assert "sip publish from endpoint alice" in shown
            listed = ast.cli("presencestate publications")
            print(listed)
            assert "CustomPresence:alice" in listed and "127.0.0.1:5090" in listed, listed
            # The watcher's NOTIFY for the change carries the new state.
            deadline = time.monotonic() + 10
            while not any("unavailable" in n for n in notifies(publish.read(trace))):
                assert time.monotonic() < deadline, publish.read(trace)[-4000:]
                time.sleep(0.1)
            notify = [n for n in notifies(publish.read(trace)) if "unavailable" in n][0]
            print("The watcher's NOTIFY after baresip went offline:\n" + notify.strip())
        finally:
            phone.stop()
        print("baresip's output:\n" + phone.output()[-3000:])
        # baresip removes its publication when it quits: alice is back to what she held.
        publish.wait_for_state(ami, "alice", "away", timeout=10)
        assert publish.state(ami, "alice") == "away,,Before baresip"
        sipp.finish(watcher, trace, "presence_watcher.xml", 40)
