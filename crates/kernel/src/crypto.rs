//! Token generation, hashing and constant-time comparison.
//!
//! Bearer secrets (refresh tokens, verification tokens) are 256-bit random values shown to the
//! client once; only their SHA-256 is stored, and they are found again by looking the hash up
//! through a unique index — no scan, no per-row comparison.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Random bytes could not be drawn from the operating system.
#[derive(Debug, thiserror::Error)]
#[error("the system random number generator failed: {0}")]
pub struct RandomError(String);

/// Fills a fixed-size array from the operating system's CSPRNG.
pub fn random_bytes<const N: usize>() -> Result<[u8; N], RandomError> {
    let mut buf = [0u8; N];
    getrandom::fill(&mut buf).map_err(|e| RandomError(e.to_string()))?;
    Ok(buf)
}

/// A new 256-bit secret, base64url without padding (43 characters), and its stored hash.
pub fn new_token() -> Result<(String, String), RandomError> {
    let raw = URL_SAFE_NO_PAD.encode(random_bytes::<32>()?);
    let hash = token_hash(&raw);
    Ok((raw, hash))
}

/// The stored form of a bearer secret: lowercase hex SHA-256 of its text.
#[must_use]
pub fn token_hash(raw: &str) -> String {
    hex(&Sha256::digest(raw.as_bytes()))
}

/// SHA-256 of `data`.
#[must_use]
pub fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

/// Lowercase hexadecimal form of `bytes`.
#[must_use]
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

/// Compares two secrets without leaking where they differ through timing.
#[must_use]
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_tokens_carry_256_bits_and_hash_to_their_stored_form() {
        let (raw, hash) = new_token().unwrap();
        assert_eq!(raw.len(), 43);
        assert_eq!(hash, token_hash(&raw));
        assert_eq!(hash.len(), 64);
        let (other, _) = new_token().unwrap();
        assert_ne!(raw, other);
    }

    #[test]
    fn token_hash_is_sha256_hex() {
        assert_eq!(
            token_hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn constant_time_eq_tells_equal_from_unequal() {
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(!constant_time_eq(b"secret", b"secreT"));
        assert!(!constant_time_eq(b"secret", b"secret2"));
    }
}
