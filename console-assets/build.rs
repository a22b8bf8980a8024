//! Rebuilds when `console/dist` changes, and says so at build time when it is missing.

fn main() {
    let dist = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../console/dist");
    println!("cargo:rerun-if-changed={}", dist.display());
    if !dist.join("index.html").is_file() {
        println!(
            "cargo:warning=console/dist is not built: this binary will serve no web console (`/` will say so). \
             Run `make console` (npm --prefix console ci && npm --prefix console run build) and build again."
        );
    }
}
