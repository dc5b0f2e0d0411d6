//! PKCS#11 keyring ([`super::HostKeyring`] `pkcs11`): any HSM or token with a PKCS#11 library
//! (SoftHSM2 in CI; a network HSM, a smart card, a cloud HSM's client library in production).
//! The host-trusted tier: the bridge holds the token's user PIN.
//!
//! * tz1: `CKM_EDDSA` (pure Ed25519, no parameters) over the 32-byte digest the board
//!   approved — Tezos's Ed25519 message *is* that BLAKE2b-256 digest.
//! * tz2, tz3: `CKM_ECDSA` (raw ECDSA, the token hashes nothing) over the same digest; the
//!   token's `r ‖ s` goes to the board, which turns a high-S tz2 signature into its low-S twin
//!   (SoftHSM2 returns high-S about half the time) and verifies before releasing.
//! * One session, opened and logged in (`CKU_USER`) when `pawl serve` starts; reopened once
//!   when a call fails (a token removed and reinserted, a session closed by the library).
//!   PKCS#11 calls block, so they run on tokio's blocking pool under `sign_deadline_ms`.
//! * The PIN comes from `pin_file` (the file's first line) or the environment variable
//!   `pin_env`, never from `pawl.toml`; it is held as a `secrecy` string (wiped on drop, no
//!   `Debug`) and appears in no log, error or command line.
//! * Which token key signs for which pkh: `<home>/pkcs11_keys.json` (pkh → `CKA_LABEL`),
//!   written by `pawl keys import --backend pkcs11 --label L` ([`import`]).

mod import;
mod public;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::Mechanism;
use cryptoki::mechanism::eddsa::{EddsaParams, EddsaSignatureScheme};
use cryptoki::object::{Attribute, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use pawl_core::keys::{Curve, PublicKeyHash, Signature};
use serde::{Deserialize, Serialize};

pub use import::{ImportArgs, import};

use super::{Failure, FieldError, HostKeyring, KeyFile, KeyRecord, KeyringError, SignFuture};

/// The backend's name: `[pkcs11]`, `--backend pkcs11`, `pkcs11_keys.json`, metric label.
pub const NAME: &str = "pkcs11";

/// `[pkcs11]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPkcs11 {
    /// The PKCS#11 library (`/usr/lib/softhsm/libsofthsm2.so`, a vendor's `.so`).
    pub library: Option<PathBuf>,
    /// The slot id (as `pkcs11-tool --list-slots` prints it). Exactly one of `slot` and
    /// `token_label`.
    pub slot: Option<u64>,
    /// The token's label (`CKA_LABEL` of the token, e.g. `softhsm2-util --init-token --label`).
    pub token_label: Option<String>,
    /// A file holding the user PIN (its first line). Exactly one of `pin_file` and `pin_env`.
    pub pin_file: Option<PathBuf>,
    /// The name of an environment variable holding the user PIN.
    pub pin_env: Option<String>,
    /// Longest one signature may take at the token, ms. Default 2000; below
    /// `device.request_timeout_ms`.
    pub sign_deadline_ms: Option<u64>,
}

/// Which token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TokenChoice {
    /// By slot id.
    Slot(u64),
    /// By token label.
    Label(String),
}

/// Where the PIN comes from (never the PIN itself).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PinSource {
    /// The first line of this file.
    File(PathBuf),
    /// This environment variable.
    Env(String),
}

/// `[pkcs11]`, validated.
#[derive(Clone, Debug)]
pub struct Pkcs11Settings {
    /// The library.
    pub library: PathBuf,
    /// The token.
    pub token: TokenChoice,
    /// The PIN's source.
    pub pin: PinSource,
    /// Longest one signature may take.
    pub sign_deadline: Duration,
}

impl RawPkcs11 {
    /// Validate; `request_timeout` is `device.request_timeout_ms` (the deadline must be below).
    pub fn validate(self, request_timeout: Duration) -> Result<Pkcs11Settings, FieldError> {
        let library = self.library.ok_or_else(|| {
            FieldError::new(
                "pkcs11.library",
                "required: the token's PKCS#11 library, e.g. \"/usr/lib/softhsm/libsofthsm2.so\"",
            )
        })?;
        let token = match (self.slot, self.token_label) {
            (Some(slot), None) => TokenChoice::Slot(slot),
            (None, Some(label)) if !label.trim().is_empty() => TokenChoice::Label(label),
            (None, Some(_)) => return Err(FieldError::new("pkcs11.token_label", "is empty")),
            (Some(_), Some(_)) => {
                return Err(FieldError::new(
                    "pkcs11.slot",
                    "set either slot or token_label, not both",
                ));
            }
            (None, None) => {
                return Err(FieldError::new(
                    "pkcs11.token_label",
                    "required (or pkcs11.slot): which token holds the keys",
                ));
            }
        };
        let pin = match (self.pin_file, self.pin_env) {
            (Some(file), None) => PinSource::File(file),
            (None, Some(var)) if !var.is_empty() => PinSource::Env(var),
            (None, Some(_)) => return Err(FieldError::new("pkcs11.pin_env", "is empty")),
            (Some(_), Some(_)) => {
                return Err(FieldError::new(
                    "pkcs11.pin_file",
                    "set either pin_file or pin_env, not both",
                ));
            }
            (None, None) => {
                return Err(FieldError::new(
                    "pkcs11.pin_file",
                    "required (or pkcs11.pin_env): where the user PIN is read from (never pawl.toml)",
                ));
            }
        };
        let ms = self.sign_deadline_ms.unwrap_or(2000);
        let sign_deadline = Duration::from_millis(ms);
        if sign_deadline.is_zero() || sign_deadline >= request_timeout {
            return Err(FieldError::new(
                "pkcs11.sign_deadline_ms",
                format!(
                    "{ms} ms must be above 0 and below device.request_timeout_ms ({} ms)",
                    request_timeout.as_millis()
                ),
            ));
        }
        Ok(Pkcs11Settings {
            library,
            token,
            pin,
            sign_deadline,
        })
    }
}

/// A token key that signs for one pkh (`<home>/pkcs11_keys.json`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRef {
    /// `tz1…`/`tz2…`/`tz3…`.
    pub pkh: String,
    /// The key pair's `CKA_LABEL`.
    pub label: String,
}

impl KeyRecord for KeyRef {
    fn pkh(&self) -> &str {
        &self.pkh
    }
}

/// Why the token gave no signature (or no public key). Never carries the PIN.
#[derive(Debug, thiserror::Error)]
pub enum Pkcs11Error {
    /// The settings, the library, the token or the key file cannot be used.
    #[error("{0}")]
    Setup(String),
    /// No token key is recorded for this pkh.
    #[error(
        "no PKCS#11 key is recorded for {0} (run `pawl keys import --backend pkcs11 --label L`)"
    )]
    UnknownKey(String),
    /// The token has no key pair with this label (or not of a Tezos curve).
    #[error("{0}")]
    NoKey(String),
    /// A PKCS#11 call failed.
    #[error("PKCS#11 {0}")]
    Call(String),
    /// No answer by the deadline.
    #[error("the PKCS#11 token gave no signature within {0} ms")]
    Timeout(u128),
}

fn call(e: CkError) -> Pkcs11Error {
    Pkcs11Error::Call(e.to_string())
}

/// A logged-in session and the private keys found in it by label (handles belong to the
/// session).
type OpenSession = (Session, Vec<(String, ObjectHandle)>);

/// The token: library, slot, PIN, and the open session with the private keys found in it.
struct Token {
    library: Pkcs11,
    slot: Slot,
    pin: AuthPin,
    /// `None` until the first use, and after a failure.
    session: Mutex<Option<OpenSession>>,
}

impl Token {
    fn open(settings: &Pkcs11Settings) -> Result<Token, Pkcs11Error> {
        let pin = read_pin(&settings.pin)?;
        let library = Pkcs11::new(&settings.library).map_err(|e| {
            Pkcs11Error::Setup(format!(
                "pkcs11.library {}: {e}",
                settings.library.display()
            ))
        })?;
        library
            .initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
            .map_err(|e| Pkcs11Error::Setup(format!("C_Initialize: {e}")))?;
        let slot = find_slot(&library, &settings.token)?;
        let token = Token {
            library,
            slot,
            pin,
            session: Mutex::new(None),
        };
        // Log in now: a wrong PIN or token stops `pawl serve` at start, not at the first sign.
        token.with_session(|_, _| Ok(()))?;
        Ok(token)
    }

    /// Run `f` on the logged-in session; on a failure, open a new session and try once more.
    fn with_session<T>(
        &self,
        f: impl Fn(&Session, &mut Vec<(String, ObjectHandle)>) -> Result<T, Pkcs11Error>,
    ) -> Result<T, Pkcs11Error> {
        let mut guard = self.session.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((session, handles)) = guard.as_mut() {
            match f(session, handles) {
                Ok(v) => return Ok(v),
                // A missing key is an answer, not a broken session.
                Err(e @ Pkcs11Error::NoKey(_)) => return Err(e),
                Err(e) => {
                    tracing::warn!(error = %e, "PKCS#11: reopening the session");
                    *guard = None;
                }
            }
        }
        let session = self.login()?;
        let (session, handles) = guard.insert((session, Vec::new()));
        f(session, handles)
    }

    fn login(&self) -> Result<Session, Pkcs11Error> {
        let session = self.library.open_ro_session(self.slot).map_err(call)?;
        match session.login(UserType::User, Some(&self.pin)) {
            Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => Ok(session),
            Err(CkError::Pkcs11(RvError::PinIncorrect, _)) => Err(Pkcs11Error::Setup(
                "the token refused the PIN (CKR_PIN_INCORRECT): check pkcs11.pin_file / pin_env"
                    .into(),
            )),
            Err(e) => Err(call(e)),
        }
    }
}

fn read_pin(source: &PinSource) -> Result<AuthPin, Pkcs11Error> {
    let text = match source {
        PinSource::File(path) => std::fs::read_to_string(path)
            .map_err(|e| Pkcs11Error::Setup(format!("pkcs11.pin_file {}: {e}", path.display())))?,
        PinSource::Env(var) => std::env::var(var).map_err(|_| {
            Pkcs11Error::Setup(format!(
                "pkcs11.pin_env: the environment variable {var} is not set (or not UTF-8)"
            ))
        })?,
    };
    let pin = text.lines().next().unwrap_or("").to_string();
    drop(zeroize::Zeroizing::new(text));
    if pin.is_empty() {
        return Err(Pkcs11Error::Setup(match source {
            PinSource::File(path) => format!("pkcs11.pin_file {}: empty", path.display()),
            PinSource::Env(var) => format!("pkcs11.pin_env: {var} is empty"),
        }));
    }
    Ok(AuthPin::from(pin))
}

fn find_slot(library: &Pkcs11, choice: &TokenChoice) -> Result<Slot, Pkcs11Error> {
    let slots = library.get_slots_with_token().map_err(call)?;
    let mut labels = Vec::new();
    for slot in slots {
        let info = library.get_token_info(slot).map_err(call)?;
        let found = match choice {
            TokenChoice::Slot(id) => slot.id() == *id,
            TokenChoice::Label(label) => info.label().trim_end() == label.trim_end(),
        };
        if found {
            return Ok(slot);
        }
        labels.push(format!("slot {} `{}`", slot.id(), info.label().trim_end()));
    }
    let wanted = match choice {
        TokenChoice::Slot(id) => format!("pkcs11.slot {id}"),
        TokenChoice::Label(label) => format!("pkcs11.token_label `{label}`"),
    };
    let seen = if labels.is_empty() {
        "no token at all".to_string()
    } else {
        labels.join(", ")
    };
    Err(Pkcs11Error::Setup(format!(
        "{wanted}: no such token (the library sees {seen})"
    )))
}

/// The private key labelled `label` in `session` (cached per session).
fn private_key(
    session: &Session,
    handles: &mut Vec<(String, ObjectHandle)>,
    label: &str,
) -> Result<ObjectHandle, Pkcs11Error> {
    if let Some((_, h)) = handles.iter().find(|(l, _)| l == label) {
        return Ok(*h);
    }
    let found = session
        .find_objects(&[
            Attribute::Class(ObjectClass::PRIVATE_KEY),
            Attribute::Label(label.as_bytes().to_vec()),
        ])
        .map_err(call)?;
    match found.as_slice() {
        [h] => {
            handles.push((label.to_string(), *h));
            Ok(*h)
        }
        [] => Err(Pkcs11Error::NoKey(format!(
            "the token has no private key labelled `{label}`"
        ))),
        many => Err(Pkcs11Error::NoKey(format!(
            "the token has {} private keys labelled `{label}`: labels must be unique",
            many.len()
        ))),
    }
}

/// The PKCS#11 keyring of a running bridge.
pub struct Pkcs11Keyring {
    token: Arc<Token>,
    keys: KeyFile<KeyRef>,
    sign_deadline: Duration,
}

impl Pkcs11Keyring {
    /// Load the library, find the token, log in; read `<home>/pkcs11_keys.json`.
    pub fn open(settings: &Pkcs11Settings, home: &Path) -> Result<Pkcs11Keyring, Pkcs11Error> {
        let keys = KeyFile::open(home, NAME).map_err(Pkcs11Error::Setup)?;
        Ok(Pkcs11Keyring {
            token: Arc::new(Token::open(settings)?),
            keys,
            sign_deadline: settings.sign_deadline,
        })
    }

    async fn sign(&self, pkh: &PublicKeyHash, digest: &[u8; 32]) -> Result<Signature, Pkcs11Error> {
        let key = self
            .keys
            .get(pkh)
            .map_err(Pkcs11Error::Setup)?
            .ok_or_else(|| Pkcs11Error::UnknownKey(pkh.to_string()))?;
        let curve = pkh.curve;
        let mechanism: fn() -> Mechanism<'static> = match curve {
            Curve::Ed25519 => || Mechanism::Eddsa(EddsaParams::new(EddsaSignatureScheme::Pure)),
            Curve::Secp256k1 | Curve::P256 => || Mechanism::Ecdsa,
            c => {
                return Err(Pkcs11Error::Setup(format!(
                    "{c} keys cannot be held in a PKCS#11 token"
                )));
            }
        };
        let token = Arc::clone(&self.token);
        let digest = *digest;
        let work = tokio::task::spawn_blocking(move || {
            token.with_session(|session, handles| {
                let handle = private_key(session, handles, &key.label)?;
                session.sign(&mechanism(), handle, &digest).map_err(call)
            })
        });
        let raw = match tokio::time::timeout(self.sign_deadline, work).await {
            Err(_) => return Err(Pkcs11Error::Timeout(self.sign_deadline.as_millis())),
            Ok(Err(join)) => return Err(Pkcs11Error::Call(format!("signing thread: {join}"))),
            Ok(Ok(result)) => result?,
        };
        Signature::from_curve_bytes(curve, &raw).map_err(|_| {
            Pkcs11Error::Call(format!(
                "C_Sign returned {} bytes, expected 64 for {curve}",
                raw.len()
            ))
        })
    }
}

impl HostKeyring for Pkcs11Keyring {
    fn name(&self) -> &'static str {
        NAME
    }

    fn service(&self) -> &'static str {
        "the PKCS#11 token"
    }

    fn has_key(&self, pkh: &PublicKeyHash) -> bool {
        matches!(self.keys.get(pkh), Ok(Some(_)))
    }

    fn sign<'a>(&'a self, pkh: &'a PublicKeyHash, digest: &'a [u8; 32]) -> SignFuture<'a> {
        Box::pin(async move {
            Pkcs11Keyring::sign(self, pkh, digest)
                .await
                .map_err(keyring_error)
        })
    }
}

/// The PKCS#11 error mapping: no answer by the deadline → 504 `pkcs11_timeout`; anything
/// else (a PKCS#11 error, an unknown key, a session that cannot be opened) → 502
/// `pkcs11_error`. A token does not throttle.
fn keyring_error(e: Pkcs11Error) -> KeyringError {
    let (failure, outcome) = match &e {
        Pkcs11Error::Timeout(_) => (Failure::Timeout, "pkcs11_timeout"),
        Pkcs11Error::Setup(_)
        | Pkcs11Error::UnknownKey(_)
        | Pkcs11Error::NoKey(_)
        | Pkcs11Error::Call(_) => (Failure::Failed, "pkcs11_error"),
    };
    KeyringError {
        failure,
        outcome,
        message: e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn validate(text: &str) -> Result<Pkcs11Settings, String> {
        let raw: RawPkcs11 = toml::from_str(text).map_err(|e| e.to_string())?;
        raw.validate(Duration::from_millis(5000))
            .map_err(|e| format!("{}: {}", e.field, e.message))
    }

    #[test]
    fn settings_name_the_field() {
        let ok = validate("library = \"/l.so\"\ntoken_label = \"pawl\"\npin_env = \"PIN\"\n")
            .expect("valid");
        assert_eq!(ok.token, TokenChoice::Label("pawl".into()));
        assert_eq!(ok.pin, PinSource::Env("PIN".into()));
        assert_eq!(ok.sign_deadline, Duration::from_millis(2000));
        let ok = validate("library = \"/l.so\"\nslot = 7\npin_file = \"/p\"\n").expect("valid");
        assert_eq!(ok.token, TokenChoice::Slot(7));
        for (text, field) in [
            ("slot = 1\npin_env = \"P\"\n", "pkcs11.library"),
            ("library = \"/l\"\npin_env = \"P\"\n", "pkcs11.token_label"),
            (
                "library = \"/l\"\nslot = 1\ntoken_label = \"t\"\npin_env = \"P\"\n",
                "pkcs11.slot",
            ),
            ("library = \"/l\"\nslot = 1\n", "pkcs11.pin_file"),
            (
                "library = \"/l\"\nslot = 1\npin_file = \"/p\"\npin_env = \"P\"\n",
                "pkcs11.pin_file",
            ),
            (
                "library = \"/l\"\nslot = 1\npin_env = \"P\"\nsign_deadline_ms = 5000\n",
                "pkcs11.sign_deadline_ms",
            ),
            // The PIN itself has no place in pawl.toml.
            (
                "library = \"/l\"\nslot = 1\npin = \"1234\"\n",
                "unknown field `pin`",
            ),
        ] {
            let err = validate(text).expect_err(text);
            assert!(err.contains(field), "{text}: {err}");
        }
    }
}
