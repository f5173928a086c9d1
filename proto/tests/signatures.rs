//! Ed25519 through `ring` against RFC 8032's vectors and an independent implementation.

#![allow(clippy::unwrap_used)]

mod common;

use ed25519_dalek::pkcs8::{DecodePublicKey as _, EncodePrivateKey as _};
use ed25519_dalek::{Verifier as _, VerifyingKey};
use proto::{PublicKey, Signature, SigningKey};

fn unhex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

/// RFC 8032 section 7.1: secret key, public key, message, signature.
const RFC8032_VECTORS: [[&str; 4]; 4] = [
    [
        "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
        "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
        "",
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
    ],
    [
        "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
        "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
        "72",
        "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
    ],
    [
        "c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
        "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025",
        "af82",
        "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a",
    ],
    [
        "833fe62409237b9d62ec77587520911e9a759cec1d19755b7da901b96dca3d42",
        "ec172b93ad5e563bf4932c70e1245034c35467ef2efd4d64ebf819683467e2bf",
        "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f",
        "dc2a4459e7369633a52b1bf277839a00201009a3efbf3ecb69bea2186c26b58909351fc9ac90b3ecfdfbc7c66431e0303dca179c138ac17ad9bef1177331a704",
    ],
];

#[test]
fn rfc8032_vectors() {
    for [secret, public, message, signature] in RFC8032_VECTORS {
        let seed: [u8; 32] = unhex(secret).try_into().unwrap();
        let key = SigningKey::from_pkcs8(&common::pkcs8_v1(&seed)).unwrap();
        assert_eq!(
            key.public_key().as_bytes().to_vec(),
            unhex(public),
            "public key of {secret}"
        );
        let message = unhex(message);
        let signed = key.sign(&message);
        assert_eq!(
            signed.as_bytes().to_vec(),
            unhex(signature),
            "signature by {secret}"
        );
        let public = PublicKey::from_bytes(&unhex(public)).unwrap();
        assert!(public.verify(&message, &signed));
        let mut other = message.clone();
        other.push(0);
        assert!(!public.verify(&other, &signed));
    }
}

#[test]
fn records_verify_with_an_independent_implementation() {
    let key = common::key(7);
    let pem = key.public_key().to_pem();
    let dalek_key = VerifyingKey::from_public_key_pem(&pem).unwrap();
    assert_eq!(dalek_key.as_bytes(), key.public_key().as_bytes());
    for record in common::chain(&key, &common::device(), 24) {
        let signed = record.signed();
        let signature = Signature::from_base64(&signed.signature).unwrap();
        let dalek_signature = ed25519_dalek::Signature::from_bytes(signature.as_bytes());
        dalek_key
            .verify_strict(signed.payload.as_bytes(), &dalek_signature)
            .unwrap();
        let mut tampered = signed.payload.clone().into_bytes();
        tampered[10] ^= 1;
        assert!(dalek_key.verify(&tampered, &dalek_signature).is_err());
    }
}

#[test]
fn keys_from_an_independent_implementation_sign_identically() {
    for seed in [[0u8; 32], [0x5a; 32], [0xff; 32]] {
        let dalek_key = ed25519_dalek::SigningKey::from_bytes(&seed);
        let pkcs8 = dalek_key.to_pkcs8_der().unwrap();
        let ours = SigningKey::from_pkcs8(pkcs8.as_bytes()).unwrap();
        assert_eq!(
            ours.public_key().as_bytes(),
            dalek_key.verifying_key().as_bytes()
        );
        let message = b"{\"v\":1}";
        use ed25519_dalek::Signer as _;
        assert_eq!(
            ours.sign(message).as_bytes(),
            &dalek_key.sign(message).to_bytes()
        );
    }
}

#[test]
fn generated_keys_round_trip_through_pkcs8() {
    let random = ring::rand::SystemRandom::new();
    let (key, pkcs8) = SigningKey::generate(&random).unwrap();
    let again = SigningKey::from_pkcs8(&pkcs8).unwrap();
    assert_eq!(key.public_key(), again.public_key());
    let signature = again.sign(b"meal");
    assert!(key.public_key().verify(b"meal", &signature));
    assert_eq!(
        PublicKey::from_pem(&key.public_key().to_pem()),
        Ok(key.public_key())
    );
    let (other, _) = SigningKey::generate(&random).unwrap();
    assert_ne!(key.public_key(), other.public_key());
    assert_ne!(
        key.public_key().fingerprint(),
        other.public_key().fingerprint()
    );
}
