//! Secrets at rest (second-factor seeds, webhook signing secrets): sealed with AES-256-GCM
//! under the installation's encryption key, bound to what they belong to.
//!
//! A sealed value is `version (1 byte) ‖ nonce (12 bytes) ‖ ciphertext ‖ tag (16 bytes)`. The
//! nonce is random per seal. The caller's associated data (for instance `totp:<user id>`) is
//! authenticated but not stored, so a sealed value copied onto another row does not open.

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};

use crate::crypto::random_bytes;

/// The format version written in the first byte.
const VERSION: u8 = 1;

/// A sealed value could not be made or opened.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SealError {
    /// The value was altered, sealed under another key, or for other associated data.
    #[error("the sealed value does not open with this key and associated data")]
    Rejected,
    /// The system random number generator failed.
    #[error("no random nonce: {0}")]
    Random(String),
}

/// Seals and opens secrets with one 256-bit key.
pub struct Sealer {
    key: LessSafeKey,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer(..)")
    }
}

impl Sealer {
    /// A sealer over `key` (the configured `encryption_key`).
    #[must_use]
    pub fn new(key: &[u8; 32]) -> Self {
        let unbound = UnboundKey::new(&AES_256_GCM, key)
            .unwrap_or_else(|_| unreachable!("a 32-byte key is always a valid AES-256 key"));
        Self {
            key: LessSafeKey::new(unbound),
        }
    }

    /// Seals `plaintext`, bound to `context`.
    pub fn seal(&self, plaintext: &[u8], context: &str) -> Result<Vec<u8>, SealError> {
        let nonce_bytes =
            random_bytes::<NONCE_LEN>().map_err(|e| SealError::Random(e.to_string()))?;
        let mut in_out = plaintext.to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce_bytes),
                Aad::from(context.as_bytes()),
                &mut in_out,
            )
            .map_err(|_| SealError::Rejected)?;
        let mut out = Vec::with_capacity(1 + NONCE_LEN + in_out.len());
        out.push(VERSION);
        out.extend_from_slice(&nonce_bytes);
        out.extend_from_slice(&in_out);
        Ok(out)
    }

    /// Opens a value [`Self::seal`] made for the same `context`.
    pub fn open(&self, sealed: &[u8], context: &str) -> Result<Vec<u8>, SealError> {
        let (&version, rest) = sealed.split_first().ok_or(SealError::Rejected)?;
        if version != VERSION || rest.len() < NONCE_LEN {
            return Err(SealError::Rejected);
        }
        let (nonce, body) = rest.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| SealError::Rejected)?;
        let mut in_out = body.to_vec();
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(context.as_bytes()), &mut in_out)
            .map_err(|_| SealError::Rejected)?;
        Ok(plain.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_value_opens_only_with_its_key_and_context() {
        let sealer = Sealer::new(&[7; 32]);
        let sealed = sealer.seal(b"JBSWY3DPEHPK3PXP", "totp:ada").unwrap();
        assert_eq!(
            sealer.open(&sealed, "totp:ada").unwrap(),
            b"JBSWY3DPEHPK3PXP"
        );
        assert_eq!(sealer.open(&sealed, "totp:eve"), Err(SealError::Rejected));
        assert_eq!(
            Sealer::new(&[8; 32]).open(&sealed, "totp:ada"),
            Err(SealError::Rejected)
        );
        let mut tampered = sealed.clone();
        let last = tampered.len() - 1;
        tampered[last] ^= 1;
        assert_eq!(sealer.open(&tampered, "totp:ada"), Err(SealError::Rejected));
        assert_eq!(
            sealer.open(&sealed[..10], "totp:ada"),
            Err(SealError::Rejected)
        );
        assert_eq!(sealer.open(&[], "totp:ada"), Err(SealError::Rejected));
    }

    #[test]
    fn the_same_secret_seals_differently_each_time() {
        let sealer = Sealer::new(&[7; 32]);
        let a = sealer.seal(b"secret", "ctx").unwrap();
        let b = sealer.seal(b"secret", "ctx").unwrap();
        assert_ne!(a, b);
        assert_eq!(a.len(), 1 + 12 + 6 + 16);
        assert!(!a.windows(6).any(|w| w == b"secret"));
    }
}
