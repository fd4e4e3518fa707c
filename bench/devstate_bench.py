"""The device-state benchmark's work inside the namespace (see bench/devstate and
docs/BENCHMARKS.md, "Device states").

One Asterisk 22 with the module. Its dialplan writes `names` presence states in chunks of
`chunk`, first names without '/' (announced not cachable: Asterisk asks the provider), then as
many names holding '/' (announced cachable: Asterisk gives each device a Stasis topic it never
frees, in a pool of 57 hash buckets). Measured by Asterisk's own clock (dialplan STRFTIME):
the time of each chunk, and the time of `toggles` device-state changes of one unrelated device
(`Custom:phone1`, what a phone's calls cause) before any name, after the names without '/'
and after the names with '/'.
"""

from instance import AsteriskInstance

FULL = {"names": 100000, "chunk": 10000, "toggles": 20000}
QUICK = {"names": 2000, "chunk": 1000, "toggles": 1000}

DIALPLAN = """[general]
static = yes
writeprotect = yes

[bench]
; Local/write-<from>-<count>-<prefix>: writes names <prefix><from> .. (prefix "t_" stands
; for "t/": a Local channel's name cannot hold '/')
exten => _write-X.,1,Set(ARGS=${CUT(EXTEN,-,2-)})
 same => n,Set(i=${CUT(ARGS,-,1)})
 same => n,Set(end=$[${i} + ${CUT(ARGS,-,2)}])
 same => n,Set(prefix=${CUT(ARGS,-,3)})
 same => n,Set(prefix=${IF($["${prefix}" = "t_"]?t/:${prefix})})
 same => n,Set(t0=${STRFTIME(,,%s%3q)})
 same => n,While($[${i} < ${end}])
 same => n,Set(PRESENCE_STATE(CustomPresence:${prefix}${i})=available)
 same => n,Set(i=$[${i} + 1])
 same => n,EndWhile()
 same => n,UserEvent(BenchDone,What: ${EXTEN},Ms: $[${STRFTIME(,,%s%3q)} - ${t0}])
 same => n,Hangup()

; Local/toggle-<count>: <count> device-state changes of Custom:phone1
exten => _toggle-X.,1,Set(i=0)
 same => n,Set(end=${CUT(EXTEN,-,2)})
 same => n,Set(t0=${STRFTIME(,,%s%3q)})
 same => n,While($[${i} < ${end}])
 same => n,Set(DEVICE_STATE(Custom:phone1)=${IF($[${i} % 2]?INUSE:NOT_INUSE)})
 same => n,Set(i=$[${i} + 1])
 same => n,EndWhile()
 same => n,UserEvent(BenchDone,What: ${EXTEN},Ms: $[${STRFTIME(,,%s%3q)} - ${t0}])
 same => n,Hangup()
"""


def timed(ami, exten):
    """Runs `exten` of [bench] on a Local channel; its duration in ms by Asterisk's clock."""
    mark = ami.mark()
    response = ami.action({"Action": "Originate", "Channel": "Local/%s@bench" % exten,
                           "Application": "Wait", "Data": "3600", "Async": "true"})
    assert response.get("Response") == "Success", response
    event = ami.wait_for(lambda e: e.get("Event") == "UserEvent" and e.get("What") == exten,
                         timeout=1800, start=mark)
    return int(event["Ms"])


def names(ami, sizes, prefix):
    """Writes the names in chunks; each chunk's ms."""
    return [timed(ami, "write-%d-%d-%s" % (start, sizes["chunk"], prefix))
            for start in range(0, sizes["names"], sizes["chunk"])]


def run(module, sizes):
    ast = AsteriskInstance(module_path=module, name="bench-devstate",
                           configs={"extensions.conf": DIALPLAN,
                                    "presencestate.conf": "[device_state]\nenabled = yes\n"})
    ast.start()
    try:
        # Only UserEvents: 100,000 presence and device-state events would swamp the client.
        ami = ast.ami(events="user")
        toggles = "toggle-%d" % sizes["toggles"]
        result = {"sizes": sizes, "asterisk": ast.cli("core show version").strip()}
        result["toggle_ms_before"] = timed(ami, toggles)
        result["uncached_chunks_ms"] = names(ami, sizes, "p")
        result["toggle_ms_after_uncached"] = timed(ami, toggles)
        result["cached_chunks_ms"] = names(ami, sizes, "t_")
        result["toggle_ms_after_cached"] = timed(ami, toggles)
        return result
    finally:
        ast.stop()
