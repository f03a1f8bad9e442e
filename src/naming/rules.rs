//! Which names are acceptable where. Names end up in kernel interface names,
//! file paths under /run/netns and /etc/netns, ownership marks and hosts
//! files, so the rules are strict on purpose.

/// Topology, network, sandbox and endpoint names: ASCII letters, digits,
/// `_`, `.`, `-`; starting with a letter or digit; no `..`; at most `max`
/// bytes. This keeps them safe as path components and inside marks
/// (`cnm:<topology>:<kind>:<name>` uses `:` as separator).
pub fn valid_identifier(name: &str, max: usize) -> Result<(), String> {
    if name.is_empty() {
        return Err("is empty".into());
    }
    if name.len() > max {
        return Err(format!(
            "is {} bytes long; at most {max} allowed",
            name.len()
        ));
    }
    if !name.as_bytes()[0].is_ascii_alphanumeric() {
        return Err("must start with a letter or digit".into());
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')))
    {
        return Err(format!(
            "contains {}; only letters, digits, '_', '.' and '-' are allowed",
            describe_char(c)
        ));
    }
    if name.contains("..") {
        return Err("contains '..'".into());
    }
    Ok(())
}

/// Longest container ID accepted (Docker's and CRI's are 64 hex digits).
pub const MAX_CONTAINER_ID: usize = 256;

/// A container ID as CNI defines `CNI_CONTAINERID` (and `container_id:`
/// holds it): a letter or digit, then letters, digits, `_`, `.` and `-`.
pub fn valid_container_id(id: &str) -> Result<(), String> {
    if id.is_empty() || id.len() > MAX_CONTAINER_ID {
        return Err(format!("must be 1 to {MAX_CONTAINER_ID} bytes long"));
    }
    if !id.as_bytes()[0].is_ascii_alphanumeric()
        || id
            .chars()
            .any(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')))
    {
        return Err(format!(
            "'{}' must start with a letter or digit and hold only letters, digits, '_', '.' and '-'",
            id.escape_debug()
        ));
    }
    Ok(())
}

/// A Linux interface name (the kernel's `dev_valid_name`): 1..=15 bytes, not
/// `.` or `..`, no `/`, `:`, whitespace or control characters.
pub fn valid_kernel_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("is empty".into());
    }
    if name.len() > 15 {
        return Err(format!(
            "is {} bytes long; Linux interface names have at most 15",
            name.len()
        ));
    }
    if name == "." || name == ".." {
        return Err("is not a valid interface name".into());
    }
    if let Some(c) = name
        .chars()
        .find(|c| *c == '/' || *c == ':' || c.is_whitespace() || c.is_control() || !c.is_ascii())
    {
        return Err(format!(
            "contains {}, which Linux interface names cannot hold",
            describe_char(c)
        ));
    }
    Ok(())
}

/// A DNS name as it may appear in a hosts or resolv.conf file: dot-separated
/// labels of letters, digits, `-` and `_`, each 1..=63 bytes, 253 in all.
pub fn is_hostname(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("is empty".into());
    }
    if name.len() > 253 {
        return Err("is longer than 253 bytes".into());
    }
    for label in name.split('.') {
        if label.is_empty() {
            return Err("has an empty label".into());
        }
        if label.len() > 63 {
            return Err(format!(
                "has a label of {} bytes; at most 63 allowed",
                label.len()
            ));
        }
        if let Some(c) = label
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_'))
        {
            return Err(format!("contains {}", describe_char(c)));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(format!("label '{label}' starts or ends with '-'"));
        }
    }
    Ok(())
}

fn describe_char(c: char) -> String {
    if c.is_whitespace() {
        "whitespace".into()
    } else if c.is_control() {
        format!("control character U+{:04X}", c as u32)
    } else {
        format!("'{c}'")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers() {
        assert!(valid_identifier("web-1.a_b", 64).is_ok());
        assert_eq!(
            valid_identifier("..", 64).unwrap_err(),
            "must start with a letter or digit"
        );
        assert!(valid_identifier("a/b", 64).unwrap_err().contains("'/'"));
        assert!(valid_identifier("a b", 64)
            .unwrap_err()
            .contains("whitespace"));
        assert!(valid_identifier("a..b", 64).unwrap_err().contains(".."));
        assert!(valid_identifier("a\u{7}", 64)
            .unwrap_err()
            .contains("control"));
        assert!(valid_identifier(&"x".repeat(65), 64)
            .unwrap_err()
            .contains("65 bytes"));
    }

    #[test]
    fn kernel_names() {
        assert!(valid_kernel_name("br-front").is_ok());
        assert!(valid_kernel_name("0123456789abcdef")
            .unwrap_err()
            .contains("16 bytes"));
        assert!(valid_kernel_name("a/b").is_err());
        assert!(valid_kernel_name("a b").is_err());
        assert!(valid_kernel_name("..").is_err());
        assert!(valid_kernel_name("eth0:1").is_err());
    }

    #[test]
    fn hostnames() {
        assert!(is_hostname("web.shop.local").is_ok());
        assert!(is_hostname("web\n10.0.0.1 evil").is_err());
        assert!(is_hostname("-web").is_err());
        assert!(is_hostname("a..b").is_err());
    }
}
