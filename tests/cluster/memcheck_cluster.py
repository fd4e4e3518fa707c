#!/usr/bin/env python3
"""The cluster code under valgrind memcheck: node 2's Asterisk runs under memcheck in a 3-node
cluster with `[cluster] enabled = yes`, through every cluster path: states applied from
others (the CPG deliver callback), its own writes sent, deletes (tombstones) both ways, a
replicated timed state it reverts itself, a resynchronisation, garbage from a
foreign member, corosync stopped and started again (lost, reconnect), module
unload/load/reload (the thread stopped and joined). Reports like scripts/memcheck: the errors
and definite leaks with a frame in the module. Ends with `N passed, M failed`. About 5 minutes.

    tests/cluster/memcheck_cluster.py [--module PATH]
"""
import argparse
import os
import shutil
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(HERE, "lib"))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(REPO, "scripts"))
from cluster import Cluster  # noqa: E402
from instance import AsteriskInstance  # noqa: E402
import memcheck  # noqa: E402
import test_cluster as t  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--module", default=os.path.join(REPO, "target", "release",
                                                         "libfunc_presencestate_rs.so"))
    args = parser.parse_args()
    cluster = Cluster(3, module=os.path.abspath(args.module), name="fprsmc")
    ok = False
    try:
        cluster.start()
        n1, n2, n3 = cluster.nodes
        t.in_parallel(lambda: n1.start_asterisk(t.configs()), lambda: n3.start_asterisk(t.configs()))
        run_dir = os.path.join(n2.host_dir, "ast")
        os.makedirs(run_dir, exist_ok=True)
        n2.asterisk = AsteriskInstance(mode="ours", module_path=cluster.module, configs=t.configs(),
                                       root=cluster.root, launcher=n2.enter(), run_dir=run_dir)
        n2.asterisk.wrapper = [a.replace("%s", n2.asterisk.dir) for a in memcheck.VALGRIND]
        started = time.monotonic()
        n2.asterisk.start(timeout=900)
        print("node 2's Asterisk under valgrind booted in %.0fs" % (time.monotonic() - started), flush=True)
        t.wait_group(cluster.nodes, 3, timeout=300)
        steps = []
        a1 = n1.ami(events="off")
        for i in range(20):
            t.setvar(a1, "from1_%d" % i, "away,,note %d" % i)
        t.wait(lambda: t.count(n2) == 20, "node 2 to apply 20 states", 300, every=1)
        steps.append("20 states applied from node 1")
        a2 = n2.ami(timeout=120, events="off")
        for i in range(10):
            r = a2.action({"Action": "SetVar", "Variable": "PRESENCE_STATE(CustomPresence:from2_%d)" % i,
                           "Value": "dnd,,x"}, 120)
            assert r.get("Response") == "Success", r
        t.wait(lambda: t.count(n1) == 30, "node 1 to get node 2's states", 300, every=1)
        steps.append("10 states sent from node 2")
        n1.cli("presencestate delete CustomPresence:from1_0")
        n2.cli("presencestate delete CustomPresence:from2_0", timeout=120)
        t.setvar(a1, "timed", "away,,,t(2)")
        t.wait(lambda: t.count(n1) == 29 and t.count(n2) == 29, "both deletes and the timed write", 300, every=1)
        t.wait(lambda: t.family(n2).get("timed", "away,,,t(2)") != "away,,,t(2)", "node 2's own revert", 300, every=1)
        steps.append("a delete applied and one sent (tombstones), a timed write reverted by node 2 itself")
        script = os.path.join(cluster.host_dir, "cpg_send.py")
        shutil.copyfile(os.path.join(HERE, "lib", "cpg_send.py"), script)
        inside = cluster.host_dir[len(cluster.root):]
        n3.run("python3", inside + "/cpg_send.py", t.GROUP, "68656c6c6f", "0207",
               "0201" + "ffffffff", timeout=120)
        t.wait(lambda: "dropped 3" in n2.cli("presencestate cluster", timeout=120), "drops", 300, every=1)
        steps.append("3 garbage messages dropped")
        n2.stop_corosync()
        t.wait(lambda: "not connected" in n2.cli("presencestate cluster", timeout=120), "lost", 300, every=1)
        t.setvar(a1, "while_down", "xa")
        n2.start_corosync()
        t.wait(lambda: t.count(n2) == 30, "node 2 to resynchronise", 300, every=1)
        steps.append("corosync stopped and started: lost, reconnected, resynchronised")
        for verb in ("unload", "load", "reload", "unload", "load"):
            n2.cli("module %s func_presencestate_rs.so" % verb, timeout=300)
        t.wait_group(cluster.nodes, 3, timeout=300)
        steps.append("unload/load/reload/unload/load")
        n2.asterisk.stop(timeout=600)
        total, ours, summaries, attributable, logs = memcheck.report(n2.asterisk.host_dir)
        print("scenario steps: " + "; ".join(steps))
        print("valgrind logs: " + ", ".join(logs))
        for line in summaries:
            print("  " + line)
        print("memcheck: %d error/leak records in all, %d with a frame in func_presencestate_rs" % (total, ours))
        for block in attributable:
            print(block)
        ok = ours == 0 and bool(logs)
    finally:
        cluster.cleanup(keep=not ok)
    print("%d passed, %d failed" % (1 if ok else 0, 0 if ok else 1))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
