"""bench/publish's work inside the namespace (see bench/publish and docs/BENCHMARKS.md,
"SIP PUBLISH").

One Asterisk 22 with PJSIP and the module, `users` endpoints with digest auth and
`[sip_publish] enabled = yes`. Measured with SIPp on loopback, in one run:
- throughput: `calls` authenticated PUBLISHes (each challenged 401, then authenticated, then
  answered 200 by the module, which stores and announces the state) with at most `window`
  calls open at once, against the same load of authenticated OPTIONS (res_pjsip answers them
  itself after the same identification and digest authentication: the SIP stack's own floor),
  alternated `rounds` times; calls per second from SIPp's own count and the wall clock, and
  whether every call succeeded and every PUBLISH was counted by the module (nothing lost);
- latency: a watcher subscribed (Event: presence, Digium PIDF) to one user's hint while that
  user publishes `latency_publishes` states, one every `latency_gap_ms`; from SIPp's
  timestamp of each authenticated PUBLISH sent to the watcher's timestamp of the NOTIFY
  carrying its note (both SIPp processes on this machine's clock).
"""
import os
import re
import statistics
import subprocess
import time
from datetime import datetime

from instance import AsteriskInstance

HERE = os.path.dirname(os.path.abspath(__file__))
SIPP = os.path.join(HERE, "sipp")
INTEGRATION = os.path.join(HERE, "..", "tests", "integration", "sipp")

FULL = {"users": 50, "calls": 20000, "window": 20, "rounds": 5, "latency_publishes": 200,
        "latency_gap_ms": 50}
QUICK = {"users": 5, "calls": 300, "window": 10, "rounds": 1, "latency_publishes": 20,
         "latency_gap_ms": 50}

LOGGER = """[general]
dateformat = %F %T.%3q

[logfiles]
messages => notice,warning,error
"""


def configs(users):
    pjsip = ["[transport-udp]", "type = transport", "protocol = udp", "bind = 127.0.0.1:5060", ""]
    for user in ["user%d" % i for i in range(users)] + ["watcher"]:
        pjsip += ["[%s]" % user, "type = auth", "auth_type = userpass", "username = %s" % user,
                  "password = pw-%s" % user, "",
                  "[%s]" % user, "type = aor", "max_contacts = 1", "",
                  "[%s]" % user, "type = endpoint", "context = phones", "disallow = all",
                  "allow = ulaw", "auth = %s" % user, "aors = %s" % user, ""]
    hints = "[general]\nstatic = yes\nwriteprotect = yes\n\n[phones]\n" + "".join(
        "exten => user%d,hint,CustomPresence:user%d\n" % (i, i) for i in range(users))
    return {"pjsip.conf": "\n".join(pjsip), "extensions.conf": hints, "logger.conf": LOGGER,
            "presencestate.conf": "[sip_publish]\nenabled = yes\n"}


def sipp(ast, scenario, csv_rows, extra, port, timeout):
    """Runs a SIPp scenario file (copied into the run) with an injection file; returns
    (seconds, stdout, message log path inside the root or None)."""
    os.makedirs(ast.host("sipp"), exist_ok=True)
    name = os.path.basename(scenario)
    with open(scenario) as src, open(ast.host("sipp", name), "w") as dst:
        dst.write(src.read().replace("@WATCH_MS@", str(extra.pop("watch_ms", 1000))))
    csv = ast.host("sipp", name + ".csv")
    with open(csv, "w") as f:
        f.write("SEQUENTIAL\n" + "".join(";".join(r) + "\n" for r in csv_rows))
    argv = ["chroot", ast.root, "sipp", "127.0.0.1:5060", "-sf", ast.dir + "/sipp/" + name,
            "-inf", ast.dir + "/sipp/" + name + ".csv", "-p", str(port), "-i", "127.0.0.1",
            "-nostdin", "-skip_rlimit", "-timeout", "%ds" % timeout, "-aa"]
    for key, value in extra.items():
        argv += ["-" + key] + ([] if value is None else [str(value)])
    started = time.monotonic()
    out = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         timeout=timeout + 30).stdout.decode(errors="replace")
    return time.monotonic() - started, out


def counts(out):
    """SIPp's cumulative successful and failed calls, and retransmissions, from its last screen."""
    def last(label):
        found = re.findall(r"%s\s*\|\s*\d+\s*\|\s*(\d+)" % label, out)
        return int(found[-1]) if found else None
    retrans = re.findall(r"^\s*\d+\s*:\s*\S+\s+-*>?\s*\S*\s+\d+\s+(\d+)", out, re.M)
    return last("Successful call"), last("Failed call"), sum(int(r) for r in retrans)


def throughput(ast, scenario, users, sizes, port):
    rows = [("user%d" % (i % users), "pw-user%d" % (i % users)) for i in range(users)]
    seconds, out = sipp(ast, scenario, rows, {"m": sizes["calls"], "l": sizes["window"],
                                              "r": 100000}, port, 300)
    ok, failed, _ = counts(out)
    return {"seconds": round(seconds, 3), "successful": ok, "failed": failed,
            "calls_per_s": round((ok or 0) / seconds, 1), "tail": out[-1500:] if failed or ok is None else ""}


def stat_accepted(ast):
    text = ast.cli("presencestate stats")
    found = re.search(r"Publications accepted\s+(\d+)", text)
    return int(found.group(1)) if found else -1


def stamps(log, kind):
    """(timestamp, message) of each message SIPp logged as `kind` ("sent"/"received")."""
    found = []
    for block in open(log, errors="replace").read().split("\n\n----")[0:]:
        m = re.search(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+)Z\s*\nUDP message %s" % kind, block)
        if m:
            found.append((datetime.fromisoformat(m.group(1)).timestamp(), block))
    return found


def latency(ast, sizes, port):
    """Milliseconds from each authenticated PUBLISH sent to the watcher's NOTIFY with its note."""
    user = "user0"
    watch_ms = sizes["latency_publishes"] * sizes["latency_gap_ms"] + 6000
    wlog = ast.dir + "/sipp/watcher.log"
    watcher = subprocess.Popen(
        ["chroot", ast.root, "sipp", "127.0.0.1:5060", "-sf", ast.dir + "/sipp/presence_watcher.xml",
         "-inf", ast.dir + "/sipp/watcher.csv", "-p", str(port), "-i", "127.0.0.1", "-m", "1",
         "-nostdin", "-skip_rlimit", "-timeout", "%ds" % (watch_ms // 1000 + 30), "-aa",
         "-trace_msg", "-message_file", wlog], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    time.sleep(2)                                    # subscribed, first NOTIFY answered
    plog = ast.dir + "/sipp/publisher.log"
    rows = [(user, "pw-" + user)]
    rate = 1000 // sizes["latency_gap_ms"]
    seconds, out = sipp(ast, os.path.join(SIPP, "publish_auth.xml"), rows,
                        {"m": sizes["latency_publishes"], "r": rate, "l": 1, "trace_msg": None,
                         "message_file": plog}, port + 1, 120)
    watcher.wait(watch_ms // 1000 + 60)
    sent = {}
    for when, block in stamps(ast.root + plog, "sent"):
        note = re.search(r"<dm:note>(n\d+)</dm:note>", block)
        if note and "Authorization:" in block:
            sent[note.group(1)] = when
    delays = []
    for when, block in stamps(ast.root + wlog, "received"):
        if not re.search(r"^NOTIFY sip:", block, re.M):
            continue
        note = re.search(r"digium_presence type=\"away\" subtype=\"away\">(n\d+)<", block)
        if note and note.group(1) in sent:
            delays.append((when - sent.pop(note.group(1))) * 1000)
    delays.sort()
    return {"publishes": sizes["latency_publishes"], "notified": len(delays),
            "median_ms": round(statistics.median(delays), 2) if delays else None,
            "p99_ms": round(delays[max(0, int(len(delays) * 0.99) - 1)], 2) if delays else None,
            "max_ms": round(delays[-1], 2) if delays else None}


def run(module, sizes):
    ast = AsteriskInstance(mode="ours", module_path=module, name="bench-publish",
                           configs=configs(sizes["users"]))
    ast.start(timeout=120)
    try:
        version = ast.cli("core show version")
        os.makedirs(ast.host("sipp"), exist_ok=True)
        watch_ms = sizes["latency_publishes"] * sizes["latency_gap_ms"] + 6000
        with open(os.path.join(INTEGRATION, "presence_watcher.xml")) as src, \
                open(ast.host("sipp", "presence_watcher.xml"), "w") as dst:
            dst.write(src.read().replace("@WATCH_MS@", str(watch_ms)))
        with open(ast.host("sipp", "watcher.csv"), "w") as f:
            f.write("SEQUENTIAL\nwatcher;pw-watcher;user0\n")
        rounds = []
        port = 6000
        for _ in range(sizes["rounds"]):
            before = stat_accepted(ast)
            options = throughput(ast, os.path.join(SIPP, "options_auth.xml"), sizes["users"], sizes, port)
            publish = throughput(ast, os.path.join(SIPP, "publish_auth.xml"), sizes["users"], sizes, port + 1)
            publish["module_accepted"] = stat_accepted(ast) - before
            rounds.append({"options": options, "publish": publish})
            port += 2
        lat = latency(ast, sizes, port + 10)
        errors = [l for l in ast.log_text().splitlines() if "ERROR[" in l and "src/ffi" in l]
        return {"asterisk": version, "sizes": sizes, "rounds": rounds, "latency": lat,
                "module_errors": errors}
    finally:
        ast.stop()
