//! Key material: the Ed25519 seed that signs access tokens and the key that encrypts secrets
//! at rest.
//!
//! Configured keys (`TENANTRY_SIGNING_KEY`, `TENANTRY_ENCRYPTION_KEY`: base64 of 32 bytes)
//! always win. In embedded mode a missing key is generated once into `data_dir/keys/`
//! (owner-only permissions) and reused on every start; in production mode a missing key stops
//! the server, because a key that lives on one machine's disk breaks every other instance.

use std::io::Write as _;
use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use secrecy::{ExposeSecret, SecretString};

use crate::{Mode, Settings};

/// Keys loaded at start.
pub struct KeyMaterial {
    /// Seed of the access-token signing key.
    pub signing_seed: [u8; 32],
    /// Symmetric key for secrets at rest.
    pub encryption_key: [u8; 32],
    /// Whether any key was generated (embedded mode only).
    pub generated: bool,
}

impl std::fmt::Debug for KeyMaterial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyMaterial")
            .field("generated", &self.generated)
            .finish_non_exhaustive()
    }
}

/// A key could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// Production mode without a configured key.
    #[error("production mode requires {0} to be configured (base64 of 32 random bytes)")]
    MissingInProduction(&'static str),
    /// A configured or stored key is not base64 of 32 bytes.
    #[error("{0} must be base64 of exactly 32 bytes")]
    Malformed(&'static str),
    /// The key file could not be read or written.
    #[error("key file {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The system random generator failed.
    #[error(transparent)]
    Random(#[from] tenantry_kernel::crypto::RandomError),
}

/// Loads (or, in embedded mode, creates) both keys.
pub fn load(settings: &Settings) -> Result<KeyMaterial, KeyError> {
    let dir = settings.data_dir.join("keys");
    let (signing_seed, g1) = one(
        settings,
        settings.signing_key.as_ref(),
        "TENANTRY_SIGNING_KEY",
        &dir.join("signing.key"),
    )?;
    let (encryption_key, g2) = one(
        settings,
        settings.encryption_key.as_ref(),
        "TENANTRY_ENCRYPTION_KEY",
        &dir.join("encryption.key"),
    )?;
    Ok(KeyMaterial {
        signing_seed,
        encryption_key,
        generated: g1 || g2,
    })
}

fn one(
    settings: &Settings,
    configured: Option<&SecretString>,
    name: &'static str,
    file: &Path,
) -> Result<([u8; 32], bool), KeyError> {
    if let Some(secret) = configured {
        return decode(secret.expose_secret(), name).map(|k| (k, false));
    }
    if settings.mode == Mode::Production {
        return Err(KeyError::MissingInProduction(name));
    }
    let io = |source| KeyError::Io {
        path: file.display().to_string(),
        source,
    };
    match std::fs::read_to_string(file) {
        Ok(text) => return decode(&text, name).map(|k| (k, false)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io(e)),
    }
    let key = tenantry_kernel::crypto::random_bytes::<32>()?;
    if let Some(parent) = file.parent() {
        std::fs::create_dir_all(parent).map_err(io)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut f = options.open(file).map_err(io)?;
    f.write_all(STANDARD.encode(key).as_bytes()).map_err(io)?;
    f.sync_all().map_err(io)?;
    tracing::info!(file = %file.display(), "generated {name} for the embedded mode");
    Ok((key, true))
}

fn decode(text: &str, name: &'static str) -> Result<[u8; 32], KeyError> {
    STANDARD
        .decode(text.trim())
        .ok()
        .and_then(|v| <[u8; 32]>::try_from(v).ok())
        .ok_or(KeyError::Malformed(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(dir: &Path, mode: Mode) -> Settings {
        Settings {
            data_dir: dir.to_path_buf(),
            mode,
            ..Settings::default()
        }
    }

    #[test]
    fn embedded_mode_generates_keys_once_and_reuses_them() {
        let dir = tempfile::tempdir().unwrap();
        let first = load(&settings(dir.path(), Mode::Embedded)).unwrap();
        assert!(first.generated);
        let again = load(&settings(dir.path(), Mode::Embedded)).unwrap();
        assert!(!again.generated);
        assert_eq!(first.signing_seed, again.signing_seed);
        assert_ne!(first.signing_seed, first.encryption_key);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("keys/signing.key"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn production_mode_refuses_to_start_without_configured_keys() {
        let dir = tempfile::tempdir().unwrap();
        // Even a key file left by an embedded run does not count.
        load(&settings(dir.path(), Mode::Embedded)).unwrap();
        let err = load(&settings(dir.path(), Mode::Production)).unwrap_err();
        assert!(matches!(
            err,
            KeyError::MissingInProduction("TENANTRY_SIGNING_KEY")
        ));
    }

    #[test]
    fn configured_keys_must_be_32_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = settings(dir.path(), Mode::Production);
        s.signing_key = Some(SecretString::from(STANDARD.encode([9u8; 32])));
        s.encryption_key = Some(SecretString::from(STANDARD.encode([1u8; 16])));
        assert!(matches!(
            load(&s).unwrap_err(),
            KeyError::Malformed("TENANTRY_ENCRYPTION_KEY")
        ));
        s.encryption_key = Some(SecretString::from(STANDARD.encode([1u8; 32])));
        let keys = load(&s).unwrap();
        assert_eq!(keys.signing_seed, [9u8; 32]);
        assert!(!keys.generated);
    }
}
