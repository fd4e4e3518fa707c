"""ERROR lines naming the module in the Asterisk logs of a test: the runners
(tests/integration/run.py, tests/cluster/run.py) fail a test on any it does not expect."""
import glob
import os
import re

# An ERROR line that names this module: the loader's (a failed dlclose or load) or the module's
# own (logged from src/).
OUR_ERROR = re.compile(r"^.*\bERROR\[.*?(?:func_presencestate_rs|\] src/).*$", re.M)


def expects_errors(*patterns):
    """Marks a test that provokes ERROR lines naming the module: each such line must match
    one of the regular expressions `patterns`."""
    def mark(test):
        test.expected_errors = patterns
        return test
    return mark


def unexpected_errors(log_dirs, expected=()):
    """The ERROR lines naming the module in the messages logs below `log_dirs` that no pattern
    of `expected` matches."""
    found = []
    for top in log_dirs:
        for path in sorted(glob.glob(os.path.join(top, "**", "log", "messages"), recursive=True)):
            with open(path, errors="replace") as f:
                found += ["%s: %s" % (os.path.relpath(path, top), line)
                          for line in OUR_ERROR.findall(f.read())
                          if not any(re.search(e, line) for e in expected)]
    return found
