//! The wsgihost library links libpython: these binaries find it the way the server does.
fn main() {
    pyo3_build_config::add_libpython_rpath_link_args();
}
