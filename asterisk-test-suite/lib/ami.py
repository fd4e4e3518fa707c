"""Small Asterisk Manager Interface (AMI) client: one TCP connection, one reader thread.

The reader thread parses every message. Responses are filed by ActionID so `action()` can
wait for its own; events are appended to one history list, so a test can wait for an event
that may already have arrived (no race between "trigger" and "start listening").
"""

import itertools
import socket
import threading
import time


class AMIError(Exception):
    pass


class Message(dict):
    """One AMI message. Header lookup is case-insensitive (AMI header case is not stable).

    `headers` keeps every (name, value) line in order, including repeated names
    (the dict keeps the last value of a repeated header).
    """

    def __init__(self, headers=()):
        super().__init__()
        self.headers = list(headers)
        self._lower = {}
        for name, value in self.headers:
            super().__setitem__(name, value)
            self._lower[name.lower()] = name
        self.events = []  # for list actions: the events that belong to this response

    def _key(self, key):
        return self._lower.get(key.lower(), key)

    def __getitem__(self, key):
        return super().__getitem__(self._key(key))

    def __contains__(self, key):
        return key.lower() in self._lower

    def get(self, key, default=None):
        return super().get(self._key(key), default)


def parse_message(text):
    headers = []
    for line in text.split("\r\n"):
        name, sep, value = line.partition(":")
        if sep:
            headers.append((name.strip(), value.lstrip(" ")))
        elif line.strip():
            # Command output of old-style actions may come without a colon.
            headers.append(("Output", line))
    return Message(headers)


class AMIClient:
    """Connect, log in, send actions, collect events.

        ami = AMIClient("127.0.0.1", 5038, "user", "mysecret")   # connects and logs in
        r = ami.action({"Action": "SetVar", "Variable": "X", "Value": "1"})
        r["Response"] == "Success"
        r = ami.action({"Action": "PresenceStateList"})      # r.events: the listed events
        ev = ami.wait_for(lambda e: e.get("Event") == "PresenceStateChange", timeout=5)
    """

    def __init__(self, host="127.0.0.1", port=5038, username="user", secret="mysecret",
                 timeout=10.0, events="on"):
        self._ids = itertools.count(1)
        self._cond = threading.Condition()
        self._responses = {}      # ActionID -> Message (list actions: once Complete arrives)
        self._lists = {}          # ActionID -> Message still collecting its list events
        self.history = []         # every event received, in order
        self.closed = False
        self.close_reason = None
        self._sock = self._connect(host, port, timeout)
        self.greeting = self._read_greeting(timeout)
        self._thread = threading.Thread(target=self._reader, name="ami-reader", daemon=True)
        self._thread.start()
        r = self.action({"Action": "Login", "Username": username, "Secret": secret,
                         "Events": events}, timeout=timeout)
        if r.get("Response") != "Success":
            self.close()
            raise AMIError("AMI login failed: %s" % r.get("Message"))

    @staticmethod
    def _connect(host, port, timeout):
        # Asterisk may still be binding its port: retry until the deadline.
        deadline = time.monotonic() + timeout
        while True:
            try:
                return socket.create_connection((host, port), timeout=timeout)
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def _read_greeting(self, timeout):
        self._sock.settimeout(timeout)
        self._buf = b""
        while b"\r\n" not in self._buf:
            chunk = self._sock.recv(4096)
            if not chunk:
                raise AMIError("connection closed before the AMI greeting")
            self._buf += chunk
        line, self._buf = self._buf.split(b"\r\n", 1)
        self._sock.settimeout(None)
        return line.decode("utf-8", "replace")

    def _reader(self):
        buf = self._buf
        try:
            while True:
                while b"\r\n\r\n" in buf:
                    raw, buf = buf.split(b"\r\n\r\n", 1)
                    self._dispatch(parse_message(raw.decode("utf-8", "replace")))
                chunk = self._sock.recv(65536)
                if not chunk:
                    break
                buf += chunk
        except OSError as e:
            self.close_reason = str(e)
        with self._cond:
            self.closed = True
            self._cond.notify_all()

    def _dispatch(self, msg):
        with self._cond:
            action_id = msg.get("ActionID")
            if "Response" in msg and "Event" not in msg:  # OriginateResponse is an event
                if msg.get("EventList", "").lower() == "start":
                    self._lists[action_id] = msg          # wait for the list's events
                else:
                    self._responses[action_id] = msg
            elif "Event" in msg:
                self.history.append(msg)
                if action_id in self._lists:
                    lst = self._lists[action_id]
                    if msg.get("EventList", "").lower() == "complete":
                        del self._lists[action_id]
                        lst.complete = msg
                        self._responses[action_id] = lst
                    else:
                        lst.events.append(msg)
            self._cond.notify_all()

    # -- actions ---------------------------------------------------------------------

    def send(self, action):
        """Send an action without waiting; returns its ActionID (see `response`)."""
        action = dict(action)
        action_id = str(action.get("ActionID") or "fprs-%d" % next(self._ids))
        action["ActionID"] = action_id
        lines = []
        for name, value in action.items():
            # A list value sends the header once per item (e.g. several Variable: lines).
            for v in value if isinstance(value, (list, tuple)) else [value]:
                if "\r" in str(v) or "\n" in str(v):
                    raise AMIError("AMI header %s must not contain a line break" % name)
                lines.append("%s: %s" % (name, v))
        data = ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8")
        if self.closed:
            raise AMIError("AMI connection is closed (%s)" % self.close_reason)
        self._sock.sendall(data)
        return action_id

    def response(self, action_id, timeout=10.0):
        """Wait for the response to a sent action (list actions: until the list completes)."""
        with self._cond:
            ok = self._cond.wait_for(
                lambda: action_id in self._responses or self.closed, timeout)
            if action_id in self._responses:
                return self._responses.pop(action_id)
            if not ok:
                raise AMIError("no AMI response to ActionID %s within %ss" % (action_id, timeout))
            raise AMIError("AMI connection closed while waiting for ActionID %s" % action_id)

    def poll_response(self, action_id):
        """The response to a sent action if it has arrived (then forgotten), else None."""
        with self._cond:
            return self._responses.pop(action_id, None)

    def action(self, action, timeout=10.0):
        """Send an action and return its response Message (`.events` for list actions)."""
        return self.response(self.send(action), timeout)

    def command(self, cli, timeout=10.0):
        """Run a CLI command through AMI; returns its output text."""
        r = self.action({"Action": "Command", "Command": cli}, timeout)
        return "\n".join(v for k, v in r.headers if k.lower() == "output")

    # -- events ----------------------------------------------------------------------

    def mark(self):
        """Index of the next event to arrive (pass as `start` to wait_for/events)."""
        with self._cond:
            return len(self.history)

    def events(self, predicate=lambda e: True, start=0):
        with self._cond:
            return [e for e in self.history[start:] if predicate(e)]

    def wait_for(self, predicate, timeout=10.0, start=0, count=1, what="matching", show=dict):
        """Wait until `count` events from index `start` on satisfy `predicate`.

        Returns the matching event (count=1) or list of events; raises AMIError on timeout,
        naming `what` it waited for and what it got (each as `show(event)`). Each event is
        looked at once: a flood of events must not keep the reader thread waiting for the lock
        while this rescans them.
        """
        found, scanned = [], start

        def enough():
            nonlocal scanned
            found.extend(e for e in self.history[scanned:] if predicate(e))
            scanned = max(scanned, len(self.history))
            return len(found) >= count or self.closed

        with self._cond:
            self._cond.wait_for(enough, timeout)
            if len(found) >= count:
                return found[0] if count == 1 else found[:count]
            why = "connection closed (%s)" % self.close_reason if self.closed else "timeout %ss" % timeout
            raise AMIError("waited for %d %s AMI event(s), got %d (%s) among %d events since the "
                           "start; got: %s; last event: %s"
                           % (count, what, len(found), why, len(self.history) - start,
                              [show(e) for e in found[:20]],
                              dict(self.history[-1]) if len(self.history) > start else None))

    def wait_event(self, timeout, start):
        """Wait until there is an event at index >= start; True if there is one."""
        with self._cond:
            return self._cond.wait_for(
                lambda: len(self.history) > start or self.closed, timeout) \
                and len(self.history) > start

    def close(self):
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._sock.close()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(5)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
