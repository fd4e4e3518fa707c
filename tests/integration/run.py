#!/usr/bin/env python3
"""Integration tests of func_presencestate_rs against a real Asterisk: Debian's 22 in the
provisioned root, or the one ASTERISK_ROOT / ASTERISK_PREFIX select (then --module should name
the module scripts/build-module built for it, the default being that path too).

Each `test_*` function of each `test_*.py` here runs in a fresh network + mount + PID namespace
(asterisk-test-suite/lib/instance.py), where it starts its own Asterisk instances. Prints one
PASS/FAIL line per test and a closing `N passed, M failed`; exits non-zero on any failure.

A test marked with helpers.requires (e.g. the SIPp phone test: res_pjsip and sipp) whose
dependency the Asterisk under test lacks FAILS with the reason, as the provisioned root has
everything; with --skip-unmet (for a minimal build, e.g. by scripts/asterisk-from-source) it
gets a `SKIP <test>: dependency not met: ...` line instead, counted neither passed nor failed.

    tests/integration/run.py [-k SUBSTRING] [--module PATH] [--skip-unmet]
"""
import argparse
import importlib
import os
import shutil
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "asterisk-test-suite", "lib"))
from instance import RUNS, AsteriskError, Installation, default_root, in_namespace  # noqa: E402
from logcheck import unexpected_errors  # noqa: E402


def discover(pattern):
    """(target, function) of each test whose module:name holds `pattern`."""
    for file in sorted(os.listdir(HERE)):
        if file.startswith("test_") and file.endswith(".py"):
            module = importlib.import_module(file[:-3])
            for name in dir(module):
                if name.startswith("test_") and callable(getattr(module, name)):
                    target = "%s:%s" % (file[:-3], name)
                    if not pattern or pattern in target:
                        yield target, getattr(module, name)


def unmet(installation, test):
    """The first dependency (helpers.requires) of `test` the Asterisk under test lacks, or None."""
    for kind, name in getattr(test, "dependencies", ()):
        present = {"module": installation.has_module, "app": installation.has_app}[kind]
        if not present(name):
            return "dependency not met: %s: %s" % (kind, name)
    return None


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-k", dest="pattern", help="run tests whose module:name contains this")
    parser.add_argument("--module", help="path of the built module (exported as FPRS_MODULE)")
    parser.add_argument("--skip-unmet", action="store_true",
                        help="skip a test whose dependencies are not met (default: fail it)")
    args = parser.parse_args()
    if args.module:
        os.environ["FPRS_MODULE"] = os.path.abspath(args.module)
    sys.path.insert(0, HERE)
    # The namespace child imports the test module by name.
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [HERE, os.environ.get("PYTHONPATH")]))
    passed = failed = 0
    runs = default_root() + RUNS
    # Several runs of this script can share the root (and test names): each names its run
    # directories with its own tag, so that cleaning up after a passing test never touches
    # another run's directories, running or kept.
    tag = "%x" % os.getpid()
    installation = Installation()
    for target, test in discover(args.pattern):
        started = time.monotonic()
        missing = unmet(installation, test)
        if missing and args.skip_unmet:
            print("SKIP %s: %s" % (target, missing), flush=True)
            continue
        if missing:
            failed += 1
            print("FAIL %s: %s" % (target, missing), flush=True)
            continue
        # Run directories are named after the test (helpers.start); a passing test's are
        # removed, a failing test's are kept for its logs. Nothing is ever mounted there.
        # Short: the control socket path inside it must fit a sockaddr_un (108 bytes).
        run_name = "%s.%s" % (target.split(":")[1][len("test_"):][:32], tag)
        os.environ["FPRS_RUN_NAME"] = run_name
        try:
            in_namespace(target, timeout=300)
            mine = [os.path.join(runs, e) for e in os.listdir(runs) if e.startswith(run_name + "-")]
            errors = unexpected_errors(mine, getattr(test, "expected_errors", ()))
            if errors:
                raise AsteriskError("ERROR lines naming the module that the test does not expect "
                                    "(logcheck.expects_errors):\n" + "\n".join(errors[:20]))
            passed += 1
            print("PASS %s (%.1fs)" % (target, time.monotonic() - started), flush=True)
            for entry in mine:
                shutil.rmtree(entry, ignore_errors=True)
        except AsteriskError as error:
            failed += 1
            print("FAIL %s (%.1fs), runs kept in %s/%s-*\n%s"
                  % (target, time.monotonic() - started, runs, run_name, error), flush=True)
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed or not passed else 0


if __name__ == "__main__":
    sys.exit(main())
