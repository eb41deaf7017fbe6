//! Link rules for a library slurmctld dlopens and may dlclose.
fn main() {
    // Rust's thread-local destructors and our threads must never outlive
    // the mapping of this code: dlclose keeps it mapped with -z nodelete.
    println!("cargo:rustc-link-arg-cdylib=-Wl,-z,nodelete");
    // libslurm is never linked: every slurm_* symbol resolves to the copy
    // slurmctld already runs (see the main crate's build.rs).
}
