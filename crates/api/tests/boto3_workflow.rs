//! The seed workflow with boto3 (`tests/scripts/boto3_workflow.py`): signing, streams, OTA,
//! modelled exceptions (`client.exceptions.*`), presigned V4 URLs and their expiry.

mod common;

#[test]
fn seed_workflow_with_boto3() {
    let server = common::TestServer::start();
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/scripts/boto3_workflow.py");
    let out = server.python(&script);
    assert!(out.contains("boto3 workflow OK"), "{out}");
}
