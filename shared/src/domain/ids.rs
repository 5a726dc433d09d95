//! Identifiers that arrive from callers, parsed once at the boundary.
//!
//! Code past the boundary only ever holds ids that satisfy the rules, so storage keys built from
//! them need no further checks.

use std::fmt;

/// Why a caller-supplied identifier was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdError {
    Empty,
    TooLong {
        max: usize,
    },
    ControlCharacter,
    /// A character API Gateway cannot deliver intact in a path (`/ ? # % \`).
    Unaddressable(char),
    /// `.` or `..`, which URL normalization removes from a path.
    DotSegment,
}

impl fmt::Display for IdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IdError::Empty => f.write_str("must not be empty"),
            IdError::TooLong { max } => write!(f, "must be at most {max} characters"),
            IdError::ControlCharacter => f.write_str("must not contain control characters"),
            IdError::Unaddressable(c) => write!(
                f,
                "must not contain {c:?}: API Gateway cannot deliver it in a path (refused: / ? # % \\)"
            ),
            IdError::DotSegment => f.write_str("must not be \".\" or \"..\""),
        }
    }
}

/// Characters an id may not hold because it could not be addressed in a path once deployed:
/// API Gateway percent-decodes the path before the function sees it, so `%2F` becomes a new
/// segment, `%3F` cuts the path, `%23` starts a fragment and `%25` is refused at the edge; and
/// the URL parser lambda_http builds the request with reads `\` as `/`.
pub const UNADDRESSABLE: [char; 5] = ['/', '?', '#', '%', '\\'];

/// Checks the rules shared by every id a client creates: 1..=max characters, no control
/// characters, none of [`UNADDRESSABLE`], not a dot segment.
fn check_id(value: &str, max: usize) -> Result<(), IdError> {
    check_text(value, max)?;
    if let Some(c) = value.chars().find(|c| UNADDRESSABLE.contains(c)) {
        return Err(IdError::Unaddressable(c));
    }
    if value == "." || value == ".." {
        return Err(IdError::DotSegment);
    }
    Ok(())
}

/// 1..=max characters (Unicode scalar values), no control characters.
fn check_text(value: &str, max: usize) -> Result<(), IdError> {
    if value.is_empty() {
        return Err(IdError::Empty);
    }
    let mut count = 0usize;
    for c in value.chars() {
        count += 1;
        if c.is_control() {
            return Err(IdError::ControlCharacter);
        }
    }
    if count > max {
        return Err(IdError::TooLong { max });
    }
    Ok(())
}

macro_rules! path_id {
    ($(#[$doc:meta])* $name:ident, $max:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            pub const MAX_CHARS: usize = $max;

            pub fn parse(value: impl Into<String>) -> Result<Self, IdError> {
                let value = value.into();
                check_id(&value, Self::MAX_CHARS)?;
                Ok(Self(value))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

path_id!(
    /// A tenant (service provider or enterprise): 1–80 characters, no control characters, no `/`.
    TenantId,
    80
);
path_id!(
    /// A group inside a tenant: 1–80 characters, no control characters, no `/`.
    GroupId,
    80
);

path_id!(
    /// A user of a group: 1–161 characters (BroadWorks user ids look like `alice@example.com`),
    /// no control characters, no `/`.
    UserId,
    161
);

path_id!(
    /// The name of an instance: a user-services configuration object (`For_HG`), or an instance
    /// of a group service (a hunt group named `Sales`). 1–80 characters, no control characters,
    /// no `/`.
    InstanceName,
    80
);

/// A group, always addressed through the tenant that owns it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct GroupRef {
    pub tenant: TenantId,
    pub group: GroupId,
}

path_id!(
    /// The name of a tenant-defined service pack: 1–80 characters, the rules of every path id
    /// (a pack is addressed as `service_packs/{name}`).
    PackName,
    80
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_accept_ordinary_and_unicode_values() {
        assert_eq!(TenantId::parse("foo").unwrap().as_str(), "foo");
        assert!(GroupId::parse("foo group no. 1 ü @+&=;:,!$'()*").is_ok());
        assert!(
            TenantId::parse("é".repeat(80)).is_ok(),
            "limit counts characters, not bytes"
        );
    }

    #[test]
    fn ids_reject_what_the_contract_forbids() {
        assert_eq!(TenantId::parse(""), Err(IdError::Empty));
        assert_eq!(
            TenantId::parse("x".repeat(81)),
            Err(IdError::TooLong { max: 80 })
        );
        for bad in ["a/b", "a?b", "a#b", "100%", "a\\b"] {
            assert!(
                matches!(GroupId::parse(bad), Err(IdError::Unaddressable(_))),
                "{bad}"
            );
        }
        assert_eq!(TenantId::parse(".."), Err(IdError::DotSegment));
        assert!(TenantId::parse("a..b").is_ok());
        assert_eq!(GroupId::parse("a\nb"), Err(IdError::ControlCharacter));
        assert_eq!(GroupId::parse("a\u{7f}"), Err(IdError::ControlCharacter));
    }

    #[test]
    fn user_ids_may_be_longer() {
        assert!(UserId::parse("alice@example.com").is_ok());
        assert!(UserId::parse("u".repeat(161)).is_ok());
        assert_eq!(
            UserId::parse("u".repeat(162)),
            Err(IdError::TooLong { max: 161 })
        );
    }

    #[test]
    fn pack_names_follow_the_id_rules() {
        assert_eq!(
            PackName::parse("CFx/Basic"),
            Err(IdError::Unaddressable('/'))
        );
        assert_eq!(PackName::parse(""), Err(IdError::Empty));
        assert_eq!(
            PackName::parse("x".repeat(81)),
            Err(IdError::TooLong { max: 80 })
        );
        assert_eq!(PackName::parse("a\tb"), Err(IdError::ControlCharacter));
    }
}
