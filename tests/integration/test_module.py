"""The module in a real Asterisk 22: test framework, bad input, CLI, lifecycle, persistence and
migration to and from the stock module. (Dialplan and AMI behaviour that the Asterisk testsuite
format can express lives in asterisk-test-suite/tests.)"""
import os
import re
import time

from helpers import (LogWatch, astdb, fill_astdb, getvar, prepare_with_small_astdb,
                     presence_changes, setvar, start)


def test_framework_tests_pass():
    with start() as ast:
        out = ast.cli("test execute category /funcs/func_presencestate_rs/")
        summary = re.search(r"(\d+) Test\(s\) Executed\s+(\d+) Passed\s+(\d+) Failed", out)
        assert summary, out
        executed, passed, failed = map(int, summary.groups())
        print(f"test framework: {executed} executed, {passed} passed, {failed} failed")
        assert executed >= 6 and passed == executed and failed == 0, out


def test_bad_writes_warn_fail_and_change_nothing():
    with start() as ast:
        ami = ast.ami()
        assert setvar(ami, "CustomPresence:alice", "away,lunch,back soon")["Response"] == "Success"
        # Its announcement reaches AMI after the SetVar response (Stasis delivers it): wait for
        # it, or it can land after the first mark below (seen on a loaded machine).
        presence_changes(ami)
        before = astdb(ami)
        assert before == {"alice": "away,lunch,back soon"}, before
        cases = [
            ("PJSIP/alice", "dnd", "only CustomPresence: presence can be set"),
            ("CustomPresence:", "dnd", "name after CustomPresence: is empty"),
            ("CustomPresence:alice", "", "the state is missing"),
            ("CustomPresence:alice", "bored", "'bored' is not a presence state"),
            ("CustomPresence:alice", "dnd,,Lunch, see you", "unknown options ' see you'"),
            ("CustomPresence:alice", "dnd,a,b,e,x", "5 comma-separated fields"),
            ("CustomPresence:alice", "dnd,not base64!,,e", "subtype is not valid base64"),
            ("CustomPresence:alice", "dnd,,,i", "unknown options 'i'"),
        ]
        for provider, value, fragment in cases:
            watch = LogWatch(ast)
            mark = ami.mark()
            response = setvar(ami, provider, value)
            assert response.get("Response") == "Error", (provider, value, response)
            watch.wait_for(fragment)
            assert astdb(ami) == before, (provider, value, astdb(ami))
            assert getvar(ami, "CustomPresence:alice,value") == "away"
            assert getvar(ami, "CustomPresence:alice,message") == "back soon"
            assert not ami.events(lambda e: e.get("Event") == "PresenceStateChange", start=mark)


def test_bad_reads_warn_and_fail():
    with start() as ast:
        ami = ast.ami()
        assert setvar(ami, "CustomPresence:alice", "away,lunch,back soon")["Response"] == "Success"
        cases = [
            ("CustomPresence:alice,status", "unknown field 'status'"),
            ("CustomPresence:alice,value,x", "unknown read options 'x'"),
            ("CustomPresence:alice", "requires both a presence provider and a field"),
            ("CustomPresence:,value", "name after CustomPresence: is empty"),
            ("NoSuchTech:x,value", "presence provider 'NoSuchTech:x' is unknown"),
        ]
        for arguments, fragment in cases:
            watch = LogWatch(ast)
            assert getvar(ami, arguments) == "", arguments
            watch.wait_for(fragment)
        # The good reads still work (an unknown name reading not_set is in asterisk-test-suite).
        assert getvar(ami, "CustomPresence:alice,subtype") == "lunch"
        assert getvar(ami, "custompresence:alice,VALUE") == "away"


def test_cli_change_and_list():
    with start() as ast:
        ami = ast.ami()
        # (What `change ... ,e` announces is asterisk-test-suite's stock_defect_4 test.)
        out = ast.cli('presencestate change CustomPresence:team/alice "away,aW4gYSBtZWV0aW5n,YmFjayBhdCAz,e"')
        assert "Changing" in out, out
        assert astdb(ami) == {"team/alice": "away,aW4gYSBtZWV0aW5n,YmFjayBhdCAz,e"}
        # Stock defect 5: stock listed this name as 'alice'.
        listing = ast.cli("presencestate list")
        for line in ("--- Name: 'CustomPresence:team/alice'", "--- State: 'away'",
                     "--- Subtype: 'aW4gYSBtZWV0aW5n'", "--- Message: 'YmFjayBhdCAz'",
                     "--- Base64 Encoded: 'Yes'"):
            assert line in listing, listing
        watch = LogWatch(ast)
        out = ast.cli("presencestate change CustomPresence:team/alice bored")
        assert "refused" in out, out
        watch.wait_for("'bored' is not a presence state")
        assert astdb(ami) == {"team/alice": "away,aW4gYSBtZWV0aW5n,YmFjayBhdCAz,e"}
        assert "Usage: presencestate change" in ast.cli("presencestate change CustomPresence:x")


def test_declines_beside_the_stock_module():
    with start(mode="stock") as ast:
        assert ast.module_loaded("func_presencestate")
        watch = LogWatch(ast)
        ast.cli("module load func_presencestate_rs.so")
        line = watch.wait_for("noload => func_presencestate.so")
        assert len([l for l in watch.new().splitlines() if "src/ffi" in l]) == 1, watch.new()
        assert not ast.module_loaded("func_presencestate_rs"), line
        # The stock module still works.
        ami = ast.ami()
        assert setvar(ami, "CustomPresence:a", "dnd")["Response"] == "Success"
        assert getvar(ami, "CustomPresence:a,value") == "dnd"


def test_unload_load_and_reload():
    with start() as ast:
        ami = ast.ami()
        assert setvar(ami, "CustomPresence:a", "away,,first")["Response"] == "Success"
        for _ in range(3):
            assert "Unloaded" in ast.cli("module unload func_presencestate_rs.so")
            assert not ast.module_loaded("func_presencestate_rs")
            assert "Loaded" in ast.cli("module load func_presencestate_rs.so")
            assert getvar(ami, "CustomPresence:a,message") == "first"
        # An AstDB edit takes effect at reload and is announced; an unchanged state is not.
        ast.cli("database put CustomPresence b dnd,,edited")
        ast.cli("database put CustomPresence broken bored")
        watch = LogWatch(ast)
        mark = ami.mark()
        assert "reloaded" in ast.cli("module reload func_presencestate_rs.so")
        event = presence_changes(ami, start=mark)[0]
        assert (event["Presentity"], event["Status"], event["Message"]) == ("CustomPresence:b", "dnd", "edited"), event
        watch.wait_for("Skipping stored presence CustomPresence:broken = 'bored'")
        assert getvar(ami, "CustomPresence:b,message") == "edited"
        assert astdb(ami)["broken"] == "bored", "an invalid entry must never be deleted"
        assert len(presence_changes(ami, start=mark)) == 1
        assert ast.module_loaded("func_presencestate_rs")


LONG_NAME = "n" * 100
STATES = {
    "alice": "away,lunch,back soon",
    "team/bob": "dnd,,In a meeting",
    LONG_NAME: "xa,T24gdmFjYXRpb24=,,e",
    "carol": "chat",
}


def write_all(ami):
    for name, value in STATES.items():
        assert setvar(ami, "CustomPresence:" + name, value)["Response"] == "Success", name


def assert_reads(ami, expected_subtype_of_long="On vacation"):
    assert getvar(ami, "CustomPresence:alice,message") == "back soon"
    assert getvar(ami, "CustomPresence:team/bob,value") == "dnd"
    assert getvar(ami, "CustomPresence:%s,subtype" % LONG_NAME) == expected_subtype_of_long
    assert getvar(ami, "CustomPresence:carol,value") == "chat"


def cached_states(ami):
    """The Stasis cache as PresenceStateList shows it: {presentity: (status, subtype, message)}."""
    response = ami.action({"Action": "PresenceStateList"})
    return {e["Presentity"]: (e["Status"], e["Subtype"], e["Message"]) for e in response.events}


def test_states_persist_across_restart_and_are_announced_at_load():
    ast = start()
    try:
        write_all(ast.ami())
        ast.restart()
        ami = ast.ami()
        assert astdb(ami) == STATES
        assert_reads(ami)
        # Stock defects 5 and 6: at load stock announced nothing for team/bob (it looked up
        # 'bob') and the long name cut to 64 characters (asterisk-test-suite run --stock).
        assert cached_states(ami) == {
            "CustomPresence:alice": ("away", "lunch", "back soon"),
            "CustomPresence:team/bob": ("dnd", "", "In a meeting"),
            "CustomPresence:" + LONG_NAME: ("xa", "On vacation", ""),
            "CustomPresence:carol": ("chat", "", ""),
        }
    finally:
        ast.stop()


def test_migration_from_stock_and_back():
    ast = start(mode="stock")
    try:
        write_all(ast.ami())
        ast.restart(mode="ours")
        assert ast.module_loaded("func_presencestate_rs") and not ast.module_loaded("func_presencestate")
        ami = ast.ami()
        assert astdb(ami) == STATES
        assert_reads(ami)
        assert setvar(ami, "CustomPresence:dave", "unavailable,,gone home")["Response"] == "Success"
        ast.restart(mode="stock")
        assert ast.module_loaded("func_presencestate") and not ast.module_loaded("func_presencestate_rs")
        ami = ast.ami()
        assert astdb(ami) == dict(STATES, dave="unavailable,,gone home")
        assert getvar(ami, "CustomPresence:dave,message") == "gone home"
        assert getvar(ami, "CustomPresence:alice,message") == "back soon"
    finally:
        ast.stop()


def test_a_refused_astdb_write_fails_and_changes_nothing():
    """Stock defect 8: stock ignored a failed AstDB write and announced the state anyway."""
    ast = prepare_with_small_astdb()
    ast.start()
    try:
        ami = ast.ami()
        assert setvar(ami, "CustomPresence:a", "away,,before")["Response"] == "Success"
        filler = fill_astdb(ast)
        watch, mark = LogWatch(ast), ami.mark()
        response = setvar(ami, "CustomPresence:a", "dnd,,after")
        assert response.get("Response") == "Error", response
        watch.wait_for("AstDB refused to store CustomPresence/a; the state is unchanged")
        assert getvar(ami, "CustomPresence:a,message") == "before"
        time.sleep(0.5)
        assert not ami.events(lambda e: e.get("Event") == "PresenceStateChange", start=mark)
        os.unlink(filler)
        time.sleep(1.5)
        assert setvar(ami, "CustomPresence:a", "dnd,,after")["Response"] == "Success"
        assert getvar(ami, "CustomPresence:a,message") == "after"
    finally:
        ast.stop()
