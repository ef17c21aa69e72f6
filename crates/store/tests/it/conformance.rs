//! The conformance suite on the embedded backend (SQLite + local files).

use std::sync::Arc;

use otastream_store::{Backend, Store, conformance};

#[test]
fn sqlite_backend_passes_the_conformance_suite() {
    let parent = tempfile::tempdir().expect("tempdir");
    let mut n = 0;
    conformance::run_all(&mut || -> Arc<dyn Backend> {
        n += 1;
        Arc::new(Store::open(&parent.path().join(n.to_string())).expect("open"))
    });
}
