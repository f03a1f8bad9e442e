//! MAC addresses as files write them.

/// Parse a MAC written `02:42:0a:00:00:02`: a unicast MAC, not all zeros.
/// The error reads after the value ("is all zeros").
pub fn parse_mac(s: &str) -> Result<[u8; 6], &'static str> {
    let parts: Vec<&str> = s.split(':').collect();
    if parts.len() != 6 {
        return Err("is not a MAC address like 02:42:0a:00:00:02");
    }
    let mut mac = [0u8; 6];
    for (slot, p) in mac.iter_mut().zip(parts) {
        if p.len() != 2 {
            return Err("is not a MAC address like 02:42:0a:00:00:02");
        }
        *slot =
            u8::from_str_radix(p, 16).map_err(|_| "is not a MAC address like 02:42:0a:00:00:02")?;
    }
    if mac[0] & 1 == 1 {
        return Err("is a multicast address; an interface needs a unicast MAC");
    }
    if mac == [0; 6] {
        return Err("is all zeros");
    }
    Ok(mac)
}

/// A MAC as colon-separated lowercase hex (`02:42:0a:00:00:02`).
pub fn format_mac(m: &[u8; 6]) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}
