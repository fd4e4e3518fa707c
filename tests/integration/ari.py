"""Shared steps of the ARI tests (and scripts/memcheck, bench/ari): an Asterisk with HTTP and
ARI on loopback (the harness's http.conf and ari.conf), a real HTTP client (requests) and a real
websocket client (websocket-client) for the events."""
import json
import threading
import time

import requests
import websocket

from helpers import start
from instance import (ARI_PASSWORD, ARI_READER, ARI_READER_PASSWORD, ARI_USER, HTTP_BASE,
                      HTTP_PORT, ari_configs)

PORT = HTTP_PORT
BASE = HTTP_BASE
USER, PASSWORD = ARI_USER, ARI_PASSWORD
READER, READER_PASSWORD = ARI_READER, ARI_READER_PASSWORD


def configs(**extra):
    """The harness's http.conf and ari.conf (plus `extra` files)."""
    files = ari_configs()
    files.update(extra)
    return files


def start_with_ari(**kwargs):
    """An Asterisk with our module, HTTP and ARI, its HTTP server answering."""
    configs_ = configs(**kwargs.pop("extra", {}))
    ast = start(configs=configs_, **kwargs)
    wait_for_http()
    return ast


def wait_for_http(timeout=10):
    deadline = time.monotonic() + timeout
    while True:
        try:
            return requests.get(BASE + "/ari/asterisk/ping", auth=(USER, PASSWORD), timeout=2)
        except requests.ConnectionError as error:
            if time.monotonic() > deadline:
                raise AssertionError("Asterisk's HTTP server did not answer on %s: %s" % (BASE, error))
            time.sleep(0.1)


def session(user=USER, password=PASSWORD):
    """A keep-alive HTTP session as an ARI user."""
    s = requests.Session()
    s.auth = (user, password)
    return s


def url(name=None):
    """/ari/presenceStates or /ari/presenceStates/{name}, the name URL-encoded (a '/' in it
    as %2F, which ARI decodes after splitting the path)."""
    if name is None:
        return BASE + "/ari/presenceStates"
    return BASE + "/ari/presenceStates/" + requests.utils.quote(name, safe=":")


class Events:
    """An ARI events websocket for app `app` (a real websocket client), read on a thread;
    every message is kept with its arrival time (time.monotonic())."""

    def __init__(self, app, subscribe_all=False, user=USER, password=PASSWORD, timeout=10):
        self.app = app
        query = "app=%s&api_key=%s:%s" % (app, user, password)
        if subscribe_all:
            query += "&subscribeAll=true"
        self.ws = websocket.create_connection("ws://127.0.0.1:%d/ari/events?%s" % (PORT, query),
                                              timeout=timeout, suppress_origin=True)
        self.messages = []
        self.lock = threading.Condition()
        self.closed = False
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        while True:
            try:
                text = self.ws.recv()
            except Exception:                    # closed by us or by Asterisk
                break
            if not text:
                break
            arrived = time.monotonic()
            with self.lock:
                self.messages.append((arrived, json.loads(text)))
                self.lock.notify_all()
        with self.lock:
            self.closed = True
            self.lock.notify_all()

    def presence(self, start=0):
        """The PresenceStateChanged events from message index `start` on."""
        with self.lock:
            return [m for _, m in self.messages[start:] if m.get("type") == "PresenceStateChanged"]

    def mark(self):
        with self.lock:
            return len(self.messages)

    def wait_for(self, predicate, timeout=5, start=0):
        """The first message from index `start` on that satisfies `predicate`, with its arrival
        time; fails saying what it waited for and what came."""
        deadline = time.monotonic() + timeout
        with self.lock:
            while True:
                for arrived, message in self.messages[start:]:
                    if predicate(message):
                        return message, arrived
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self.closed:
                    raise AssertionError("app %s: no such event within %ss (websocket %s); "
                                         "got:\n%s" % (self.app, timeout,
                                                       "closed" if self.closed else "open",
                                                       "\n".join(json.dumps(m) for _, m in
                                                                 self.messages[start:])))
                self.lock.wait(remaining)

    def wait_presence(self, name, state, start=0, timeout=5):
        """The PresenceStateChanged event for `name` with `state`."""
        message, arrived = self.wait_for(
            lambda m: m.get("type") == "PresenceStateChanged"
            and m["presence_state"]["name"] == name and m["presence_state"]["state"] == state,
            timeout=timeout, start=start)
        return message

    def close(self):
        self.ws.close()
        self.reader.join(5)


def subscribe(app, source, user=USER, password=PASSWORD, timeout=5):
    """POST /ari/applications/{app}/subscription?eventSource=source; the response."""
    return requests.post(BASE + "/ari/applications/%s/subscription" % app,
                         params={"eventSource": source}, auth=(user, password), timeout=timeout)
