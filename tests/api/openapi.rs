//! The committed OpenAPI document is the one the code generates.

#[test]
fn the_committed_openapi_document_matches_the_code() {
    let generated = tenantry_server::openapi::pretty_json().unwrap();
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/openapi/openapi.json");
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        committed == generated,
        "openapi/openapi.json is stale: run `cargo run -p tenantry-server -- openapi > openapi/openapi.json`"
    );
}
