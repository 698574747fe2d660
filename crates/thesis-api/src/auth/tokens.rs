//! Bearer tokens, API keys and one-time tokens: generation and the hashes they are stored as.

use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};

/// Prefix of login session tokens.
pub const SESSION_PREFIX: &str = "ths_";
/// Prefix of API keys.
pub const API_KEY_PREFIX: &str = "thk_";

/// A new random token: `prefix` followed by 256 random bits, base64url without padding.
pub fn generate(prefix: &str) -> String {
    let bytes: [u8; 32] = rand::random();
    format!(
        "{prefix}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )
}

/// How bearer tokens and API keys are stored: SHA-256, hex. They carry 256 bits of entropy, so a
/// fast hash is enough, and lookups by hash stay indexed.
pub fn sha256_hex(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// How one-time tokens (invites, password resets) are stored: HMAC-SHA256 keyed with the server
/// secret and bound to a purpose, so a copy of the database alone cannot forge or replay them.
pub fn keyed_hash(secret: &[u8], purpose: &str, token: &str) -> String {
    let mut mac =
        <Hmac<Sha256> as KeyInit>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(purpose.as_bytes());
    mac.update(&[0]);
    mac.update(token.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_prefixed() {
        let a = generate(API_KEY_PREFIX);
        let b = generate(API_KEY_PREFIX);
        assert_ne!(a, b);
        assert!(a.starts_with("thk_"));
        assert_eq!(a.len(), 4 + 43);
    }

    #[test]
    fn keyed_hash_depends_on_secret_and_purpose() {
        let h = keyed_hash(b"k1", "invite", "t");
        assert_ne!(h, keyed_hash(b"k2", "invite", "t"));
        assert_ne!(h, keyed_hash(b"k1", "reset", "t"));
        assert_eq!(h, keyed_hash(b"k1", "invite", "t"));
    }
}
