"""What the stock func_presencestate.so does, run for real: the README's statements about the
stock module that asterisk-test-suite (run --stock) cannot show, each checked here against the
stock module of the Asterisk under test. If Asterisk's stock module changes, these fail and the
README must change with them."""
import os
import time

from helpers import (LogWatch, astdb, fill_astdb, getvar, prepare_with_small_astdb,
                     presence_changes, setvar, start)
from test_robustness import rss_kb


def test_stock_lists_a_name_with_a_slash_by_its_last_part():
    """README difference 5: stock's `presencestate list` names team/alice 'alice'."""
    with start(mode="stock") as ast:
        ami = ast.ami()
        assert setvar(ami, "CustomPresence:team/alice", "dnd,,In a meeting")["Response"] == "Success"
        assert astdb(ami) == {"team/alice": "dnd,,In a meeting"}
        listing = ast.cli("presencestate list")
        assert "--- Name: 'CustomPresence:alice'" in listing, listing
        assert "team/alice" not in listing, listing


def test_stock_reports_success_and_announces_when_astdb_refuses_a_write():
    """README difference 8: with AstDB full, stock answers Success and announces the new state,
    which its own read (from AstDB) then denies."""
    ast = prepare_with_small_astdb(mode="stock")
    ast.start()
    try:
        ami = ast.ami()
        assert setvar(ami, "CustomPresence:a", "away,,before")["Response"] == "Success"
        filler = fill_astdb(ast)
        mark = ami.mark()
        assert setvar(ami, "CustomPresence:a", "dnd,,after")["Response"] == "Success"
        event = presence_changes(ami, start=mark)[0]
        assert (event["Status"], event["Message"]) == ("dnd", "after"), event
        # Give AstDB's once-a-second commit time to fail too.
        time.sleep(1.5)
        assert getvar(ami, "CustomPresence:a,message") == "before"
        os.unlink(filler)
    finally:
        ast.stop()


def test_stock_bad_reads_are_silent():
    """README difference 9: stock gives an unknown field an empty string and ignores an unknown
    read option (returning the value), without a WARNING; a name never written reads not_set
    (as with ours)."""
    with start(mode="stock") as ast:
        ami = ast.ami()
        assert setvar(ami, "CustomPresence:alice", "away,lunch,back soon")["Response"] == "Success"
        watch = LogWatch(ast)
        assert getvar(ami, "CustomPresence:alice,status") == ""
        assert getvar(ami, "CustomPresence:alice,value,x") == "away"
        assert getvar(ami, "CustomPresence:nobody,value") == "not_set"
        # A read that does warn, so that the log is known to be written by now.
        assert getvar(ami, "NoSuchTech:x,value") == ""
        watch.wait_for("PRESENCE_STATE unknown")
        # The only warnings: that read's, from the presence core and the stock module.
        warnings = [l for l in watch.new().splitlines() if "WARNING[" in l]
        assert len(warnings) == 2 and all("No provider found for label: NoSuchTech" in l or
                                          "PRESENCE_STATE unknown" in l for l in warnings), warnings


def test_stock_module_cycles_cost_asterisk_memory_too():
    """docs/RELIABILITY.md: unload/load cycles of the stock module grow Asterisk's RSS by
    kilobytes per cycle as ours do (Asterisk's module loader keeps them); printed here next to
    the bound test_robustness holds ours to."""
    cycles = 20
    with start(mode="stock") as ast:
        ast.ami()
        rss_before = rss_kb(ast)
        for _ in range(cycles):
            assert "Unloaded" in ast.cli("module unload func_presencestate.so")
            assert "Loaded" in ast.cli("module load func_presencestate.so")
        rss_after = rss_kb(ast)
        print("stock lifecycle: %d quiet cycles: RSS %d kB -> %d kB (%.1f kB per cycle)"
              % (cycles, rss_before, rss_after, (rss_after - rss_before) / cycles))
        assert rss_after - rss_before < cycles * 64, (rss_before, rss_after)
