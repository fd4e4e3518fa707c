"""/ari/presenceStates against a real Asterisk with res_ari (http.conf and ari.conf written by
the test): every endpoint and status code with a real HTTP client, ARI's own refusals
(unauthenticated, a read_only user writing), the API declaration, 100 concurrent PUTs."""
import threading

import requests

from admin import show, stats
from ari import (BASE, PASSWORD, READER, READER_PASSWORD, USER, session, start_with_ari, url)
from helpers import LogWatch, astdb, getvar, start
from swagger import check_declaration, check_object


def declaration(s):
    """presenceStates.json as Asterisk serves it, checked; its models."""
    response = s.get(BASE + "/ari/api-docs/presenceStates.json")
    assert response.status_code == 200, response.text
    doc = response.json()
    check_declaration(doc, "presenceStates.json")
    return doc["models"]


def no_errors(watch):
    errors = [l for l in watch.new().splitlines() if "ERROR[" in l]
    assert not errors, "\n".join(errors)


def test_every_endpoint_and_status_code():
    ast = start_with_ari()
    watch = LogWatch(ast)
    ami = ast.ami()
    s = session()

    # The API declaration is installed and listed, and validates.
    listing = s.get(BASE + "/ari/api-docs/resources.json")
    assert listing.status_code == 200, listing.text
    paths = [api["path"] for api in listing.json()["apis"]]
    assert "/api-docs/presenceStates.{format}" in paths, paths
    assert "/api-docs/deviceStates.{format}" in paths, "Asterisk's own listing is kept"
    models = declaration(s)
    assert requests.get(BASE + "/ari/api-docs/resources.json").status_code == 401

    # Nothing without credentials; the wrong password is no credential.
    for method in ("GET", "PUT", "DELETE"):
        for auth in (None, (USER, "wrong")):
            r = requests.request(method, url("CustomPresence:alice"), params={"state": "away"},
                                 auth=auth)
            assert r.status_code == 401, (method, auth, r.status_code, r.text)
            assert r.headers.get("WWW-Authenticate", "").startswith("Basic"), r.headers
    assert requests.get(url()).status_code == 401

    # PUT: 200 with the state as stored, in the stock AstDB format, read back by the dialplan.
    r = s.put(url("CustomPresence:alice"), params={"state": "away", "subtype": "lunch",
                                                   "message": "Back at 2, promise"})
    assert r.status_code == 200, r.text
    check_object(r.json(), "PresenceState", models, "PUT answer")
    assert r.json()["message"] == "Back at 2, promise" and r.json()["changed_by"] == "ARI user " + USER
    assert astdb(ami)["alice"] == "away,bHVuY2g=,QmFjayBhdCAyLCBwcm9taXNl,e"
    assert getvar(ami, "CustomPresence:alice,message") == "Back at 2, promise"
    assert show(ast, "CustomPresence:alice")["Changed by"] == "ARI user " + USER
    # The same fields as a JSON body; a timed state.
    r = s.put(url("CustomPresence:bob"), json={"state": "dnd", "message": "Call", "expires": 3600})
    assert r.status_code == 200, r.text
    check_object(r.json(), "PresenceState", models, "PUT answer")
    assert "expires" in r.json() and astdb(ami)["bob"] == "dnd,,Call,t(3600)"
    # A '/' in a name, as %2F.
    r = s.put(url("CustomPresence:team/carol"), params={"state": "xa"})
    assert r.status_code == 200 and r.json()["name"] == "CustomPresence:team/carol", r.text
    assert astdb(ami)["team/carol"] == "xa"

    # GET one, GET all.
    r = s.get(url("CustomPresence:alice"))
    assert r.status_code == 200 and r.json()["subtype"] == "lunch", r.text
    check_object(r.json(), "PresenceState", models, "GET answer")
    r = s.get(url())
    assert r.status_code == 200, r.text
    check_object(r.json(), "List[PresenceState]", models, "GET list")
    assert [p["name"] for p in r.json()] == ["CustomPresence:alice", "CustomPresence:bob",
                                             "CustomPresence:team/carol"]
    assert s.get(url("CustomPresence:team/carol")).json()["state"] == "xa"

    # A read-only user may GET, never PUT or DELETE (ARI refuses before the resource runs).
    reader = session(READER, READER_PASSWORD)
    assert reader.get(url("CustomPresence:alice")).status_code == 200
    assert reader.put(url("CustomPresence:alice"), params={"state": "dnd"}).status_code == 403
    assert reader.delete(url("CustomPresence:alice")).status_code == 403
    assert astdb(ami)["alice"].startswith("away,")

    # 404: a CustomPresence name never set; a provider the presence core does not know.
    before = astdb(ami)
    for name in ("CustomPresence:nobody", "Nope:x"):
        r = s.get(url(name))
        assert r.status_code == 404, (name, r.status_code, r.text)
    # 400 naming the field, with a WARNING; nothing changed.
    for params, field, words in (
            ({}, "state", "state is required"),
            ({"state": "bored"}, "state", "unknown state 'bored'"),
            ({"state": "dnd", "expires": "0"}, "expires", "from 1 to 31536000"),
            ({"state": "dnd", "expires": "soon"}, "expires", "not 'soon'"),
            ({"state": "dnd", "mesage": "typo"}, None, "unknown parameter 'mesage'")):
        r = s.put(url("CustomPresence:alice"), params=params)
        assert r.status_code == 400, (params, r.status_code, r.text)
        assert r.json().get("field") == field and words in r.json()["message"], r.text
        line = watch.wait_for(words)
        assert "refused (400 Bad Request), nothing changed: " in line, line
    r = s.put(url("CustomPresence:alice"), json={"state": ["away"]})
    assert r.status_code == 400 and r.json()["field"] == "state", r.text
    r = s.put(url("CustomPresence:alice"), data="[1, 2]", headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and "JSON object" in r.json()["message"], r.text
    # Names: another provider's is 409, no presence name at all 400.
    for name, code in (("Lamp:desk", 409), ("alice", 400), ("CustomPresence:a,b", 400)):
        for r in (s.put(url(name), params={"state": "away"}), s.delete(url(name))):
            assert r.status_code == code and r.json()["field"] == "name", (name, r.status_code, r.text)
    assert s.get(url("CustomPresence:")).status_code == 400
    assert astdb(ami) == before

    # DELETE: 204, then 404.
    r = s.delete(url("CustomPresence:team/carol"))
    assert r.status_code == 204 and r.text == "", (r.status_code, r.text)
    assert "team/carol" not in astdb(ami)
    assert getvar(ami, "CustomPresence:team/carol,value") == "not_set"
    r = s.delete(url("CustomPresence:team/carol"))
    assert r.status_code == 404, r.text
    # A method the resource does not offer: ARI's 405.
    assert s.post(url("CustomPresence:alice")).status_code == 405
    stats = ast.cli("presencestate stats")
    assert "Refused writes and deletes" in stats, stats
    no_errors(watch)


def test_100_concurrent_puts_from_10_clients_agree_with_astdb():
    ast = start_with_ari()
    watch = LogWatch(ast)
    names = ["CustomPresence:desk%d" % i for i in range(5)]
    states = ["available", "away", "xa", "dnd", "chat"]
    answers, barrier = [], threading.Barrier(10)

    def client(n):
        s = session()
        s.get(url())                       # connected before the start line
        barrier.wait()
        for i in range(10):
            r = s.put(url(names[(n + i) % 5]), params={"state": states[i % 5],
                                                      "message": "client %d put %d" % (n, i)})
            answers.append((n, i, r.status_code, r.text))

    threads = [threading.Thread(target=client, args=(n,)) for n in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(answers) == 100, len(answers)
    bad = [a for a in answers if a[2] != 200]
    assert not bad, bad[:5]
    ami = ast.ami()
    stored = astdb(ami)
    listed = {p["name"]: p for p in session().get(url()).json()}
    assert sorted(listed) == sorted(names), listed
    for name in names:
        key = name.split(":", 1)[1]
        state, _, message = stored[key].split(",", 2)
        assert listed[name]["state"] == state and listed[name]["message"] == message, \
            (name, stored[key], listed[name])
        assert getvar(ami, name + ",value") == state
    assert stats(ast)["Writes"] == 100, stats(ast)
    no_errors(watch)


def test_the_module_loads_and_works_without_res_ari():
    ast = start()                          # no ari.conf: the harness loads no ARI module
    watch_text = ast.log_text()
    assert not ast.module_loaded("res_ari.so")
    assert ast.module_loaded("func_presencestate_rs.so")
    assert "res_ari or res_stasis is not loaded: /ari/presenceStates" in watch_text, watch_text[-2000:]
    ami = ast.ami()
    ami.action({"Action": "PresenceStateSet", "Presentity": "CustomPresence:zoe", "State": "dnd"})
    assert getvar(ami, "CustomPresence:zoe,value") == "dnd"
    errors = [l for l in ast.log_text().splitlines() if "ERROR[" in l and "presencestate" in l]
    assert not errors, errors
