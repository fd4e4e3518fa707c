"""Unload means unload (issue 18): after `module unload` the module's file is no longer mapped
into Asterisk, its threads are gone, and a new build put in its place is what runs after
`module refresh` or unload + load. And the runners' check for ERROR lines naming the module."""
import os
import re
import shutil
import subprocess
import tempfile

from helpers import MODULE, LogWatch, start
from instance import OUR_SO
from logcheck import expects_errors, unexpected_errors

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.normpath(os.path.join(HERE, "..", ".."))
SECOND_ID = "second-build"
# Only the states' threads: the cluster's runs (retrying, with no corosync here) when enabled.
CLUSTER_ON = {"presencestate.conf": "[cluster]\nenabled = yes\n"}


def mappings(ast):
    """(inode, path) of each mapping of the module's file in Asterisk's address space."""
    with open("%s/proc/%d/maps" % (ast.root, ast.proc.pid)) as f:
        return {(int(fields[4]), fields[5]) for fields in (line.split() for line in f)
                if len(fields) > 5 and fields[5].endswith("/" + OUR_SO)}


def threads(ast):
    """The names of Asterisk's threads."""
    task = "%s/proc/%d/task" % (ast.root, ast.proc.pid)
    names = []
    for tid in os.listdir(task):
        try:
            with open(os.path.join(task, tid, "comm")) as f:
                names.append(f.read().strip())
        except FileNotFoundError:
            pass                          # a thread that ended while listed
    return names


def identity(ast):
    """The build `presencestate stats` names, checked against `module show`'s description."""
    stats = ast.cli("presencestate stats")
    m = re.search(r"^func_presencestate_rs (\S+), build (\S+)$", stats, re.M)
    assert m, stats
    shown = ast.cli("module show like presencestate_rs")
    assert "PRESENCE_STATE (Rust) %s %s" % m.groups() in shown, (m.groups(), shown)
    return m.groups()


def unloads_and_unmaps(configs, expected_threads):
    with start(configs=configs) as ast:
        # Loaded by Asterisk's main thread at start-up, then by a CLI thread: both unmap.
        for round in ("loaded at start-up", "loaded from the CLI"):
            mapped = mappings(ast)
            running = threads(ast)
            assert mapped, (round, "the module is not mapped")
            assert all(t in running for t in expected_threads), (round, running)
            watch = LogWatch(ast)
            assert "Unloaded" in ast.cli("module unload " + OUR_SO), round
            # dlclose unmaps and unload joins the threads before the command returns.
            assert not mappings(ast), (round, mappings(ast))
            assert not [t for t in threads(ast) if t in expected_threads], (round, threads(ast))
            assert "dlclose" not in watch.new(), watch.new()
            print("%s: before unload %d mappings, threads %s; after: %d mappings"
                  % (round, len(mapped), sorted(set(expected_threads)), len(mappings(ast))))
            assert "Loaded" in ast.cli("module load " + OUR_SO)


def test_unload_unmaps_the_module():
    unloads_and_unmaps({}, ["presence-expiry"])


def test_unload_unmaps_the_module_with_the_cluster_thread_running():
    unloads_and_unmaps(CLUSTER_ON, ["presence-expiry", "fprs-cluster"])


def second_build():
    """A second build of the module reporting another build id (scripts/build-module, in its
    own target directory)."""
    env = dict(os.environ, FPRS_BUILD_ID=SECOND_ID,
               FPRS_TARGET_DIR=os.path.join(REPO, "target", "second-build"))
    r = subprocess.run([os.path.join(REPO, "scripts", "build-module")], env=env,
                       capture_output=True, text=True, timeout=240)
    assert r.returncode == 0, r.stderr[-3000:]
    return r.stdout.strip().splitlines()[-1]


def replace_file(ast, built):
    """Puts `built` where Asterisk loads the module from, as dpkg does: a new file renamed over
    the old one (writing into the mapped file would change the running code under it)."""
    path = ast.host("modules", OUR_SO)
    shutil.copyfile(built, path + ".new")
    os.replace(path + ".new", path)
    return os.stat(path).st_ino


def test_a_replaced_build_runs_after_refresh_and_after_unload_load():
    second = second_build()
    with start() as ast:
        first = identity(ast)
        assert first[1] != SECOND_ID, first
        watch = LogWatch(ast)
        inode = replace_file(ast, second)
        out = ast.cli("module refresh " + OUR_SO)
        assert identity(ast) == (first[0], SECOND_ID), out
        assert {i for i, _ in mappings(ast)} == {inode}, (inode, mappings(ast))
        watch.wait_for("func_presencestate_rs %s, build %s loaded" % (first[0], SECOND_ID), "NOTICE")
        # And back, with unload + load: the first build answers again.
        inode = replace_file(ast, MODULE)
        assert "Unloaded" in ast.cli("module unload " + OUR_SO)
        assert not mappings(ast), mappings(ast)
        assert "Loaded" in ast.cli("module load " + OUR_SO)
        assert identity(ast) == first
        assert {i for i, _ in mappings(ast)} == {inode}, (inode, mappings(ast))
        print("replaced build: %s -> refresh -> %s -> unload + load -> %s"
              % (" ".join(first), SECOND_ID, " ".join(identity(ast))))


def test_the_runners_fail_a_test_on_an_error_line_naming_the_module():
    """logcheck, as run.py and tests/cluster/run.py use it after every test."""
    lines = [
        "[2026-12-07 23:04:48.384] ERROR[250] loader.c: Failure in dlclose for module "
        "'func_presencestate_rs': /tmp/x/func_presencestate_rs.so: shared object not open",
        "[2026-12-07 23:04:48.385] ERROR[12] src/ffi/module.rs: Could not register the CLI",
        "[2026-12-07 23:04:48.386] ERROR[69][C-00000009] pbx_functions.c: Function PRESENCE_STATE not registered",
        "[2026-12-07 23:04:48.387] ERROR[4] app_amd.c: Configuration file amd.conf missing.",
        "[2026-12-07 23:04:48.388] WARNING[12] src/ffi/module.rs: a warning",
    ]
    with tempfile.TemporaryDirectory() as top:
        os.makedirs(os.path.join(top, "run-1", "log"))
        with open(os.path.join(top, "run-1", "log", "messages"), "w") as f:
            f.write("\n".join(lines) + "\n")
        found = unexpected_errors([top])
        assert [l.split(": ", 1)[1] for l in found] == lines[:2], found

        @expects_errors(r"Failure in dlclose")
        def a_test():
            pass
        left = unexpected_errors([top], a_test.expected_errors)
        assert [l.split(": ", 1)[1] for l in left] == lines[1:2], left
