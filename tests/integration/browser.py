"""A real browser for the tests: Debian's headless Chromium, driven over the Chrome DevTools
protocol with a websocket client. Clicks and typing go through the browser's own input
pipeline (Input.dispatchMouseEvent / insertText), as a user's would.

Chromium runs in the test's own namespace (it reaches only the Asterisk on 127.0.0.1 there),
as root with --no-sandbox, and with the flags that keep it from calling out (this machine
refuses those connections): no background networking, component updates, sync or QUIC."""
import base64
import json
import os
import shutil
import subprocess
import tempfile
import time

import requests
import websocket

CHROMIUM = "/usr/lib/chromium/chromium"      # the binary behind Debian's /usr/bin/chromium wrapper
FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-default-apps", "--disable-extensions", "--mute-audio",
         "--remote-debugging-port=0", "--window-size=1200,800"]


class BrowserError(AssertionError):
    pass


class Browser:
    """One Chromium with one page."""

    def __init__(self, timeout=20):
        if not os.access(CHROMIUM, os.X_OK):
            raise BrowserError("no Chromium at %s (scripts/asterisk-root installs Debian's "
                               "chromium on the host)" % CHROMIUM)
        self.profile = tempfile.mkdtemp(prefix="fprs-chromium-")
        self.log = open(os.path.join(self.profile, "chromium.log"), "wb")
        self.proc = subprocess.Popen([CHROMIUM, *FLAGS, "--user-data-dir=" + self.profile,
                                      "about:blank"], stdin=subprocess.DEVNULL,
                                     stdout=self.log, stderr=subprocess.STDOUT)
        port = self._devtools_port(timeout)
        deadline = time.monotonic() + timeout
        while True:
            pages = [t for t in requests.get("http://127.0.0.1:%d/json/list" % port, timeout=5).json()
                     if t.get("type") == "page"]
            if pages:
                break
            if time.monotonic() > deadline:
                raise BrowserError("Chromium opened no page in %ss" % timeout)
            time.sleep(0.1)
        self.ws = websocket.create_connection(pages[0]["webSocketDebuggerUrl"], timeout=timeout,
                                              suppress_origin=True)
        self.next_id = 0
        self.events = []
        self.errors = []                       # exceptions thrown by the page's scripts
        for domain in ("Page", "Runtime"):
            self.call(domain + ".enable")
        self.call("Emulation.setDeviceMetricsOverride", width=1200, height=800,
                  deviceScaleFactor=1, mobile=False)

    def _devtools_port(self, timeout):
        """Chromium writes the port it chose into DevToolsActivePort in its profile."""
        path = os.path.join(self.profile, "DevToolsActivePort")
        deadline = time.monotonic() + timeout
        while True:
            try:
                with open(path) as f:
                    first = f.readline().strip()
                if first:
                    return int(first)
            except FileNotFoundError:
                pass
            if self.proc.poll() is not None:
                raise BrowserError("Chromium exited with %s at start-up:\n%s"
                                   % (self.proc.returncode, self._log_tail()))
            if time.monotonic() > deadline:
                raise BrowserError("Chromium wrote no DevTools port in %ss:\n%s"
                                   % (timeout, self._log_tail()))
            time.sleep(0.05)

    def _log_tail(self):
        self.log.flush()
        with open(os.path.join(self.profile, "chromium.log"), errors="replace") as f:
            return "".join(f.readlines()[-20:])

    def _record(self, message):
        self.events.append(message)
        if message.get("method") == "Runtime.exceptionThrown":
            details = message["params"]["exceptionDetails"]
            self.errors.append(details.get("exception", {}).get("description") or details.get("text"))

    def call(self, method, **params):
        """One DevTools command; its result."""
        self.next_id += 1
        mine = self.next_id
        self.ws.send(json.dumps({"id": mine, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv())
            if message.get("id") == mine:
                if "error" in message:
                    raise BrowserError("%s: %s" % (method, message["error"]))
                return message.get("result", {})
            self._record(message)

    def goto(self, url, timeout=10):
        self.events = []
        self.call("Page.navigate", url=url)
        deadline = time.monotonic() + timeout
        while not any(e.get("method") == "Page.loadEventFired" for e in self.events):
            if time.monotonic() > deadline:
                raise BrowserError("%s did not load in %ss" % (url, timeout))
            self.ws.settimeout(max(0.05, deadline - time.monotonic()))
            try:
                self._record(json.loads(self.ws.recv()))
            except websocket.WebSocketTimeoutException:
                pass
        self.ws.settimeout(20)

    def js(self, expression):
        """The value of a JavaScript expression in the page (promises awaited)."""
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True,
                           awaitPromise=True)
        if "exceptionDetails" in result:
            raise BrowserError("%s threw: %s" % (expression, result["exceptionDetails"]))
        return result["result"].get("value")

    def wait_for(self, expression, timeout=5, what=None):
        """Seconds until `expression` is truthy in the page; fails with what it last saw."""
        started = time.monotonic()
        while True:
            value = self.js("!!(%s)" % expression)
            if value:
                return time.monotonic() - started
            if time.monotonic() - started > timeout:
                raise BrowserError("waited %ss for %s; the page shows:\n%s"
                                   % (timeout, what or expression, self.text("body")))
            time.sleep(0.02)

    def text(self, selector):
        return self.js("(() => { const e = document.querySelector(%s); return e ? e.innerText : null; })()"
                       % json.dumps(selector))

    def click(self, selector):
        """A mouse click at the centre of the element (which must be visible)."""
        box = self.js("(() => { const e = document.querySelector(%s); if (!e) return null;"
                      " e.scrollIntoView({block: 'center'}); const r = e.getBoundingClientRect();"
                      " return [r.x + r.width / 2, r.y + r.height / 2, r.width, r.height]; })()"
                      % json.dumps(selector))
        if not box or box[2] == 0 or box[3] == 0:
            raise BrowserError("nothing visible to click at %s; the page shows:\n%s"
                               % (selector, self.text("body")))
        for kind in ("mousePressed", "mouseReleased"):
            self.call("Input.dispatchMouseEvent", type=kind, x=box[0], y=box[1], button="left",
                      clickCount=1)

    def type(self, selector, text):
        """Clicks into a field, clears it and types `text`."""
        self.click(selector)
        self.js("document.querySelector(%s).select()" % json.dumps(selector))
        self.call("Input.insertText", text=text)

    def select(self, selector, value):
        self.js("(() => { const e = document.querySelector(%s); e.value = %s;"
                " e.dispatchEvent(new Event('change')); })()" % (json.dumps(selector), json.dumps(value)))

    def screenshot(self, path):
        data = self.call("Page.captureScreenshot", format="png")["data"]
        with open(path, "wb") as f:
            f.write(base64.b64decode(data))
        return path

    def close(self):
        try:
            self.ws.close()
        except Exception:
            pass
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()
        shutil.rmtree(self.profile, ignore_errors=True)
