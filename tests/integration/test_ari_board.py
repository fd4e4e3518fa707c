"""The presence board (/presence-board, served by the module) in a real headless Chromium:
sign in with ARI credentials, a dialplan write shown within a second, clicks that set and clear
states which PRESENCE_STATE() then reads, a timed state's "until", the filter; a screenshot."""
import os
import time

from ari import BASE, PASSWORD, USER, start_with_ari
from browser import Browser
from helpers import LogWatch, getvar

DIALPLAN = """\
[general]
static = yes
writeprotect = yes

[presence]
exten => alice,1,Set(PRESENCE_STATE(CustomPresence:alice)=dnd,,In a meeting until 3)
 same => n,Hangup()
"""
# Where a copy of the screenshot goes besides the run directory (the closing note takes it).
SHOT_ENV = "FPRS_BOARD_SCREENSHOT"


def card(name):
    return '[data-name="CustomPresence:%s"]' % name


def test_the_board_shows_sets_and_clears_presence_live():
    ast = start_with_ari(extra={"extensions.conf": DIALPLAN})
    watch = LogWatch(ast)
    ami = ast.ami()
    browser = Browser()
    try:
        browser.goto(BASE + "/presence-board")
        # A wrong password is refused by ARI and said so on the page.
        browser.type("#login-user", USER)
        browser.type("#login-password", "not-the-password")
        browser.click("#login-button")
        browser.wait_for("document.querySelector('#login-error').innerText.includes('Wrong user')",
                         what="the wrong-password message")
        browser.type("#login-password", PASSWORD)
        browser.click("#login-button")
        browser.wait_for("document.querySelector('#live').innerText === 'live'",
                         what="the board signed in and its event socket live")

        # A write from the dialplan is on the board within a second. Timed from the AMI
        # Originate on the open manager connection, not from spawning `asterisk -rx`, whose
        # own start-up took about a second at a load average of 7 (it is no part of the path).
        started = time.monotonic()
        response = ami.action({"Action": "Originate", "Channel": "Local/alice@presence",
                               "Application": "NoOp", "Async": "true"})
        assert response.get("Response") == "Success", response
        shown = browser.wait_for(
            "(() => { const c = document.querySelector('%s');"
            " return c && c.querySelector('.state').innerText.toLowerCase() === 'dnd'"
            " && c.innerText.includes('In a meeting until 3'); })()" % card("alice"),
            timeout=5, what="alice's dnd card")
        elapsed = time.monotonic() - started
        assert elapsed < 1.0, "the dialplan write took %.3fs to reach the board" % elapsed
        print("dialplan write shown on the board %.3f s after the Originate (%.3f s after its "
              "response)" % (elapsed, shown))
        assert "channel Local/alice@presence" in browser.text(card("alice")), browser.text(card("alice"))

        # A click sets a state that PRESENCE_STATE() then reads.
        browser.type("#set-name", "bob")
        browser.select("#set-state", "away")
        browser.type("#set-message", "Back at 3, promise")
        browser.click("#set-button")
        browser.wait_for("document.querySelector('%s')" % card("bob"), what="bob's card")
        assert getvar(ami, "CustomPresence:bob,value") == "away"
        assert getvar(ami, "CustomPresence:bob,message") == "Back at 3, promise"
        browser.click(card("bob") + ' button[data-action="dnd"]')
        browser.wait_for("document.querySelector('%s .state').innerText.toLowerCase() === 'dnd'"
                         % card("bob"), what="bob's card in dnd")
        assert getvar(ami, "CustomPresence:bob,value") == "dnd"

        # A timed state shows until when.
        browser.type("#set-name", "carol")
        browser.select("#set-state", "xa")
        browser.type("#set-message", "Holiday")
        browser.type("#set-expires", "3600")
        browser.click("#set-button")
        browser.wait_for("(() => { const c = document.querySelector('%s');"
                         " return c && c.querySelector('.until') !== null; })()" % card("carol"),
                         what="carol's card with its until")
        carol = browser.text(card("carol"))
        assert "until" in carol and ("(1 h 0 min)" in carol or "(59 min" in carol), carol
        for name, state in (("dave", "available"), ("erin", "chat"), ("frank", "unavailable")):
            ami.action({"Action": "PresenceStateSet", "Presentity": "CustomPresence:" + name,
                        "State": state, "Message": "on the floor"})
            browser.wait_for("document.querySelector('%s')" % card(name), what=name + "'s card")
        shot = browser.screenshot(ast.host("log", "board.png"))
        if os.environ.get(SHOT_ENV):
            browser.screenshot(os.environ[SHOT_ENV])
        print("screenshot: %s" % (os.environ.get(SHOT_ENV) or shot))

        # The filter shows the names that hold its text.
        browser.type("#filter", "aro")
        browser.wait_for("document.querySelectorAll('.card').length === 1", what="one card filtered")
        assert browser.js("document.querySelector('.card').dataset.name") == "CustomPresence:carol"
        browser.type("#filter", "")
        browser.call("Input.dispatchKeyEvent", type="keyDown", key="Backspace", code="Backspace",
                     windowsVirtualKeyCode=8)
        browser.wait_for("document.querySelectorAll('.card').length === 6", what="six cards again")

        # Clear: the state is deleted, PRESENCE_STATE() reads not_set, the card goes.
        browser.click(card("bob") + ' button[data-action="clear"]')
        browser.wait_for("document.querySelector('%s') === null" % card("bob"), what="bob's card gone")
        assert getvar(ami, "CustomPresence:bob,value") == "not_set"
        assert browser.errors == [], browser.errors
    finally:
        browser.close()
    errors = [l for l in watch.new().splitlines() if "ERROR[" in l]
    assert not errors, errors
