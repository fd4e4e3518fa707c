"""One real Asterisk run inside a root (by default the provisioned Debian sid root with Asterisk
22), and the namespace it needs.

Asterisk runs chrooted in the root, in a private network + mount + PID namespace, so that
  - its /proc and /dev mounts exist only in that namespace (see ENVIRONMENT.md, "Danger":
    a host bind mount under the root makes `rm -rf` / `cp -a` of the root destructive),
  - its ports (AMI 5038, SIP 5060, ...) never clash with other runs or leave the machine,
  - everything it started dies with the namespace's init (our python process).

The host side calls `in_namespace("module:function", args...)`, which re-executes this file
under `unshare`; the function then uses `AsteriskInstance` freely. From the shell:

    python3 lib/instance.py call testsuite:run_test '"/path/to/test"' '"stock"'
    python3 lib/instance.py shell          # bash inside a fresh namespace, root mounted

Each run lives in $ROOT/tmp/fprs-runs/<unique>/ (etc, modules, varlib, db, spool, run, log,
cache) with its own asterisk.conf; paths written into configs are paths inside the chroot.

Which Asterisk: ASTERISK_ROOT (the root, default /var/cache/func_presencestate_rs/asterisk22)
and ASTERISK_PREFIX (its install prefix inside the root, default /usr: Debian's package; e.g.
/opt/asterisk-20 for a build by scripts/asterisk-from-source). The binary, the module
directory and the other directories come from that installation's own asterisk.conf.
"""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

LIB = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, LIB)
from ami import AMIClient  # noqa: E402

DEFAULT_ROOT = "/var/cache/func_presencestate_rs/asterisk22"
DEFAULT_PREFIX = "/usr"
DOC = os.path.normpath(os.path.join(LIB, "..", "..", "doc", "func_presencestate_rs.xml"))
DOC_INSTALLED = "func_presencestate_rs-en_US.xml"            # the name Asterisk's glob wants
ARI_DECLARATION = os.path.normpath(os.path.join(LIB, "..", "..", "rest-api", "presenceStates.json"))
RUNS = "/tmp/fprs-runs"                                       # inside the root
OUR_SO = "func_presencestate_rs.so"
STOCK_SO = "func_presencestate.so"
AMI_USER, AMI_SECRET = "user", "mysecret"                     # as the upstream testsuite
NS_ENV = "FPRS_NAMESPACE_ROOT"                                # set inside our namespaces

# Modules never needed here that slow start-up, bind ports, touch devices or the network,
# or pull in external services. PJSIP is added unless the run has a pjsip config, ARI (and the
# Stasis modules it needs) unless it has an ari.conf.
NOLOAD = """
chan_iax2 chan_unistim chan_motif chan_console chan_websocket chan_audiosocket app_audiosocket
res_audiosocket res_xmpp res_snmp res_statsd res_prometheus
res_hep res_hep_pjsip res_hep_rtcp res_calendar res_calendar_caldav res_calendar_ews
res_calendar_exchange res_calendar_icalendar res_config_curl res_config_ldap res_config_odbc
res_config_pgsql res_odbc res_odbc_transaction res_resolver_unbound res_stun_monitor
res_fax_spandsp res_phoneprov res_smdi res_aeap res_speech_aeap res_geolocation
res_stir_shaken res_http_media_cache res_timing_pthread pbx_dundi pbx_lua pbx_realtime
app_voicemail_odbc app_jack app_festival app_mp3 cdr_adaptive_odbc cdr_odbc cdr_pgsql
cdr_radius cdr_tds cel_odbc cel_pgsql cel_radius cel_tds func_odbc
""".split()
PJSIP_CONFIGS = ("pjsip.conf", "pjsip_wizard.conf")
ARI_MODULES = """
res_websocket_client app_stasis app_stasis_broadcast res_ari res_ari_model res_ari_applications
res_ari_asterisk res_ari_bridges res_ari_channels res_ari_device_states res_ari_endpoints
res_ari_events res_ari_playbacks res_ari_recordings res_ari_sounds res_stasis
res_stasis_answer res_stasis_broadcast res_stasis_device_state res_stasis_playback
res_stasis_recording res_stasis_snoop res_stasis_test
""".split()


class AsteriskError(Exception):
    pass


def manager_conf(*general):
    """The harness's manager.conf: AMI on loopback for the upstream testsuite's user, with the
    lines `general` added to [general] (e.g. "timestampevents = yes")."""
    return "\n".join(["[general]", "enabled = yes", "port = 5038", "bindaddr = 127.0.0.1",
                      "displayconnects = no", *general, "",
                      "[%s]" % AMI_USER, "secret = %s" % AMI_SECRET, "read = all",
                      "write = all", ""])


# ARI on loopback, for the runs that have it (their configs include ari_configs()).
HTTP_PORT = 8088
HTTP_BASE = "http://127.0.0.1:%d" % HTTP_PORT
ARI_USER, ARI_PASSWORD = "reception", "s3cret-reception"
ARI_READER, ARI_READER_PASSWORD = "wallboard", "s3cret-wallboard"     # read_only = yes


def ari_configs():
    """http.conf and ari.conf: Asterisk's HTTP server on 127.0.0.1:8088 with ARI, a full user
    and a read-only one. (A run with an ari.conf loads the ARI and Stasis modules.)"""
    return {
        "http.conf": "[general]\nenabled = yes\nbindaddr = 127.0.0.1\nbindport = %d\n" % HTTP_PORT,
        "ari.conf": "\n".join([
            # The board's own origin, so res_ari logs no NOTICE for each of its writes.
            "[general]", "enabled = yes", "pretty = no", "allowed_origins = %s" % HTTP_BASE, "",
            "[%s]" % ARI_USER, "type = user", "read_only = no", "password = %s" % ARI_PASSWORD, "",
            "[%s]" % ARI_READER, "type = user", "read_only = yes",
            "password = %s" % ARI_READER_PASSWORD, ""]),
    }


def default_root():
    return os.environ.get(NS_ENV) or os.environ.get("ASTERISK_ROOT") or DEFAULT_ROOT


def default_prefix():
    return os.environ.get("ASTERISK_PREFIX") or DEFAULT_PREFIX


def parse_directories(text):
    """The [directories] of an asterisk.conf as {name: path} (the section may be a template,
    `[directories](!)`, as in the sample file)."""
    dirs, section = {}, None
    for line in text.splitlines():
        line = line.split(";", 1)[0].strip()
        m = re.match(r"\[([^\]]+)\]", line)
        if m:
            section = m.group(1).strip()
        elif section == "directories" and "=" in line:
            key, value = line.split("=", 1)
            dirs[key.strip()] = value.lstrip(">").strip()
    return dirs


class Installation:
    """The Asterisk under test: a root and an install prefix inside it (see the module doc)."""

    def __init__(self, root=None, prefix=None):
        self.root = root or default_root()
        self.prefix = (prefix or default_prefix()).rstrip("/") or "/"
        self.binary = self.prefix + "/sbin/asterisk"
        # Asterisk's configure puts the configs in /etc when the prefix is /usr.
        self.etcdir = "/etc/asterisk" if self.prefix == "/usr" else self.prefix + "/etc/asterisk"
        self.asterisk_conf = self.etcdir + "/asterisk.conf"
        try:
            with open(self.root + self.asterisk_conf) as f:
                self.directories = parse_directories(f.read())
        except FileNotFoundError:
            raise AsteriskError("no Asterisk installed at %s in %s (no %s)" % (
                self.prefix, self.root, self.asterisk_conf))
        for key in ("astmoddir", "astvarlibdir", "astdatadir"):
            if key not in self.directories:
                raise AsteriskError("%s%s names no %s" % (self.root, self.asterisk_conf, key))
        self.moddir = self.directories["astmoddir"]
        self.include_dir = self.prefix + "/include"

    def version(self):
        out = subprocess.run(["chroot", self.root, self.binary, "-V"], capture_output=True,
                             text=True, timeout=30).stdout
        return out.split()[1]

    def has_module(self, name):
        """Whether module `name` (no .so) is installed in this Asterisk's module directory."""
        return os.path.exists("%s%s/%s.so" % (self.root, self.moddir, name))

    def has_app(self, name):
        """Whether program `name` is installed in the root (where upstream's harness looks)."""
        return any(os.access(self.root + d + "/" + name, os.X_OK)
                   for d in ("/usr/bin", "/usr/sbin", "/bin", "/sbin"))


def default_module():
    """The module scripts/build-module builds for the selected Asterisk."""
    return os.path.normpath(os.path.join(LIB, "..", "..", "target", target_subdir(), "release",
                                         "libfunc_presencestate_rs.so"))


def target_subdir():
    """Cargo's target directory below target/ for the selected Asterisk: "" for the default
    (Debian's 22 in the default root), else one per root and prefix (as scripts/build-module)."""
    root, prefix = os.environ.get("ASTERISK_ROOT") or DEFAULT_ROOT, default_prefix()
    if root == DEFAULT_ROOT and prefix == DEFAULT_PREFIX:
        return ""
    return "asterisk-%s%s" % (os.path.basename(root.rstrip("/")), prefix.replace("/", "_"))


DEFAULT_MODULE = default_module()
PKG_MODDIR = "/usr/lib/x86_64-linux-gnu/asterisk/modules"   # Debian's (bench uses it)


class AsteriskInstance:
    """One Asterisk run. Use inside a namespace made by `in_namespace` (or `shell`).

    mode        "ours" (noload the stock module, load our copy) or "stock" (the reverse)
    module_path our built module; copied into the run's module dir as func_presencestate_rs.so
    configs     {file name: text} laid over the base configs (modules.conf: merged, see below)
    astdb       path of an astdb.sqlite3 to start from (copied in), e.g. another run's
    run_dir     reuse this existing run directory (its astdb and logs) instead of a new one
    wrapper     a command (inside the root) Asterisk runs under, e.g. ["valgrind", ...]
    launcher    a command (on the host) that runs the chroot, e.g. nsenter into a cluster
                node's namespaces (tests/cluster/lib/cluster.py)
    installation  the Asterisk to run (default: Installation(), the selected one)
    """

    def __init__(self, mode="ours", module_path=DEFAULT_MODULE, configs=None, astdb=None,
                 run_dir=None, root=None, name="run", wrapper=(), launcher=(),
                 installation=None):
        if mode not in ("ours", "stock"):
            raise ValueError("mode must be 'ours' or 'stock', not %r" % mode)
        self.root = root or default_root()
        if os.environ.get(NS_ENV) != self.root:
            raise AsteriskError("AsteriskInstance must run inside in_namespace()/shell "
                                "(the root's /proc and /dev exist only there)")
        self.inst = installation or Installation(self.root)
        self.mode = mode
        self.wrapper = list(wrapper)
        self.launcher = list(launcher)
        self.module_path = module_path
        self.configs = dict(configs or {})
        self.proc = None
        self._amis = []
        self.name = name
        self._setup_run_dir(run_dir)
        if astdb:
            shutil.copyfile(astdb, self.astdb_path)

    def _setup_run_dir(self, run_dir):
        runs = self.root + RUNS
        os.makedirs(runs, exist_ok=True)
        if run_dir:
            self.host_dir = os.path.abspath(run_dir)
            if not self.host_dir.startswith(runs + "/"):
                raise AsteriskError("run_dir must be below %s" % runs)
        else:
            self.host_dir = tempfile.mkdtemp(prefix=self.name + "-", dir=runs)
        self.dir = self.host_dir[len(self.root):]           # the same path inside the chroot
        self.conf = self.dir + "/etc/asterisk.conf"
        for sub in ("etc", "modules", "varlib/keys", "db", "spool", "run", "log", "cache",
                    "data/documentation/thirdparty"):
            os.makedirs(self.host(sub), exist_ok=True)

    # -- paths -------------------------------------------------------------------------

    def host(self, *parts):
        """Host path of a file in this run (e.g. host("log", "messages"))."""
        return os.path.join(self.host_dir, *parts)

    @property
    def astdb_path(self):
        return self.host("db", "astdb.sqlite3")

    @property
    def messages_path(self):
        return self.host("log", "messages")

    # -- configuration -----------------------------------------------------------------

    def _write_configs(self):
        d = self.dir
        files = {
            "asterisk.conf": f"""\
[directories]
astetcdir => {d}/etc
astmoddir => {d}/modules
astvarlibdir => {d}/varlib
astdbdir => {d}/db
astkeydir => {d}/varlib
astdatadir => {d}/data
astagidir => {self.inst.directories.get("astagidir", self.inst.directories["astdatadir"] + "/agi-bin")}
astspooldir => {d}/spool
astrundir => {d}/run
astlogdir => {d}/log
astcachedir => {d}/cache
astsbindir => {self.inst.prefix}/sbin

[options]
verbose = 3
debug = 0
nocolor = yes
dumpcore = no
hideconnect = yes          ; our -rx calls would otherwise fill the log
entityid = 02:00:00:00:00:01   ; no NIC in the namespace to seed it from
""",
            "manager.conf": manager_conf(),
            "logger.conf": """\
[general]
dateformat = %F %T.%3q

[logfiles]
messages => notice,warning,error,verbose(3)
""",
            "extensions.conf": "[general]\nstatic = yes\nwriteprotect = yes\n\n[default]\n",
        }
        for name, text in self.configs.items():
            if name == "asterisk.conf":
                raise AsteriskError("asterisk.conf is owned by the harness")
            if name != "modules.conf":
                files[name] = text
        files["modules.conf"] = self._modules_conf()
        etc = self.host("etc")
        for old in os.listdir(etc):                 # a restart may drop or change configs
            os.unlink(os.path.join(etc, old))
        for name, text in files.items():
            with open(os.path.join(etc, name), "w") as f:
                f.write(text)

    def _modules_conf(self):
        """autoload=yes, noload of irrelevant modules and of the module not under test.

        A test's own modules.conf lines come first (its `autoload` wins: the loader reads the
        first value); the harness's noload of the other presence module always stays.
        """
        test_lines = []
        for line in self.configs.get("modules.conf", "").splitlines():
            s = line.split(";", 1)[0].strip()
            if s.lower() == "[modules]":
                continue
            if s.startswith("["):
                raise AsteriskError("modules.conf: only the [modules] section is supported")
            test_lines.append(line)
        noload = [m + ".so" for m in NOLOAD]
        if "ari.conf" not in self.configs:
            noload += [m + ".so" for m in ARI_MODULES]
        if not any(c in self.configs for c in PJSIP_CONFIGS):
            noload += [m for m in sorted(os.listdir(self.root + self.inst.moddir))
                       if m.startswith(("res_pjsip", "chan_pjsip", "func_pjsip"))]
        noload.append(STOCK_SO if self.mode == "ours" else OUR_SO)
        return "\n".join(["[modules]"] + test_lines + ["autoload = yes"]
                         + ["noload => " + m for m in noload]) + "\n"

    def _populate_dirs(self):
        # Module dir: symlinks (chroot-absolute) to every packaged module + a copy of ours.
        moddir = self.host("modules")
        for old in os.listdir(moddir):
            os.unlink(os.path.join(moddir, old))
        pkg_moddir = self.inst.moddir
        for m in os.listdir(self.root + pkg_moddir):
            if m == STOCK_SO:
                # A copy, not a link: AMI ModuleLoad (used by tests to unload and load the
                # presence module) refuses a module whose real path is outside astmoddir.
                shutil.copyfile(self.root + pkg_moddir + "/" + m, os.path.join(moddir, m))
            else:
                os.symlink(os.path.join(pkg_moddir, m), os.path.join(moddir, m))
        if self.module_path and os.path.exists(self.module_path):
            shutil.copyfile(self.module_path, os.path.join(moddir, OUR_SO))
        elif self.mode == "ours":
            raise AsteriskError("module not built: %s" % self.module_path)
        self._populate_data_dir()
        # varlib: keep the packaged moh/sounds reachable.
        varlib = self.inst.directories["astvarlibdir"]
        for entry in os.listdir(self.root + varlib):
            link = self.host("varlib", entry)
            if not os.path.lexists(link):
                os.symlink(varlib + "/" + entry, link)

    def _populate_data_dir(self):
        """astdatadir: links to the selected Asterisk's data directory, plus (mode ours) the
        module's documentation in documentation/thirdparty/, which Asterisk reads at start-up,
        and its ARI API declaration in rest-api/ (copied with Asterisk's own: ARI serves only
        files whose real path is inside its rest-api directory)."""
        packaged = self.inst.directories["astdatadir"]
        for top, skip in ((packaged, ("documentation", "rest-api")),
                          (packaged + "/documentation", ("thirdparty",)),
                          (packaged + "/documentation/thirdparty", ())):
            rel = os.path.relpath(top, packaged)
            for entry in os.listdir(self.root + top):
                link = os.path.normpath(self.host("data", rel, entry))
                if entry not in skip and not os.path.lexists(link):
                    os.symlink(top + "/" + entry, link)
        ours = self.host("data", "documentation", "thirdparty", DOC_INSTALLED)
        if os.path.lexists(ours):
            os.unlink(ours)
        if self.mode == "ours":
            shutil.copyfile(DOC, ours)
        rest = self.host("data", "rest-api")
        if os.path.islink(rest) or os.path.isdir(rest):      # a restart may switch modes
            os.unlink(rest) if os.path.islink(rest) else shutil.rmtree(rest)
        os.makedirs(rest)
        packaged_rest = self.root + packaged + "/rest-api"
        for entry in os.listdir(packaged_rest) if os.path.isdir(packaged_rest) else ():
            shutil.copyfile(os.path.join(packaged_rest, entry), os.path.join(rest, entry))
        if self.mode == "ours":
            shutil.copyfile(ARI_DECLARATION, os.path.join(rest, os.path.basename(ARI_DECLARATION)))

    # -- life cycle --------------------------------------------------------------------

    def start(self, timeout=60):
        if self.running():
            raise AsteriskError("already running")
        self._write_configs()
        self._populate_dirs()
        ctl = self.host("run", "asterisk.ctl")
        if os.path.exists(ctl):
            os.unlink(ctl)
        console = open(self.host("log", "console"), "ab")
        # As root without -U/-G: Asterisk must keep the rights to write its run directory.
        self.proc = subprocess.Popen(
            self.launcher + ["chroot", self.root] + self.wrapper + [self.inst.binary, "-f", "-C", self.conf],
            stdin=subprocess.DEVNULL, stdout=console, stderr=subprocess.STDOUT)
        console.close()
        deadline = time.monotonic() + timeout
        while not os.path.exists(ctl):
            if self.proc.poll() is not None:
                raise AsteriskError("Asterisk exited with %s during start-up\n%s"
                                    % (self.proc.returncode, self._tail()))
            if time.monotonic() > deadline:
                self._kill()
                raise AsteriskError("Asterisk did not open its control socket in %ss\n%s"
                                    % (timeout, self._tail()))
            time.sleep(0.05)
        # `asterisk -rx` ends without a word after 60 s of silence (its poll in
        # ast_remotecontrol); a boot under valgrind on a busy machine takes longer (both
        # memcheck-cluster runs of two CI clones at once: "said ''"). Empty means ask again.
        while True:
            remaining = max(1.0, deadline - time.monotonic())
            try:
                out = self.cli("core waitfullybooted", timeout=remaining)
            except AsteriskError as e:
                # Say what became of Asterisk: refused on an existing socket file means it
                # died or closed it (its exit status then tells which signal).
                rc = self.proc.poll()
                state = "still running" if rc is None else "exited with %s" % rc
                self._kill()
                raise AsteriskError("%s; Asterisk %s; socket file %s\n%s" % (
                    e, state, "present" if os.path.exists(ctl) else "gone", self._tail()))
            if "fully booted" in out.lower():
                return self
            if out.strip() or time.monotonic() >= deadline or not self.running():
                self._kill()
                raise AsteriskError("core waitfullybooted said %r\n%s" % (out, self._tail()))

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, gracefully=False, timeout=30):
        """Stop Asterisk; returns its exit status (negative: killed by that signal)."""
        if self.proc is None:
            return None
        for ami in self._amis:
            ami.close()
        self._amis = []
        if self.proc.poll() is None:
            try:
                self.cli("core stop " + ("gracefully" if gracefully else "now"), timeout=timeout)
            except AsteriskError:
                pass                      # the connection drops as Asterisk goes away
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self._kill()
        rc = self.proc.returncode
        self.proc = None
        return rc

    def restart(self, mode=None, timeout=60):
        """Stop and start again on the same run directory (same astdb); optionally switch mode."""
        self.stop()
        if mode:
            self.mode = mode
        return self.start(timeout)

    def _kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def cleanup(self):
        """Stop and delete the run directory (holds no mounts: those live in $ROOT/dev,proc)."""
        self.stop()
        shutil.rmtree(self.host_dir, ignore_errors=True)

    def __enter__(self):
        return self.start() if not self.running() else self

    def __exit__(self, *exc):
        self.stop()

    # -- talking to it -----------------------------------------------------------------

    def cli(self, command, timeout=30):
        """Run one CLI command (asterisk -rx) and return its output."""
        try:
            r = subprocess.run(["chroot", self.root, self.inst.binary, "-C", self.conf, "-rx", command],
                               stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AsteriskError("CLI %r: no answer in %ss" % (command, timeout))
        # Every asterisk process (-rx too) warns on stdout that the namespace has no NIC.
        out = "".join(l for l in r.stdout.decode("utf-8", "replace").splitlines(True)
                      if not l.startswith("No ethernet interface found for seeding"))
        if r.returncode != 0:
            raise AsteriskError("CLI %r failed (%s): %s%s" % (
                command, r.returncode, out, r.stderr.decode("utf-8", "replace")))
        return out

    def ami(self, timeout=10, events="on"):
        """A new AMI connection, logged in; closed by stop()."""
        client = AMIClient("127.0.0.1", 5038, AMI_USER, AMI_SECRET, timeout, events)
        self._amis.append(client)
        return client

    def module_loaded(self, name):
        """True if module `name` (with or without .so) is loaded and running."""
        name = name if name.endswith(".so") else name + ".so"
        for line in self.cli("module show like " + name[:-3]).splitlines():
            fields = line.split()
            if fields and fields[0] == name:
                return "Running" in fields and "Not" not in fields  # "Not Running" is two words
        return False

    def log_text(self):
        try:
            with open(self.messages_path, errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def _tail(self, n=30):
        lines = []
        for path in (self.host("log", "console"), self.messages_path):
            try:
                with open(path, errors="replace") as f:
                    lines += ["%s: %s" % (os.path.basename(path), l.rstrip())
                              for l in f.readlines()[-n:]]
            except FileNotFoundError:
                pass
        return "\n".join(lines)


# -- namespaces ------------------------------------------------------------------------

def in_namespace(target, *args, root=None, timeout=600, output=None):
    """Call `target` ("module:function", importable from lib/) with JSON-able args in a fresh
    network + mount + PID namespace with the root's /proc and /dev mounted; return its
    JSON-able result. Raises AsteriskError on failure or timeout.

    output: a file object for the child's stdout/stderr (default: inherited).
    """
    root = root or default_root()
    with tempfile.TemporaryDirectory(prefix="fprs-ns-") as tmp:
        req = os.path.join(tmp, "request.json")
        with open(req, "w") as f:
            json.dump({"target": target, "args": args}, f)
        try:
            subprocess.run(_unshare(root) + [sys.executable, os.path.abspath(__file__),
                                             "_child", root, req],
                           stdin=subprocess.DEVNULL, stdout=output, stderr=output,
                           timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            # subprocess killed unshare; --kill-child took the namespace's init with it.
            raise AsteriskError("%s: timed out after %ss" % (target, timeout))
        try:
            with open(req + ".result") as f:
                res = json.load(f)
        except (FileNotFoundError, ValueError):
            raise AsteriskError("%s: the namespace died without a result" % target)
    if not res["ok"]:
        raise AsteriskError("%s raised:\n%s" % (target, res["error"]))
    return res["result"]


def _unshare(root):
    # --kill-child: if unshare dies (timeout, ^C), the namespace's init gets SIGKILL, and
    # with it every process in the PID namespace; the mount namespace then vanishes.
    # --propagation private (unshare's default, made explicit): mounts made in the
    # namespace never propagate back to the host.
    return ["unshare", "--net", "--mount", "--propagation", "private", "--pid", "--fork",
            "--kill-child", "--mount-proc=" + root + "/proc"]


def _setup_namespace(root):
    # unshare made this mount namespace private: these mounts never reach the host.
    subprocess.run(["mount", "--rbind", "/dev", root + "/dev"], check=True)
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    os.environ[NS_ENV] = root


def _child(root, req):
    import importlib
    import traceback
    _setup_namespace(root)
    with open(req) as f:
        request = json.load(f)
    try:
        module, func = request["target"].split(":")
        result = {"ok": True, "result": getattr(importlib.import_module(module), func)(
            *request["args"])}
    except BaseException:                     # report everything, even SystemExit
        result = {"ok": False, "error": traceback.format_exc()}
    with open(req + ".result", "w") as f:
        json.dump(result, f)


def main(argv):
    if len(argv) >= 3 and argv[0] == "_child":
        _child(argv[1], argv[2])
    elif argv[:1] == ["shell"]:
        root = default_root()
        script = ('mount --rbind /dev "$R/dev" && ip link set lo up && export %s="$R" && '
                  'cd %s && exec "${SHELL:-bash}"' % (NS_ENV, LIB))
        return subprocess.call(_unshare(root) + ["env", "R=" + root, "sh", "-c", script])
    elif len(argv) >= 2 and argv[0] == "call":
        print(json.dumps(in_namespace(argv[1], *[json.loads(a) for a in argv[2:]]), indent=1))
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
