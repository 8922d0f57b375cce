//! Random tokens and their stored form. Anything that grants access (session cookies,
//! invitation links, API tokens) is random, shown once, and stored only as a SHA-256 digest,
//! so a copy of the database does not let anyone in.
//!
//! The one secret that must be stored readable for a while is an email that carries such a
//! link, between the change that queues it and its delivery. [`SealingKey`] keeps those
//! bodies encrypted at rest (XChaCha20-Poly1305 from the RustCrypto `chacha20poly1305` crate,
//! a key derived from `DMA_SECRET_KEY` with HKDF-SHA256), so the outbox table alone is not
//! enough to read them. Second-factor (TOTP) secrets must be readable to check a code, so they
//! are sealed the same way, under a key of their own.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore;
use sha2::{Digest, Sha256};

/// What a sealed text starts with, so a reader can tell it from a plain one; the version lets
/// a later key or algorithm live beside this one.
const SEALED_PREFIX: &str = "sealed:v1:";
const NONCE_BYTES: usize = 24;
/// The purpose (HKDF info) of the key that seals outbox bodies.
pub const OUTBOX_SEALING: &str = "dma outbox bodies v1";
/// The purpose (HKDF info) of the key that seals second-factor (TOTP) secrets.
pub const TOTP_SEALING: &str = "dma totp secrets v1";

/// The key for sealing texts at rest, derived from the service's secret key. Never printed.
#[derive(Clone)]
pub struct SealingKey([u8; 32]);

impl std::fmt::Debug for SealingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SealingKey([redacted])")
    }
}

/// A sealed text that cannot be opened: another key sealed it, or it was altered.
#[derive(Debug, thiserror::Error)]
#[error("the sealed text cannot be opened (DMA_SECRET_KEY changed since it was sealed, or the text was altered)")]
pub struct Unsealable;

impl SealingKey {
    /// A key for `purpose` (an HKDF "info" label, so each use gets its own key) from the
    /// service's secret key.
    pub fn derive(secret: &str, purpose: &str) -> SealingKey {
        let mut key = [0u8; 32];
        // 32 bytes is far below HKDF-SHA256's limit of 255 * 32, so expanding cannot fail.
        let _ = hkdf::Hkdf::<Sha256>::new(Some(b"dma sealing key"), secret.as_bytes())
            .expand(purpose.as_bytes(), &mut key);
        SealingKey(key)
    }

    /// `text` encrypted and authenticated, bound to `context` (say, the recipient), with a
    /// random nonce: `sealed:v1:` then hex of nonce and ciphertext.
    pub fn seal(&self, text: &str, context: &str) -> String {
        let cipher = XChaCha20Poly1305::new(&self.0.into());
        let mut nonce = [0u8; NONCE_BYTES];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let payload = Payload {
            msg: text.as_bytes(),
            aad: context.as_bytes(),
        };
        // Encryption of an in-memory buffer only fails for lengths beyond 256 GiB.
        let sealed = cipher
            .encrypt(XNonce::from_slice(&nonce), payload)
            .unwrap_or_default();
        format!(
            "{SEALED_PREFIX}{}{}",
            hex::encode(nonce),
            hex::encode(sealed)
        )
    }

    /// The text of a [`SealingKey::seal`] result; a text that was never sealed comes back as
    /// it is.
    pub fn open(&self, stored: &str, context: &str) -> Result<String, Unsealable> {
        let Some(body) = stored.strip_prefix(SEALED_PREFIX) else {
            return Ok(stored.to_string());
        };
        let bytes = hex::decode(body).map_err(|_| Unsealable)?;
        if bytes.len() < NONCE_BYTES {
            return Err(Unsealable);
        }
        let (nonce, sealed) = bytes.split_at(NONCE_BYTES);
        let cipher = XChaCha20Poly1305::new(&self.0.into());
        let payload = Payload {
            msg: sealed,
            aad: context.as_bytes(),
        };
        let text = cipher
            .decrypt(XNonce::from_slice(nonce), payload)
            .map_err(|_| Unsealable)?;
        String::from_utf8(text).map_err(|_| Unsealable)
    }
}

/// Whether `stored` is a sealed text.
pub fn is_sealed(stored: &str) -> bool {
    stored.starts_with(SEALED_PREFIX)
}

/// 256 random bits from the operating system's generator, hex-encoded (64 characters).
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// The digest stored in place of a token.
pub fn digest(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Compare two strings without leaking where they differ through timing.
pub fn constant_time_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_digests_stable() {
        let (a, b) = (random_token(), random_token());
        assert_eq!(a.len(), 64);
        assert_ne!(a, b);
        assert_eq!(digest(&a), digest(&a));
        assert_ne!(digest(&a), a);
        assert!(constant_time_eq(&a, &a.clone()));
        assert!(!constant_time_eq(&a, &b));
        assert!(!constant_time_eq("ab", "abc"));
    }

    #[test]
    fn sealed_texts_open_only_with_their_key_and_context() {
        let key = SealingKey::derive(&"k".repeat(32), "outbox");
        let a = key.seal(
            "https://dma.example/account/set-password?token=abc",
            "ann@x",
        );
        let b = key.seal(
            "https://dma.example/account/set-password?token=abc",
            "ann@x",
        );
        assert!(is_sealed(&a) && !a.contains("token=abc"));
        assert_ne!(a, b, "random nonces");
        assert_eq!(
            key.open(&a, "ann@x").unwrap(),
            "https://dma.example/account/set-password?token=abc"
        );
        assert!(key.open(&a, "bob@x").is_err(), "bound to its context");
        let other = SealingKey::derive(&"j".repeat(32), "outbox");
        assert!(other.open(&a, "ann@x").is_err());
        let purpose = SealingKey::derive(&"k".repeat(32), "other purpose");
        assert!(purpose.open(&a, "ann@x").is_err());
        let mut altered = a.clone();
        altered.pop();
        altered.push('0');
        assert!(key.open(&altered, "ann@x").is_err() || altered == a);
        assert_eq!(key.open("plain text", "ann@x").unwrap(), "plain text");
        assert_eq!(format!("{key:?}"), "SealingKey([redacted])");
    }
}
