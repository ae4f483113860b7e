//! NTP server names for chrony's `server` lines (`time.upstream`).

use super::{shown, shown_char};

/// An NTP server for chrony's `server` line: an IPv4 address, or a DNS name
/// of letters, digits, '-' and '.' (labels of 1 to 63 characters, not
/// starting or ending with '-'; at most 253 characters). Nothing else can
/// reach the line: no space, no second line, no leading '-'.
pub fn check_ntp_server(s: &str) -> Result<(), String> {
    if s.parse::<std::net::Ipv4Addr>().is_ok() {
        return Ok(());
    }
    if s.is_empty() {
        return Err("is empty".into());
    }
    if s.len() > 253 {
        return Err(format!("is {} characters long (at most 253)", s.len()));
    }
    if let Some(c) = s
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '.'))
    {
        return Err(format!(
            "contains {}; an NTP server is an IPv4 address or a DNS name",
            shown_char(c)
        ));
    }
    let name = s.strip_suffix('.').unwrap_or(s);
    for label in name.split('.') {
        if label.is_empty() {
            return Err("has an empty label (`..` or a leading '.')".into());
        }
        if label.len() > 63 {
            return Err(format!(
                "has a label of {} characters (at most 63)",
                label.len()
            ));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(format!(
                "has a label `{}` that starts or ends with '-'",
                shown(label)
            ));
        }
    }
    if name
        .split('.')
        .all(|l| l.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err("is all digits but not an IPv4 address".into());
    }
    Ok(())
}
