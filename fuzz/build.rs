//! The library's libslurm references must resolve when the targets link
//! (the main crate links libslurm only into its own binaries and tests).
fn main() {
    for dir in ["/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib64", "/usr/lib"] {
        if std::path::Path::new(dir).join("libslurm.so").exists() {
            println!("cargo:rustc-link-search=native={dir}");
            break;
        }
    }
    println!("cargo:rustc-link-lib=dylib=slurm");
}
