"""An Asterisk instance laid out the way the upstream Asterisk testsuite lays it out.

Upstream's harness (lib/python/asterisk/asterisk.py and test_case.py of the public `testsuite`
repository, read at commit 379b3a56) does, for instance N of a test:

  - base directory /tmp/asterisk-testsuite/<md5 of the test path without "tests/">/run_<k>/astN,
    plus a symlink /tmp/asterisk-testsuite/<test path> to the md5 directory;
  - reads the installed asterisk.conf and writes base/<astetcdir>/asterisk.conf: every section
    copied, each [directories] path prefixed with base (a template mark `(!)` dropped),
    [options] starting with `#include "<etcdir>/asterisk.options.conf.inc"`;
  - mirrors each installed directory of [directories] under base: the same subdirectories, and
    a symlink to every file, except astdb files; astrundir, astlogdir and astspooldir get the
    directories only, astcachedir nothing. astmoddir is mirrored too: every module, the one
    under test included, is a symlink into the installed module directory;
  - installs its base configs (configs/ of the testsuite) over that, then appends to
    modules.conf the `noload` lines of configs/conflicts.txt that the test's dependencies
    select, then installs the test's configs/astN/ files (each replacing the file of that name);
    `<<astXXXdir>>` and `<<instanceid>>` in installed files are replaced by the real paths;
  - starts `asterisk -f -g -q -m -n -C <that asterisk.conf>`, waits with
    `core waitfullybooted`, stops with `core stop gracefully` (killed after 45 s).

This class does the same inside the root. What stands in for "the module is installed": in
mode "ours" our build is put into the installed module directory as func_presencestate_rs.so by
an overlay mount that exists only in this run's mount namespace (the shared root is never
changed), and `noload => func_presencestate.so` is appended to the final modules.conf (a site
running the upstream testsuite with our module would noload the stock one the same way). In
mode "stock" nothing is added: the installed Asterisk as it is.
"""

import hashlib
import os
import re
import shutil
import subprocess
import time

from instance import OUR_SO, STOCK_SO, AsteriskError, AsteriskInstance

RUNS = "/tmp/asterisk-testsuite"            # inside the root, as upstream's default
DIRS_ONLY = ("astrundir", "astlogdir", "astspooldir")
NOT_MIRRORED_FILES = ("astdb", "astdb.sqlite3")
STOP_KILL_AFTER = 45                        # seconds, as upstream

# The settings of the upstream testsuite's base configs (its top-level configs/ files).
BASE_CONFIGS = {
    "asterisk.options.conf.inc": "debug = 4\nverbose = 4\nnocolor = yes\ndumpcore = yes\n"
                                 "execincludes = yes\n",
    "manager.conf": """\
[general]
enabled = yes
webenabled = yes
port = 5038
bindaddr = 127.0.0.1

#include "manager.general.conf.inc"

[user]
secret = mysecret
read = system,call,log,verbose,agent,user,config,dtmf,reporting,cdr,dialplan,test,agi
write = system,call,agent,user,config,command,reporting,originate,agi,message,aoc

#include "manager.users.conf.inc"
""",
    "logger.conf": """\
[general]
dateformat=%F %T.%3q
#include "logger.general.conf.inc"

[logfiles]
console => verbose
messages.txt => notice,warning,error
full.txt => [plain]*
#include "logger.logfiles.conf.inc"
""",
    "modules.conf": """\
[modules]
autoload=yes

noload => chan_alsa.so
noload => chan_oss.so
noload => chan_console.so
#include "modules.conf.inc"
""",
    "ari.conf": "[general]\nenabled = yes\npretty = yes\n\n[testsuite]\ntype = user\n"
                "password = testsuite\n",
    "cdr.conf": "[general]\nunanswered=no\n\n[csv]\nusegmtime=yes\nloguniqueid=yes\n"
                "loguserfield=yes\naccountlogs=yes",
    "cel.conf": "[general]\nenable=yes\napps=dial,park,queue\nevents=ALL\n\n[manager]\n"
                "enabled=yes\n",
    "cel_custom.conf": "[mappings]\nMaster.csv => " + ",".join(
        "${CSV_QUOTE(%s)}" % f for f in (
            "${eventtype}", "${eventtime}", "${CALLERID(name)}", "${CALLERID(num)}",
            "${CALLERID(ANI)}", "${CALLERID(RDNIS)}", "${CALLERID(DNID)}", "${CHANNEL(exten)}",
            "${CHANNEL(context)}", "${CHANNEL(channame)}", "${CHANNEL(appname)}",
            "${CHANNEL(appdata)}", "${CHANNEL(amaflags)}", "${CHANNEL(accountcode)}",
            "${CHANNEL(uniqueid)}", "${CHANNEL(linkedid)}", "${BRIDGEPEER}",
            "${CHANNEL(userfield)}", "${userdeftype}", "${eventextra}")) + "\n",
    "cli_aliases.conf": "[general]\ntemplate = testsuite\n\n[testsuite]\n"
                        "core set global=dialplan set global\n",
    "http.conf": "[general]\nenabled=yes\nbindaddr=127.0.0.1\nbindport=8088\nprefix=\n",
    "sorcery.conf": "; empty: keeps the installed sorcery.conf out of the tests\n",
    "res_config_sqlite.conf": "[general]\n",
    "res_pgsql.conf": "[general]\n",
    "res_pktccops.conf": "[general]\n",
}
for _inc in ("logger.general", "logger.logfiles", "manager.general", "manager.users", "modules"):
    BASE_CONFIGS[_inc + ".conf.inc"] = "; kept empty: the base configs include it\n"
# configs/conflicts.txt: a test depending on a key module gets the value modules noloaded.
CONFLICTS = [
    (("app_voicemail",), ("res_ari_mailboxes.so", "res_mwi_external.so",
                          "res_mwi_external_ami.so", "res_stasis_mailbox.so")),
    (("res_ari_mailboxes", "res_mwi_external", "res_mwi_external_ami", "res_stasis_mailbox"),
     ("app_voicemail.so",)),
    (("chan_rtp",), ("chan_multicast_rtp.so",)),
    (("chan_multicast_rtp",), ("chan_rtp.so",)),
]


def parse_sections(text):
    """asterisk.conf as [(name, [(key, value)])], as upstream's config parser reads it."""
    sections = []
    for line in text.splitlines():
        line = line.split(";", 1)[0].strip()
        if not line:
            continue
        m = re.match(r"\[([^\]]+)\](\(!\))?$", line)
        if m:
            sections.append((m.group(1), []))
        elif sections and "=" in line:
            key, value = line.split("=", 1)
            sections[-1][1].append((key.strip(), value.lstrip(">").strip()))
    return sections


def resolve_in_root(root, path):
    """`path` with its symlinks resolved as inside the chroot `root` (a chroot path)."""
    parts = [p for p in path.split("/") if p]
    current, hops = "", 0
    while parts:
        part = parts.pop(0)
        if part == "..":
            current = current.rsplit("/", 1)[0]
            continue
        candidate = current + "/" + part
        if os.path.islink(root + candidate):
            hops += 1
            if hops > 40:
                raise AsteriskError("symlink loop at %s in %s" % (candidate, root))
            target = os.readlink(root + candidate)
            if target.startswith("/"):
                current = ""
            parts = [p for p in target.split("/") if p] + parts
            continue
        current = candidate
    return current or "/"


class TestsuiteInstance(AsteriskInstance):
    """One Asterisk instance of a test, laid out as upstream's harness lays it out.

    test_path   the test's path below the tests/ directory, e.g. funcs/func_presencestate/x
    configs     {file name: text}: the test's configs/ast1/ files
    deps        the `asterisk:`/`module:` dependency names (select configs/conflicts.txt lines)
    """

    def __init__(self, mode, module_path, configs, test_path, deps=(), root=None,
                 installation=None):
        self.test_path = test_path
        self.deps = list(deps)
        super().__init__(mode=mode, module_path=module_path, configs=configs, root=root,
                         installation=installation, run_dir=None, name=test_path)

    # The parent made its own run directory in __init__: replace it by upstream's layout.
    def _make_run_dir(self):
        digest = hashlib.md5(self.test_path.encode()).hexdigest()
        runs = self.root + RUNS
        parent = os.path.join(runs, digest)
        os.makedirs(parent, exist_ok=True)
        named = os.path.join(runs, self.test_path)
        os.makedirs(os.path.dirname(named), exist_ok=True)
        if not os.path.lexists(named):
            os.symlink(os.path.relpath(parent, os.path.dirname(named)), named)
        k = 1
        while True:
            try:
                os.mkdir(os.path.join(parent, "run_%d" % k))
                break
            except FileExistsError:
                k += 1
        return os.path.join(parent, "run_%d" % k)

    def _setup_run_dir(self, run_dir):
        # AsteriskInstance.__init__ calls this (see there); upstream layout instead.
        self.host_dir = self._make_run_dir()
        self.dir = self.host_dir[len(self.root):]
        self.base = self.dir + "/ast1"                         # inside the chroot
        dirs = {k: self.base + v for k, v in self.inst.directories.items()}
        self.ast_dirs = dirs
        self.conf = dirs["astetcdir"] + "/asterisk.conf"

    # -- paths -------------------------------------------------------------------------

    @property
    def astdb_path(self):
        return self.root + self.ast_dirs["astdbdir"] + "/astdb.sqlite3"

    @property
    def messages_path(self):
        return self.root + self.ast_dirs["astlogdir"] + "/messages.txt"

    @property
    def ctl_path(self):
        return self.root + self.ast_dirs["astrundir"] + "/asterisk.ctl"

    @property
    def console_path(self):
        return self.host("console.txt")

    # -- layout ------------------------------------------------------------------------

    def _install_module(self):
        """Mode ours: our build appears in the installed module directory (overlay mount in
        this namespace only)."""
        if self.mode != "ours":
            return
        if not (self.module_path and os.path.exists(self.module_path)):
            raise AsteriskError("module not built: %s" % self.module_path)
        upper, work = self.host("installed", "upper"), self.host("installed", "work")
        os.makedirs(upper)
        os.makedirs(work)
        shutil.copyfile(self.module_path, os.path.join(upper, OUR_SO))
        target = self.root + self.inst.moddir
        subprocess.run(["mount", "-t", "overlay", "fprs-installed", "-o",
                        "lowerdir=%s,upperdir=%s,workdir=%s" % (target, upper, work), target],
                       check=True)
        self._overlay = target

    def _gen_asterisk_conf(self):
        with open(self.root + self.inst.asterisk_conf) as f:
            sections = parse_sections(f.read())
        etc = self.ast_dirs["astetcdir"]
        out = []
        for name, options in sections:
            out.append("[%s]" % name)
            if name == "directories":
                out += ["%s = %s%s" % (k, self.base, v) for k, v in options]
            elif name == "options":
                out.append('#include "%s/asterisk.options.conf.inc"' % etc)
                out += ["%s = %s" % kv for kv in options]
            else:
                out += ["%s = %s" % kv for kv in options]
            out.append("")
        os.makedirs(self.root + etc)
        with open(self.root + self.conf, "w") as f:
            f.write("\n".join(out) + "\n")

    def _mirror(self):
        seen = set()
        for key, path in self.inst.directories.items():
            if key == "astcachedir":
                continue
            os.makedirs(self.root + self.base + path, exist_ok=True)
            # Walk the installed directory as the chroot sees it (Debian's /var/run is a
            # symlink to /run: on the host it would lead out of the root).
            real = resolve_in_root(self.root, path)
            for dirpath, _dirnames, filenames in os.walk(self.root + real):
                sub = dirpath[len(self.root + real):]
                os.makedirs(self.root + self.base + path + sub, exist_ok=True)
                if key in DIRS_ONLY or path in seen:
                    continue
                for name in filenames:
                    link = self.root + self.base + path + sub + "/" + name
                    if name in NOT_MIRRORED_FILES or os.path.lexists(link):
                        continue
                    os.symlink(path + sub + "/" + name, link)
            if key not in DIRS_ONLY:
                seen.add(path)

    def _replace_vars(self, text):
        if "<<" not in text:
            return text
        for key, path in self.ast_dirs.items():
            text = text.replace("<<%s>>" % key, path)
        return text.replace("<<instanceid>>", "1")

    def _install(self, name, text):
        path = self.root + self.ast_dirs["astetcdir"] + "/" + name
        if os.path.lexists(path):
            os.unlink(path)
        with open(path, "w") as f:
            f.write(self._replace_vars(text))

    def _append_modules_conf(self, lines):
        if lines:
            with open(self.root + self.ast_dirs["astetcdir"] + "/modules.conf", "a") as f:
                f.write("".join("noload => %s\n" % m for m in lines))

    def _lay_out(self):
        self._install_module()
        self._gen_asterisk_conf()
        self._mirror()
        for name, text in BASE_CONFIGS.items():
            self._install(name, text)
        self._append_modules_conf([m for keys, mods in CONFLICTS
                                   if any(any(d in k for k in keys) for d in self.deps)
                                   for m in mods])
        for name, text in self.configs.items():
            self._install(name, text)
        if self.mode == "ours":
            self._append_modules_conf([STOCK_SO])

    # -- life cycle --------------------------------------------------------------------

    def start(self, timeout=60):
        if self.running():
            raise AsteriskError("already running")
        if not os.path.exists(self.root + self.conf):
            self._lay_out()
        console = open(self.console_path, "ab")
        self.proc = subprocess.Popen(
            ["chroot", self.root, self.inst.binary, "-f", "-g", "-q", "-m", "-n",
             "-C", self.conf],
            stdin=subprocess.DEVNULL, stdout=console, stderr=subprocess.STDOUT)
        console.close()
        # Upstream: `core waitfullybooted` retried (after 1 s, then doubling) for 45 s.
        limit = max(timeout, 45)
        deadline = time.monotonic() + limit
        delay = 1.0
        time.sleep(delay)
        while True:
            if self.proc.poll() is not None:
                raise AsteriskError("Asterisk exited with %s during start-up\n%s"
                                    % (self.proc.returncode, self._tail()))
            try:
                if "Asterisk has fully booted" in self.cli("core waitfullybooted", timeout=10):
                    return self
            except AsteriskError:
                pass
            if time.monotonic() > deadline:
                self._kill()
                raise AsteriskError("core waitfullybooted failed for %d s\n%s"
                                    % (limit, self._tail()))
            delay = min(delay * 2, 22.5)
            time.sleep(min(delay, max(0.0, deadline - time.monotonic())))

    def stop(self, gracefully=True, timeout=STOP_KILL_AFTER):
        """As upstream: `core stop gracefully`, SIGKILL after 45 s."""
        if self.proc is None:
            return None
        for ami in self._amis:
            ami.close()
        self._amis = []
        if self.proc.poll() is None:
            try:
                self.cli("core stop " + ("gracefully" if gracefully else "now"), timeout=timeout)
            except AsteriskError:
                pass
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        rc = self.proc.returncode
        self.proc = None
        return rc

    def cleanup(self):
        self.stop()
        overlay = getattr(self, "_overlay", None)
        if overlay:
            subprocess.run(["umount", overlay], check=False)
            self._overlay = None
        shutil.rmtree(self.host_dir, ignore_errors=True)

    def _tail(self, n=30):
        lines = []
        for path in (self.console_path, self.messages_path):
            try:
                with open(path, errors="replace") as f:
                    lines += ["%s: %s" % (os.path.basename(path), line.rstrip())
                              for line in f.readlines()[-n:]]
            except FileNotFoundError:
                pass
        return "\n".join(lines)
