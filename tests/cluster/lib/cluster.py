"""N cluster nodes on this machine, each a set of namespaces running corosync and Asterisk.

Follows ../shared/CLUSTER.md (verified recipe):
  - a hub network namespace holds a bridge `br0`;
  - node N is a mount + network + UTS + PID namespace whose init (PID 1) mounts, inside its own
    mount namespace only, the root's /proc, /dev (rbind), and private tmpfs on /dev/shm and
    /run (libqb's shared-memory files repeat their names across nodes), then idles;
  - a veth pair joins the node's `eth0` (10.77.0.N/24) to the bridge;
  - corosync and that node's Asterisk run inside the node (nsenter), chrooted into the root,
    so the module's libcpg reaches its own node's corosync.
Addresses exist only inside these namespaces. Nothing is mounted in the host namespace: killing
a node's init takes its processes and mounts with it. `Cluster.stop()` (also on `with` exit)
kills every node and the hub and checks that nothing of them is left.

The host side talks to each Asterisk through its control socket (a file in the run directory)
and to AMI through a socket opened from a thread that entered the node's network namespace.
"""

import ctypes
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "..", "asterisk-test-suite", "lib"))
from ami import AMIClient  # noqa: E402
from instance import AMI_SECRET, AMI_USER, NS_ENV, RUNS, AsteriskInstance, default_root  # noqa: E402

CLONE_NEWNET = 0x40000000
PR_SET_PDEATHSIG = 1
SUBNET = "10.77.0."
_libc = ctypes.CDLL(None, use_errno=True)

# PID 1 of a node: private mounts for the chrooted programs, loopback up, then idle.
NODE_INIT = r"""
set -e
R=$1
mount -t proc proc "$R/proc"
mount --rbind /dev "$R/dev"
mount -t tmpfs -o mode=1777 tmpfs "$R/dev/shm"
mount -t tmpfs -o mode=755 tmpfs "$R/run"
hostname "$2"
ip link set lo up
echo ready
exec sleep infinity
"""


def _die_with_parent():
    """In a child before exec: SIGKILL when the harness dies, however it dies (unshare's
    --kill-child then takes the node's PID 1, and with it the whole node)."""
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def children(pid):
    """The PIDs of `pid`'s children."""
    try:
        with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
            return [int(p) for p in f.read().split()]
    except FileNotFoundError:
        return []


def corosync_conf(name, count, node_dir, token=1000):
    nodes = "".join("    node {\n        ring0_addr: %s%d\n        nodeid: %d\n        name: node%d\n    }\n"
                    % (SUBNET, i, i, i) for i in range(1, count + 1))
    return f"""totem {{
    version: 2
    cluster_name: {name}
    transport: knet
    crypto_cipher: none
    crypto_hash: none
    token: {token}
}}
nodelist {{
{nodes}}}
quorum {{
    provider: corosync_votequorum
}}
system {{
    state_dir: {node_dir}/corosync-state
    # Three corosyncs at SCHED_RR 99 on two shared cores would pre-empt every Asterisk.
    sched_rr: no
}}
logging {{
    to_logfile: yes
    logfile: {node_dir}/corosync.log
    to_syslog: no
    to_stderr: no
    timestamp: on
}}
"""


class Node:
    """One node: its namespaces (PID 1 = `self.pid`), its corosync, its Asterisk."""

    def __init__(self, cluster, number):
        self.cluster = cluster
        self.number = number
        self.name = "node%d" % number
        self.address = SUBNET + str(number)
        self.host_dir = os.path.join(cluster.host_dir, self.name)
        self.dir = self.host_dir[len(cluster.root):]                 # inside the chroot
        os.makedirs(os.path.join(self.host_dir, "corosync-state"), exist_ok=True)
        self.init = subprocess.Popen(
            ["unshare", "--mount", "--net", "--uts", "--pid", "--fork", "--kill-child",
             "--propagation", "private", "sh", "-c", NODE_INIT, "node-init", cluster.root, self.name],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, start_new_session=True,
            preexec_fn=_die_with_parent)
        if self.init.stdout.readline().strip() != b"ready":
            raise RuntimeError("%s: node init failed" % self.name)
        self.pid = children(self.init.pid)[0]
        self.corosync = None
        self.asterisk = None

    def enter(self, pid_ns=True):
        """The command prefix that runs a host command inside this node."""
        return ["nsenter", "-t", str(self.pid), "-m", "-n", "-u"] + (["-p"] if pid_ns else []) + ["--"]

    def run(self, *argv, check=True, timeout=30):
        """Runs argv (a path inside the root) in this node, chrooted; returns its stdout."""
        r = subprocess.run(self.enter() + ["chroot", self.cluster.root] + list(argv),
                           stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout)
        if check and r.returncode != 0:
            raise RuntimeError("%s: %s failed (%d): %s" % (self.name, argv, r.returncode,
                                                           (r.stdout + r.stderr).decode("utf-8", "replace")))
        return r.stdout.decode("utf-8", "replace")

    # -- corosync -------------------------------------------------------------------------

    def start_corosync(self):
        conf = os.path.join(self.host_dir, "corosync.conf")
        with open(conf, "w") as f:
            f.write(corosync_conf(self.cluster.name, self.cluster.count, self.dir))
        self.corosync = subprocess.Popen(
            self.enter() + ["chroot", self.cluster.root, "corosync", "-f", "-c", self.dir + "/corosync.conf"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def stop_corosync(self):
        """Stops corosync as an operator would (corosync-cfgtool -H --force)."""
        if self.corosync is None:
            return
        self.run("corosync-cfgtool", "-H", "--force", check=False)
        try:
            self.corosync.wait(20)
        except subprocess.TimeoutExpired:
            self.corosync.kill()
            self.corosync.wait()
        self.corosync = None

    def members(self):
        """Node ids corosync's membership holds, as this node sees it (empty when down)."""
        out = self.run("corosync-cmapctl", "-b", "runtime.members", check=False)
        ids = set()
        for line in out.splitlines():
            parts = line.split(".")
            if len(parts) > 3 and parts[3] == "status (str) = joined":
                ids.add(int(parts[2]))
        return ids

    # -- link -----------------------------------------------------------------------------

    def link(self, up):
        """Connects (up) or cuts (down) this node's cable at the hub."""
        subprocess.run(["nsenter", "-t", str(self.cluster.hub.pid), "-n", "ip", "link", "set",
                        "h%d" % self.number, "up" if up else "down"], check=True)

    # -- Asterisk -------------------------------------------------------------------------

    def start_asterisk(self, configs=None, astdb=None, timeout=60):
        if self.asterisk is None:
            run_dir = os.path.join(self.host_dir, "ast")
            os.makedirs(run_dir, exist_ok=True)
            self.asterisk = AsteriskInstance(
                mode="ours", module_path=self.cluster.module, configs=configs or {},
                astdb=astdb, root=self.cluster.root, launcher=self.enter(), run_dir=run_dir)
        elif configs is not None:
            self.asterisk.configs = dict(configs)
        return self.asterisk.start(timeout)

    def kill_asterisk(self):
        """kill -9 of this node's Asterisk (the process nsenter started in the node)."""
        proc = self.asterisk.proc
        for pid in children(proc.pid):
            os.kill(pid, signal.SIGKILL)
        proc.wait(20)
        self.asterisk.proc = None
        self.asterisk._amis = []

    def cli(self, command, timeout=30):
        return self.asterisk.cli(command, timeout=timeout)

    def ami(self, events="on", timeout=10):
        """A logged-in AMI connection to this node's Asterisk (closed when it stops)."""
        client = in_netns(self.pid, lambda: AMIClient("127.0.0.1", 5038, AMI_USER, AMI_SECRET,
                                                      timeout, events))
        self.asterisk._amis.append(client)
        return client

    def log(self):
        return self.asterisk.log_text() if self.asterisk else ""

    def kill(self):
        for proc in (self.corosync, self.asterisk and self.asterisk.proc):
            if proc and proc.poll() is None:
                for pid in children(proc.pid):
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
        # PID 1 of the node: its death kills everything left in the node's PID namespace
        # and releases its mount namespace.
        try:
            os.killpg(self.init.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.init.wait()
        for proc in (self.corosync, self.asterisk and self.asterisk.proc):
            if proc:
                proc.wait(10)


def in_netns(pid, function):
    """Runs `function` in a thread that entered `pid`'s network namespace; sockets it opens
    stay in that namespace whichever thread uses them later."""
    result, error = [], []

    def body():
        try:
            fd = os.open("/proc/%d/ns/net" % pid, os.O_RDONLY)
            try:
                if _libc.setns(fd, CLONE_NEWNET) != 0:
                    raise OSError(ctypes.get_errno(), "setns")
            finally:
                os.close(fd)
            result.append(function())
        except BaseException as e:          # handed to the caller
            error.append(e)

    thread = threading.Thread(target=body)
    thread.start()
    thread.join()
    if error:
        raise error[0]
    return result[0]


class Hub:
    def __init__(self):
        self.proc = subprocess.Popen(["unshare", "--net", "sleep", "infinity"],
                                     stdin=subprocess.DEVNULL, start_new_session=True,
                                     preexec_fn=_die_with_parent)
        self.pid = self.proc.pid
        deadline = time.monotonic() + 5
        while os.readlink("/proc/%d/ns/net" % self.pid) == os.readlink("/proc/self/ns/net"):
            if time.monotonic() > deadline:
                raise RuntimeError("the hub namespace did not appear")
            time.sleep(0.01)

    def ip(self, *args):
        subprocess.run(["nsenter", "-t", str(self.pid), "-n", "ip"] + list(args), check=True)

    def kill(self):
        self.proc.kill()
        self.proc.wait()


class Cluster:
    """`count` nodes joined by a bridge. Use as a context manager; see the module docstring.

    module   the built module (copied into each node's Asterisk)
    """

    def __init__(self, count=3, module=None, root=None, name="fprs"):
        self.count = count
        self.root = root or default_root()
        self.module = module
        self.name = name
        runs = self.root + RUNS
        os.makedirs(runs, exist_ok=True)
        self.host_dir = tempfile.mkdtemp(prefix="cluster-", dir=runs)
        self.hub = None
        self.nodes = []
        # AsteriskInstance insists on running where the root's /proc and /dev are mounted:
        # they are, inside every node (NODE_INIT), which is where each Asterisk runs.
        os.environ[NS_ENV] = self.root

    def start(self, corosync=True):
        try:
            self.hub = Hub()
            self.hub.ip("link", "add", "br0", "type", "bridge")
            self.hub.ip("link", "set", "br0", "up")
            for number in range(1, self.count + 1):
                self.add_node(number)
            if corosync:
                for node in self.nodes:
                    node.start_corosync()
                self.wait_members(set(range(1, self.count + 1)))
        except BaseException:
            self.stop()
            raise
        return self

    def add_node(self, number):
        node = Node(self, number)
        self.nodes.append(node)
        peer = "h%d" % number
        self.hub.ip("link", "add", peer, "type", "veth", "peer", "name", "eth0", "netns", str(node.pid))
        self.hub.ip("link", "set", peer, "master", "br0", "up")
        node_ip = ["nsenter", "-t", str(node.pid), "-n", "ip"]
        subprocess.run(node_ip + ["addr", "add", node.address + "/24", "dev", "eth0"], check=True)
        subprocess.run(node_ip + ["link", "set", "eth0", "up"], check=True)
        return node

    def node(self, number):
        return self.nodes[number - 1]

    def wait_members(self, ids, nodes=None, timeout=30):
        """Waits until each of `nodes` (default: those in `ids`) sees exactly `ids` as members."""
        nodes = nodes or [self.node(i) for i in sorted(ids)]
        deadline = time.monotonic() + timeout
        while True:
            seen = {node.name: node.members() for node in nodes}
            if all(s == set(ids) for s in seen.values()):
                return
            if time.monotonic() > deadline:
                raise RuntimeError("corosync membership did not become %s: %s" % (sorted(ids), seen))
            time.sleep(0.2)

    def start_asterisks(self, configs):
        """Starts every node's Asterisk, `configs(node)` giving its config files."""
        for node in self.nodes:
            node.start_asterisk(configs(node))

    def stop(self):
        for node in self.nodes:
            if node.asterisk:
                for ami in node.asterisk._amis:
                    ami.close()
            node.kill()
        if self.hub:
            self.hub.kill()
        self.nodes = []
        self.hub = None

    def cleanup(self, keep=False):
        """Stops everything; removes the cluster's files unless `keep` (for a failed test)."""
        self.stop()
        if not keep:
            shutil.rmtree(self.host_dir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
