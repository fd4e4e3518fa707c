#!/usr/bin/env python3
"""Cluster tests: real corosync and real Asterisk on 3 nodes in namespaces (lib/cluster.py).

Each `test_*` function of test_cluster.py gets a fresh 3-node cluster. Prints one PASS/FAIL
line per test and a closing `N passed, M failed`; exits non-zero on any failure. A failing
test's files (corosync and Asterisk logs, AstDBs) are kept and their path printed.

    tests/cluster/run.py [-k SUBSTRING] [--module PATH]
"""
import argparse
import os
import sys
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "lib"))
sys.path.insert(0, HERE)
import test_cluster  # noqa: E402
from cluster import Cluster  # noqa: E402
from logcheck import unexpected_errors  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-k", dest="pattern", help="run tests whose name contains this")
    parser.add_argument("--module", default=os.path.join(HERE, "..", "..", "target", "release",
                                                         "libfunc_presencestate_rs.so"))
    args = parser.parse_args()
    module = os.path.abspath(args.module)
    passed = failed = 0
    for name in sorted(n for n in dir(test_cluster) if n.startswith("test_")):
        if args.pattern and args.pattern not in name:
            continue
        started = time.monotonic()
        cluster = Cluster(3, module=module, name="fprs")
        ok = False
        try:
            test = getattr(test_cluster, name)
            test(cluster)
            errors = unexpected_errors([cluster.host_dir], getattr(test, "expected_errors", ()))
            assert not errors, ("ERROR lines naming the module that the test does not expect "
                                "(logcheck.expects_errors):\n" + "\n".join(errors[:20]))
            ok = True
        except Exception:
            print(traceback.format_exc(), flush=True)
        finally:
            cluster.cleanup(keep=not ok)
        elapsed = time.monotonic() - started
        if ok:
            passed += 1
            print("PASS %s (%.1fs)" % (name, elapsed), flush=True)
        else:
            failed += 1
            print("FAIL %s (%.1fs), files kept in %s" % (name, elapsed, cluster.host_dir), flush=True)
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed or not passed else 0


if __name__ == "__main__":
    sys.exit(main())
