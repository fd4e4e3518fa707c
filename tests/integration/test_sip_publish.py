"""SIP PUBLISH (RFC 3903, PIDF/RPID) sets CustomPresence, in a real Asterisk 22 with PJSIP:
SIPp scenarios (tests/integration/sipp/publish_*.xml) through digest authentication for the
four RFC 3903 requests, 412, 423, 403 for another endpoint's name, bad and oversized bodies,
expiry with revert, two publishers for one name; the module with and without res_pjsip, and
res_pjsip_pubsub unloaded under it."""
import os
import re
import subprocess
import time

from helpers import LogWatch, astdb, getvar, presence_changes, requires, setvar, start

HERE = os.path.dirname(os.path.abspath(__file__))

USERS = ("alice", "bob", "alicedesk", "watcher", "softphone")


def pjsip_conf():
    lines = ["[transport-udp]", "type = transport", "protocol = udp", "bind = 127.0.0.1:5060", ""]
    for user in USERS:
        lines += ["[%s]" % user, "type = auth", "auth_type = userpass", "username = %s" % user,
                  "password = secret-%s" % user, "",
                  "[%s]" % user, "type = aor", "max_contacts = 2", "remove_existing = yes", "",
                  "[%s]" % user, "type = endpoint", "context = phones", "disallow = all",
                  "allow = ulaw", "auth = %s" % user, "aors = %s" % user, ""]
    return "\n".join(lines)


PRESENCESTATE_CONF = """[sip_publish]
enabled = yes
min_expires = 3
max_expires = 600
grant = alicedesk: alice
"""

HINTS = """[general]
static = yes
writeprotect = yes

[phones]
exten => alice,hint,PJSIP/alice,CustomPresence:alice
exten => softphone,hint,PJSIP/softphone,CustomPresence:softphone
"""

CONFIGS = {"pjsip.conf": pjsip_conf(), "presencestate.conf": PRESENCESTATE_CONF,
           "extensions.conf": HINTS}


def pidf(activity=None, note=None, basic="open"):
    person = ""
    if activity or note:
        person = '<dm:person id="p">%s%s</dm:person>' % (
            "<rpid:activities><rpid:%s/></rpid:activities>" % activity if activity else "",
            "<dm:note>%s</dm:note>" % note if note else "")
    return ('<?xml version="1.0" encoding="UTF-8"?><presence xmlns="urn:ietf:params:xml:ns:pidf" '
            'xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model" '
            'xmlns:rpid="urn:ietf:params:xml:ns:pidf:rpid" entity="sip:x@127.0.0.1">'
            '<tuple id="t"><status><basic>%s</basic></status></tuple>%s</presence>' % (basic, person))


class Sipp:
    """Runs SIPp scenarios of tests/integration/sipp against the instance, one port each."""

    def __init__(self, ast, launcher=(), retrans_ms=500):
        """`launcher`: a command prefix to run SIPp where that Asterisk is (a cluster node);
        `retrans_ms`: SIPp's first retransmission of a request (longer for an Asterisk under
        valgrind, whose late answer to a retransmission would come as an unexpected one)."""
        self.ast, self.runs, self.launcher = ast, 0, list(launcher)
        self.retrans_ms = retrans_ms
        self.last_counts = ""       # SIPp's per-message counts of the last scenario finished
        os.makedirs(ast.host("sipp"), exist_ok=True)

    def start(self, scenario, auth_user, password=None, fields=(), timeout=40, **fill):
        """Starts `scenario` (a file name, its @KEY@ parts filled from `fill`) as `auth_user`
        ([field0], password [field1], `fields` from [field2] on); returns (process, host
        path of its message log)."""
        self.runs += 1
        with open(os.path.join(HERE, "sipp", scenario)) as f:
            text = f.read()
        for key, value in fill.items():
            text = text.replace("@%s@" % key.upper(), str(value))
        text = text.replace('retrans="500"', 'retrans="%d"' % self.retrans_ms)
        name = "%s-%d" % (scenario[:-4], self.runs)
        with open(self.ast.host("sipp", name + ".xml"), "w") as f:
            f.write(text)
        with open(self.ast.host("sipp", name + ".csv"), "w") as f:
            f.write("SEQUENTIAL\n%s\n" % ";".join(
                [auth_user, password or "secret-" + auth_user] + list(fields)))
        inside = self.ast.dir + "/sipp/" + name
        process = subprocess.Popen(
            self.launcher + ["chroot", self.ast.root, "sipp", "127.0.0.1:5060", "-sf", inside + ".xml",
             "-inf", inside + ".csv", "-p", str(5070 + self.runs), "-i", "127.0.0.1", "-m", "1",
             "-nostdin", "-skip_rlimit", "-timeout", "%ds" % timeout, "-trace_msg", "-aa",
             "-message_file", inside + ".log"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        return process, self.ast.root + inside + ".log"

    def run(self, scenario, auth_user, password=None, timeout=40, **fill):
        """Runs `scenario` to its end (see `start`); returns SIPp's message log. Fails with
        SIPp's output when the scenario fails."""
        process, trace = self.start(scenario, auth_user, password, timeout=timeout, **fill)
        self.finish(process, trace, scenario, timeout + 20)
        return read(trace)

    def finish(self, process, trace, scenario, timeout):
        try:
            output, _ = process.communicate(timeout=timeout)
        finally:
            if process.poll() is None:
                process.kill()
        messages = read(trace)
        text = output.decode(errors="replace")
        self.last_counts = "\n".join(l.rstrip() for l in text.splitlines()
                                     if re.search(r"-{5,}>|<-{5,}|Messages\s+Retrans|Pause \[", l)
                                     )[-3000:]
        assert process.returncode == 0, "SIPp %s failed (%d):\n%s\n%s" % (
            scenario, process.returncode, output.decode(errors="replace")[-3000:],
            messages[-6000:])

    def once(self, status, auth_user, user=None, expires=600, headers=(), body="", password=None):
        """One PUBLISH expecting `status`; returns the final response's text."""
        if body and not any(h.lower().startswith("content-type") for h in headers):
            headers = list(headers) + ["Content-Type: application/pidf+xml"]
        messages = self.run("publish_once.xml", auth_user, password, status=status,
                            user=user or auth_user, expires=expires,
                            headers="\n".join("      " + h for h in headers), body=body)
        return responses(messages)[-1]


def read(path):
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except FileNotFoundError:
        return ""


def responses(messages):
    """The SIP responses in SIPp's message log, in order."""
    found = []
    for m in messages.split("\n\n----"):
        status = re.search(r"^SIP/2\.0 \d{3}", m, re.M)
        if status and re.search(r"^UDP message received", m, re.M):
            found.append(m[status.start():])
    return found


def header(message, name):
    found = re.search(r"^%s: *(.*)$" % re.escape(name), message, re.M | re.I)
    return found.group(1).strip() if found else None


def state(ami, name):
    """What CustomPresence:<name> holds in AstDB, as stored."""
    return astdb(ami).get(name, "")


def wait_for_state(ami, name, wanted, timeout=10):
    deadline = time.monotonic() + timeout
    while True:
        now = getvar(ami, "CustomPresence:%s,value" % name)
        if now == wanted:
            return
        assert time.monotonic() < deadline, "CustomPresence:%s is %r, waited for %r" % (name, now, wanted)
        time.sleep(0.05)


@requires(("module", "res_pjsip"), ("app", "sipp"))
def test_publish_refresh_modify_412_remove_through_digest_auth():
    with start(configs=CONFIGS) as ast:
        ami = ast.ami()
        mark = ami.mark()
        assert setvar(ami, "CustomPresence:alice", "available,,At my desk")["Response"] == "Success"
        sipp = Sipp(ast)
        messages = sipp.run("publish_lifecycle.xml", "alice")
        print("SIPp's counts:\n" + sipp.last_counts)
        statuses = [r.split("\n", 1)[0] for r in responses(messages)]
        print("SIPp responses: " + " | ".join(statuses))
        assert [s.split()[1] for s in statuses] == ["401", "200", "200", "200", "412", "200"], statuses
        published = [r for r in responses(messages) if r.startswith("SIP/2.0 200")]
        etags = [header(r, "SIP-ETag") for r in published]
        assert len(set(etags)) == 4 and all(etags), etags  # a new one on every 2xx
        print("412 exchange:\n" + [m for m in messages.split("\n\n----") if "CSeq: 5 PUBLISH" in m
                                   and "UDP message sent" in m][-1].strip()
              + "\n" + responses(messages)[4].strip())
        events = presence_changes(ami, start=mark, count=5)
        seen = [(e["Status"], e.get("Subtype", ""), e.get("Message", "")) for e in events]
        assert seen == [("available", "", "At my desk"), ("away", "away", "Lunch, back at 2"), ("away", "away", "Lunch, back at 2"),
                        ("dnd", "on-the-phone", ""), ("available", "", "At my desk")], seen
        assert astdb(ami)["alice"] == "available,,At my desk"
        shown = ast.cli("presencestate show CustomPresence:alice")
        assert "sip publish from endpoint alice" in shown, shown
        stats = ast.cli("presencestate stats")
        for line in ("initial", "refreshed", "modified", "removed"):
            assert re.search(r"^\s+%s\s+1$" % line, stats, re.M), stats
        assert re.search(r"unknown entity tag \(412\)\s+1$", stats, re.M), stats


@requires(("module", "res_pjsip"), ("app", "sipp"))
def test_refused_publishes_change_nothing_and_warn():
    with start(configs=CONFIGS) as ast:
        ami = ast.ami()
        assert setvar(ami, "CustomPresence:alice", "available,,here")["Response"] == "Success"
        sipp, watch = Sipp(ast), LogWatch(ast)
        before = astdb(ami)
        forbidden = sipp.once(403, "bob", user="alice", body=pidf("away"))
        print("403 exchange: bob publishing alice's presence ->\n" + forbidden.strip())
        line = watch.wait_for("PUBLISH from endpoint bob for 'alice' (CustomPresence:alice)")
        print(line)
        brief = sipp.once(423, "alice", expires=1, body=pidf("away"))
        assert header(brief, "Min-Expires") == "3", brief
        sipp.once(412, "alice", headers=["SIP-If-Match: 0123456789abcdef"])
        sipp.once(400, "alice", body="<presence xmlns='urn:ietf:params:xml:ns:pidf'><tuple>")
        watch.wait_for("the body is not well-formed XML")
        # (SIPp reads [...] as its own keywords: a DTD with an internal subset cannot be sent,
        # the unit tests have the billion laughs.)
        sipp.once(400, "alice", body="<!DOCTYPE presence SYSTEM 'pidf.dtd'><presence "
                  "xmlns='urn:ietf:params:xml:ns:pidf'/>")
        watch.wait_for("the body holds a DOCTYPE")
        sipp.once(413, "alice", body="<x>" + "y" * 20000 + "</x>")
        watch.wait_for("more than max_body 16384")
        plain = sipp.once(415, "alice", headers=["Content-Type: text/plain"], body="away")
        assert header(plain, "Accept") == "application/pidf+xml, application/xpidf+xml", plain
        sipp.once(488, "alice", body="<presence xmlns='urn:ietf:params:xml:ns:pidf'/>")
        watch.wait_for("maps to no presence state")
        # A wrong password is challenged again by res_pjsip: it never reaches the module.
        sipp.once(401, "alice", password="wrong", body=pidf("busy"))
        assert astdb(ami) == before, (before, astdb(ami))
        assert state(ami, "alice") == "available,,here"
        stats = ast.cli("presencestate stats")
        print(stats)
        for reason, n in (("403", 1), ("412", 1), ("423", 1), ("413", 1), ("415", 1), ("488", 1)):
            assert re.search(r"\(%s\)\s+%d$" % (reason, n), stats, re.M), (reason, stats)
        assert re.search(r"malformed body \(400\)\s+2$", stats, re.M), stats


@requires(("module", "res_pjsip"), ("app", "sipp"))
def test_expiry_reverts_and_a_second_publisher_takes_over():
    with start(configs=CONFIGS) as ast:
        ami = ast.ami()
        assert setvar(ami, "CustomPresence:alice", "available,,At my desk")["Response"] == "Success"
        sipp = Sipp(ast)
        # The desk phone (granted alice) for 600 s, then the softphone (alice) for 4 s.
        sipp.once(200, "alicedesk", user="alice", body=pidf("on-the-phone"))
        assert state(ami, "alice").startswith("dnd,on-the-phone,,t(")
        sipp.once(200, "alice", expires=4, body=pidf("away", "Coffee"))
        assert state(ami, "alice") == "away,away,Coffee,t(4)"
        listed = ast.cli("presencestate publications")
        print(listed)
        rows = [l for l in listed.splitlines() if "CustomPresence:alice" in l]
        assert len(rows) == 2 and rows[0].startswith("*") and " alice " in rows[0], listed
        # The softphone's runs out: the desk phone's applies (still timed to its own end).
        wait_for_state(ami, "alice", "dnd", timeout=8)
        assert state(ami, "alice").startswith("dnd,on-the-phone,,t(")
        assert len([l for l in ast.cli("presencestate publications").splitlines()
                    if "CustomPresence:alice" in l]) == 1
        # A lone short publication of bob's reverts to what bob held before (nothing: not_set).
        sipp.once(200, "bob", expires=3, body=pidf(basic="closed"))
        assert state(ami, "bob") == "unavailable,,,t(3)"
        wait_for_state(ami, "bob", "not_set", timeout=8)
        assert "expiry of a timed state" in ast.cli("presencestate show CustomPresence:bob")
        assert re.search(r"Publications expired\s+2$", ast.cli("presencestate stats"), re.M)


def test_without_res_pjsip_the_module_loads_and_works_unchanged():
    """No pjsip.conf: the harness does not load res_pjsip at all; [sip_publish] enabled = yes
    only gets a NOTICE, and everything else works."""
    with start(configs={"presencestate.conf": PRESENCESTATE_CONF}) as ast:
        ami = ast.ami()
        assert not ast.module_loaded("res_pjsip")
        assert ast.module_loaded("func_presencestate_rs")
        assert "res_pjsip was not running when this module" in ast.log_text()
        assert setvar(ami, "CustomPresence:x", "away,,fine")["Response"] == "Success"
        assert state(ami, "x") == "away,,fine"
        assert "SIP PUBLISH is off" in ast.cli("presencestate publications")


def use_count(ast, module):
    for line in ast.cli("module show like " + module).splitlines():
        fields = line.split()
        if fields and fields[0] == module + ".so":
            return int(fields[-3])  # Module, Description, Use Count, Status, Support Level
    raise AssertionError("%s not listed" % module)


@requires(("module", "res_pjsip"), ("app", "sipp"))
def test_res_pjsip_stays_while_the_service_runs_and_pubsub_is_not_held():
    """Asterisk counts us as res_pjsip's user (optional_modules): it refuses to unload res_pjsip
    under the service. Unloading us unregisters the service (a PUBLISH then gets
    res_pjsip_pubsub's stock 489, no callback of ours is left), and loading us again brings it
    back. res_pjsip_pubsub, which we do not use, is not held. (The loader gives back our
    reference on res_pjsip only when it destroys our module entry, module_destroy; after
    `module unload` the entry stays, Not Running, and so does the reference.)"""
    with start(configs=CONFIGS) as ast:
        ami = ast.ami()
        Sipp(ast).once(200, "bob", body=pidf("busy"))
        assert state(ami, "bob").startswith("dnd,busy,")
        with_us = (use_count(ast, "res_pjsip"), use_count(ast, "res_pjsip_pubsub"))
        out = ast.cli("module unload res_pjsip.so")
        print("module unload res_pjsip.so -> " + out.strip())
        assert ast.module_loaded("res_pjsip") and "Unable to unload" in out, out
        ast.cli("module unload func_presencestate_rs.so")
        assert not ast.module_loaded("func_presencestate_rs")
        without_us = (use_count(ast, "res_pjsip"), use_count(ast, "res_pjsip_pubsub"))
        print("use counts (res_pjsip, res_pjsip_pubsub): with us %s, without %s" % (with_us, without_us))
        assert without_us[1] == with_us[1], (with_us, without_us)
        # A PUBLISH now gets res_pjsip_pubsub's stock answer, 489 Bad Event.
        Sipp(ast).once(489, "bob", body=pidf("away"))
        ast.cli("module load func_presencestate_rs.so")
        assert ast.module_loaded("func_presencestate_rs")
        Sipp(ast).once(200, "bob", body=pidf("away"))
        assert state(ami, "bob").startswith("away,away,")
        errors = [l for l in ast.log_text().splitlines() if "ERROR[" in l and "src/ffi" in l]
        assert not errors, errors
    without = dict(CONFIGS, **{"modules.conf": "noload => func_presencestate_rs.so\n"})
    with start(configs=without) as ast:
        assert use_count(ast, "res_pjsip") == with_us[0] - 1, "the one reference is ours"
