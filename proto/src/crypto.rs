//! Ed25519 keys and signatures (through `ring`), SHA-256 digests, and the text forms auditors
//! use: PEM SubjectPublicKeyInfo for keys, standard base64 for signatures, lowercase hex for
//! digests.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use ring::rand::SecureRandom;
use ring::signature::{ED25519, Ed25519KeyPair, KeyPair as _, UnparsedPublicKey};

use crate::ids::{ParseError, decode_hex, encode_hex, serde_as_text};

/// A key or signature could not be read or made.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("private key: not an Ed25519 PKCS#8 document")]
    Pkcs8,
    #[error("key generation failed: the system random source is unavailable")]
    Random,
    #[error("public key: not a PEM Ed25519 SubjectPublicKeyInfo")]
    Pem,
    #[error("public key: expected 32 bytes")]
    PublicKeyLength,
    #[error("signature: not canonical standard base64 of 64 bytes")]
    SignatureEncoding,
}

/// A SHA-256 digest, written as 64 lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Digest([u8; 32]);

impl Digest {
    /// The `prev` of a chain's first record.
    pub const ZERO: Digest = Digest([0; 32]);

    pub fn of(bytes: &[u8]) -> Digest {
        let digest = ring::digest::digest(&ring::digest::SHA256, bytes);
        let mut out = [0; 32];
        out.copy_from_slice(digest.as_ref());
        Digest(out)
    }

    pub const fn from_bytes(bytes: [u8; 32]) -> Digest {
        Digest(bytes)
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    pub fn from_hex(text: &str) -> Result<Digest, ParseError> {
        let bytes = decode_hex("digest", text)?;
        let bytes: [u8; 32] = bytes
            .try_into()
            .map_err(|_| ParseError::NotHex { what: "digest" })?;
        Ok(Digest(bytes))
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // On the stack: every record's `prev` is written this way when its canonical form is
        // checked.
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut text = [0_u8; 64];
        for (pair, byte) in text.chunks_exact_mut(2).zip(self.0) {
            pair[0] = DIGITS[usize::from(byte >> 4)];
            pair[1] = DIGITS[usize::from(byte & 0x0f)];
        }
        f.write_str(std::str::from_utf8(&text).map_err(|_| fmt::Error)?)
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({self})")
    }
}

serde_as_text!(Digest, Digest::from_hex, crate::openapi::digest);

/// A 64-byte Ed25519 signature.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Signature([u8; 64]);

impl Signature {
    pub const fn from_bytes(bytes: [u8; 64]) -> Signature {
        Signature(bytes)
    }

    pub fn as_bytes(&self) -> &[u8; 64] {
        &self.0
    }

    /// Standard base64 with padding, the form records carry.
    pub fn to_base64(&self) -> String {
        BASE64.encode(self.0)
    }

    /// Accepts only the exact text [`Signature::to_base64`] writes: one spelling per signature,
    /// so a record's bytes cannot be varied without changing what was signed.
    pub fn from_base64(text: &str) -> Result<Signature, KeyError> {
        // 64 bytes encode to 88 characters; refuse anything longer before decoding it.
        if text.len() != 88 {
            return Err(KeyError::SignatureEncoding);
        }
        let bytes = BASE64
            .decode(text)
            .map_err(|_| KeyError::SignatureEncoding)?;
        let bytes: [u8; 64] = bytes.try_into().map_err(|_| KeyError::SignatureEncoding)?;
        let signature = Signature(bytes);
        if signature.to_base64() != text {
            return Err(KeyError::SignatureEncoding);
        }
        Ok(signature)
    }
}

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signature({})", self.to_base64())
    }
}

/// The DER prefix of an Ed25519 SubjectPublicKeyInfo (RFC 8410): SEQUENCE { SEQUENCE { OID
/// 1.3.101.112 }, BIT STRING of 32 bytes }. The raw key follows it.
const SPKI_ED25519_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];
const PEM_BEGIN: &str = "-----BEGIN PUBLIC KEY-----";
const PEM_END: &str = "-----END PUBLIC KEY-----";

/// An Ed25519 public key: what the back-office registers for a kiosk.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PublicKey([u8; 32]);

impl PublicKey {
    pub fn from_bytes(bytes: &[u8]) -> Result<PublicKey, KeyError> {
        let bytes: [u8; 32] = bytes.try_into().map_err(|_| KeyError::PublicKeyLength)?;
        Ok(PublicKey(bytes))
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The DER SubjectPublicKeyInfo.
    pub fn to_spki_der(&self) -> Vec<u8> {
        let mut der = Vec::with_capacity(SPKI_ED25519_PREFIX.len() + 32);
        der.extend_from_slice(&SPKI_ED25519_PREFIX);
        der.extend_from_slice(&self.0);
        der
    }

    /// The PEM form `openssl pkey -pubin` reads, ending with a newline.
    pub fn to_pem(&self) -> String {
        format!(
            "{PEM_BEGIN}\n{}\n{PEM_END}\n",
            BASE64.encode(self.to_spki_der())
        )
    }

    /// Reads one PEM `PUBLIC KEY` block holding an Ed25519 SubjectPublicKeyInfo. Surrounding
    /// whitespace and line breaks inside the base64 are tolerated, as PEM writers differ.
    pub fn from_pem(text: &str) -> Result<PublicKey, KeyError> {
        let body = text
            .trim()
            .strip_prefix(PEM_BEGIN)
            .and_then(|rest| rest.strip_suffix(PEM_END))
            .ok_or(KeyError::Pem)?;
        let base64: String = body.split_ascii_whitespace().collect();
        if base64.len() > 64 {
            return Err(KeyError::Pem);
        }
        let der = BASE64.decode(base64).map_err(|_| KeyError::Pem)?;
        let key = der
            .strip_prefix(&SPKI_ED25519_PREFIX[..])
            .ok_or(KeyError::Pem)?;
        PublicKey::from_bytes(key).map_err(|_| KeyError::Pem)
    }

    /// A short, human-comparable fingerprint for enrolment: the first 8 bytes of the SHA-256 of
    /// the DER key, as `ab12-cd34-ef56-7890`.
    pub fn fingerprint(&self) -> String {
        let digest = Digest::of(&self.to_spki_der());
        let hex = encode_hex(&digest.as_bytes()[..8]);
        [&hex[0..4], &hex[4..8], &hex[8..12], &hex[12..16]].join("-")
    }

    /// Whether `signature` is this key's signature of `message`.
    pub fn verify(&self, message: &[u8], signature: &Signature) -> bool {
        UnparsedPublicKey::new(&ED25519, &self.0)
            .verify(message, &signature.0)
            .is_ok()
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", self.fingerprint())
    }
}

/// A kiosk's Ed25519 private key. Its `Debug` shows only the public half, so it cannot leak into
/// a log by accident.
pub struct SigningKey {
    key_pair: Ed25519KeyPair,
}

impl SigningKey {
    /// Generates a key and returns it with its PKCS#8 document, which the caller stores. The
    /// random source is passed in: `proto` has no randomness of its own.
    pub fn generate(random: &dyn SecureRandom) -> Result<(SigningKey, Vec<u8>), KeyError> {
        let document = Ed25519KeyPair::generate_pkcs8(random).map_err(|_| KeyError::Random)?;
        let pkcs8 = document.as_ref().to_vec();
        let key = SigningKey::from_pkcs8(&pkcs8)?;
        Ok((key, pkcs8))
    }

    /// Reads a PKCS#8 v1 (as OpenSSL writes) or v2 (as `ring` writes) Ed25519 private key.
    pub fn from_pkcs8(pkcs8: &[u8]) -> Result<SigningKey, KeyError> {
        let key_pair =
            Ed25519KeyPair::from_pkcs8_maybe_unchecked(pkcs8).map_err(|_| KeyError::Pkcs8)?;
        Ok(SigningKey { key_pair })
    }

    pub fn public_key(&self) -> PublicKey {
        let mut bytes = [0; 32];
        bytes.copy_from_slice(self.key_pair.public_key().as_ref());
        PublicKey(bytes)
    }

    pub fn sign(&self, message: &[u8]) -> Signature {
        let mut bytes = [0; 64];
        bytes.copy_from_slice(self.key_pair.sign(message).as_ref());
        Signature(bytes)
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SigningKey(public {})", self.public_key().fingerprint())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_base64_is_canonical() {
        let signature = Signature([0xab; 64]);
        let text = signature.to_base64();
        assert_eq!(text.len(), 88);
        assert_eq!(Signature::from_base64(&text), Ok(signature));
        // The last character carries 2 unused bits; setting them is another spelling.
        let mut tweaked = text.clone().into_bytes();
        let last = text.len() - 3;
        tweaked[last] = if tweaked[last] == b'w' { b'x' } else { b'w' };
        let tweaked = String::from_utf8(tweaked).unwrap();
        assert_eq!(
            Signature::from_base64(&tweaked),
            Err(KeyError::SignatureEncoding)
        );
        for bad in [
            "",
            &text[..86],
            &format!("{text}="),
            &text.replace('=', ""),
            &format!(" {}", &text[1..]),
            &text.replacen('q', "-", 1),
        ] {
            assert_eq!(
                Signature::from_base64(bad),
                Err(KeyError::SignatureEncoding),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn pem_round_trip_and_rejects() {
        let key = PublicKey([7; 32]);
        let pem = key.to_pem();
        assert_eq!(PublicKey::from_pem(&pem), Ok(key));
        assert_eq!(PublicKey::from_pem(&format!("\n  {pem}\n")), Ok(key));
        let folded = pem.replacen("MCow", "MC\now", 1);
        assert_eq!(PublicKey::from_pem(&folded), Ok(key));
        for bad in [
            String::new(),
            pem.replace("PUBLIC KEY", "PRIVATE KEY"),
            pem.replace("MCow", "MCox"),
            format!("{PEM_BEGIN}\n{}\n{PEM_END}\n", BASE64.encode([0; 44])),
            format!("{PEM_BEGIN}\n{}\n{PEM_END}\n", BASE64.encode([0; 4000])),
        ] {
            assert!(PublicKey::from_pem(&bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn digests() {
        // FIPS 180-2 test vector.
        assert_eq!(
            Digest::of(b"abc").to_string(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(Digest::ZERO.to_string(), "0".repeat(64));
        let digest = Digest::of(b"x");
        assert_eq!(Digest::from_hex(&digest.to_string()), Ok(digest));
        assert!(Digest::from_hex(&"0".repeat(62)).is_err());
        assert!(Digest::from_hex(&"A".repeat(64)).is_err());
    }

    #[test]
    fn signing_key_debug_hides_the_secret() {
        let random = ring::rand::SystemRandom::new();
        let (key, pkcs8) = SigningKey::generate(&random).unwrap();
        let debug = format!("{key:?}");
        assert!(debug.contains(&key.public_key().fingerprint()));
        assert!(!debug.contains(&BASE64.encode(&pkcs8)));
        assert_eq!(
            SigningKey::from_pkcs8(b"not a key").err(),
            Some(KeyError::Pkcs8)
        );
    }
}
