"""Operator tools at the CLI (issue 10): presencestate show, list like, delete and stats, and
the CustomPresenceMeta records behind `show`, against a real Asterisk 22."""
import calendar
import re
import time

from admin import failed, meta, set_action, show, stats
from helpers import LogWatch, astdb, getvar, presence_changes, setvar, start

DIALPLAN = """[general]
[t]
exten => s,1,Set(PRESENCE_STATE(CustomPresence:dp)=away,${BASE64_ENCODE(lunch, late)},${BASE64_ENCODE(back at 2)},e)
 same => n,UserEvent(AdminWritten)
 same => n,Hangup()
exten => 1001,hint,,CustomPresence:alice
"""
TIME = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) (\S+)$")


def last_changed(fields, record):
    """Checks `Last changed` against the record's unix time; returns that time."""
    m = TIME.match(fields["Last changed"])
    assert m, fields
    changed = int(dict(f.split("=", 1) for f in record.split(";"))["changed"])
    expected = time.gmtime(changed) if m.group(2) in ("UTC", "GMT") else time.localtime(changed)
    assert m.group(1) == time.strftime("%Y-%m-%d %H:%M:%S", expected), (fields, record)
    return changed


def test_show_tells_when_and_by_what_and_it_survives_a_restart():
    ast = start(configs={"extensions.conf": DIALPLAN})
    try:
        ami = ast.ami(events="on")
        before = calendar.timegm(time.gmtime()) - 1
        mark = ami.mark()
        ami.action({"Action": "Originate", "Channel": "Local/s@t", "Application": "Wait", "Data": "1"})
        ami.wait_for(lambda e: e.get("UserEvent") == "AdminWritten", start=mark)
        assert "Changing" in ast.cli("presencestate change CustomPresence:sales/bob DND")
        assert set_action(ami, "CustomPresence:carol", "xa", Message="Back Monday")["Response"] == "Success"
        assert setvar(ami, "CustomPresence:dave", "chat")["Response"] == "Success"
        assert "Updated" in ast.cli('database put CustomPresence edited "unavailable,,by hand"')
        ast.cli("module reload func_presencestate_rs.so")
        records = meta(ami)
        assert set(records) == {"dp", "sales/bob", "carol", "dave", "edited"}, records
        expected = {
            "dp": ("away", "lunch, late", "back at 2", "yes", r"channel Local/s@t-\d+;\d$"),
            "sales/bob": ("dnd", "", "", "no", "CLI$"),
            "carol": ("xa", "", "Back Monday", "no", "AMI action$"),
            "dave": ("chat", "", "", "no", r"PRESENCE_STATE\(\) with no channel \(AMI SetVar\)$"),
            "edited": ("unavailable", "", "by hand", "no", "reload from AstDB$"),
        }
        shown = {}
        for name, (state, subtype, message, encoded, source) in expected.items():
            fields = show(ast, "CustomPresence:" + name)
            assert fields["Presentity"] == "CustomPresence:" + name, fields
            assert (fields["State"], fields["Subtype"], fields["Message"]) == (state, subtype, message), fields
            assert fields["Encoded"].startswith(encoded), fields
            assert re.match(source, fields["Changed by"]), fields
            changed = last_changed(fields, records[name])
            assert before <= changed <= calendar.timegm(time.gmtime()) + 1, (changed, before)
            shown[name] = fields
        # The CustomPresence family holds exactly the stock entries.
        assert astdb(ami) == {"dp": "away,bHVuY2gsIGxhdGU=,YmFjayBhdCAy,e", "sales/bob": "DND",
                              "carol": "xa,,Back Monday", "dave": "chat", "edited": "unavailable,,by hand"}
        ast.restart()
        for name, fields in shown.items():
            assert show(ast, "CustomPresence:" + name) == fields, name
    finally:
        ast.stop()


def test_show_says_unknown_for_what_the_stock_module_wrote():
    ast = start()
    try:
        ami = ast.ami()
        assert setvar(ami, "CustomPresence:alice", "away,,ours")["Response"] == "Success"
        assert show(ast, "CustomPresence:alice")["Changed by"] == "PRESENCE_STATE() with no channel (AMI SetVar)"
        ast.restart(mode="stock")
        ami = ast.ami()
        # The stock module writes alice again and bob for the first time: it keeps no records.
        assert setvar(ami, "CustomPresence:alice", "dnd,,stock")["Response"] == "Success"
        assert setvar(ami, "CustomPresence:bob", "xa")["Response"] == "Success"
        ast.restart(mode="ours")
        for name, state in (("alice", "dnd"), ("bob", "xa")):
            fields = show(ast, "CustomPresence:" + name)
            assert fields["State"] == state, fields
            assert (fields["Last changed"], fields["Changed by"]) == ("unknown", "unknown"), fields
        # The stale record is not deleted behind the operator's back; the next change replaces it.
        assert "alice" in meta(ast.ami())
        ast.cli("presencestate change CustomPresence:alice away")
        assert show(ast, "CustomPresence:alice")["Changed by"] == "CLI"
    finally:
        ast.stop()


def test_show_of_an_unknown_name_fails():
    with start() as ast:
        for presentity, fragment in (("CustomPresence:nobody", "there is no custom presence state CustomPresence:nobody"),
                                     ("PJSIP/100", "only CustomPresence: presence can be set"),
                                     ("CustomPresence:", "the name after CustomPresence: is empty")):
            watch = LogWatch(ast)
            out = ast.cli("presencestate show " + presentity)
            assert failed(out, "presencestate show " + presentity) and fragment in out, out
            watch.wait_for(fragment)
        assert "Usage: presencestate show" in ast.cli("presencestate show")


def listed_names(out):
    return re.findall(r"^--- Name: 'CustomPresence:(.*)'$", out, re.M)


def test_list_like_filters_and_counts_plain_list_is_stocks():
    with start() as ast:
        for name in ("sales/alice", "sales/bob", "support/carol"):
            ast.cli("presencestate change CustomPresence:%s away" % name)
        out = ast.cli("presencestate list")
        assert listed_names(out) == ["sales/alice", "sales/bob", "support/carol"], out
        assert "shown)" not in out, "plain list: stock's layout, no count line: " + out
        out = ast.cli("presencestate list like SALES/")
        assert listed_names(out) == ["sales/alice", "sales/bob"], out
        assert out.rstrip("\n").endswith("3 custom presence states (2 shown)"), out
        out = ast.cli("presencestate list like nobody")
        assert listed_names(out) == [] and "No custom presence state matches 'nobody'" in out, out
        assert out.rstrip("\n").endswith("3 custom presence states (0 shown)"), out
        assert "Usage: presencestate list" in ast.cli("presencestate list like")


def cli_session(mode):
    with start(mode) as ast:
        return [ast.cli(command) for command in (
            "presencestate list", 'presencestate change CustomPresence:alice "AWAY,lunch,back soon"',
            'presencestate change CustomPresence:bob "dnd,,In a meeting"',
            "presencestate change CustomPresence:carol xa,YQ==,Yg==,e", "presencestate list")]


def test_list_and_change_print_what_stock_prints():
    stock = cli_session("stock")
    assert stock[1] == "Changing alice to AWAY\n" and "'CustomPresence:carol'" in stock[4], stock
    assert cli_session("ours") == stock


def completions(ast, line, word):
    out = ast.cli('_command matchesarray "%s" "%s"' % (line, word))
    return out.replace("_EOF_", "").split()


def test_delete_removes_everywhere_announces_not_set_and_completes_names():
    with start(configs={"extensions.conf": DIALPLAN}) as ast:
        ami = ast.ami(events="on")
        mark = ami.mark()
        for name in ("alice", "alan", "bob"):
            ast.cli("presencestate change CustomPresence:%s away,,hi" % name)
        presence_changes(ami, start=mark, count=3)   # theirs, before the delete's
        offered = completions(ast, "presencestate delete CustomPresence:al", "CustomPresence:al")
        assert {"CustomPresence:alice", "CustomPresence:alan"} <= set(offered), offered
        assert "CustomPresence:bob" not in offered, offered
        assert "CustomPresence:bob" in completions(ast, "presencestate show Cu", "Cu")
        mark = ami.mark()
        out = ast.cli("presencestate delete CustomPresence:alice")
        assert "Deleted CustomPresence:alice" in out and not failed(out, "presencestate delete CustomPresence:alice"), out
        event = presence_changes(ami, start=mark)[0]
        assert (event["Presentity"], event["Status"]) == ("CustomPresence:alice", "not_set"), event
        hint = ami.wait_for(lambda e: e.get("Event") == "PresenceStatus" and e.get("Exten") == "1001", start=mark)
        assert hint["Status"] == "not_set", hint
        assert astdb(ami) == {"alan": "away,,hi", "bob": "away,,hi"}
        assert set(meta(ami)) == {"alan", "bob"}
        assert getvar(ami, "CustomPresence:alice,value") == "not_set"
        assert "CustomPresence:alice" not in ast.cli("presencestate list")
        # A name that holds no state: an error, the command fails, nothing changes.
        for presentity in ("CustomPresence:alice", "CustomPresence:never"):
            watch, mark = LogWatch(ast), ami.mark()
            out = ast.cli("presencestate delete " + presentity)
            assert failed(out, "presencestate delete " + presentity), out
            assert "there is no custom presence state " + presentity in out, out
            watch.wait_for("there is no custom presence state " + presentity)
            time.sleep(0.3)
            assert not ami.events(lambda e: e.get("Event") == "PresenceStateChange", start=mark)
            assert astdb(ami) == {"alan": "away,,hi", "bob": "away,,hi"}
        # After a restart the deleted state stays deleted.
        ast.restart()
        assert listed_names(ast.cli("presencestate list")) == ["alan", "bob"]


def test_stats_count_what_happened_since_load():
    with start() as ast:
        ami = ast.ami()
        ast.cli("presencestate change CustomPresence:a away")
        ast.cli("presencestate change CustomPresence:b dnd,,x")
        assert set_action(ami, "CustomPresence:c", "dnd")["Response"] == "Success"
        assert setvar(ami, "CustomPresence:a", "bored")["Response"] == "Error"
        assert setvar(ami, "PJSIP/a", "away")["Response"] == "Error"
        assert set_action(ami, "CustomPresence:a", "away", Message="%%%", Encoded="yes")["Response"] == "Error"
        ast.cli("presencestate delete CustomPresence:nobody")
        ast.cli("presencestate delete CustomPresence:b")
        assert getvar(ami, "CustomPresence:a,value") == "away"
        # Through the presence core: it asks the provider once per name.
        assert getvar(ami, "CustomPresence:a&CustomPresence:c,value") == "dnd"
        counts = stats(ast)
        expected = {
            "States held": 2, "away": 1, "dnd": 1, "xa": 0, "not_set": 0,
            "Writes": 3, "Deletes": 1, "Reads (PRESENCE_STATE)": 2,
            "Refused writes and deletes": 4, "unknown or missing state": 1,
            "not a CustomPresence presentity": 1, "invalid base64 (option e)": 1,
            "delete of a name never set": 1, "AstDB refused the change": 0, "AstDB failures": 0,
        }
        assert {k: counts[k] for k in expected} == expected, counts
        assert counts["Provider queries (presence core)"] >= 2, counts
        # Counters start again at each load, not at reload.
        ast.cli("module reload func_presencestate_rs.so")
        assert stats(ast)["Writes"] == 3
        ast.cli("module unload func_presencestate_rs.so")
        ast.cli("module load func_presencestate_rs.so")
        counts = stats(ast)
        assert (counts["Writes"], counts["States held"]) == (0, 2), counts
