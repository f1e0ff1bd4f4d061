//! The one file-name sanitizer every store and the command line use.

/// `name` reduced to characters every file server, object store and file
/// system keeps: ASCII letters, digits, `.`, `-` and `_`; anything else
/// (path separators, spaces, non-ASCII) becomes `_`. Leading and trailing
/// dots are dropped (no `..`, no hidden files), the result is at most 200
/// bytes, and an empty result is `payload`.
///
/// ```
/// use natsbridge_claimcheck::safe_file_name;
/// assert_eq!(safe_file_name("../../etc/passwd"), "_.._etc_passwd");
/// assert_eq!(safe_file_name("résumé 1.txt"), "r_sum__1.txt");
/// assert_eq!(safe_file_name("..."), "payload");
/// ```
pub fn safe_file_name(name: &str) -> String {
    let safe: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') { c } else { '_' })
        .take(200)
        .collect();
    let trimmed = safe.trim_matches('.');
    if trimmed.is_empty() { "payload".into() } else { trimmed.into() }
}
