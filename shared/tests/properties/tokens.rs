//! Bearer tokens: random and garbled JWTs, `alg: none`, other algorithms and keys are refused
//! with a reason; a minted token verifies to its claims.

use std::collections::HashMap;

use auditrail_shared::auth::{Authenticator, Role};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use proptest::prelude::*;
use serde_json::json;

use crate::common::{config, mutate, nasty_text};

fn auth() -> Authenticator {
    Authenticator::local(b"a secret of at least thirty-two bytes!!")
}

fn unsigned(header: serde_json::Value, claims: serde_json::Value, sig: &str) -> String {
    format!("{}.{}.{sig}", B64.encode(header.to_string()), B64.encode(claims.to_string()))
}

fn claims() -> impl Strategy<Value = serde_json::Value> {
    ("[a-z0-9_.-]{1,20}", "[a-z]{1,10}", any::<i64>()).prop_map(|(tenant, sub, exp)| {
        json!({"sub": sub, "tenant_id": tenant, "roles": ["dpo", "tenant_admin"], "iss": "auditrail-local",
               "aud": "auditrail", "iat": 0, "exp": exp})
    })
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn random_headers_are_refused_with_a_reason(h in prop_oneof![nasty_text(), nasty_text().prop_map(|t| format!("Bearer {t}")), "Bearer [A-Za-z0-9_-]{0,30}\\.[A-Za-z0-9_-]{0,30}\\.[A-Za-z0-9_-]{0,30}"]) {
        let e = auth().verify_bearer(Some(&h)).unwrap_err();
        prop_assert!(!e.reason.is_empty());
    }

    #[test]
    fn garbled_tokens_are_refused(tenant in "[a-z]{1,10}", ttl in 60i64..100_000) {
        let a = auth();
        let t = a.mint(&tenant, "u1", Some("jdoe"), &[Role::Dpo], ttl).unwrap();
        let verified = a.verify_bearer(Some(&format!("Bearer {t}"))).unwrap();
        prop_assert_eq!(&verified.tenant_id, &tenant);
        let runner_cases: Vec<String> = {
            let mut out = Vec::new();
            for i in (0..t.len()).step_by(7) {
                let mut b = t.clone().into_bytes();
                b[i] = if b[i] == b'A' { b'B' } else { b'A' };
                out.push(String::from_utf8(b).unwrap());
            }
            out
        };
        for g in runner_cases {
            prop_assume!(g != t);
            let r = a.verify_bearer(Some(&format!("Bearer {g}")));
            prop_assert!(r.is_err() || r.as_ref().unwrap().tenant_id == tenant, "{g}: {r:?}");
        }
    }

    #[test]
    fn mutated_tokens_never_panic(t in "[a-z]{1,5}".prop_flat_map(|tenant| {
        let t = auth().mint(&tenant, "u1", None, &[Role::Agent], 600).unwrap();
        mutate(t)
    })) {
        let _ = auth().verify_bearer(Some(&format!("Bearer {t}")));
    }

    #[test]
    fn alg_none_and_foreign_algorithms_are_refused(c in claims(), alg in prop::sample::select(vec!["none", "None", "NONE", "HS512", "RS256", "ES256", "", "HS256 "]), sig in prop_oneof![Just(String::new()), "[A-Za-z0-9_-]{1,43}"]) {
        let token = unsigned(json!({"alg": alg, "typ": "JWT"}), c, &sig);
        let e = auth().verify_bearer(Some(&format!("Bearer {token}"))).unwrap_err();
        prop_assert!(!e.reason.is_empty());
    }

    #[test]
    fn a_token_signed_with_another_key_is_refused(tenant in "[a-z]{1,10}") {
        let other = Authenticator::local(b"another secret of at least 32 bytes!!!");
        let t = other.mint(&tenant, "u1", None, &[Role::TenantAdmin], 600).unwrap();
        let refused = auth().verify_bearer(Some(&format!("Bearer {t}"))).is_err();
        prop_assert!(refused);
    }

    #[test]
    fn gateway_claims_of_any_shape(m in prop::collection::hash_map(prop::sample::select(vec!["tenant_id", "sub", "roles", "username", "preferred_username", "x"]).prop_map(str::to_owned), nasty_text(), 0..5)) {
        let claims: HashMap<String, String> = m;
        if let Err(e) = Authenticator::from_gateway_claims(&claims) {
            prop_assert!(!e.reason.is_empty());
        }
    }
}

#[test]
fn minting_with_a_huge_ttl_does_not_overflow() {
    let a = auth();
    assert!(a.mint("acme", "u1", None, &[Role::Agent], i64::MAX).is_ok());
}
