//! Request parameters as a Java servlet sees them: the query string, then (for a
//! `POST` with `Content-Type: application/x-www-form-urlencoded` only) the body,
//! the first value of a name winning. Decoding is strict: a `%` must start a
//! two-digit hex escape, the result must be UTF-8, and a body may hold unescaped
//! only what a form encoder leaves so (`A-Z a-z 0-9 * - . _ ~`, `+` for a space).

use axum::http::{HeaderMap, Method, Uri};

use crate::common::has_content_type;

/// Bytes a query string may carry unescaped besides the body's: RFC 3986 query
/// characters. Servlet containers refuse `[ ] { } | " < > \ ^ `` ` raw.
const QUERY_EXTRA: &[u8] = b"!$'()*,/:;@?";

/// A request's parameters.
#[derive(Debug, Default)]
pub(crate) struct Params(Vec<(String, String)>);

impl Params {
    /// Reads the parameters of a request, or says why they are malformed.
    pub(crate) fn read(
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<Params, String> {
        let mut pairs = match uri.query() {
            Some(query) => decode(query.as_bytes(), QUERY_EXTRA)?,
            None => Vec::new(),
        };
        // Like getParameter(): a body counts only on a POST of a form; any other
        // body is ignored.
        if method == Method::POST && has_content_type(headers, "application/x-www-form-urlencoded")
        {
            pairs.extend(decode(body, b"")?);
        }
        Ok(Params(pairs))
    }

    /// The first value of `name` (names are case-sensitive, as in a servlet).
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    /// The first non-empty value of `name`.
    pub(crate) fn non_empty(&self, name: &str) -> Option<&str> {
        self.get(name).filter(|v| !v.is_empty())
    }
}

/// Decodes `application/x-www-form-urlencoded` strictly.
pub(crate) fn decode(raw: &[u8], extra: &[u8]) -> Result<Vec<(String, String)>, String> {
    let mut pairs = Vec::new();
    for pair in raw.split(|&b| b == b'&').filter(|p| !p.is_empty()) {
        let (name, value) = match pair.iter().position(|&b| b == b'=') {
            Some(at) => (&pair[..at], &pair[at + 1..]),
            None => (pair, &b""[..]),
        };
        pairs.push((unescape(name, extra)?, unescape(value, extra)?));
    }
    Ok(pairs)
}

fn unescape(raw: &[u8], extra: &[u8]) -> Result<String, String> {
    let mut bytes = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        match raw[i] {
            b'+' => bytes.push(b' '),
            b'%' => {
                let hex = raw
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or("a `%` that does not start a %XX escape")?;
                bytes.push(hex);
                i += 2;
            }
            b if b.is_ascii_alphanumeric() || b"*-._~".contains(&b) || extra.contains(&b) => {
                bytes.push(b)
            }
            b => {
                return Err(format!(
                    "the character {:?} must be percent-encoded",
                    char::from(b)
                ));
            }
        }
        i += 1;
    }
    String::from_utf8(bytes).map_err(|_| "a parameter that is not UTF-8".to_owned())
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    #[test]
    fn strict_form_decoding() {
        let pairs = decode(b"pwd=a+b%2Bc%26d&x=&y&&z=%7E~", b"").unwrap();
        assert_eq!(
            pairs,
            [
                ("pwd".to_owned(), "a b+c&d".to_owned()),
                ("x".to_owned(), String::new()),
                ("y".to_owned(), String::new()),
                ("z".to_owned(), "~~".to_owned()),
            ]
        );
        assert!(decode(b"pwd=100%", b"").is_err());
        assert!(decode(b"pwd=%zz", b"").is_err());
        assert!(decode(b"pwd=a#b", b"").is_err());
        assert!(decode(b"pwd=%FF", b"").is_err());
        assert!(decode(b"in=[{}]", QUERY_EXTRA).is_err());
        assert!(decode(b"a=b/c:d", QUERY_EXTRA).is_ok());
    }

    #[test]
    fn query_first_and_forms_only() {
        let uri: Uri = "/RestAPI/ResetPwd?pwd=query".parse().unwrap();
        let mut headers = HeaderMap::new();
        let params = Params::read(&Method::POST, &uri, &headers, b"pwd=body&a=1").unwrap();
        assert_eq!(params.get("pwd"), Some("query"));
        assert_eq!(params.get("a"), None, "not a form: body ignored");
        headers.insert(
            "content-type",
            HeaderValue::from_static("application/x-www-form-urlencoded; charset=UTF-8"),
        );
        let params = Params::read(&Method::POST, &uri, &headers, b"pwd=body&a=1").unwrap();
        assert_eq!(params.get("pwd"), Some("query"));
        assert_eq!(params.get("a"), Some("1"));
        let params = Params::read(&Method::GET, &uri, &headers, b"a=1").unwrap();
        assert_eq!(params.get("a"), None, "a GET's body is not read");
    }
}
