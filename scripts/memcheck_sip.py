#!/usr/bin/env python3
"""Runs Asterisk 22 with func_presencestate_rs and PJSIP under valgrind memcheck through the
SIP PUBLISH paths: initial, refresh, modify, 412 and remove through digest authentication
(SIPp, tests/integration/sipp/publish_lifecycle.xml), refusals (403, 413, a malformed body),
a publication that expires, two publishers handing over, `presencestate publications`, and
`module unload` / `load` with live publications (the service unregistered, its states left
timed), then reports errors and definite leaks as scripts/memcheck does.

    python3 scripts/memcheck_sip.py MODULE        (scripts/memcheck runs it after memcheck.py)

Only the PJSIP modules a PUBLISH needs are loaded, so that Asterisk boots under valgrind in
about a minute. Exit status 0 when no error is attributable to the module.
"""
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "asterisk-test-suite", "lib"))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
import instance  # noqa: E402
import memcheck  # noqa: E402

MODULES = """autoload = no
load => res_sorcery_config.so
load => res_sorcery_memory.so
load => res_sorcery_astdb.so
load => res_pjproject.so
load => res_pjsip.so
load => res_pjsip_authenticator_digest.so
load => res_pjsip_endpoint_identifier_user.so
load => res_pjsip_pubsub.so
load => pbx_config.so
load => func_presencestate_rs.so
"""


def scenario():
    import test_sip_publish as publish
    module = os.environ["FPRS_MODULE"]
    configs = dict(publish.CONFIGS)
    configs["modules.conf"] = MODULES
    configs["presencestate.conf"] = publish.PRESENCESTATE_CONF.replace("min_expires = 3", "min_expires = 2")
    ast = instance.AsteriskInstance(mode="ours", module_path=module, name="memcheck-sip", configs=configs)
    ast.wrapper = [arg.replace("%s", ast.dir) for arg in memcheck.VALGRIND]
    started = time.monotonic()
    ast.start(timeout=900)
    print("Asterisk with PJSIP under valgrind booted in %.0fs" % (time.monotonic() - started), flush=True)
    ami = ast.ami(timeout=120)
    sipp = publish.Sipp(ast, retrans_ms=10000)
    steps = []

    def step(name, fn):
        fn()
        steps.append(name)

    step("initial, refresh, modify, 412, remove (digest auth)", lambda: sipp.run(
        "publish_lifecycle.xml", "alice", timeout=300))
    step("refused: 403, 413, malformed XML, 415", lambda: (
        sipp.once(403, "bob", user="alice", body=publish.pidf("away")),
        sipp.once(413, "alice", body="<x>" + "y" * 20000 + "</x>"),
        sipp.once(400, "alice", body="<presence xmlns='urn:ietf:params:xml:ns:pidf'><tuple>"),
        sipp.once(415, "alice", headers=["Content-Type: text/plain"], body="away")))
    step("two publishers, the newer expiring and handing over; a lone one expiring", lambda: (
        sipp.once(200, "alicedesk", user="alice", body=publish.pidf("on-the-phone")),
        sipp.once(200, "alice", expires=2, body=publish.pidf("away", "Coffee")),
        sipp.once(200, "bob", expires=2, body=publish.pidf(basic="closed")),
        publish.wait_for_state(ami, "alice", "dnd", timeout=60),
        publish.wait_for_state(ami, "bob", "not_set", timeout=60),
        ast.cli("presencestate publications", timeout=120),
        ast.cli("presencestate stats", timeout=120)))
    step("unload with live publications, load, publish again, reload", lambda: (
        sipp.once(200, "bob", body=publish.pidf("busy", "x, y")),
        ast.cli("module unload func_presencestate_rs.so", timeout=300),
        ast.cli("module load func_presencestate_rs.so", timeout=300),
        sipp.once(200, "bob", body=publish.pidf("away")),
        ast.cli("module reload func_presencestate_rs.so", timeout=300),
        sipp.once(200, "alice", body=publish.pidf("vacation", "Back Monday"))))
    ast.stop(timeout=600)
    return ast.host_dir, steps


def main():
    os.environ["FPRS_MODULE"] = os.path.abspath(sys.argv[-1])
    os.environ["PYTHONPATH"] = os.pathsep.join([HERE, os.path.join(HERE, "..", "tests", "integration")])
    run_dir, steps = instance.in_namespace("memcheck_sip:scenario", timeout=3600)
    total, ours, summaries, attributable, logs = memcheck.report(run_dir)
    print("scenario steps: " + "; ".join(steps))
    print("valgrind logs: " + ", ".join(logs))
    for line in summaries:
        print("  " + line)
    print("memcheck (SIP PUBLISH): %d error/leak records in all, %d with a frame in "
          "func_presencestate_rs" % (total, ours))
    for block in attributable:
        print(block)
    print("%d passed, %d failed" % (0 if ours else 1, 1 if ours else 0))
    return 1 if ours else 0


if __name__ == "__main__":
    sys.exit(main())
