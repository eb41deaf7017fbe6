//! Generates the libslurm bindings from the headers installed on this
//! machine and decides, once, which Slurm release we build for.
//!
//! Slurm's headers are never vendored: they come from `libslurm-dev` (or
//! `SLURM_INCLUDE_DIR` for a Slurm built from source). Version differences
//! become `slurm_ge_X_Y` cfgs here so the rest of the crate never parses a
//! version number.

use std::env;
use std::fs;
use std::path::{Path, PathBuf};

/// Releases whose C structures or API differ in ways the wrapper cares about.
const VERSION_CFGS: &[(u32, u32)] = &[
    (23, 2),
    (23, 11),
    (24, 5),
    (24, 11),
    (25, 5),
    (25, 11),
    (26, 5),
];

fn main() {
    for var in ["SLURM_INCLUDE_DIR", "SLURM_LIB_DIR"] {
        println!("cargo:rerun-if-env-changed={var}");
    }
    println!("cargo:rerun-if-changed=wrapper.h");
    println!("cargo:rerun-if-changed=slurm-headers/unprototyped.h");

    let include_dir = env::var("SLURM_INCLUDE_DIR").unwrap_or_else(|_| "/usr/include".into());
    let version_h = Path::new(&include_dir).join("slurm/slurm_version.h");
    let version_text = fs::read_to_string(&version_h).unwrap_or_else(|e| {
        panic!(
            "cannot read {}: {e}. Install Slurm's headers (Debian: apt-get install libslurm-dev) \
             or point SLURM_INCLUDE_DIR at the directory that holds slurm/slurm.h",
            version_h.display()
        )
    });
    println!("cargo:rerun-if-changed={}", version_h.display());
    let number = parse_version_number(&version_text)
        .unwrap_or_else(|| panic!("no SLURM_VERSION_NUMBER in {}", version_h.display()));
    let (major, minor, micro) = (number >> 16, (number >> 8) & 0xff, number & 0xff);
    // As Slurm spells its releases: "22.05.8".
    println!("cargo:rustc-env=SLURM_BUILD_VERSION={major}.{minor:02}.{micro}");
    println!("cargo:rustc-env=SLURM_BUILD_VERSION_NUMBER={number}");

    for (maj, min) in VERSION_CFGS {
        let name = format!("slurm_ge_{maj}_{min:02}");
        println!("cargo::rustc-check-cfg=cfg({name})");
        if (major, minor) >= (*maj, *min) {
            println!("cargo:rustc-cfg={name}");
        }
    }

    link_libslurm();

    // /usr/include is a system directory already; named last, not first, so
    // that the C library's headers come from the compiler's own search path.
    // That matters for a glibc-floor build (cargo zigbuild, see
    // packaging/build-rpm.sh): zig hands bindgen the headers of the old
    // glibc and -nostdinc, and /usr/include first would mix the two.
    let include_arg = if Path::new(&include_dir) == Path::new("/usr/include") {
        format!("-idirafter{include_dir}")
    } else {
        format!("-I{include_dir}")
    };
    let out = PathBuf::from(env::var("OUT_DIR").unwrap()).join("bindings.rs");
    bindgen::Builder::default()
        .header("wrapper.h")
        .clang_arg(include_arg)
        .clang_arg("-I.")
        // Without the fallback every SLURM_BIT() constant (NODE_STATE_DRAIN,
        // JOBCOND_FLAG_*, SHOW_ALL from 24.11) is silently dropped.
        .clang_macro_fallback()
        .allowlist_function("slurm_.*|slurmdb_.*")
        .allowlist_type("slurm.*|job_.*|node_.*|partition_.*|stats_.*|license_.*|reserve_.*|assoc_mgr_info_.*")
        .allowlist_var(
            "SLURM.*|ESLURM.*|NODE_STATE_.*|JOB_.*|SHOW_.*|NO_VAL.*|INFINITE.*|MEM_PER_CPU|PARTITION_.*\
             |STAT_COMMAND_.*|SLURMDB_.*|JOBCOND_.*|PART_FLAG_.*|RESERVE_FLAG_.*|NICE_OFFSET\
             |ASSOC_MGR_INFO_FLAG_.*|PRIORITY_FLAGS_.*",
        )
        .allowlist_type("select_nodedata_type|job_states|job_state_reason")
        .prepend_enum_name(false)
        .layout_tests(false)
        .derive_default(true)
        .generate_comments(false)
        .parse_callbacks(Box::new(bindgen::CargoCallbacks::new()))
        .generate()
        .expect("bindgen failed on wrapper.h")
        .write_to_file(&out)
        .expect("cannot write bindings");
}

fn parse_version_number(text: &str) -> Option<u32> {
    text.lines().find_map(|line| {
        let rest = line.trim().strip_prefix("#define SLURM_VERSION_NUMBER")?;
        let hex = rest
            .trim()
            .trim_start_matches("0x")
            .trim_start_matches("0X");
        u32::from_str_radix(hex, 16).ok()
    })
}

/// Directories the dynamic loader searches anyway.
const LOADER_DIRS: [&str; 4] = [
    "/usr/lib/x86_64-linux-gnu",
    "/usr/lib/aarch64-linux-gnu",
    "/usr/lib64",
    "/usr/lib",
];

/// libslurm is linked into the binary, tests, benches and examples only: the
/// cdylib runs inside slurmctld, where every `slurm_*` symbol must resolve to
/// the daemon's own copy.
fn link_libslurm() {
    let lib_dir = env::var("SLURM_LIB_DIR").ok().or_else(|| {
        [
            "/usr/lib/x86_64-linux-gnu",
            "/usr/lib/aarch64-linux-gnu",
            "/usr/lib64",
            "/usr/lib",
            "/usr/local/lib",
        ]
        .iter()
        .find(|d| Path::new(d).join("libslurm.so").exists())
        .map(|d| d.to_string())
    });
    let Some(lib_dir) = lib_dir else {
        panic!(
            "libslurm.so not found. Install libslurm-dev or set SLURM_LIB_DIR to the \
             directory that holds libslurm.so"
        );
    };
    println!("cargo:rustc-link-search=native={lib_dir}");
    for kind in ["bins", "tests", "benches"] {
        println!("cargo:rustc-link-arg-{kind}=-L{lib_dir}");
        // A Slurm built from source (SLURM_LIB_DIR, /usr/local/lib) is found
        // at run time by the RUNPATH; the loader's own directories need none
        // (and Debian's lintian rejects a package whose binary names one).
        if !LOADER_DIRS.contains(&lib_dir.as_str()) {
            println!("cargo:rustc-link-arg-{kind}=-Wl,-rpath,{lib_dir}");
        }
        println!("cargo:rustc-link-arg-{kind}=-lslurm");
    }
    // tests/plugin_host.rs stands in for slurmctld: the plugin finds the
    // test's `control_time` with dlsym, so it must be in the dynamic symbol
    // table (test binaries without it are not affected).
    println!("cargo:rustc-link-arg-tests=-Wl,--export-dynamic-symbol=control_time");
    // See host_symbols in src/main.rs: the slurmdbd plugin looks these up
    // in the executable, so they must be in its dynamic symbol table.
    // zig's cc (the glibc-floor build, packaging/build-rpm.sh) refuses
    // --export-dynamic-symbol and takes only -rdynamic, which exports every
    // global symbol: Rust's are mangled and the C ones ring's (prefixed), so
    // none can stand in for one of Slurm's.
    println!("cargo:rerun-if-env-changed=RUSTC_LINKER");
    if env::var("RUSTC_LINKER").is_ok_and(|l| l.contains("zigcc")) {
        println!("cargo:rustc-link-arg-bins=-rdynamic");
    } else {
        for sym in ["slurmdbd_msg_type_2_str", "rpc_num2string"] {
            println!("cargo:rustc-link-arg-bins=-Wl,--export-dynamic-symbol={sym}");
        }
    }
}
