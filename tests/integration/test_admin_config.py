"""presencestate.conf (issue 10) against a real Asterisk 22: read at load and at module
reload; a missing file means defaults; garbage, unknown options and bad values are WARNed
about by line, option and value, the default is kept and the module stays loaded."""
import os
import re

from admin import show
from helpers import LogWatch, start

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.normpath(os.path.join(HERE, "..", ".."))


def config_warnings(ast):
    return [l for l in ast.log_text().splitlines() if "WARNING[" in l and "presencestate.conf" in l]


def test_a_missing_file_means_defaults_without_a_word():
    with start() as ast:
        assert not os.path.exists(ast.host("etc", "presencestate.conf"))
        assert ast.module_loaded("func_presencestate_rs")
        ast.cli("presencestate change CustomPresence:a away")
        assert show(ast, "CustomPresence:a")["Changed by"] == "CLI"        # record_changes = yes
        assert not [l for l in ast.log_text().splitlines() if "NOTICE" in l and "set to" in l]  # log_changes = no
        assert config_warnings(ast) == []


GARBAGE = """[general]
record_changes = maybe
log_changes = yes
colour = blue
this line has no equals sign
record_changes = 2

[nonsense]
x = 1
"""


def test_garbage_is_named_by_line_option_and_value_and_defaults_are_kept():
    with start(configs={"presencestate.conf": GARBAGE}) as ast:
        assert ast.module_loaded("func_presencestate_rs")
        text = "\n".join(config_warnings(ast))
        for fragment in (
                "presencestate.conf line 2: [general] option 'record_changes' = 'maybe' is not a boolean (yes or no); using the default 'yes'",
                "presencestate.conf line 4: [general] unknown option 'colour' = 'blue' is ignored",
                "presencestate.conf line 6: [general] option 'record_changes' = '2' is not a boolean",
                "presencestate.conf line 9: unknown section [nonsense]; its option 'x' = '1' is ignored"):
            assert fragment in text, (fragment, text)
        # Asterisk's parser names the line without '=' itself.
        assert re.search(r"No '=' \(equal sign\) in line 5 of .*presencestate.conf", ast.log_text())
        # The good option counts; the bad ones keep their default.
        watch = LogWatch(ast)
        ast.cli("presencestate change CustomPresence:a away")
        watch.wait_for("CustomPresence:a set to 'away' by CLI", level="NOTICE")
        assert show(ast, "CustomPresence:a")["Changed by"] == "CLI"


def test_a_file_asterisk_cannot_parse_means_defaults():
    with start(configs={"presencestate.conf": "record_changes = no\n[general]\n"}) as ast:
        assert ast.module_loaded("func_presencestate_rs")
        assert any("presencestate.conf could not be parsed" in l for l in config_warnings(ast)), ast.log_text()
        ast.cli("presencestate change CustomPresence:a away")
        assert show(ast, "CustomPresence:a")["Changed by"] == "CLI"


def test_module_reload_rereads_the_file():
    with start(configs={"presencestate.conf": "[general]\nrecord_changes = no\nlog_changes = yes\n"}) as ast:
        watch = LogWatch(ast)
        ast.cli("presencestate change CustomPresence:a away")
        watch.wait_for("CustomPresence:a set to 'away' by CLI", level="NOTICE")
        fields = show(ast, "CustomPresence:a")
        assert (fields["Last changed"], fields["Changed by"]) == ("unknown", "unknown"), fields
        with open(ast.host("etc", "presencestate.conf"), "w") as f:
            f.write("[general]\nrecord_changes = yes\nlog_changes = bogus\n")
        watch = LogWatch(ast)
        assert "reloaded" in ast.cli("module reload func_presencestate_rs.so")
        watch.wait_for("option 'log_changes' = 'bogus' is not a boolean (yes or no); using the default 'no'")
        ast.cli("presencestate change CustomPresence:a dnd")
        assert show(ast, "CustomPresence:a")["Changed by"] == "CLI"
        ast.cli("presencestate show CustomPresence:nobody")          # a WARNING after it, as a marker
        watch.wait_for("there is no custom presence state CustomPresence:nobody")
        assert "set to 'dnd'" not in watch.new()                    # log_changes back to no
        assert ast.module_loaded("func_presencestate_rs")


def test_the_sample_file_loads_clean_and_documents_every_option():
    sample = open(os.path.join(REPO, "configs", "presencestate.conf.sample")).read()
    # Each section's parser: core/config.rs, and the sections kept with their feature.
    parsed = "".join(open(os.path.join(REPO, "src", "core", *path)).read()
                     for path in (("config.rs",), ("cluster", "config.rs")))
    doc = open(os.path.join(REPO, "doc", "func_presencestate_rs.xml")).read()
    options = re.findall(r'setting\.is\("([a-z_]+)"\)', parsed)
    assert options, "no options found in src/core/config.rs"
    assert "reconnect_interval" in options, "the [cluster] parser was not read"
    for option in options:
        assert re.search(r"^;%s = " % option, sample, re.M), "%s missing from the sample" % option
        assert '<configOption name="%s"' % option in doc, "%s missing from the XML docs" % option
    # The sample with every option uncommented is a valid file.
    uncommented = re.sub(r"^;([a-z_]+ = )", r"\1", sample, flags=re.M)
    with start(configs={"presencestate.conf": uncommented}) as ast:
        assert config_warnings(ast) == [], config_warnings(ast)
        assert ast.module_loaded("func_presencestate_rs")
