"""The cluster behaviour of issue 12, against real corosync and real Asterisk on 3 nodes.

Each test gets a fresh `Cluster` (lib/cluster.py) from run.py: 3 nodes in namespaces joined by
a bridge, corosync running on each; the test starts the nodes' Asterisks itself.
"""
import os
import re
import shutil
import sys
import threading
import time

from cluster import children

GROUP = "asterisk-presence"
ENABLED = "[cluster]\nenabled = yes\n"
EXTENSIONS = """[general]
static = yes
writeprotect = yes

[default]
exten => 1000,hint,,CustomPresence:alice

; fill-<N>-<prefix>[-<state>]: writes N states <prefix>0 .. <prefix>N-1 (state away unless
; given) as fast as the dialplan goes, then reports a UserEvent FillDone with its start and end
; (milliseconds, Asterisk's own clock).
[bench]
exten => _fill-X.,1,Answer()
 same => n,Set(COUNT=${CUT(EXTEN,-,2)})
 same => n,Set(PREFIX=${CUT(EXTEN,-,3)})
 same => n,Set(STATE=${CUT(EXTEN,-,4)})
 same => n,Set(STATE=${IF($["${STATE}" = ""]?away:${STATE})})
 same => n,Set(i=0)
 same => n,Set(START=${STRFTIME(,,%s%3q)})
 same => n,While($[${i} < ${COUNT}])
 same => n,Set(PRESENCE_STATE(CustomPresence:${PREFIX}${i})=${STATE},,note ${i})
 same => n,Set(i=$[${i} + 1])
 same => n,EndWhile()
 same => n,UserEvent(FillDone,Prefix: ${PREFIX},Count: ${i},Start: ${START},End: ${STRFTIME(,,%s%3q)})
 same => n,Hangup()
"""
HERE = os.path.dirname(os.path.abspath(__file__))


# No verbose lines: a fill of 100,000 writes would log 400,000 dialplan steps.
LOGGER = """[general]
dateformat = %F %T.%3q

[logfiles]
messages => notice,warning,error
"""


def configs(enabled=True):
    files = {"extensions.conf": EXTENSIONS, "logger.conf": LOGGER}
    if enabled:
        files["presencestate.conf"] = ENABLED
    return files


def in_parallel(*calls):
    errors = []

    def run(call):
        try:
            call()
        except BaseException as e:      # re-raised below
            errors.append(e)

    threads = [threading.Thread(target=run, args=(c,)) for c in calls]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]


def wait(predicate, what, timeout=20, every=0.2):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %ss waiting for %s" % (timeout, what))
        time.sleep(every)


def up(cluster, enabled=True):
    """Starts corosync on every node, then every Asterisk; waits until all have resynchronised."""
    cluster.start()
    in_parallel(*[lambda n=n: n.start_asterisk(configs(enabled)) for n in cluster.nodes])
    if enabled:
        wait_group(cluster.nodes, 3)


def status(node):
    return node.cli("presencestate cluster")


def wait_group(nodes, count, timeout=30):
    """Until every node's module sees `count` members and a finished resynchronisation."""
    def ready():
        return all("Members: %d" % count in s and "Last resynchronisation: none" not in s
                   and "Connection: joined" in s for s in (status(n) for n in nodes))
    wait(ready, "%d members on %s" % (count, [n.name for n in nodes]), timeout)


def family(node, name="CustomPresence"):
    """An AstDB family of the node's Asterisk, as {key: value}."""
    out = node.cli("database show %s" % name)
    table = {}
    for line in out.splitlines():
        m = re.match(r"^/%s/(\S+)\s*: (.*?)\s*$" % name, line)
        if m:
            table[m.group(1)] = m.group(2)
    return table


def wait_equal(nodes, timeout=30, size=None):
    """Until every node's CustomPresence family is the same (and `size` entries long)."""
    def same():
        tables = [family(n) for n in nodes]
        ok = all(t == tables[0] for t in tables) and (size is None or len(tables[0]) == size)
        return tables[0] if ok else None
    return wait(same, "equal tables on %s" % [n.name for n in nodes], timeout, every=0.5)


def setvar(ami, name, value):
    r = ami.action({"Action": "SetVar", "Variable": "PRESENCE_STATE(CustomPresence:%s)" % name,
                    "Value": value})
    assert r.get("Response") == "Success", r


def getvar(ami, arguments):
    r = ami.action({"Action": "Getvar", "Variable": "PRESENCE_STATE(%s)" % arguments})
    assert r.get("Response") == "Success", r
    return r.get("Value", "")


def fill(node, count, prefix, ami=None, state=""):
    """Starts node's dialplan writing `count` states `<prefix><i>`; returns (ami, event mark)
    to wait for its FillDone with `fill_done`."""
    ami = ami or node.ami(events="user")
    mark = ami.mark()
    channel = "Local/fill-%d-%s%s@bench" % (count, prefix, "-" + state if state else "")
    r = ami.action({"Action": "Originate", "Channel": channel,
                    "Application": "Wait", "Data": "3600", "Async": "true"})
    assert r.get("Response") == "Success", r
    return ami, mark


def fill_done(started, prefix, timeout=300):
    """The FillDone event of a `fill`: (start ms, end ms) by Asterisk's clock."""
    ami, mark = started
    event = ami.wait_for(lambda e: e.get("Event") == "UserEvent" and e.get("UserEvent") == "FillDone"
                         and e.get("Prefix") == prefix, timeout=timeout, start=mark)
    return int(event["Start"]), int(event["End"])


def count(node, prefix=""):
    """How many CustomPresence states AstDB holds (whose name starts with `prefix`)."""
    out = node.cli("database query \"SELECT count(*) AS states FROM astdb WHERE key LIKE "
                   "'/CustomPresence/%s%%'\"" % prefix)
    for line in out.splitlines():
        if line.strip().startswith("states"):
            return int(line.split()[-1])
    raise AssertionError("database query gave no count: %r" % out)


def warnings(node, fragment):
    return [l for l in node.log().splitlines() if "WARNING[" in l and fragment in l]


# ---------------------------------------------------------------------------------------------

def test_1_a_write_is_read_announced_and_hinted_on_every_node(cluster):
    up(cluster)
    amis = {n.number: n.ami() for n in cluster.nodes}
    marks = {k: a.mark() for k, a in amis.items()}
    started = time.monotonic()
    setvar(amis[1], "alice", "away,Lunch,Back at 2")
    for k in (2, 3):
        event = amis[k].wait_for(lambda e: e.get("Event") == "PresenceStateChange"
                                 and e.get("Presentity") == "CustomPresence:alice",
                                 timeout=5, start=marks[k])
        assert (event["Status"], event["Subtype"], event["Message"]) == ("away", "Lunch", "Back at 2"), event
        assert getvar(amis[k], "CustomPresence:alice,value") == "away"
        assert getvar(amis[k], "CustomPresence:alice,message") == "Back at 2"
    print("    node 1 write -> PresenceStateChange on nodes 2 and 3 within %.1f ms"
          % ((time.monotonic() - started) * 1000))
    hint = amis[3].wait_for(lambda e: e.get("Event") == "PresenceStatus" and e.get("Exten") == "1000",
                            timeout=5, start=marks[3])
    assert hint["Status"] == "away" and hint["Message"] == "Back at 2", hint
    # Applied once, never sent on: nodes 2 and 3 sent no state.
    for k in (2, 3):
        assert "States: sent 0, applied 1," in status(cluster.node(k)), status(cluster.node(k))
    assert family(cluster.node(2), "CustomPresenceVersion") == family(cluster.node(1), "CustomPresenceVersion")


def test_2_concurrent_writes_of_one_name_end_on_the_last_writer_everywhere(cluster):
    up(cluster)
    amis = {n.number: n.ami(events="off") for n in cluster.nodes}
    count = 300

    def writer(k, state):
        for i in range(count):
            setvar(amis[k], "contended", "%s,n%d,%d" % (state, k, i))
    in_parallel(lambda: writer(1, "away"), lambda: writer(2, "dnd"))
    table = wait_equal(cluster.nodes)
    versions = [family(n, "CustomPresenceVersion")["contended"] for n in cluster.nodes]
    assert versions[0] == versions[1] == versions[2], versions
    value = table["contended"]
    writer_node = int(value.split(",")[1][1:])
    version_node = int(versions[0].split()[0].split(".")[2])
    # The winner is a writer's last write, and its version is that writer's.
    assert value.endswith(",%d" % (count - 1)), value
    assert writer_node == version_node, (value, versions[0])
    conflicts = [re.search(r"conflicts resolved (\d+)", status(n)).group(1) for n in cluster.nodes]
    print("    winner %s version %s; conflicts resolved per node %s" % (value, versions[0], conflicts))


def test_3_a_partition_heals_to_the_last_writer_of_each_name_with_nothing_lost(cluster):
    up(cluster)
    n1, n2, n3 = cluster.nodes
    a1, a3 = n1.ami(events="off"), n3.ami(events="off")
    for i in range(5):
        setvar(a1, "pre%d" % i, "available")
    wait_equal(cluster.nodes, size=5)
    n3.link(False)
    cluster.wait_members({1, 2}, nodes=[n1, n2])
    cluster.wait_members({3}, nodes=[n3])
    wait_group([n1, n2], 2)
    wait_group([n3], 1)
    expected = {"pre%d" % i: "available" for i in range(5)}
    for i in range(20):
        setvar(a1, "a%d" % i, "away,,side A")
        setvar(a3, "b%d" % i, "dnd,,side B")
        expected["a%d" % i], expected["b%d" % i] = "away,,side A", "dnd,,side B"
    for j in range(10):
        first, second = (a1, a3) if j % 2 == 0 else (a3, a1)
        setvar(first, "both%d" % j, "xa,,first")
        time.sleep(0.02)
        setvar(second, "both%d" % j, "chat,,second on %s" % ("B" if j % 2 == 0 else "A"))
        expected["both%d" % j] = "chat,,second on %s" % ("B" if j % 2 == 0 else "A")
    setvar(a3, "pre0", "dnd,,changed on B")
    expected["pre0"] = "dnd,,changed on B"
    healed = time.monotonic()
    n3.link(True)
    cluster.wait_members({1, 2, 3})
    table = wait_equal(cluster.nodes, size=len(expected))
    print("    healed: all 3 nodes equal %.1f s after the link came back" % (time.monotonic() - healed))
    assert table == expected, {k: (table.get(k), v) for k, v in expected.items() if table.get(k) != v}
    wait_group(cluster.nodes, 3)
    print("    side A (node 1) wrote a0..a19, both0..9; side B (node 3) wrote b0..b19, both0..9, pre0")
    print("    after the heal each node holds %d names, e.g. both0=%r both1=%r pre0=%r"
          % (len(table), table["both0"], table["both1"], table["pre0"]))
    for n in cluster.nodes:
        print("    %s: presencestate cluster\n%s" % (n.name, "".join("      " + l + "\n" for l in status(n).splitlines() if l.strip())))


def test_4_a_killed_node_loses_nothing_and_gets_what_it_missed(cluster):
    up(cluster)
    n1, n2, n3 = cluster.nodes
    for i in range(10):
        setvar(n1.ami(events="off"), "k%d" % i, "away,,from node 1")
    before = wait_equal(cluster.nodes, size=10)
    n1.kill_asterisk()
    wait_group([n2, n3], 2)
    assert family(n2) == before and family(n3) == before
    a2 = n2.ami(events="off")
    for i in range(10):
        setvar(a2, "missed%d" % i, "dnd,,while node 1 was down")
    setvar(n3.ami(events="off"), "k0", "xa,,changed while node 1 was down")
    n1.start_asterisk()
    table = wait_equal(cluster.nodes, size=20)
    assert table["k0"] == "xa,,changed while node 1 was down" and table["missed9"].startswith("dnd"), table


def test_5_a_node_without_corosync_works_alone_and_converges_when_it_is_back(cluster):
    up(cluster)
    n1, n2, n3 = cluster.nodes
    setvar(n1.ami(events="off"), "x", "available")
    wait_equal(cluster.nodes, size=1)
    n2.stop_corosync()
    wait(lambda: "Connection: not connected" in status(n2), "node 2 to notice corosync is gone")
    a2 = n2.ami(events="off")
    for i in range(5):
        setvar(a2, "alone%d" % i, "away,,written on node 2 alone")
    assert getvar(a2, "CustomPresence:alone4,value") == "away"
    setvar(n1.ami(events="off"), "others", "dnd,,written on node 1 meanwhile")
    time.sleep(7)       # two reconnection attempts: still one WARNING
    lost = warnings(n2, "Presence cluster: ")
    assert len(lost) == 1, lost
    n2.start_corosync()
    cluster.wait_members({1, 2, 3})
    table = wait_equal(cluster.nodes, size=7)
    assert table["alone0"] == "away,,written on node 2 alone" and table["others"].startswith("dnd"), table
    assert len(warnings(n2, "Presence cluster: ")) == 1


def test_6_a_fresh_node_gets_100000_states_while_the_dialplan_keeps_running(cluster, size=100_000):
    cluster.start()
    n1, n2, n3 = cluster.nodes
    in_parallel(lambda: n1.start_asterisk(configs()), lambda: n2.start_asterisk(configs()))
    wait_group([n1, n2], 2)
    start, end = fill_done(fill(n1, size, "s"), "s")
    wait(lambda: count(n2) == size, "node 2 to hold %d states" % size, timeout=120, every=1)
    print("    node 1 wrote %d states in %.1f s; node 2 had them all" % (size, (end - start) / 1000))
    # Node 3 joins with an empty AstDB while node 1's dialplan keeps writing and answering.
    a1 = n1.ami(events="off")
    times, reading = [], [True]

    def read_meanwhile():
        while reading[0]:
            t = time.monotonic()
            assert getvar(a1, "CustomPresence:s0,value") == "away"
            times.append(time.monotonic() - t)
            time.sleep(0.005)
    reader = threading.Thread(target=read_meanwhile)
    reader.start()
    try:
        busy = fill(n1, 2000, "busy")
        joined = time.monotonic()
        n3.start_asterisk(configs())
        busy_start, busy_end = fill_done(busy, "busy")
        wait(lambda: count(n3) == size + 2000, "node 3 to hold every state", timeout=120, every=1)
        took = time.monotonic() - joined
    finally:
        reading[0] = False
        reader.join()
    tables = [family(n) for n in cluster.nodes]
    assert len(tables[0]) == size + 2000 and tables[0] == tables[1] == tables[2]
    report = re.search(r"Last resynchronisation: .*", status(n3)).group(0)
    times.sort()
    print("    node 3 (empty AstDB) started and held all %d states %.1f s later; its %s"
          % (size + 2000, took, report))
    print("    meanwhile node 1 wrote 2000 more states in %.2f s and answered %d reads "
          "(median %.1f ms, max %.1f ms)" % ((busy_end - busy_start) / 1000, len(times),
                                             times[len(times) // 2] * 1000, times[-1] * 1000))
    assert len(times) > 10 and times[-1] < 1.0, times[-5:]


def test_7_garbage_from_a_foreign_member_is_dropped_and_changes_nothing(cluster):
    up(cluster)
    n1, n2, n3 = cluster.nodes
    setvar(n1.ami(events="off"), "alice", "away,,Lunch")
    before = wait_equal(cluster.nodes, size=1)

    def entry(name, value, wall=1 << 62, revert=b""):
        return (wall.to_bytes(8, "little") + (0).to_bytes(4, "little") + (9).to_bytes(4, "little")
                + len(name).to_bytes(4, "little") + name + len(value).to_bytes(4, "little") + value
                + len(revert).to_bytes(4, "little") + revert)
    now = int(time.time() * 1000)
    garbage = [
        b"hello",                                                     # unknown format version
        bytes([1, 1, 1, 0, 0, 0]) + entry(b"alice", b"dnd")[:-4],     # format 1 (no revert)
        bytes([2, 7]),                                                # unknown kind
        bytes([2, 1]) + (1).to_bytes(4, "little") + entry(b"alice", b"dnd")[:-2],   # truncated
        bytes([2, 1]) + (1).to_bytes(4, "little") + entry(b"alice", b"bored"),      # bad value
        bytes([2, 1]) + (2).to_bytes(4, "little") + entry(b"alice", b"dnd") + entry(b"a,b", b"dnd"),
        bytes([2, 1]) + (1).to_bytes(4, "little") + entry(b"alice", b"x" * 1_000_000),  # oversized
        # Versions of now (not refused as ahead): a timed state with a bad revert, an untimed
        # one with a revert.
        bytes([2, 1]) + (1).to_bytes(4, "little") + entry(b"alice", b"dnd,,,t(9)", now, b"bored"),
        bytes([2, 1]) + (1).to_bytes(4, "little") + entry(b"alice", b"dnd", now, b"available"),
    ]
    script = os.path.join(cluster.host_dir, "cpg_send.py")
    shutil.copyfile(os.path.join(HERE, "lib", "cpg_send.py"), script)
    with open(os.path.join(cluster.host_dir, "garbage.hex"), "w") as f:
        f.write("\n".join(g.hex() for g in garbage))
    inside = cluster.host_dir[len(cluster.root):]
    out = n3.run("python3", inside + "/cpg_send.py", GROUP, "@" + inside + "/garbage.hex", timeout=60)
    assert out.strip() == "sent %d" % len(garbage), out
    for n in cluster.nodes:
        wait(lambda n=n: "dropped %d" % len(garbage) in status(n), "%s to drop every message" % n.name)
        assert n.asterisk.running()
        assert warnings(n, "dropped a message from node 3"), n.log()[-2000:]
    assert all(family(n) == before for n in cluster.nodes)
    # Still replicating afterwards.
    setvar(n2.ami(events="off"), "bob", "dnd")
    wait_equal(cluster.nodes, size=2)


def messages_sent(node):
    return int(re.search(r"Messages: sent (\d+),", status(node)).group(1))


def changed_by(node, name):
    out = node.cli("presencestate show CustomPresence:%s" % name)
    m = re.search(r"^\s*Changed by\s*: (.*?)\s*$", out, re.M)
    assert m, out
    return m.group(1)


def test_8_a_delete_in_a_partition_stays_deleted_and_an_expiry_fires_once_per_server(cluster):
    up(cluster)
    n1, n2, n3 = cluster.nodes
    a1, a3 = n1.ami(events="off"), n3.ami(events="off")
    for name in ("del_live", "del_split", "del_then_written"):
        setvar(a1, name, "away,,before")
    wait_equal(cluster.nodes, size=3)
    # A delete with everyone joined (CLI on node 2): gone everywhere, not_set announced there.
    amis = {n.number: n.ami() for n in (n1, n3)}
    marks = {k: a.mark() for k, a in amis.items()}
    n2.cli("presencestate delete CustomPresence:del_live")
    for k, a in amis.items():
        event = a.wait_for(lambda e: e.get("Event") == "PresenceStateChange"
                           and e.get("Presentity") == "CustomPresence:del_live", timeout=5, start=marks[k])
        assert event["Status"] == "not_set", event
    wait_equal(cluster.nodes, size=2)
    # Node 3 away: node 1 deletes a name node 3 still holds; node 3 deletes a name that
    # node 1 then writes again (the later write wins over the tombstone).
    n3.link(False)
    cluster.wait_members({1, 2}, nodes=[n1, n2])
    cluster.wait_members({3}, nodes=[n3])
    wait_group([n1, n2], 2)
    wait_group([n3], 1)
    n1.cli("presencestate delete CustomPresence:del_split")
    r = a3.action({"Action": "PresenceStateDelete", "Presentity": "CustomPresence:del_then_written"})
    assert r.get("Response") == "Success", r
    time.sleep(0.05)
    setvar(a1, "del_then_written", "dnd,,after the delete")
    wait(lambda: "del_split" not in family(n2), "the delete on node 2", timeout=5)
    assert "del_split" in family(n3)
    n3.link(True)
    cluster.wait_members({1, 2, 3})
    expected = {"del_then_written": "dnd,,after the delete"}
    table = wait_equal(cluster.nodes, size=1)
    assert table == expected, table
    wait_group(cluster.nodes, 3)
    for n in cluster.nodes:
        assert "Tombstones: 2 " in status(n), status(n)
        assert family(n, "CustomPresenceMeta").keys() == {"del_then_written"}, family(n, "CustomPresenceMeta")
    print("    node 1 deleted del_split while node 3 held it; after the heal no node holds it")
    # A timed write replicates with its deadline; each server reverts it itself, no message.
    setvar(a1, "timed", "available")
    wait_equal(cluster.nodes, size=2)
    amis = {n.number: n.ami() for n in cluster.nodes}
    marks = {k: a.mark() for k, a in amis.items()}
    setvar(a1, "timed", "dnd,,,t(3)")
    wait_equal(cluster.nodes, size=2)
    time.sleep(0.5)
    sent = [messages_sent(n) for n in cluster.nodes]
    wait(lambda: all(family(n).get("timed") == "available" for n in cluster.nodes),
         "the revert on every node", timeout=10)
    time.sleep(1)
    assert [messages_sent(n) for n in cluster.nodes] == sent, "an expiry sent a message"
    for n in cluster.nodes:
        assert changed_by(n, "timed") == "expiry of a timed state", changed_by(n, "timed")
        events = amis[n.number].events(lambda e: e.get("Event") == "PresenceStateChange"
                                       and e.get("Presentity") == "CustomPresence:timed",
                                       start=marks[n.number])
        assert [e["Status"] for e in events] == ["dnd", "available"], events
    print("    t(3) written on node 1: each node reverted it itself, once; messages sent unchanged %s" % sent)


def partition_node_3(cluster):
    """Cuts node 3 away; returns once both sides see their own membership and resynchronised."""
    n1, n2, n3 = cluster.nodes
    n3.link(False)
    cluster.wait_members({1, 2}, nodes=[n1, n2])
    cluster.wait_members({3}, nodes=[n3])
    wait_group([n1, n2], 2)
    wait_group([n3], 1)


def heal_node_3(cluster):
    cluster.node(3).link(True)
    cluster.wait_members({1, 2, 3})


def steady_messages_sent(nodes, until):
    """Every node's messages sent, once they stayed the same for a second (a resynchronisation
    round's last messages are in); fails if that takes past `until` (time.monotonic())."""
    sent = [messages_sent(n) for n in nodes]
    while True:
        time.sleep(1)
        again = [messages_sent(n) for n in nodes]
        if again == sent:
            return sent
        assert time.monotonic() < until, "messages still being sent: %s then %s" % (sent, again)
        sent = again


def test_13_a_timed_state_reverts_to_the_writers_revert_target_on_a_server_that_missed_it(cluster):
    up(cluster)
    n1, n2, n3 = cluster.nodes
    a1 = n1.ami(events="off")
    setvar(a1, "rev", "away,,before the split")
    wait_equal(cluster.nodes, size=1)
    partition_node_3(cluster)
    # Node 3 misses the untimed write the timed one reverts to on node 1.
    seconds = 12
    setvar(a1, "rev", "available")
    written = time.monotonic()
    setvar(a1, "rev", "dnd,,,t(%d)" % seconds)
    deadline = written + seconds
    wait(lambda: family(n2).get("rev") == "dnd,,,t(%d)" % seconds, "the timed write on node 2", timeout=5)
    assert family(n3)["rev"] == "away,,before the split", family(n3)
    heal_node_3(cluster)
    # Node 3 got the timed state at the resynchronisation, before its deadline.
    table = wait_equal(cluster.nodes, size=1, timeout=max(1, deadline - time.monotonic() - 1))
    assert table == {"rev": "dnd,,,t(%d)" % seconds}, table
    wait_group(cluster.nodes, 3)
    sent = steady_messages_sent(cluster.nodes, until=deadline - 0.5)
    healed_before = deadline - time.monotonic()
    assert healed_before > 0, "the heal took past the deadline"
    wait(lambda: all(family(n).get("rev") != "dnd,,,t(%d)" % seconds for n in cluster.nodes),
         "the revert on every node", timeout=healed_before + 10)
    time.sleep(1)
    for n in cluster.nodes:
        assert family(n) == {"rev": "available"}, (n.name, family(n))
        assert getvar(n.ami(events="off"), "CustomPresence:rev,value") == "available", n.name
        assert changed_by(n, "rev") == "expiry of a timed state", (n.name, changed_by(n, "rev"))
    assert [messages_sent(n) for n in cluster.nodes] == sent, "an expiry sent a message"
    print("    node 3 missed 'available' before 'dnd,,,t(%d)'; healed %.1f s before the deadline; "
          "every node reverted to 'available' itself, messages sent unchanged %s"
          % (seconds, healed_before, sent))


def test_14_a_tombstone_survives_a_restart_of_the_servers_that_hold_it(cluster):
    up(cluster)
    n1, n2, n3 = cluster.nodes
    a1 = n1.ami(events="off")
    setvar(a1, "gone", "away,,held by node 3")
    setvar(a1, "kept", "available")
    wait_equal(cluster.nodes, size=2)
    partition_node_3(cluster)
    n1.cli("presencestate delete CustomPresence:gone")
    wait(lambda: "gone" not in family(n2), "the delete on node 2", timeout=5)
    assert "gone" in family(n3)
    # The tombstone is in AstDB on both; AstDB commits about once a second.
    wait(lambda: all("gone" in family(n, "CustomPresenceVersion") for n in (n1, n2)),
         "the tombstone in CustomPresenceVersion on nodes 1 and 2", timeout=5)
    time.sleep(2)
    for n in (n1, n2):
        rc = n.asterisk.stop(gracefully=True)
        assert rc == 0, (n.name, rc)
    in_parallel(n1.start_asterisk, n2.start_asterisk)
    wait_group([n1, n2], 2)
    for n in (n1, n2):
        assert "Tombstones: 1 " in status(n), status(n)
        assert "gone" not in family(n)
    heal_node_3(cluster)
    wait_group(cluster.nodes, 3)
    table = wait_equal(cluster.nodes, size=1)
    assert table == {"kept": "available"}, table
    time.sleep(1)
    for n in cluster.nodes:
        assert family(n) == {"kept": "available"}, (n.name, family(n))
        assert getvar(n.ami(events="off"), "CustomPresence:gone,value") == "not_set", n.name
    print("    node 1 deleted 'gone' while node 3 held it; nodes 1 and 2 restarted; "
          "after the heal no node holds it")


def test_12_ami_and_cli_writes_replicate_like_dialplan_writes(cluster):
    up(cluster)
    n1, n2, n3 = cluster.nodes
    r = n1.ami(events="off").action({"Action": "PresenceStateSet", "Presentity": "CustomPresence:by_ami",
                                     "State": "away", "Message": "set by AMI"})
    assert r.get("Response") == "Success", r
    assert "Changing" in n2.cli("presencestate change CustomPresence:by_cli dnd,,set_by_CLI")
    table = wait_equal(cluster.nodes, size=2)
    assert table == {"by_ami": "away,,set by AMI", "by_cli": "dnd,,set_by_CLI"}, table
    for n in (n1, n3):
        assert changed_by(n, "by_cli") == "another server of the cluster", changed_by(n, "by_cli")
    assert changed_by(n2, "by_cli") == "CLI"


def test_9_disabled_by_default_no_cpg_connection_and_no_sharing(cluster):
    up(cluster, enabled=False)
    n1, n2 = cluster.nodes[:2]
    setvar(n1.ami(events="off"), "alice", "away")
    time.sleep(1)
    assert family(n1) == {"alice": "away"} and family(n2) == {}
    assert status(n1).startswith("Presence cluster: disabled"), status(n1)
    assert "Presence cluster" not in n1.log()
    asterisk_pid = children(n1.asterisk.proc.pid)[0]
    with open("/proc/%d/maps" % asterisk_pid) as f:
        assert "libcpg" not in f.read(), "libcpg is mapped though the cluster is off"
    assert GROUP not in n1.run("corosync-cpgtool", check=False)


def threads(node):
    """The names of the threads of node's Asterisk."""
    pid = children(node.asterisk.proc.pid)[0]
    names = []
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/comm" % (pid, tid)) as f:
                names.append(f.read().strip())
        except FileNotFoundError:
            pass
    return names


def mapped(node):
    """The mappings of the module's file in node's Asterisk (issue 18: unload unmaps it)."""
    with open("/proc/%d/maps" % children(node.asterisk.proc.pid)[0]) as f:
        return [line for line in f if line.rstrip().endswith("/func_presencestate_rs.so")]


def test_10_unload_stops_and_joins_the_cluster_thread_load_rejoins(cluster):
    up(cluster)
    n1, n2, n3 = cluster.nodes
    assert threads(n2).count("fprs-cluster") == 1
    for _ in range(3):
        assert mapped(n2)
        n2.cli("module unload func_presencestate_rs.so")
        assert "fprs-cluster" not in threads(n2), "the cluster thread outlived unload"
        assert not mapped(n2), "the module is still mapped after unload: %s" % mapped(n2)
        wait_group([n1, n3], 2)
        setvar(n1.ami(events="off"), "while_unloaded", "away")
        n2.cli("module load func_presencestate_rs.so")
        wait_group(cluster.nodes, 3)
        assert threads(n2).count("fprs-cluster") == 1
    n2.cli("module reload func_presencestate_rs.so")
    assert threads(n2).count("fprs-cluster") == 1
    setvar(n2.ami(events="off"), "after_reload", "dnd")
    table = wait_equal(cluster.nodes, size=2)
    assert table == {"while_unloaded": "away", "after_reload": "dnd"}, table


def test_11_bad_cluster_config_is_named_and_leaves_the_cluster_off_reload_applies_changes(cluster):
    cluster.start()
    n1 = cluster.node(1)
    bad = dict(configs(), **{"presencestate.conf": "[cluster]\nenabled = yes\ngroup = two words\n"
                                                   "reconnect_interval = 0\n"})
    n1.start_asterisk(bad)
    assert n1.asterisk.module_loaded("func_presencestate_rs")
    assert status(n1).startswith("Presence cluster: disabled"), status(n1)
    log = "\n".join(warnings(n1, "presencestate.conf"))
    for fragment in ("line 3: [cluster] option 'group' = 'two words' is not 1 to 128 printable",
                     "line 4: [cluster] option 'reconnect_interval' = '0' is not a whole number "
                     "from 1 to 60",
                     "line 2: [cluster] has errors; the cluster stays off"):
        assert fragment in log, (fragment, log)
    assert "fprs-cluster" not in threads(n1)
    conf = n1.asterisk.host("etc", "presencestate.conf")
    with open(conf, "w") as f:
        f.write(ENABLED)
    n1.cli("module reload func_presencestate_rs.so")
    wait_group([n1], 1)
    assert threads(n1).count("fprs-cluster") == 1
    with open(conf, "w") as f:
        f.write("[cluster]\nenabled = no\n")
    n1.cli("module reload func_presencestate_rs.so")
    assert "fprs-cluster" not in threads(n1) and status(n1).startswith("Presence cluster: disabled")


def test_15_a_sip_publish_on_node_1_is_read_on_node_3(cluster):
    """Presence from a phone (SIP PUBLISH, [sip_publish]) is a write like any other: alice's
    PUBLISH to node 1 is read and announced on node 3, and so is its removal."""
    sys.path.insert(0, os.path.join(HERE, "..", "integration"))
    import test_sip_publish as publish
    cluster.start()
    sip = dict(configs(), **{"pjsip.conf": publish.pjsip_conf(),
                             "presencestate.conf": ENABLED + publish.PRESENCESTATE_CONF})
    in_parallel(lambda: cluster.node(1).start_asterisk(sip),
                *[lambda n=n: n.start_asterisk(configs()) for n in cluster.nodes[1:]])
    wait_group(cluster.nodes, 3)
    ami3 = cluster.node(3).ami()
    mark = ami3.mark()
    sipp = publish.Sipp(cluster.node(1).asterisk, launcher=cluster.node(1).enter())
    started = time.monotonic()
    answer = sipp.once(200, "alice", body=publish.pidf("away", "Lunch, back at 2"))
    event = ami3.wait_for(lambda e: e.get("Event") == "PresenceStateChange"
                          and e.get("Presentity") == "CustomPresence:alice", timeout=5, start=mark)
    print("    PUBLISH on node 1 -> PresenceStateChange on node 3 %.0f ms after SIPp started"
          % ((time.monotonic() - started) * 1000))
    assert (event["Status"], event["Subtype"], event["Message"]) == ("away", "away", "Lunch, back at 2"), event
    assert getvar(ami3, "CustomPresence:alice,message") == "Lunch, back at 2"
    assert family(cluster.node(3))["alice"].startswith("away,"), family(cluster.node(3))
    mark = ami3.mark()
    sipp.once(200, "alice", expires=0, headers=["SIP-If-Match: " + publish.header(answer, "SIP-ETag")])
    event = ami3.wait_for(lambda e: e.get("Event") == "PresenceStateChange"
                          and e.get("Presentity") == "CustomPresence:alice", timeout=5, start=mark)
    assert event["Status"] == "not_set", event
    assert getvar(ami3, "CustomPresence:alice,value") == "not_set"
