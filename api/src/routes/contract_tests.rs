//! The API's contract against the route table: the committed OpenAPI
//! document and `docs/API.md`'s endpoint list are the generated ones, and
//! every route is documented completely.

use std::collections::BTreeSet;

use serde_json::json;

use super::{document, document_json, endpoint_list, table};
use crate::openapi::status_of;

mod tests {
    use super::*;

    /// `docs/openapi.json` is the document this build serves.
    /// `TENANTRY_BLESS=1 cargo test -p tenantry-api contract` rewrites it.
    #[test]
    fn the_committed_document_is_the_generated_one() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/openapi.json");
        let generated = document_json();
        let committed = std::fs::read_to_string(path).unwrap_or_default();
        if committed != generated && std::env::var("TENANTRY_BLESS").is_ok_and(|v| v == "1") {
            std::fs::write(path, &generated).expect("write docs/openapi.json");
            return;
        }
        assert!(
            committed == generated,
            "docs/openapi.json differs from the generated document (TENANTRY_BLESS=1 rewrites it)"
        );
    }

    /// `docs/API.md`'s endpoint list is the route table's.
    /// `TENANTRY_BLESS=1 cargo test -p tenantry-api contract` rewrites it.
    #[test]
    fn the_api_guide_lists_every_endpoint_of_the_table() {
        const START: &str = "<!-- endpoints:start -->\n";
        const END: &str = "<!-- endpoints:end -->";
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/API.md");
        let doc = std::fs::read_to_string(path).expect("docs/API.md");
        let start = doc.find(START).expect("the start marker") + START.len();
        let end = doc.find(END).expect("the end marker");
        let expected = endpoint_list();
        if doc[start..end] != expected && std::env::var("TENANTRY_BLESS").is_ok_and(|v| v == "1") {
            let blessed = format!("{}{expected}{}", &doc[..start], &doc[end..]);
            std::fs::write(path, blessed).expect("write docs/API.md");
            return;
        }
        assert_eq!(
            &doc[start..end],
            expected,
            "docs/API.md's endpoint list differs from the route table (TENANTRY_BLESS=1 rewrites it)"
        );
    }

    #[test]
    fn every_route_of_the_table_is_in_the_document_and_nothing_else() {
        let doc = serde_json::to_value(document()).unwrap();
        let mut in_doc = BTreeSet::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for method in item.as_object().unwrap().keys() {
                if ["get", "post", "put", "patch", "delete"].contains(&method.as_str()) {
                    in_doc.insert(format!("{} {path}", method.to_uppercase()));
                }
            }
        }
        let in_table: BTreeSet<String> = table()
            .into_iter()
            .map(|(method, path, _)| format!("{method} {path}"))
            .collect();
        assert_eq!(in_doc, in_table);
    }

    #[test]
    fn every_operation_says_how_it_succeeds_who_may_call_it_and_how_it_fails() {
        let doc = serde_json::to_value(document()).unwrap();
        let schemas = doc["components"]["schemas"].as_object().unwrap();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                let name = format!("{method} {path}");
                assert!(op["summary"].is_string(), "{name}: no summary");
                assert!(
                    op["description"].as_str().unwrap().starts_with("Access: "),
                    "{name}: no access rule"
                );
                assert!(op["security"].is_array(), "{name}: no security requirement");
                let responses = op["responses"].as_object().unwrap();
                assert!(
                    responses.keys().any(|s| s.starts_with('2')),
                    "{name}: no success response"
                );
                assert!(responses.contains_key("500"), "{name}: errors not listed");
                for (status, response) in responses {
                    if status.starts_with('2') {
                        continue;
                    }
                    for code in response["x-error-codes"].as_array().unwrap() {
                        let code = code.as_str().unwrap();
                        assert_eq!(
                            status_of(code).to_string(),
                            *status,
                            "{name}: {code} under the wrong status"
                        );
                    }
                }
            }
        }
        // Every referenced schema is defined.
        let text = doc.to_string();
        for reference in text.split("\"$ref\":\"#/components/schemas/").skip(1) {
            let name = reference.split('"').next().unwrap();
            assert!(schemas.contains_key(name), "undefined schema {name}");
        }
    }

    #[test]
    fn tenant_routes_take_a_session_or_an_api_key_and_name_their_permission() {
        let doc = serde_json::to_value(document()).unwrap();
        let op = &doc["paths"]["/v1/tenants/{tid}/api-keys"]["post"];
        assert_eq!(op["x-permission"], "apikeys.manage");
        assert_eq!(
            op["security"],
            json!([{ "session": [] }, { "api_key": [] }])
        );
        let public = &doc["paths"]["/v1/auth/login"]["post"];
        assert_eq!(public["security"], json!([{}]));
        let codes = &doc["paths"]["/v1/tenants/{tid}/api-keys"]["post"]["responses"]["403"]
            ["x-error-codes"];
        assert!(codes
            .as_array()
            .unwrap()
            .contains(&json!("missing_permission")));
    }
}
