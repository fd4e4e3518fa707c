"""The module's documentation in Asterisk's own help system (issue 10): the thirdparty XML
file validates against Asterisk's appdocsxml.dtd, and `core show function PRESENCE_STATE`,
`manager show command PresenceStateSet/Delete` print it."""
import os
import shutil
import subprocess

from helpers import start
from instance import DOC, default_root

DTD = "/usr/share/asterisk/documentation/appdocsxml.dtd"      # inside the root


def test_the_xml_validates_against_asterisks_dtd():
    root = default_root()
    subprocess.run(["chroot", root, "sh", "-c", "command -v xmllint >/dev/null || "
                    "apt-get -o DPkg::Lock::Timeout=900 install -y -q libxml2-utils >/dev/null"], check=True)
    copy = "/tmp/fprs-doc-%d.xml" % os.getpid()
    shutil.copyfile(DOC, root + copy)
    try:
        checked = subprocess.run(["chroot", root, "xmllint", "--noout", "--nonet", "--dtdvalid", DTD, copy],
                                 capture_output=True, text=True)
        # (xmllint may note that the DOCTYPE's relative DTD is not next to the copy; the
        # validity verdict is what counts.)
        assert checked.returncode == 0, checked.stderr
        assert "validity error" not in checked.stderr and "parser error" not in checked.stderr, checked.stderr
        broken = subprocess.run(["chroot", root, "sh", "-c", "sed 's/<synopsis>/<synopsys>/' %s > %s.bad && "
                                 "xmllint --noout --nonet --dtdvalid %s %s.bad" % (copy, copy, DTD, copy)],
                                capture_output=True, text=True)
        assert broken.returncode != 0, "xmllint accepted a broken copy: the check cannot fail"
    finally:
        for path in (copy, copy + ".bad"):
            if os.path.exists(root + path):
                os.unlink(root + path)


def flat(text):
    """Help text with its line wrapping undone."""
    return " ".join(text.split())


def test_asterisk_prints_the_help():
    with start() as ast:
        out = flat(ast.cli("core show function PRESENCE_STATE"))
        for fragment in ("[Provided By] func_presencestate_rs", "drop-in replacement for func_presencestate",
                         "CustomPresenceMeta", "On read: the subtype or message is returned base64-encoded",
                         "PRESENCE_STATE(provider,field[,options])"):
            assert fragment in out, (fragment, out)
        out = flat(ast.cli("manager show command PresenceStateSet"))
        for fragment in ("Set a custom presence state.", "Presentity: <value>", "State: <value>",
                         "[Subtype:] <value>", "[Message:] <value>", "[Encoded:] <value>",
                         "[Provided By] func_presencestate_rs", "[Privilege] call"):
            assert fragment in out, (fragment, out)
        out = flat(ast.cli("manager show command PresenceStateDelete"))
        assert "Delete a custom presence state." in out and "Presentity: <value>" in out, out
