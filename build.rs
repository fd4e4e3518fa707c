//! Builds the C shim and the bindings against the installed Asterisk headers.
//!
//! ASTERISK_INCLUDE_DIR names a directory holding `asterisk.h` and `asterisk/` (default
//! `/usr/include`, where Debian's `asterisk-dev` puts them). Without the `asterisk` feature
//! (`cargo test --no-default-features`) nothing here runs and no headers are needed.
//!
//! With the `cluster` feature, the CPG types come from `corosync/cpg.h` (libcpg-dev), found in
//! COROSYNC_INCLUDE_DIR (default: ASTERISK_INCLUDE_DIR, then `/usr/include`). Only types:
//! libcpg itself is opened at run time when `[cluster] enabled = yes` (see src/ffi/cluster_cpg.rs).
//!
//! With the `sip` feature, the shim also includes res_pjsip.h, hence pjproject's headers, which
//! asterisk-dev does not ship: PJPROJECT_DIR names a directory holding `include/` (pjproject's
//! headers configured exactly as the running Asterisk's libasteriskpj was built) and `cflags`
//! (the flags Asterisk compiles its PJSIP modules with), as scripts/pjproject-headers makes
//! it. src/shim/sip.c refuses at compile time headers configured otherwise.
//!
//! The build's identity (shown in `module show`, `presencestate stats` and a NOTICE at load):
//! the crate's version and a build id, FPRS_BUILD_ID if set, else the checkout's commit (`+`
//! when files differ from it), else the `build-id` file scripts/package writes into a
//! package's source tree, else `unknown`.
use std::env;
use std::path::{Path, PathBuf};

const HEADER: &str = "include/func_presencestate_rs.h";
/// The shim's directory: every file in it (its .c files and src/shim/optional.h).
const SHIM_DIR: &str = "src/shim";
const SHIM: &str = "src/shim/shim.c";
/// ARI's part of the shim (its functions optional at run time: built always).
const ARI_SHIM: &str = "src/shim/ari.c";
/// The module's threads, started through Asterisk (the file says why).
const THREADS_SHIM: &str = "src/shim/threads.c";
/// SIP PUBLISH's part of the shim, with the `sip` feature only (needs pjproject's headers).
const SIP_SHIM: &str = "src/shim/sip.c";

fn main() {
    println!("cargo:rerun-if-env-changed=ASTERISK_INCLUDE_DIR");
    println!("cargo:rerun-if-env-changed=COROSYNC_INCLUDE_DIR");
    println!("cargo:rerun-if-env-changed=PJPROJECT_DIR");
    println!("cargo:rerun-if-changed={HEADER}");
    println!("cargo:rerun-if-changed={SHIM_DIR}");
    if env::var_os("CARGO_FEATURE_ASTERISK").is_none() {
        return;
    }
    let build_id = build_id();
    println!("cargo:rustc-env=FPRS_BUILD_ID={build_id}");
    let include = asterisk_include_dir();
    let cluster = env::var_os("CARGO_FEATURE_CLUSTER").is_some();
    let pjproject = env::var_os("CARGO_FEATURE_SIP").map(|_| pjproject());
    compile_shim(&include, cluster, pjproject.as_ref(), &build_id);
    generate_bindings(&include, cluster, pjproject.is_some());
    // dlsym (the shim's optional Asterisk APIs; dlopen for the cluster): in libc since glibc
    // 2.34, in libdl before (an empty stub after).
    println!("cargo:rustc-link-lib=dl");
    if cluster {
        generate_cpg_bindings(&include);
    }
}

fn generate_cpg_bindings(asterisk_include: &Path) {
    let dir = env::var_os("COROSYNC_INCLUDE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| asterisk_include.to_path_buf());
    let header = dir.join("corosync/cpg.h");
    if !header.is_file() {
        panic!(
            "corosync/cpg.h not found in {}: install `libcpg-dev`, set COROSYNC_INCLUDE_DIR, or \
             build without the `cluster` feature (--no-default-features --features asterisk)",
            dir.display()
        );
    }
    let bindings = bindgen::Builder::default()
        .header(header.to_string_lossy())
        .clang_arg(format!("-I{}", dir.display()))
        .allowlist_type("cpg_(handle_t|name|address|model_v1_data_t|model_data_t|deliver_fn_t|confchg_fn_t|totem_confchg_fn_t|ring_id)")
        .allowlist_type("cs_error_t|cs_dispatch_flags_t|cpg_guarantee_t|cpg_model_t")
        .allowlist_var("CPG_MAX_NAME_LENGTH")
        .constified_enum_module("cs_error_t|cs_dispatch_flags_t|cpg_guarantee_t|cpg_model_t")
        .layout_tests(false)
        .parse_callbacks(Box::new(bindgen::CargoCallbacks::new()))
        .generate()
        .unwrap_or_else(|e| panic!("bindgen failed on {} ({e})", header.display()));
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    bindings
        .write_to_file(out.join("cpg.rs"))
        .expect("writing cpg.rs");
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

/// pjproject's configured headers and the defines Asterisk compiles its PJSIP modules with.
struct Pjproject {
    include: PathBuf,
    defines: Vec<(String, String)>,
}

fn pjproject() -> Pjproject {
    let Some(dir) = env::var_os("PJPROJECT_DIR").map(PathBuf::from) else {
        panic!(
            "the `sip` feature needs PJPROJECT_DIR: a directory holding pjproject's headers \
             configured as Asterisk built libasteriskpj (include/) and its flags (cflags); \
             `scripts/pjproject-headers` makes it for Debian's Asterisk and prints its path \
             (scripts/build-module sets it). Or build without SIP PUBLISH: \
             --no-default-features --features asterisk,cluster"
        )
    };
    let include = dir.join("include");
    let cflags = std::fs::read_to_string(dir.join("cflags")).unwrap_or_default();
    if !include.join("pjsip.h").is_file()
        || !include.join("pj/config_site.h").is_file()
        || !include.join("pj/compat/os_auto.h").is_file()
        || !cflags.contains("-DPJ_AUTOCONF=1")
    {
        panic!(
            "PJPROJECT_DIR={} holds no configured pjproject (include/pjsip.h, \
             include/pj/config_site.h, include/pj/compat/os_auto.h and a cflags file with \
             -DPJ_AUTOCONF=1): make it with scripts/pjproject-headers",
            dir.display()
        );
    }
    println!("cargo:rerun-if-changed={}", dir.join("cflags").display());
    println!(
        "cargo:rerun-if-changed={}",
        include.join("pj/config_site.h").display()
    );
    let defines = cflags
        .split_whitespace()
        .filter_map(|flag| flag.strip_prefix("-D"))
        .map(|define| match define.split_once('=') {
            Some((name, value)) => (name.to_string(), value.to_string()),
            None => (define.to_string(), "1".to_string()),
        })
        .collect();
    Pjproject { include, defines }
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

/// The build id (see the top of this file). A commit's id changes with every edit of a tracked
/// file: the build script runs again whenever anything under src/ (or the index) changes.
fn build_id() -> String {
    println!("cargo:rerun-if-env-changed=FPRS_BUILD_ID");
    println!("cargo:rerun-if-changed=src");
    println!("cargo:rerun-if-changed=build-id");
    if let Ok(id) = env::var("FPRS_BUILD_ID") {
        // It goes into a C string literal and log lines: plain characters only.
        return id
            .chars()
            .map(|c| match c {
                'A'..='Z' | 'a'..='z' | '0'..='9' | '.' | '+' | '-' | '_' => c,
                _ => '_',
            })
            .collect();
    }
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .output()
            .ok()
            .filter(|out| out.status.success())
            .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_string())
    };
    if let Some(commit) = git(&["rev-parse", "--short=10", "HEAD"]) {
        if let Some(index) = git(&["rev-parse", "--git-path", "index"]) {
            println!("cargo:rerun-if-changed={index}");
        }
        let dirty = git(&["status", "--porcelain", "--untracked-files=no"])
            .is_some_and(|changes| !changes.is_empty());
        return if dirty { commit + "+" } else { commit };
    }
    std::fs::read_to_string("build-id")
        .map(|id| id.trim().to_string())
        .unwrap_or_else(|_| "unknown".to_string())
}

fn compile_shim(include: &Path, cluster: bool, pjproject: Option<&Pjproject>, build_id: &str) {
    let mut build = cc::Build::new();
    build
        .file(SHIM)
        .file(ARI_SHIM)
        .file(THREADS_SHIM)
        .include("include")
        .include(include)
        .warnings(true)
        .extra_warnings(false);
    for (name, value) in MODULE_DEFINES {
        build.define(name, value);
    }
    // `module show` shows 40 bytes of the description: the version and build id come early.
    let description = format!(
        "PRESENCE_STATE (Rust) {} {build_id}",
        env!("CARGO_PKG_VERSION")
    );
    build.define("FPRS_DESCRIPTION", format!("{description:?}").as_str());
    if cluster {
        build.define("FPRS_CLUSTER", "1");
    }
    if let Some(pjproject) = pjproject {
        build
            .file(SIP_SHIM)
            .include(&pjproject.include)
            .define("FPRS_SIP", "1");
        for (name, value) in &pjproject.defines {
            build.define(name, value.as_str());
        }
    }
    build.compile("fprs_shim");
}

fn generate_bindings(include: &Path, cluster: bool, sip: bool) {
    let mut builder = bindgen::Builder::default()
        .header(HEADER)
        .clang_arg(format!("-I{}", include.display()))
        .clang_arg("-Iinclude")
        // Asterisk's utils.h defines RAII_VAR with clang blocks when the compiler is clang.
        .clang_arg("-fblocks")
        .allowlist_function("fprs_shim_.*")
        .allowlist_function("ast_(presence_state_(prov_add|prov_del|nocache|changed_literal)|db_(put|del|get|gettree|gettree_by_prefix|freetree)|channel_name|custom_function_find|module_check|func_(read|read2|write))")
        .allowlist_function("stasis_unsubscribe_and_join")
        .allowlist_function("ast_(category_browse|variable_browse|config_destroy)")
        .allowlist_function("ast_devstate_(prov_add|prov_del|changed_literal)")
        .allowlist_function("astman_(get_header|send_ack|send_error)|ast_cli_completion_add")
        .allowlist_function("ast_json_(null|unref|typeof|integer_create|integer_get|string_create|string_get|array_create|array_append|array_size|array_get|object_create|object_set|object_get|object_iter|object_iter_next|object_iter_key|object_iter_value)")
        .allowlist_type("ast_db_entry|ast_module_load_result|ast_test_result_state")
        .allowlist_var("__LOG_(ERROR|WARNING|NOTICE)|RESULT_(SUCCESS|SHOWUSAGE|FAILURE)")
        // Structs Asterisk owns stay opaque: only the C shim, built against the target's own
        // headers, may know their layout.
        .opaque_type("ast_(channel|str|test|custom_function|config|variable)")
        .opaque_type("stasis_(subscription|message)|mansession|message")
        .opaque_type("ast_(json|json_iter|ari_response)")
        .rustified_enum("ast_module_load_result|ast_test_result_state")
        .constified_enum_module("ast_presence_state|ast_device_state|ast_devstate_cache|ast_json_type")
        .layout_tests(false)
        .parse_callbacks(Box::new(bindgen::CargoCallbacks::new()));
    for (name, value) in MODULE_DEFINES {
        builder = builder.clang_arg(format!("-D{name}={value}"));
    }
    if cluster {
        builder = builder.clang_arg("-DFPRS_CLUSTER=1");
    }
    if sip {
        builder = builder
            .clang_arg("-DFPRS_SIP=1")
            .allowlist_type("fprs_sip_(request|response)")
            .allowlist_function("fprs_sip_publish|fprs_cli_publications")
            .blocklist_function("fprs_shim_sip_(register_service|unregister_service|rdata_endpoint|create_response|add_header|send_response|endpoint|in_pjsip_thread)");
    }
    let bindings = builder.generate().unwrap_or_else(|e| {
        panic!("bindgen failed on {HEADER} ({e}); it needs libclang: install `libclang-dev`")
    });
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    bindings
        .write_to_file(out.join("bindings.rs"))
        .expect("writing bindings.rs");
}
