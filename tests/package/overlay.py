"""What the package test and the by-hand test share: PASS/FAIL counting, a throw-away overlay
of the Asterisk root (inside private namespaces) and the root's own Asterisk run in it as
installed (its /etc/asterisk, modules directory and AstDB)."""
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                "asterisk-test-suite", "lib"))
from ami import AMIClient  # noqa: E402

AMI_USER, AMI_SECRET = "pkgtest", "pkgtest-secret"


class Checks:
    """PASS/FAIL lines and the closing count, in the format scripts/test-all counts."""

    def __init__(self):
        self.passed = self.failed = 0

    def check(self, name, ok, detail=""):
        print("%s %s%s" % ("PASS" if ok else "FAIL", name, (": " + detail) if detail else ""),
              flush=True)
        if ok:
            self.passed += 1
        else:
            self.failed += 1
        return ok

    def summary(self):
        print("%d passed, %d failed" % (self.passed, self.failed), flush=True)
        return 0 if self.failed == 0 and self.passed > 0 else 1


def run(cmd, **kwargs):
    """Run, capture stdout+stderr as text; never raises on a non-zero exit."""
    kwargs.setdefault("timeout", 900)
    return subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, **kwargs)


class Overlay:
    """The root under an overlay at TMP/merged, with /proc, /dev and loopback."""

    def __init__(self, root, tmp):
        self.m = tmp + "/merged"
        for d in ("upper", "work", "merged"):
            os.makedirs(tmp + "/" + d, exist_ok=True)
        subprocess.run(["mount", "-t", "overlay", "overlay", "-o", "lowerdir=%s,upperdir=%s,"
                        "workdir=%s" % (root, tmp + "/upper", tmp + "/work"), self.m], check=True)
        subprocess.run(["mount", "-t", "proc", "proc", self.m + "/proc"], check=True)
        subprocess.run(["mount", "--rbind", "/dev", self.m + "/dev"], check=True)
        subprocess.run(["ip", "link", "set", "lo", "up"], check=True)

    def run(self, *cmd, **kwargs):
        return run(["chroot", self.m, "env", "-i", "PATH=/usr/sbin:/usr/bin:/sbin:/bin",
                    "LANG=C.UTF-8", "DEBIAN_FRONTEND=noninteractive"] + list(cmd), **kwargs)

    def apt(self, *args):
        return self.run("apt-get", "-o", "DPkg::Lock::Timeout=900", *args)

    def path(self, p):
        return self.m + p

    def read(self, p):
        with open(self.path(p)) as f:
            return f.read()

    def write(self, p, text):
        os.makedirs(os.path.dirname(self.path(p)), exist_ok=True)
        with open(self.path(p), "w") as f:
            f.write(text)


class Asterisk:
    """The packaged Asterisk as installed: /etc/asterisk, its modules directory, its AstDB."""

    def __init__(self, ov):
        self.ov = ov
        self.proc = None

    def start(self, timeout=90):
        ov = self.ov
        os.makedirs(ov.path("/run/asterisk"), exist_ok=True)
        ctl = ov.path("/run/asterisk/asterisk.ctl")
        if os.path.exists(ctl):
            os.unlink(ctl)
        console = open(ov.path("/var/log/asterisk/pkgtest-console"), "ab")
        # As root without -U/-G (see ENVIRONMENT.md); the config is the package's own.
        self.proc = subprocess.Popen(["chroot", ov.m, "asterisk", "-f"], stdin=subprocess.DEVNULL,
                                     stdout=console, stderr=subprocess.STDOUT)
        console.close()
        deadline = time.monotonic() + timeout
        while not os.path.exists(ctl):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("Asterisk did not start:\n" + self.tail())
            time.sleep(0.1)
        out = self.cli("core waitfullybooted", timeout=max(1, deadline - time.monotonic()))
        if "fully booted" not in out.lower():
            raise RuntimeError("core waitfullybooted: %r\n%s" % (out, self.tail()))

    def cli(self, command, timeout=30):
        r = self.ov.run("asterisk", "-rx", command, timeout=timeout)
        return "".join(l for l in r.stdout.splitlines(True)
                       if not l.startswith("No ethernet interface found for seeding"))

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self):
        if self.running():
            self.cli("core stop now")
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def module_status(self, name):
        """'Running', 'Not Running' or None (not loaded), from `module show like presence`."""
        for line in self.cli("module show like presence").splitlines():
            fields = line.split()
            if fields and fields[0] == name:
                return "Not Running" if "Not" in fields else ("Running" if "Running" in fields
                                                              else line)
        return None

    def ami(self):
        return AMIClient("127.0.0.1", 5038, AMI_USER, AMI_SECRET, 10, "off")

    def tail(self, n=30):
        out = []
        for p in ("/var/log/asterisk/pkgtest-console", "/var/log/asterisk/messages.log",
                  "/var/log/asterisk/messages"):
            try:
                out += [l.rstrip() for l in open(self.ov.path(p), errors="replace")][-n:]
            except FileNotFoundError:
                pass
        return "\n".join(out)
