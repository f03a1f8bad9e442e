//! Random names from the kernel's generator.

use rustix::io::Errno;

/// `n` random bytes as hex, from the kernel's generator.
pub fn random_hex(n: usize) -> String {
    let mut buf = vec![0u8; n];
    let mut filled = 0;
    while filled < n {
        match rustix::rand::getrandom(&mut buf[filled..], rustix::rand::GetRandomFlags::empty()) {
            Ok(k) => filled += k,
            Err(Errno::INTR) => continue,
            Err(_) => {
                // Never expected on Linux ≥ 3.17; fall back to time and pid.
                let t = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos())
                    .unwrap_or_default();
                let seed = format!("{t}/{}/{filled}", std::process::id());
                let d = <sha2::Sha256 as sha2::Digest>::digest(seed.as_bytes());
                for (slot, b) in buf[filled..].iter_mut().zip(d.iter()) {
                    *slot = *b;
                }
                filled = n;
            }
        }
    }
    buf.iter().map(|b| format!("{b:02x}")).collect()
}
