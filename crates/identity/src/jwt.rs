//! Access tokens: short-lived JWTs signed with Ed25519 (`alg: EdDSA`), verifiable by anyone
//! from the public key published at `/.well-known/jwks.json`.
//!
//! The `kid` is the key's RFC 7638 thumbprint, so it changes exactly when the key does.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::Utc;
use ed25519_dalek::SigningKey;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use tenantry_kernel::crypto::sha256;

/// The claims Tenantry puts in an access token.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    /// Issuer: the server's public URL.
    pub iss: String,
    /// Subject: the user id.
    pub sub: String,
    /// The tenant the token acts in.
    pub tid: String,
    /// The session (refresh-token family) it belongs to.
    pub sid: String,
    /// Issued at (seconds since the epoch).
    pub iat: i64,
    /// Expires at (seconds since the epoch).
    pub exp: i64,
    /// Unique token id.
    pub jti: String,
    /// The location the token acts in, when one was chosen at sign-in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lid: Option<String>,
}

/// Signs and verifies access tokens with one Ed25519 key.
pub struct TokenSigner {
    kid: String,
    encoding: EncodingKey,
    decoding: DecodingKey,
    public_x: String,
    issuer: String,
    ttl_secs: i64,
    validation: Validation,
    /// Tokens whose signature checked out, by their SHA-256, until they expire: a client
    /// sends the same token for its 15 minutes, and the Ed25519 check is the dearest step of
    /// authenticating it. Only the signature is remembered; the session is read on every
    /// request, so a revocation takes effect on the next one.
    verified: std::sync::Mutex<std::collections::HashMap<[u8; 32], AccessClaims>>,
}

/// The most verified tokens remembered; past it, expired ones go, and if that is not enough,
/// all (they are verified again on their next use).
const VERIFIED_CAPACITY: usize = 16_384;

impl std::fmt::Debug for TokenSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSigner")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

/// Seconds of clock difference tolerated on `exp`, `nbf` and `iat`: servers behind one load
/// balancer disagree by milliseconds, not minutes.
const LEEWAY_SECS: u64 = 5;

/// PKCS#8 v1 prefix for an Ed25519 private key (RFC 8410 §7); the 32-byte seed follows.
const PKCS8_ED25519_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];

impl TokenSigner {
    /// A signer for the Ed25519 key with this 32-byte seed.
    #[must_use]
    pub fn from_seed(seed: &[u8; 32], issuer: &str, ttl_secs: i64) -> Self {
        let public = SigningKey::from_bytes(seed).verifying_key().to_bytes();
        let public_x = URL_SAFE_NO_PAD.encode(public);
        // RFC 7638: SHA-256 over the required members in lexicographic order, no spaces.
        let thumbprint = format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{public_x}"}}"#);
        let kid = URL_SAFE_NO_PAD.encode(sha256(thumbprint.as_bytes()));
        let mut der = PKCS8_ED25519_PREFIX.to_vec();
        der.extend_from_slice(seed);
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_issuer(&[issuer]);
        validation.set_required_spec_claims(&["exp", "iat", "iss", "sub"]);
        validation.validate_nbf = true;
        validation.leeway = LEEWAY_SECS;
        Self {
            kid,
            encoding: EncodingKey::from_ed_der(&der),
            decoding: DecodingKey::from_ed_der(&public),
            public_x,
            issuer: issuer.to_owned(),
            ttl_secs,
            validation,
            verified: std::sync::Mutex::new(std::collections::HashMap::new()),
        }
    }

    /// The key id carried in every token header.
    #[must_use]
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// Seconds an access token lives.
    #[must_use]
    pub fn ttl_secs(&self) -> i64 {
        self.ttl_secs
    }

    /// Signs a token for `user` acting in `tenant` through `session`.
    pub fn issue(
        &self,
        user: &str,
        tenant: &str,
        session: &str,
        location: Option<&str>,
    ) -> Result<String, jsonwebtoken::errors::Error> {
        let now = Utc::now().timestamp();
        let claims = AccessClaims {
            iss: self.issuer.clone(),
            sub: user.to_owned(),
            tid: tenant.to_owned(),
            sid: session.to_owned(),
            iat: now,
            exp: now + self.ttl_secs,
            jti: uuid::Uuid::now_v7().to_string(),
            lid: location.map(str::to_owned),
        };
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, &claims, &self.encoding)
    }

    /// Verifies the key id, signature, algorithm, issuer, expiry and not-before, and that the
    /// token was not issued in the future; returns the claims.
    pub fn verify(&self, token: &str) -> Result<AccessClaims, jsonwebtoken::errors::Error> {
        use jsonwebtoken::errors::ErrorKind;
        // A token naming another key (or none) was not signed by this one: refused before the
        // signature is even checked, so a key rotation can never be confused.
        let leeway = i64::try_from(LEEWAY_SECS).unwrap_or(0);
        let now = Utc::now().timestamp();
        let digest: [u8; 32] = sha256(token.as_bytes());
        if let Ok(verified) = self.verified.lock()
            && let Some(claims) = verified.get(&digest)
        {
            // The same bytes passed every check before; only time can have changed since.
            if claims.exp + leeway > now {
                return Ok(claims.clone());
            }
            return Err(ErrorKind::ExpiredSignature.into());
        }
        let header = jsonwebtoken::decode_header(token)?;
        if header.kid.as_deref() != Some(self.kid.as_str()) {
            return Err(ErrorKind::InvalidKeyFormat.into());
        }
        let claims =
            jsonwebtoken::decode::<AccessClaims>(token, &self.decoding, &self.validation)?.claims;
        if claims.iat > now + leeway {
            return Err(ErrorKind::ImmatureSignature.into());
        }
        if let Ok(mut verified) = self.verified.lock() {
            if verified.len() >= VERIFIED_CAPACITY {
                verified.retain(|_, c| c.exp + leeway > now);
                if verified.len() >= VERIFIED_CAPACITY {
                    verified.clear();
                }
            }
            verified.insert(digest, claims.clone());
        }
        Ok(claims)
    }

    /// The JSON Web Key Set publishing the verification key.
    #[must_use]
    pub fn jwks(&self) -> serde_json::Value {
        serde_json::json!({
            "keys": [{
                "kty": "OKP",
                "crv": "Ed25519",
                "x": self.public_x,
                "kid": self.kid,
                "use": "sig",
                "alg": "EdDSA",
            }]
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_verifies_with_the_key_from_the_jwks_alone() {
        let signer = TokenSigner::from_seed(&[7; 32], "https://tenantry.test", 900);
        let token = signer.issue("u", "t", "s", None).unwrap();
        let jwks: jsonwebtoken::jwk::JwkSet = serde_json::from_value(signer.jwks()).unwrap();
        let header = jsonwebtoken::decode_header(&token).unwrap();
        assert_eq!(header.alg, Algorithm::EdDSA);
        let jwk = jwks.find(header.kid.as_deref().unwrap()).unwrap();
        let key = DecodingKey::from_jwk(jwk).unwrap();
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_issuer(&["https://tenantry.test"]);
        let claims = jsonwebtoken::decode::<AccessClaims>(&token, &key, &validation)
            .unwrap()
            .claims;
        assert_eq!(
            (
                claims.sub.as_str(),
                claims.tid.as_str(),
                claims.sid.as_str()
            ),
            ("u", "t", "s")
        );
        assert_eq!(claims.exp - claims.iat, 900);
    }

    #[test]
    fn a_token_signed_by_another_key_is_refused() {
        let ours = TokenSigner::from_seed(&[1; 32], "iss", 900);
        let theirs = TokenSigner::from_seed(&[2; 32], "iss", 900);
        let token = theirs.issue("u", "t", "s", None).unwrap();
        assert!(ours.verify(&token).is_err());
        assert_ne!(ours.kid(), theirs.kid());
    }

    /// The second check of a token comes from what the first verified; bytes that differ in
    /// any place are checked in full (and refused), however often the good token was seen.
    #[test]
    fn a_verified_token_is_remembered_and_nothing_else_rides_on_it() {
        let signer = TokenSigner::from_seed(&[4; 32], "iss", 900);
        let token = signer.issue("u", "t", "s", None).unwrap();
        let first = signer.verify(&token).unwrap();
        assert_eq!(signer.verify(&token).unwrap(), first);
        assert_eq!(signer.verified.lock().unwrap().len(), 1);
        let (head, signature) = token.rsplit_once('.').unwrap();
        let mut forged = signature.as_bytes().to_vec();
        forged[0] = if forged[0] == b'A' { b'B' } else { b'A' };
        let forged = format!("{head}.{}", String::from_utf8(forged).unwrap());
        assert!(signer.verify(&forged).is_err());
        let other_claims = format!("{}.{signature}", token.split('.').next().unwrap());
        assert!(signer.verify(&other_claims).is_err());
        assert_eq!(signer.verified.lock().unwrap().len(), 1);
    }

    #[test]
    fn an_expired_token_is_refused() {
        let signer = TokenSigner::from_seed(&[3; 32], "iss", -60);
        let token = signer.issue("u", "t", "s", None).unwrap();
        assert!(signer.verify(&token).is_err());
    }

    /// Signs `claims` with the signer's own key under `kid`.
    fn forge(signer: &TokenSigner, claims: &serde_json::Value, kid: Option<&str>) -> String {
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = kid.map(str::to_owned);
        jsonwebtoken::encode(&header, claims, &signer.encoding).unwrap()
    }

    #[test]
    fn claims_in_the_future_or_past_and_unknown_keys_are_refused() {
        let signer = TokenSigner::from_seed(&[5; 32], "iss", 900);
        let now = Utc::now().timestamp();
        let claims = |iat: i64, exp: i64, nbf: Option<i64>| {
            let mut c = serde_json::json!({"iss": "iss", "sub": "u", "tid": "t", "sid": "s",
                "jti": "j", "iat": iat, "exp": exp});
            if let Some(nbf) = nbf {
                c["nbf"] = nbf.into();
            }
            c
        };
        let kid = signer.kid().to_owned();
        let good = forge(&signer, &claims(now, now + 900, Some(now)), Some(&kid));
        assert!(signer.verify(&good).is_ok());
        for (what, token) in [
            (
                "nbf ahead",
                forge(&signer, &claims(now, now + 900, Some(now + 60)), Some(&kid)),
            ),
            (
                "iat ahead",
                forge(&signer, &claims(now + 60, now + 900, None), Some(&kid)),
            ),
            (
                "expired 30 s ago",
                forge(&signer, &claims(now - 930, now - 30, None), Some(&kid)),
            ),
            (
                "unknown kid",
                forge(&signer, &claims(now, now + 900, None), Some("other")),
            ),
            (
                "no kid",
                forge(&signer, &claims(now, now + 900, None), None),
            ),
        ] {
            assert!(signer.verify(&token).is_err(), "{what} was accepted");
        }
    }

    #[test]
    fn a_token_from_another_issuer_is_refused() {
        let a = TokenSigner::from_seed(&[4; 32], "https://a", 900);
        let b = TokenSigner::from_seed(&[4; 32], "https://b", 900);
        assert!(b.verify(&a.issue("u", "t", "s", None).unwrap()).is_err());
    }
}
