//! The signer's SecretConnection identity: an Ed25519 key the bridge makes on first use and
//! keeps in the pawl home (`cometbft-identity.key`, mode 0600, the 32-byte seed in base64).
//! It only authenticates the connection to the node — it signs no vote — so it lives on the
//! host. Its node id (the first 20 bytes of SHA-256 of the public key, hex) is printed by
//! `pawl cometbft identity` and logged when `pawl serve` starts; the secret never is.

use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use base64::Engine as _;
use cometbft_p2p::IdentitySecret;
use zeroize::Zeroizing;

/// The identity key's file name in the pawl home.
pub const FILE_NAME: &str = "cometbft-identity.key";

/// The default identity key path for `home`.
pub fn default_path(home: &Path) -> PathBuf {
    home.join(FILE_NAME)
}

/// The identity key file of `entry`: its `identity_key` (relative to the home), or the
/// default.
pub fn path_of(entry: &crate::config::CometEntry, home: &Path) -> PathBuf {
    match &entry.identity_key {
        Some(path) => home.join(path),
        None => default_path(home),
    }
}

/// Why the identity key could not be had.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// Reading or creating the file failed.
    #[error("identity key {path}: {source}")]
    Io {
        /// File.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// The file does not hold a base64 32-byte seed.
    #[error("identity key {0}: not a base64 32-byte Ed25519 seed")]
    Format(PathBuf),
    /// Others than the owner may read the file.
    #[error("identity key {0}: readable by others than its owner (chmod 600)")]
    Permissions(PathBuf),
}

/// Load the identity key at `path`, making it (mode 0600) when there is none.
pub fn load_or_create(path: &Path) -> Result<IdentitySecret, IdentityError> {
    let io = |source| IdentityError::Io {
        path: path.to_path_buf(),
        source,
    };
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let text = Zeroizing::new(text);
            let mode = std::fs::metadata(path).map_err(io)?.permissions().mode();
            if mode & 0o077 != 0 {
                return Err(IdentityError::Permissions(path.to_path_buf()));
            }
            let seed = base64::engine::general_purpose::STANDARD
                .decode(text.trim())
                .map(Zeroizing::new)
                .map_err(|_| IdentityError::Format(path.to_path_buf()))?;
            let seed: &[u8; 32] = seed
                .as_slice()
                .try_into()
                .map_err(|_| IdentityError::Format(path.to_path_buf()))?;
            Ok(IdentitySecret::from_bytes(seed))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = IdentitySecret::generate(&mut cometbft_p2p::rand_core::OsRng);
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(io)?;
            }
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)
                .map_err(io)?;
            let text = Zeroizing::new(format!(
                "{}\n",
                base64::engine::general_purpose::STANDARD.encode(key.to_bytes())
            ));
            file.write_all(text.as_bytes()).map_err(io)?;
            file.sync_all().map_err(io)?;
            Ok(key)
        }
        Err(e) => Err(io(e)),
    }
}

/// The node id of `key` (lower-case hex of the first 20 bytes of SHA-256 of its public key),
/// as CometBFT writes node ids.
pub fn node_id(key: &IdentitySecret) -> String {
    cometbft_p2p::PublicKey::from(key).peer_id().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn made_once_owner_only_then_read_back() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("sub").join(FILE_NAME);
        let made = load_or_create(&path).expect("made");
        let mode = std::fs::metadata(&path).expect("file").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let again = load_or_create(&path).expect("read");
        assert_eq!(made.to_bytes(), again.to_bytes());
        assert_eq!(node_id(&made).len(), 40);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        assert!(matches!(
            load_or_create(&path),
            Err(IdentityError::Permissions(_))
        ));
    }

    #[test]
    fn node_id_is_sha256_of_the_public_key_cut_to_20_bytes() {
        use sha2::Digest as _;
        let key = IdentitySecret::from_bytes(&[7; 32]);
        let digest = sha2::Sha256::digest(key.verifying_key().as_bytes());
        assert_eq!(node_id(&key), hex::encode(&digest[..20]));
    }
}
