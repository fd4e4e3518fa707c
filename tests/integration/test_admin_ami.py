"""The AMI actions PresenceStateSet and PresenceStateDelete (issue 10) against a real
Asterisk 22: stored in the stock format, read back by the stock module, every bad input
refused with a Response: Error that says why and nothing changed, write class `call`."""
import os
import time

from admin import delete_action, meta, set_action, show, stats
from ami import AMIClient
from helpers import (LogWatch, astdb, fill_astdb, getvar, prepare_with_small_astdb,
                     presence_changes, start)
from instance import AMI_SECRET, AMI_USER


def test_set_stores_the_stock_format_and_announces_decoded():
    ast = start()
    try:
        ami = ast.ami(events="on")
        cases = [
            # (fields, stored value, (status, subtype, message) announced)
            (dict(State="AWAY"), "away", ("away", "", "")),
            (dict(State="dnd", Subtype="busy", Message="In a call"), "dnd,busy,In a call", ("dnd", "busy", "In a call")),
            (dict(State="away", Subtype="lunch, late", Message="Back at 2, promise"),
             "away,bHVuY2gsIGxhdGU=,QmFjayBhdCAyLCBwcm9taXNl,e", ("away", "lunch, late", "Back at 2, promise")),
            (dict(State="xa", Message="T24gdmFjYXRpb24=", Encoded="yes"), "xa,,T24gdmFjYXRpb24=,e", ("xa", "", "On vacation")),
        ]
        for n, (fields, stored, announced) in enumerate(cases):
            name = "p%d" % n
            mark = ami.mark()
            response = set_action(ami, "CustomPresence:" + name, **fields)
            assert response["Response"] == "Success", response
            assert response["Message"] == "CustomPresence:%s set to '%s'" % (name, stored), response
            event = presence_changes(ami, start=mark)[0]
            assert (event["Presentity"], event["Status"], event["Subtype"], event["Message"]) == \
                ("CustomPresence:" + name,) + announced, event
            assert astdb(ami)[name] == stored
            assert getvar(ami, "CustomPresence:%s,message" % name) == announced[2]
            assert show(ast, "CustomPresence:" + name)["Changed by"] == "AMI action"
        # The stock module reads every one of them back whole.
        ast.restart(mode="stock")
        ami = ast.ami()
        for n, (_, _, (status, subtype, message)) in enumerate(cases):
            assert getvar(ami, "CustomPresence:p%d,value" % n) == status
            assert getvar(ami, "CustomPresence:p%d,subtype" % n) == subtype
            assert getvar(ami, "CustomPresence:p%d,message" % n) == message
    finally:
        ast.stop()


def test_delete_removes_and_announces_not_set():
    with start() as ast:
        ami = ast.ami(events="on")
        mark = ami.mark()
        assert set_action(ami, "CustomPresence:team/alice", "away", Message="x")["Response"] == "Success"
        presence_changes(ami, start=mark)            # the set's own event, before the delete's
        mark = ami.mark()
        response = delete_action(ami, "CustomPresence:team/alice")
        assert (response["Response"], response["Message"]) == ("Success", "CustomPresence:team/alice deleted"), response
        event = presence_changes(ami, start=mark)[0]
        assert (event["Presentity"], event["Status"]) == ("CustomPresence:team/alice", "not_set"), event
        assert astdb(ami) == {} and meta(ami) == {}
        assert getvar(ami, "CustomPresence:team/alice,value") == "not_set"


BAD_SETS = [
    (dict(State="away"), "Presentity is required (CustomPresence:<name>)"),
    (dict(Presentity="CustomPresence:alice"), "State is required"),
    (dict(Presentity="CustomPresence:alice", State="bored"), "unknown State 'bored'"),
    (dict(Presentity="PJSIP/alice", State="away"), "only CustomPresence: presence can be set, not 'PJSIP/alice'"),
    (dict(Presentity="CustomPresence:", State="away"), "the name after CustomPresence: is empty"),
    (dict(Presentity="CustomPresence:a,b", State="away"), "holds a comma"),
    (dict(Presentity="CustomPresence:alice", State="away", Message="not base64!", Encoded="yes"),
     "option 'e' is set but the message is not valid base64"),
    (dict(Presentity="CustomPresence:alice", State="away", Encoded="maybe"), "Encoded must be yes or no, not 'maybe'"),
]
BAD_DELETES = [
    (dict(), "Presentity is required"),
    (dict(Presentity="CustomPresence:nobody"), "there is no custom presence state CustomPresence:nobody"),
    (dict(Presentity="SIP/alice"), "only CustomPresence: presence can be set"),
    (dict(Presentity="CustomPresence:"), "the name after CustomPresence: is empty"),
]


def test_bad_actions_answer_error_saying_why_and_change_nothing():
    with start() as ast:
        ami = ast.ami(events="on")
        mark = ami.mark()
        assert set_action(ami, "CustomPresence:alice", "dnd", Message="before")["Response"] == "Success"
        presence_changes(ami, start=mark)
        before = (astdb(ami), meta(ami))
        for action, fields_list in (("PresenceStateSet", BAD_SETS), ("PresenceStateDelete", BAD_DELETES)):
            for fields, fragment in fields_list:
                watch, mark = LogWatch(ast), ami.mark()
                response = ami.action(dict(fields, Action=action))
                assert response["Response"] == "Error", (fields, response)
                assert fragment in response["Message"], (fields, response)
                watch.wait_for("AMI %s: refused, nothing changed: " % action)
                time.sleep(0.2)
                assert not ami.events(lambda e: e.get("Event") == "PresenceStateChange", start=mark), fields
                assert (astdb(ami), meta(ami)) == before, fields
        assert getvar(ami, "CustomPresence:alice,message") == "before"
        counts = stats(ast)
        assert counts["Refused writes and deletes"] == len(BAD_SETS) + len(BAD_DELETES), counts


def test_an_astdb_failure_answers_error_and_changes_nothing():
    ast = prepare_with_small_astdb()
    ast.start()
    try:
        ami = ast.ami(events="on")
        assert set_action(ami, "CustomPresence:a", "away", Message="before")["Response"] == "Success"
        filler = fill_astdb(ast)
        mark = ami.mark()
        for response in (set_action(ami, "CustomPresence:a", "dnd", Message="after"),
                         delete_action(ami, "CustomPresence:a")):
            assert response["Response"] == "Error", response
            assert "AstDB refused" in response["Message"], response
        assert getvar(ami, "CustomPresence:a,message") == "before"
        time.sleep(0.5)
        assert not ami.events(lambda e: e.get("Event") == "PresenceStateChange", start=mark)
        counts = stats(ast)
        assert counts["AstDB refused the change"] == 2 and counts["AstDB failures"] >= 2, counts
        os.unlink(filler)
        time.sleep(1.5)
        assert set_action(ami, "CustomPresence:a", "dnd", Message="after")["Response"] == "Success"
    finally:
        ast.stop()


MANAGER = """[general]
enabled = yes
port = 5038
bindaddr = 127.0.0.1
displayconnects = no

[{user}]
secret = {secret}
read = all
write = all

[caller]
secret = {secret}
read = all
write = call

[sysadmin]
secret = {secret}
read = all
write = system,config
"""


def test_the_actions_need_write_class_call():
    with start(configs={"manager.conf": MANAGER.format(user=AMI_USER, secret=AMI_SECRET)}) as ast:
        with AMIClient("127.0.0.1", 5038, "caller", AMI_SECRET, 10, "off") as caller:
            assert set_action(caller, "CustomPresence:a", "away")["Response"] == "Success"
            assert delete_action(caller, "CustomPresence:a")["Response"] == "Success"
        with AMIClient("127.0.0.1", 5038, "sysadmin", AMI_SECRET, 10, "off") as sysadmin:
            for response in (set_action(sysadmin, "CustomPresence:b", "away"),
                             delete_action(sysadmin, "CustomPresence:b")):
                assert response["Response"] == "Error" and "Permission denied" in response["Message"], response
        assert astdb(ast.ami()) == {}
        assert "call" in ast.cli("manager show command PresenceStateSet").split("[Privilege]")[1].split("\n")[1]
