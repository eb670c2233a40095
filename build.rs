//! Links against the interpreter pyo3 found (python3 or $PYO3_PYTHON), embeds an rpath to its
//! libdir so the binary never picks up another libpython, and records that interpreter's real
//! executable and version so start-up can check it embedded the right one.
use std::process::Command;

fn main() {
    pyo3_build_config::add_libpython_rpath_link_args();
    println!("cargo:rerun-if-env-changed=PYO3_PYTHON");
    let config = pyo3_build_config::get();
    let python = config.executable().unwrap_or("python3");
    let probe = Command::new(python)
        .args([
            "-c",
            "import sys; print(sys.executable); print(sys.version)",
        ])
        .output()
        .expect("build.rs: cannot run the Python interpreter found by pyo3");
    let text = String::from_utf8(probe.stdout).expect("python printed non-UTF-8");
    let mut lines = text.lines();
    let executable = lines.next().unwrap_or_default();
    let version = lines.next().unwrap_or_default();
    println!("cargo:rustc-env=WSGIHOST_PYTHON_EXECUTABLE={executable}");
    println!("cargo:rustc-env=WSGIHOST_PYTHON_VERSION={version}");
}
