//! Fuzz target `base64`: the codec against a reference decoder written from its rules.

use crate::core::base64::{self, Base64Error};

const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// The documented rules of `base64::decode`, with a plain bit accumulator: every byte before
/// the trailing `=` must be in the alphabet (the first one that is not is reported), at most
/// two `=`, padding only to complete the last quartet, and never one sextet left over.
fn reference_decode(text: &[u8]) -> Result<Vec<u8>, Base64Error> {
    let padding = text.iter().rev().take_while(|&&b| b == b'=').count();
    let body = &text[..text.len() - padding];
    if let Some(offset) = body.iter().position(|b| !ALPHABET.contains(b)) {
        return Err(Base64Error::BadByte {
            offset,
            byte: body[offset],
        });
    }
    if padding > 2 || body.len() % 4 == 1 || (padding > 0 && text.len() % 4 != 0) {
        return Err(Base64Error::BadLength);
    }
    let (mut acc, mut bits, mut out) = (0u32, 0u32, Vec::new());
    for &byte in body {
        let value = ALPHABET
            .iter()
            .position(|&a| a == byte)
            .expect("checked above") as u32;
        acc = (acc << 6) | value;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Ok(out)
}

/// Fuzz target `base64`: encode of anything decodes back to it (padded or not); decode of
/// anything agrees with the reference, and what it yields re-encodes to text decoding the same.
pub fn base64(data: &[u8]) {
    let encoded = base64::encode(data);
    assert_eq!(encoded.len(), data.len().div_ceil(3) * 4);
    assert!(encoded.len() % 4 == 0);
    let padding = encoded.iter().rev().take_while(|&&b| b == b'=').count();
    assert!(padding <= 2);
    assert!(encoded[..encoded.len() - padding]
        .iter()
        .all(|b| ALPHABET.contains(b)));
    assert_eq!(base64::decode(&encoded).as_deref(), Ok(data));
    let unpadded = &encoded[..encoded.len() - padding];
    assert_eq!(base64::decode(unpadded).as_deref(), Ok(data));
    assert_eq!(reference_decode(&encoded).as_deref(), Ok(data));

    let decoded = base64::decode(data);
    assert_eq!(decoded, reference_decode(data), "decode({data:?})");
    match decoded {
        Ok(bytes) => {
            let again = base64::encode(&bytes);
            assert_eq!(base64::decode(&again), Ok(bytes));
        }
        Err(Base64Error::BadByte { offset, byte }) => {
            assert_eq!(data[offset], byte);
            assert!(!ALPHABET.contains(&byte));
        }
        Err(Base64Error::BadLength) => {}
    }
}
