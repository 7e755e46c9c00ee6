//! Two-factor authentication over HTTP: enrolling and confirming a TOTP factor, signing in
//! with a code or a backup code (each refused the second time), clock drift, the attempt
//! limit, disabling, and a tenant policy that requires a factor.

use hmac::{Hmac, Mac};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sha1::Sha1;

use crate::helpers::{Account, TestApp, assert_problem};
use crate::on_both_databases;

/// An RFC 6238 authenticator, written from the RFC: HMAC-SHA-1 over the 30-second step,
/// dynamic truncation, six digits.
pub(crate) fn code_at(secret_base32: &str, unix: u64) -> String {
    let key = base32_decode(secret_base32);
    let mut mac = Hmac::<Sha1>::new_from_slice(&key).unwrap();
    mac.update(&(unix / 30).to_be_bytes());
    let digest = mac.finalize().into_bytes();
    let offset = usize::from(digest[19] & 0x0f);
    let bin = u32::from_be_bytes([
        digest[offset] & 0x7f,
        digest[offset + 1],
        digest[offset + 2],
        digest[offset + 3],
    ]);
    format!("{:06}", bin % 1_000_000)
}

fn base32_decode(s: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let (mut bits, mut value, mut out) = (0u32, 0u32, Vec::new());
    for c in s.trim_end_matches('=').bytes() {
        let v = ALPHABET.iter().position(|&a| a == c).unwrap();
        value = (value << 5) | u32::try_from(v).unwrap();
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push(u8::try_from((value >> bits) & 0xff).unwrap());
        }
    }
    out
}

pub(crate) fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Enrolls and confirms a factor for `who`, answering the secret and the backup codes. The
/// confirming code is the current step's.
pub(crate) async fn enable(app: &TestApp, who: &Account) -> (String, Vec<String>) {
    let res = app
        .post_authed("/api/v1/users/me/mfa/totp", &who.access_token, None)
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let body: Value = res.json().await.unwrap();
    let secret = body["secret"].as_str().unwrap().to_owned();
    let res = app
        .post_authed(
            "/api/v1/users/me/mfa/totp/confirm",
            &who.access_token,
            Some(json!({"code": code_at(&secret, now())})),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let codes: Vec<String> = res.json::<Value>().await.unwrap()["backup_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    (secret, codes)
}

/// Signs in with a password, expecting the second-factor challenge, and answers its token.
async fn challenge(app: &TestApp, who: &Account) -> String {
    let res = app.login(&who.email, &who.password).await;
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["mfa_required"], true, "{body}");
    assert!(body.get("access_token").is_none());
    body["mfa_token"].as_str().unwrap().to_owned()
}

async fn verify(app: &TestApp, token: &str, factor: Value) -> reqwest::Response {
    let mut body = factor;
    body["mfa_token"] = json!(token);
    app.post_json("/api/v1/auth/mfa/verify", &body).await
}

async fn sign_in_takes_a_code_or_a_backup_code_and_neither_works_twice(app: TestApp) {
    let owner = app.register("owner@example.com", "Acme").await;
    let res = app
        .post_authed("/api/v1/users/me/mfa/totp", &owner.access_token, None)
        .await;
    let enrollment: Value = res.json().await.unwrap();
    let uri = enrollment["otpauth_uri"].as_str().unwrap();
    assert!(uri.starts_with("otpauth://totp/Tenantry:owner%40example.com?secret="));
    assert!(uri.contains("&issuer=Tenantry&algorithm=SHA1&digits=6&period=30"));
    // Unconfirmed, it does not guard sign-in yet; a wrong code does not confirm it.
    let status = app
        .get_json("/api/v1/users/me/mfa", &owner.access_token)
        .await;
    assert_eq!(status["totp"]["pending"], true);
    assert_eq!(status["totp"]["enabled"], false);
    assert_problem(
        app.post_authed(
            "/api/v1/users/me/mfa/totp/confirm",
            &owner.access_token,
            Some(json!({"code": "000000"})),
        )
        .await,
        StatusCode::FORBIDDEN,
        "invalid_mfa_proof",
    )
    .await;
    let res = app.login(&owner.email, &owner.password).await;
    assert!(res.json::<Value>().await.unwrap()["access_token"].is_string());

    let (secret, backup) = enable(&app, &owner).await;
    assert_eq!(backup.len(), 10);
    let status = app
        .get_json("/api/v1/users/me/mfa", &owner.access_token)
        .await;
    assert_eq!(status["totp"]["enabled"], true);
    assert_eq!(status["backup_codes_remaining"], 10);
    assert_problem(
        app.post_authed("/api/v1/users/me/mfa/totp", &owner.access_token, None)
            .await,
        StatusCode::CONFLICT,
        "mfa_already_enabled",
    )
    .await;

    // The next step's code (one step of clock drift) signs in…
    let next = code_at(&secret, now() + 30);
    let token = challenge(&app, &owner).await;
    let res = verify(&app, &token, json!({"code": next})).await;
    assert_eq!(res.status(), StatusCode::OK);
    let tokens: Value = res.json().await.unwrap();
    assert_eq!(
        app.me(tokens["access_token"].as_str().unwrap())
            .await
            .status(),
        StatusCode::OK
    );
    // …once: the challenge is spent, and the code is refused on a new one.
    assert_problem(
        verify(&app, &token, json!({"code": next})).await,
        StatusCode::UNAUTHORIZED,
        "invalid_mfa_token",
    )
    .await;
    let token = challenge(&app, &owner).await;
    assert_problem(
        verify(&app, &token, json!({"code": next})).await,
        StatusCode::UNAUTHORIZED,
        "invalid_mfa_code",
    )
    .await;
    // An older step's code is refused too once a later one was used.
    assert_problem(
        verify(&app, &token, json!({"code": code_at(&secret, now())})).await,
        StatusCode::UNAUTHORIZED,
        "invalid_mfa_code",
    )
    .await;

    // A backup code works once, in any case and spacing.
    let res = verify(
        &app,
        &token,
        json!({"backup_code": format!(" {} ", backup[0].to_uppercase())}),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    let token = challenge(&app, &owner).await;
    assert_problem(
        verify(&app, &token, json!({"backup_code": backup[0]})).await,
        StatusCode::UNAUTHORIZED,
        "invalid_mfa_code",
    )
    .await;
    assert_problem(
        verify(
            &app,
            &token,
            json!({"code": "123456", "backup_code": backup[1]}),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    let status = app
        .get_json("/api/v1/users/me/mfa", &owner.access_token)
        .await;
    assert_eq!(status["backup_codes_remaining"], 9);

    // Five wrong codes end a challenge, even for the right code after them.
    let token = challenge(&app, &owner).await;
    for _ in 0..5 {
        assert_problem(
            verify(&app, &token, json!({"backup_code": "wrong-guess"})).await,
            StatusCode::UNAUTHORIZED,
            "invalid_mfa_code",
        )
        .await;
    }
    assert_problem(
        verify(&app, &token, json!({"backup_code": backup[1]})).await,
        StatusCode::UNAUTHORIZED,
        "invalid_mfa_token",
    )
    .await;

    // New backup codes replace the old; disabling needs the password (or a code).
    let res = app
        .post_authed(
            "/api/v1/users/me/mfa/backup-codes",
            &owner.access_token,
            Some(json!({"password": owner.password})),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let fresh: Value = res.json().await.unwrap();
    assert_ne!(fresh["backup_codes"][0], backup[1].as_str());
    let token = challenge(&app, &owner).await;
    assert_problem(
        verify(&app, &token, json!({"backup_code": backup[1]})).await,
        StatusCode::UNAUTHORIZED,
        "invalid_mfa_code",
    )
    .await;
    assert_problem(
        app.post_authed(
            "/api/v1/users/me/mfa/totp/disable",
            &owner.access_token,
            Some(json!({"password": "not the password"})),
        )
        .await,
        StatusCode::FORBIDDEN,
        "invalid_mfa_proof",
    )
    .await;
    let res = app
        .post_authed(
            "/api/v1/users/me/mfa/totp/disable",
            &owner.access_token,
            Some(json!({"password": owner.password})),
        )
        .await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let res = app.login(&owner.email, &owner.password).await;
    assert!(res.json::<Value>().await.unwrap()["access_token"].is_string());

    let actions: Vec<String> = {
        use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
        use tenantry_audit::entity as audit_log;
        audit_log::Entity::find()
            .filter(audit_log::Column::Action.starts_with("mfa."))
            .order_by_asc(audit_log::Column::Id)
            .all(&app.platform.db)
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.action)
            .collect()
    };
    assert_eq!(
        actions.first().map(String::as_str),
        Some("mfa.totp_enrolled")
    );
    for expected in [
        "mfa.totp_confirmed",
        "mfa.verified",
        "mfa.verify_failed",
        "mfa.backup_codes_regenerated",
        "mfa.totp_disabled",
    ] {
        assert!(
            actions.iter().any(|a| a == expected),
            "{expected}: {actions:?}"
        );
    }
}
on_both_databases!(sign_in_takes_a_code_or_a_backup_code_and_neither_works_twice);

async fn a_tenant_requiring_mfa_gives_members_without_it_only_enrollment(app: TestApp) {
    let owner = app.register("owner@example.com", "Acme").await;
    let member = app
        .join(&owner, "member@example.com", "Member", "member")
        .await;
    let res = app
        .put_authed(
            "/api/v1/tenants/current/settings",
            &owner.access_token,
            &json!({"security": {"require_mfa": true}}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);

    // Tokens issued from now on carry the policy: at sign-in…
    let res = app.login(&member.email, &member.password).await;
    let tokens: Value = res.json().await.unwrap();
    let limited = tokens["access_token"].as_str().unwrap().to_owned();
    assert_problem(
        app.get_authed("/api/v1/users", &limited).await,
        StatusCode::FORBIDDEN,
        "mfa_enrollment_required",
    )
    .await;
    assert_eq!(app.me(&limited).await.status(), StatusCode::OK);
    // …and at refresh of a session opened before the policy.
    let res = app.refresh(&owner.refresh_token).await;
    let refreshed: Value = res.json().await.unwrap();
    let owner_limited = refreshed["access_token"].as_str().unwrap();
    assert_problem(
        app.get_authed("/api/v1/tenants/current", owner_limited)
            .await,
        StatusCode::FORBIDDEN,
        "mfa_enrollment_required",
    )
    .await;

    // Enrolling on the limited session lifts the limit for that session at once.
    let limited_account = Account {
        access_token: limited.clone(),
        ..member
    };
    enable(&app, &limited_account).await;
    assert_eq!(
        app.get_authed("/api/v1/users", &limited).await.status(),
        StatusCode::OK
    );
    // From now on the member signs in with a code.
    let token = challenge(&app, &limited_account).await;
    assert!(!token.is_empty());
}
on_both_databases!(a_tenant_requiring_mfa_gives_members_without_it_only_enrollment);
