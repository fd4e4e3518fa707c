"""bench/ari's work inside the namespace (see bench/ari and docs/BENCHMARKS.md, "ARI").

One Asterisk 22 with the module and ARI. Two resources side by side in the same run, each
measured the same way: this module's `PUT /ari/presenceStates/CustomPresence:<name>` and
Asterisk's own `PUT /ari/deviceStates/Stasis:<name>` (res_ari_device_states, the floor).

- Rate: wrk (a real HTTP load generator) PUTting for `seconds` over `connections` keep-alive
  connections, to `names` names in turn, in `rounds` rounds of each resource taken in the
  order ours, theirs, theirs, ours, ... so drift of the shared machine falls on both.
- Latency: one client PUTs, waits for the change's event on an ARI websocket
  (PresenceStateChanged for ours, DeviceStateChanged for theirs), and times PUT sent to event
  received, `samples` times for each, alternating.
"""
import base64
import http.client
import os
import re
import statistics
import subprocess
import tempfile
import time

from ari import BASE, PASSWORD, PORT, USER, Events, start_with_ari, subscribe

FULL = {"seconds": 5, "connections": 8, "threads": 2, "names": 100, "rounds": 3, "samples": 1000}
QUICK = {"seconds": 1, "connections": 4, "threads": 1, "names": 10, "rounds": 1, "samples": 50}

# wrk's request script: PUT to the resource's name <n>, n taken in turn, and each name's state
# flipped at each of its turns, so every PUT is a change. (With the state taken by the
# counter's parity instead, an even number of names gave each name the same state every time:
# Asterisk's device-state aggregation publishes nothing for a device whose state is unchanged,
# so deviceStates woke none of its subscribers, while every presence change is announced.)
WRK_SCRIPT = """
local fmt, names, a, b, auth = nil, 0, nil, nil, nil
local counter = 0
function init(args)
  fmt, names, a, b, auth = args[1], tonumber(args[2]), args[3], args[4], args[5]
end
function request()
  counter = counter + 1
  local state = (math.floor(counter / names) %% 2 == 0) and a or b
  local path = string.format(fmt, counter %% names, state)
  return wrk.format("PUT", path, { ["Authorization"] = auth }, nil)
end
"""

RESOURCES = {
    "presenceStates": ("/ari/presenceStates/CustomPresence:bench%%d?state=%%s&message=%s" % "wrk",
                       "away", "available"),
    "deviceStates": ("/ari/deviceStates/Stasis:bench%d?deviceState=%s", "INUSE", "NOT_INUSE"),
}


def auth():
    return "Basic " + base64.b64encode(("%s:%s" % (USER, PASSWORD)).encode()).decode()


def wrk(resource, sizes, script):
    fmt, a, b = RESOURCES[resource]
    out = subprocess.run(
        ["wrk", "-t%d" % sizes["threads"], "-c%d" % sizes["connections"], "-d%ds" % sizes["seconds"],
         "--latency", "-s", script, BASE, "--", fmt, str(sizes["names"]), a, b, auth()],
        capture_output=True, text=True, timeout=sizes["seconds"] * 4 + 60).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(r"Socket errors: (.*)", out)
    if errors or socket_errors:
        raise AssertionError("wrk against %s: %s%s\n%s" % (resource, errors and errors.group(0) or "",
                                                           socket_errors and socket_errors.group(0) or "", out))
    requests_done = int(re.search(r"(\d+) requests in", out).group(1))
    return rate, requests_done


def latencies(sizes, events):
    """PUT sent -> event received, ms, for each resource, alternating."""
    conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=10)
    headers = {"Authorization": auth()}
    ours, theirs = [], []
    for i in range(sizes["samples"]):
        for resource in ("presenceStates", "deviceStates"):
            mark = events.mark()
            if resource == "presenceStates":
                path = "/ari/presenceStates/CustomPresence:lat?state=dnd&message=m%d" % i
                match = lambda m: (m.get("type") == "PresenceStateChanged"  # noqa: E731
                                   and m["presence_state"]["message"] == "m%d" % i)
            else:
                state = "INUSE" if i % 2 else "NOT_INUSE"
                path = "/ari/deviceStates/Stasis:lat?deviceState=%s" % state
                match = lambda m: (m.get("type") == "DeviceStateChanged"  # noqa: E731
                                   and m["device_state"]["name"] == "Stasis:lat"
                                   and m["device_state"]["state"] == state)
            sent = time.monotonic()
            conn.request("PUT", path, headers=headers)
            response = conn.getresponse()
            response.read()
            assert response.status in (200, 204), (path, response.status)
            _, arrived = events.wait_for(match, timeout=10, start=mark)
            (ours if resource == "presenceStates" else theirs).append((arrived - sent) * 1000)
    conn.close()
    return ours, theirs


def percentile(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def run(module, sizes, conf=None):
    extra = {"presencestate.conf": conf} if conf is not None else {}
    ast = start_with_ari(module_path=module, extra=extra)
    version = ast.cli("core show version")
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(WRK_SCRIPT.replace("%%", "%"))
        script = f.name
    # The device states exist before the run (deviceStates creates them on first PUT too).
    rates = {"presenceStates": [], "deviceStates": []}
    totals = {"presenceStates": 0, "deviceStates": 0}
    order = []
    for r in range(sizes["rounds"]):
        order += ["presenceStates", "deviceStates"] if r % 2 == 0 else ["deviceStates", "presenceStates"]
    for resource in order:
        rate, done = wrk(resource, sizes, script)
        rates[resource].append(rate)
        totals[resource] += done
    events = Events("bench")
    assert subscribe("bench", "presence:CustomPresence:lat").status_code == 200
    assert subscribe("bench", "deviceState:Stasis:lat").status_code == 200
    ours, theirs = latencies(sizes, events)
    events.close()
    errors = [l for l in ast.log_text().splitlines() if "ERROR[" in l and "presence" in l.lower()]
    stored = ast.cli("presencestate stats")
    ast.stop()
    os.unlink(script)
    return {
        "asterisk": version, "sizes": sizes, "rates": rates, "totals": totals, "order": order,
        "latency_ms": {
            "presenceStates": {"median": statistics.median(ours), "p99": percentile(ours, 99),
                               "max": max(ours)},
            "deviceStates": {"median": statistics.median(theirs), "p99": percentile(theirs, 99),
                             "max": max(theirs)}},
        "errors": errors, "stats": stored,
    }
