//! `pawl keys generate --backup-to age1… [--backup-out FILE]`: the board generates the key
//! and seals its secret once to the operator's age recipient; this side only reads the
//! recipient and writes the sealed file where the operator asked (default
//! `<home>/backups/<pkh>.age`). Restoring: `age -d -i IDENTITY FILE | pawl keys import` on
//! another board.

use std::fs::{self, File, OpenOptions};
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use pawl_core::keys::Curve;
use pawl_core::policy::Policy;
use pawl_core::protocol::{Request, Response};
use serde_json::json;

use super::super::{Context, ask, print_json};
use super::key_line;

/// The 32-byte X25519 key inside an `age1…` recipient, with errors that say what is wrong.
pub fn recipient(text: &str) -> anyhow::Result<[u8; 32]> {
    let text = text.trim();
    if text.to_ascii_uppercase().starts_with("AGE-SECRET-KEY-") {
        // Not echoed: it is a secret.
        anyhow::bail!(
            "--backup-to takes the age recipient (age1…, the public key), not the identity (AGE-SECRET-KEY-…): that identity has now been on a command line, treat it as exposed"
        );
    }
    let (hrp, data) = bech32::decode(text)
        .map_err(|e| anyhow::anyhow!("--backup-to: `{text}` is not an age recipient: {e}"))?;
    if hrp.as_str() != "age" {
        anyhow::bail!(
            "--backup-to: `{text}` is not an X25519 age recipient (age1…; plugin and post-quantum recipients are not supported)"
        );
    }
    data.try_into().map_err(|d: Vec<u8>| {
        anyhow::anyhow!(
            "--backup-to: `{text}` holds {} bytes, an X25519 recipient 32",
            d.len()
        )
    })
}

/// Where the sealed file goes, claimed before the board is asked (so a path that cannot be
/// written fails before a key exists): the file itself, created empty, or a placeholder in
/// the backups directory renamed to `<pkh>.age` once the key is known.
struct Target {
    file: File,
    path: PathBuf,
    rename_to_pkh_in: Option<PathBuf>,
}

fn create_new(path: &Path) -> std::io::Result<File> {
    // Owner-only: the file is encrypted, but nobody else has a reason to read it.
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
}

fn claim(ctx: &Context, out: Option<&Path>) -> anyhow::Result<Target> {
    if let Some(path) = out {
        let file = create_new(path).with_context(|| {
            format!(
                "--backup-out: cannot create {} (it must not exist yet)",
                path.display()
            )
        })?;
        return Ok(Target {
            file,
            path: path.to_path_buf(),
            rename_to_pkh_in: None,
        });
    }
    let dir = ctx.home.join("backups");
    fs::create_dir_all(&dir)
        .with_context(|| format!("cannot create the backups directory {}", dir.display()))?;
    let path = dir.join(format!(".pending-{}.age", std::process::id()));
    let file = create_new(&path)
        .with_context(|| format!("cannot create a backup file in {}", dir.display()))?;
    Ok(Target {
        file,
        path,
        rename_to_pkh_in: Some(dir),
    })
}

/// Generate on the board with a backup, and write the backup.
pub fn generate(
    ctx: &Context,
    curve: Curve,
    policy: Policy,
    to: &str,
    out: Option<&Path>,
    (allow_pop, role, chain_id): (bool, super::duty::RoleArg, Option<&str>),
) -> anyhow::Result<()> {
    let recipient = recipient(to)?;
    let mut target = claim(ctx, out)?;
    let link = ctx.open_link()?;
    let answer = ask(
        &link,
        &Request::GenerateKeyWithBackup {
            curve,
            policy,
            recipient,
        },
    );
    let (key, sealed) = match answer {
        Ok(Response::KeyBackup { key, sealed }) => (key, sealed),
        other => {
            // No key was made: the claimed file goes.
            let _ = fs::remove_file(&target.path);
            return match other {
                Ok(unexpected) => Err(anyhow::anyhow!(
                    "unexpected answer from the board: {unexpected:?}"
                )),
                Err(e) => Err(e),
            };
        }
    };
    let written = target
        .file
        .write_all(&sealed)
        .and_then(|()| target.file.sync_all());
    let mut path = target.path.clone();
    if written.is_ok()
        && let Some(dir) = &target.rename_to_pkh_in
    {
        let named = dir.join(format!("{}.age", key.pkh));
        // Never over an existing backup: a second key with one pkh is impossible, an old
        // file of that name is the operator's and stays.
        if !named.exists() && fs::rename(&target.path, &named).is_ok() {
            path = named;
        }
    }
    written.with_context(|| {
        format!(
            "key {} was generated on the board, but its backup could not be written to {}: remove the key and generate again",
            key.pkh,
            path.display()
        )
    })?;
    let answer = super::allow_possession(&link, Ok(Response::KeyInfo(key)), allow_pop);
    let key = match super::duty::with_role(&link, answer, role, chain_id)? {
        Response::KeyInfo(key) => key,
        other => anyhow::bail!("unexpected answer from the board: {other:?}"),
    };
    if ctx.json {
        let mut v = super::key_json(&key);
        v["backup"] = json!(path.display().to_string());
        print_json(&v);
    } else {
        println!("{}", key_line(&key));
        println!("backup: {}", path.display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::recipient;

    #[test]
    fn recipients_are_checked_before_anything_is_asked() {
        // The example recipient of the age specification (c2sp.org/age).
        let ok = recipient("age1zvkyg2lqzraa2lnjvqej32nkuu0ues2s82hzrye869xeexvn73equnujwj");
        assert!(ok.is_ok(), "{ok:?}");
        let err = recipient("age1zvkyg2lqzraa2lnjvqej32nkuu0ues2s82hzrye869xeexvn73equnujwx")
            .expect_err("bad checksum");
        assert!(err.to_string().contains("--backup-to"), "{err}");
        let identity = "AGE-SECRET-KEY-1GFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPQ4EGAEX";
        let err = recipient(identity).expect_err("an identity, not a recipient");
        assert!(err.to_string().contains("not the identity"), "{err}");
        assert!(
            !err.to_string().contains(identity),
            "the identity is echoed: {err}"
        );
    }
}
