//! Cluster users' names and IDs (`users:`).

use super::shown_char;

/// The lowest UID/GID a cluster user may have: below 1000 belongs to the
/// system (Debian, RHEL and Alpine all start ordinary users at 1000).
pub const MIN_ACCOUNT_ID: u32 = 1000;
/// One above the highest: from 60000 up Debian reserves IDs for the system
/// again (and 65534 is `nobody`, 65535 and 4294967295 mean "no ID").
pub const MAX_ACCOUNT_ID: u32 = 60000;

/// A POSIX-portable account name that is safe everywhere it goes (a
/// `useradd` argument, `/etc/passwd`, a shell): `[a-z_][a-z0-9_-]*`, at
/// most 32 characters. It can never be read as an option (no leading
/// `-`), never split a passwd line (no `:`, no line break) and is never
/// all digits (tools would take it for an ID).
pub fn check_account_name(name: &str) -> Result<(), String> {
    let Some(first) = name.chars().next() else {
        return Err("is empty".into());
    };
    if !(first.is_ascii_lowercase() || first == '_') {
        return Err(format!(
            "starts with {}; start with a lowercase letter or '_' (a leading '-' would be read as an option)",
            shown_char(first)
        ));
    }
    if name.len() > 32 {
        return Err("is longer than 32 characters".into());
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '-')))
    {
        return Err(format!(
            "contains {}; use lowercase letters, digits, '_' and '-'",
            shown_char(c)
        ));
    }
    Ok(())
}

/// A UID or GID for a cluster user: at least [`MIN_ACCOUNT_ID`] and below
/// [`MAX_ACCOUNT_ID`].
pub fn check_account_id(id: u32) -> Result<(), String> {
    if id < MIN_ACCOUNT_ID {
        return Err(format!(
            "is below {MIN_ACCOUNT_ID}: IDs below {MIN_ACCOUNT_ID} belong to the system's own accounts"
        ));
    }
    if id >= MAX_ACCOUNT_ID {
        return Err(format!(
            "is {MAX_ACCOUNT_ID} or more: the system reserves those (65534 is `nobody`)"
        ));
    }
    Ok(())
}
