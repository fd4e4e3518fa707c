//! Standard base64 (RFC 4648 alphabet), as `ast_base64encode` writes it.
//!
//! Decoding is strict where Asterisk's is lenient: a byte outside the alphabet, padding in the
//! wrong place or an impossible length is an error, never silently skipped. Missing padding is
//! accepted, since clients often drop it.

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Encodes `input` with padding.
pub fn encode(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        let sextets = [n >> 18, n >> 12, n >> 6, n].map(|s| ALPHABET[(s & 63) as usize]);
        let kept = chunk.len() + 1;
        out.extend_from_slice(&sextets[..kept]);
        out.extend(std::iter::repeat_n(b'=', 4 - kept));
    }
    out
}

/// Why a text is not base64.
#[derive(Debug, PartialEq, Eq)]
pub enum Base64Error {
    /// The byte at this offset is neither in the alphabet nor valid padding.
    BadByte { offset: usize, byte: u8 },
    /// The length cannot be that of base64 text (one sextet left over).
    BadLength,
}

impl std::fmt::Display for Base64Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Base64Error::BadByte { offset, byte } => {
                write!(f, "byte 0x{byte:02x} at offset {offset} is not base64")
            }
            Base64Error::BadLength => write!(f, "its length is not that of base64 text"),
        }
    }
}

fn sextet(byte: u8) -> Option<u32> {
    let value = match byte {
        b'A'..=b'Z' => byte - b'A',
        b'a'..=b'z' => byte - b'a' + 26,
        b'0'..=b'9' => byte - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => return None,
    };
    Some(u32::from(value))
}

/// Decodes padded or unpadded base64.
pub fn decode(input: &[u8]) -> Result<Vec<u8>, Base64Error> {
    let mut out = Vec::new();
    decode_into(input, &mut out)?;
    Ok(out)
}

/// Decodes padded or unpadded base64, appending to `out`; on error `out` may hold part of it.
pub fn decode_into(input: &[u8], out: &mut Vec<u8>) -> Result<(), Base64Error> {
    let data_len = input.len() - input.iter().rev().take_while(|&&b| b == b'=').count();
    let padding = input.len() - data_len;
    if padding > 2 || data_len % 4 == 1 || (padding > 0 && input.len() % 4 != 0) {
        return match input[..data_len].iter().position(|&b| sextet(b).is_none()) {
            Some(offset) => Err(Base64Error::BadByte {
                offset,
                byte: input[offset],
            }),
            None => Err(Base64Error::BadLength),
        };
    }
    out.reserve(data_len / 4 * 3 + 2);
    for (index, chunk) in input[..data_len].chunks(4).enumerate() {
        let mut n = 0u32;
        for (i, &byte) in chunk.iter().enumerate() {
            let offset = index * 4 + i;
            n |= sextet(byte).ok_or(Base64Error::BadByte { offset, byte })? << (18 - 6 * i);
        }
        let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&bytes[..chunk.len() - 1]);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_vectors_round_trip() {
        let vectors: [(&[u8], &[u8]); 7] = [
            (b"", b""),
            (b"f", b"Zg=="),
            (b"fo", b"Zm8="),
            (b"foo", b"Zm9v"),
            (b"foob", b"Zm9vYg=="),
            (b"down the hall", b"ZG93biB0aGUgaGFsbA=="),
            (b"\x00\xff\xfe", b"AP/+"),
        ];
        for (plain, encoded) in vectors {
            assert_eq!(encode(plain), encoded);
            assert_eq!(decode(encoded).unwrap(), plain);
        }
    }

    #[test]
    fn missing_padding_is_accepted() {
        assert_eq!(decode(b"Zg").unwrap(), b"f");
        assert_eq!(decode(b"Zm8").unwrap(), b"fo");
    }

    #[test]
    fn every_length_round_trips() {
        let data: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
        for len in 0..data.len() {
            assert_eq!(decode(&encode(&data[..len])).unwrap(), &data[..len]);
        }
    }

    #[test]
    fn bad_text_is_rejected_not_skipped() {
        assert_eq!(
            decode(b"Zm9v!"),
            Err(Base64Error::BadByte {
                offset: 4,
                byte: b'!'
            })
        );
        assert_eq!(
            decode(b"Zm 9v"),
            Err(Base64Error::BadByte {
                offset: 2,
                byte: b' '
            })
        );
        assert_eq!(decode(b"Z"), Err(Base64Error::BadLength));
        assert_eq!(decode(b"Zm9vY"), Err(Base64Error::BadLength));
        assert_eq!(decode(b"Zg==="), Err(Base64Error::BadLength));
        assert_eq!(
            decode(b"Zg=a"),
            Err(Base64Error::BadByte {
                offset: 2,
                byte: b'='
            })
        );
        assert_eq!(
            decode(b"Z=g="),
            Err(Base64Error::BadByte {
                offset: 1,
                byte: b'='
            })
        );
        assert_eq!(decode(b"Zg="), Err(Base64Error::BadLength));
        assert!(decode(b"Lunch, see you").is_err());
    }
}
