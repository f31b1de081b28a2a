//! Unit tests of the SCIM connector.

use super::*;

#[test]
fn filters_quote_and_booleans_read_like_entra() {
    assert_eq!(quote(r#"a"b\c"#), r#""a\"b\\c""#);
    assert_eq!(scim_bool(Some(&json!("False"))), Some(false));
    assert_eq!(scim_bool(Some(&json!(true))), Some(true));
    assert!(is_member(&json!({"members":[{"value":"u1"}]}), "u1"));
    assert!(!is_member(&json!({}), "u1"));
    assert!(user_name_is(
        &json!({"userName": "Henry@Acme.test"}),
        "henry@acme.TEST"
    ));
}
