//! CNI versions: which cnm speaks, and how they compare.

use std::fmt;

/// The versions cnm speaks, oldest first.
pub const SUPPORTED: [&str; 3] = ["0.4.0", "1.0.0", "1.1.0"];

/// A CNI version, `MAJOR.MINOR.PATCH`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version(pub u32, pub u32, pub u32);

impl Version {
    /// Parse `1.0.0` (a missing patch or minor reads as 0, as libcni's
    /// semver parsing does).
    pub fn parse(s: &str) -> Option<Version> {
        let mut parts = s.split('.').map(|p| p.parse::<u32>().ok());
        let major = parts.next()??;
        let minor = parts.next().unwrap_or(Some(0))?;
        let patch = parts.next().unwrap_or(Some(0))?;
        if parts.next().is_some() {
            return None;
        }
        Some(Version(major, minor, patch))
    }

    /// 0.4.0 results tag each address with its family (`"version": "4"`).
    pub fn tags_ip_versions(self) -> bool {
        self < Version(1, 0, 0)
    }

    /// CHECK exists from 0.4.0 on.
    pub fn has_check(self) -> bool {
        self >= Version(0, 4, 0)
    }

    /// STATUS and GC exist from 1.1.0 on; interfaces carry `mtu` there.
    pub fn is_1_1(self) -> bool {
        self >= Version(1, 1, 0)
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.0, self.1, self.2)
    }
}

/// Whether cnm speaks `v` (as written in a configuration).
pub fn supports(v: &str) -> bool {
    SUPPORTED.contains(&v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_compare_as_numbers() {
        assert!(Version::parse("0.10.0").unwrap() > Version::parse("0.4.0").unwrap());
        assert_eq!(Version::parse("1.0"), Some(Version(1, 0, 0)));
        assert_eq!(Version::parse("1.x.0"), None);
        assert!(Version::parse("0.4.0").unwrap().tags_ip_versions());
        assert!(!Version::parse("1.0.0").unwrap().tags_ip_versions());
    }
}
