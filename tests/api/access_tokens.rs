//! Access tokens are accepted only as Tenantry issues them: its key id, no claim from the
//! future, expiry with seconds of leeway, not a minute.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tenantry_platform::Settings;

use crate::helpers::{TestApp, assert_problem};
use crate::on_both_databases;

const SEED: [u8; 32] = [42; 32];

fn known_key(s: &mut Settings) {
    s.signing_key = Some(STANDARD.encode(SEED).into());
}

/// Signs `claims` with the server's own key (RFC 8410 PKCS#8 wrapping of the seed).
fn sign(claims: &Value, kid: Option<&str>) -> String {
    let mut der = vec![
        0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04,
        0x20,
    ];
    der.extend_from_slice(&SEED);
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = kid.map(str::to_owned);
    jsonwebtoken::encode(&header, claims, &EncodingKey::from_ed_der(&der)).unwrap()
}

async fn forged_claims_and_unknown_keys_are_refused(app: TestApp) {
    let account = app.register("ada@example.com", "Engines").await;
    let payload = account.access_token.split('.').nth(1).unwrap();
    let issued: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    let jwks: Value = app.get_public_json("/.well-known/jwks.json").await;
    let kid = jwks["keys"][0]["kid"].as_str().unwrap().to_owned();
    let now = chrono::Utc::now().timestamp();
    let with = |changes: Value| {
        let mut claims = issued.clone();
        for (k, v) in changes.as_object().unwrap() {
            claims[k] = v.clone();
        }
        claims
    };

    // The same claims re-signed are good: the forging is faithful.
    let same = sign(&issued, Some(&kid));
    assert_eq!(app.me(&same).await.status(), StatusCode::OK);

    for (what, token) in [
        (
            "nbf a minute ahead",
            sign(&with(json!({"nbf": now + 60})), Some(&kid)),
        ),
        (
            "iat a minute ahead",
            sign(&with(json!({"iat": now + 60})), Some(&kid)),
        ),
        (
            "expired 30 s ago",
            sign(
                &with(json!({"iat": now - 930, "exp": now - 30})),
                Some(&kid),
            ),
        ),
        ("a kid naming no key", sign(&issued, Some("not-our-key"))),
        ("no kid", sign(&issued, None)),
    ] {
        let res = app.me(&token).await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "{what}");
        assert_problem(res, StatusCode::UNAUTHORIZED, "invalid_token").await;
    }
}
on_both_databases!(
    forged_claims_and_unknown_keys_are_refused,
    settings = super::known_key
);
