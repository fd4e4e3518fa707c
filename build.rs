//! Builds the C shim and the bindings against the installed Asterisk headers.
//!
//! ASTERISK_INCLUDE_DIR names a directory holding `asterisk.h` and `asterisk/` (default
//! `/usr/include`, where Debian's `asterisk-dev` puts them). Without the `asterisk` feature
//! (`cargo test --no-default-features`) nothing here runs and no headers are needed.
use std::env;
use std::path::{Path, PathBuf};

const HEADER: &str = "include/func_presencestate_rs.h";
const SHIM: &str = "src/shim/shim.c";

fn main() {
    println!("cargo:rerun-if-env-changed=ASTERISK_INCLUDE_DIR");
    println!("cargo:rerun-if-changed={HEADER}");
    println!("cargo:rerun-if-changed={SHIM}");
    if env::var_os("CARGO_FEATURE_ASTERISK").is_none() {
        return;
    }
    let include = asterisk_include_dir();
    compile_shim(&include);
    generate_bindings(&include);
}

fn asterisk_include_dir() -> PathBuf {
    let dir =
        PathBuf::from(env::var_os("ASTERISK_INCLUDE_DIR").unwrap_or_else(|| "/usr/include".into()));
    if !dir.join("asterisk.h").is_file() || !dir.join("asterisk/presencestate.h").is_file() {
        panic!(
            "Asterisk headers not found in {}: install the `asterisk-dev` package, or set \
             ASTERISK_INCLUDE_DIR to a directory holding asterisk.h and asterisk/ \
             (scripts/build-module does this for the project's Asterisk 22 root)",
            dir.display()
        );
    }
    dir
}

/// Asterisk's build system passes the module's name and self symbol with -D.
const MODULE_DEFINES: [(&str, &str); 3] = [
    ("AST_MODULE", "\"func_presencestate_rs\""),
    (
        "AST_MODULE_SELF_SYM",
        "__internal_func_presencestate_rs_self",
    ),
    ("_GNU_SOURCE", "1"),
];

fn compile_shim(include: &Path) {
    let mut build = cc::Build::new();
    build
        .file(SHIM)
        .include("include")
        .include(include)
        .warnings(true)
        .extra_warnings(false);
    for (name, value) in MODULE_DEFINES {
        build.define(name, value);
    }
    build.compile("fprs_shim");
}

fn generate_bindings(include: &Path) {
    let mut builder = bindgen::Builder::default()
        .header(HEADER)
        .clang_arg(format!("-I{}", include.display()))
        .clang_arg("-Iinclude")
        // Asterisk's utils.h defines RAII_VAR with clang blocks when the compiler is clang.
        .clang_arg("-fblocks")
        .allowlist_function("fprs_shim_.*")
        .allowlist_function("ast_(presence_state_(prov_add|prov_del|nocache|changed_literal)|db_(put|del|get|gettree|freetree)|channel_name|custom_function_find|module_check|func_(read|read2|write))")
        .allowlist_function("stasis_unsubscribe_and_join")
        .allowlist_function("ast_(category_browse|variable_browse|config_destroy)")
        .allowlist_function("ast_devstate_(prov_add|prov_del|changed_literal)")
        .allowlist_function("astman_(get_header|send_ack|send_error)|ast_cli_completion_add")
        .allowlist_type("ast_db_entry|ast_module_load_result|ast_test_result_state")
        .allowlist_var("__LOG_(ERROR|WARNING|NOTICE)|RESULT_(SUCCESS|SHOWUSAGE|FAILURE)")
        // Structs Asterisk owns stay opaque: only the C shim, built against the target's own
        // headers, may know their layout.
        .opaque_type("ast_(channel|str|test|custom_function|config|variable)")
        .opaque_type("stasis_(subscription|message)|mansession|message")
        .rustified_enum("ast_module_load_result|ast_test_result_state")
        .constified_enum_module("ast_presence_state|ast_device_state|ast_devstate_cache")
        .layout_tests(false)
        .parse_callbacks(Box::new(bindgen::CargoCallbacks::new()));
    for (name, value) in MODULE_DEFINES {
        builder = builder.clang_arg(format!("-D{name}={value}"));
    }
    let bindings = builder.generate().unwrap_or_else(|e| {
        panic!("bindgen failed on {HEADER} ({e}); it needs libclang: install `libclang-dev`")
    });
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    bindings
        .write_to_file(out.join("bindings.rs"))
        .expect("writing bindings.rs");
}
