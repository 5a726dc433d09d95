//! Splitting request paths into decoded segments.
//!
//! API Gateway and `cargo lambda watch` hand over the raw path, with ids still percent-encoded
//! (`foo%20group`); each segment is decoded on its own so that an encoded `/` stays inside its
//! segment, where id parsing refuses it.

use percent_encoding::percent_decode_str;
use std::borrow::Cow;

/// The path's segments, without the leading slash and one optional trailing slash, each still
/// encoded. Routes match on these, then decode only the variable segments.
pub fn segments(path: &str) -> impl Iterator<Item = &str> {
    let path = path.strip_prefix('/').unwrap_or(path);
    let path = path.strip_suffix('/').unwrap_or(path);
    path.split('/')
}

/// Percent-decodes one segment; `None` when the bytes are not UTF-8.
pub fn decode(segment: &str) -> Option<Cow<'_, str>> {
    percent_decode_str(segment).decode_utf8().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trailing_slash_is_optional() {
        let a: Vec<_> = segments("/api/v1/x/").collect();
        let b: Vec<_> = segments("/api/v1/x").collect();
        assert_eq!(a, ["api", "v1", "x"]);
        assert_eq!(a, b);
    }

    #[test]
    fn empty_segments_are_kept_so_they_can_be_refused() {
        let s: Vec<_> = segments("/api//x/").collect();
        assert_eq!(s, ["api", "", "x"]);
    }

    #[test]
    fn decoding_is_per_segment() {
        assert_eq!(decode("foo%20group").unwrap(), "foo group");
        assert_eq!(decode("a%2Fb").unwrap(), "a/b");
        assert_eq!(decode("%C3%BC").unwrap(), "ü");
        assert!(decode("%FF").is_none());
    }
}
