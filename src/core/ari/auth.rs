//! Which ARI user made a request. ARI authenticates every request before the resource sees it,
//! from the same two places in the same order: HTTP Basic (`Authorization`), else the
//! `api_key=<user>:<password>` query parameter. The name is what a change records as made it.

use crate::core::base64;

/// The user name of a request with these headers and query parameters, if it names one.
pub fn ari_user<'a>(
    headers: &[(&[u8], &'a [u8])],
    params: &[(&[u8], &'a [u8])],
) -> Option<Vec<u8>> {
    let basic = headers
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(b"Authorization"))
        .and_then(|(_, value)| basic_user(value));
    basic.or_else(|| {
        let (_, key) = params.iter().find(|(name, _)| *name == b"api_key")?;
        let colon = key.iter().position(|&b| b == b':')?;
        Some(key[..colon].to_vec())
    })
}

/// The user of `Basic <base64 of user:password>`.
fn basic_user(value: &[u8]) -> Option<Vec<u8>> {
    let value = value.trim_ascii();
    let (scheme, credentials) = value.split_at(value.iter().position(|&b| b == b' ')?);
    if !scheme.eq_ignore_ascii_case(b"Basic") {
        return None;
    }
    let decoded = base64::decode(credentials.trim_ascii()).ok()?;
    let colon = decoded.iter().position(|&b| b == b':')?;
    Some(decoded[..colon].to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_auth_names_the_user_before_api_key() {
        let header = b"Basic cmVjZXB0aW9uOnMzY3JldDpjb2xvbg==";
        assert_eq!(
            ari_user(&[(b"authorization", header)], &[(b"api_key", b"other:pw")]),
            Some(b"reception".to_vec())
        );
        assert_eq!(
            ari_user(&[], &[(b"api_key", b"board:pw")]),
            Some(b"board".to_vec())
        );
        assert_eq!(ari_user(&[(b"Authorization", b"Bearer x")], &[]), None);
        assert_eq!(ari_user(&[(b"Authorization", b"Basic %%")], &[]), None);
        assert_eq!(ari_user(&[], &[(b"api_key", b"nocolon")]), None);
    }
}
