//! The one credential-redacting URL display.

use alloc::string::String;

/// What replaces a query string or fragment.
const REDACTED: &str = "?<redacted>";

/// The most characters shown of text that is not a URL.
const MAX_TEXT: usize = 200;

/// `url` as an error, a log line or a printed envelope may show it: without
/// user info (where a user, password or token may be written) and with any
/// query string or fragment replaced by `?<redacted>` (where a presigned
/// link keeps its signature).
///
/// - `nats://alice:s3cret@host:4222` is `nats://host:4222`;
///   `https://u:p@s3.local/b/k?X-Amz-Signature=...` is
///   `https://s3.local/b/k?<redacted>`.
/// - A comma-separated list of servers is redacted entry by entry, and so
///   is a server written without a scheme (`u:p@host:4222` is `host:4222`).
/// - User info is everything up to the last `@` before the path, so a
///   password holding `,` or `@` is dropped whole. Where a list cannot be
///   told from user info, less is shown, never more.
/// - Text that is not a URL at all (no `://`) is also cut to 200
///   characters, so a malformed link does not flood a log.
///
/// The NATS transport, the claim-check stores, the facade and the command
/// line all show URLs through this one function.
///
/// ```
/// use natsbridge_common::redact_url;
///
/// assert_eq!(redact_url("nats://alice:s3cret@127.0.0.1:4222"), "nats://127.0.0.1:4222");
/// assert_eq!(
///     redact_url("nats://t0ken@a:4222,nats://u:p@b:4222"),
///     "nats://a:4222,nats://b:4222"
/// );
/// assert_eq!(redact_url("https://files/x.bin?sig=abc"), "https://files/x.bin?<redacted>");
/// ```
pub fn redact_url(url: &str) -> String {
    // The query and fragment go first: user info cannot hold `?` or `#`
    // (RFC 3986), but a query may hold `@`.
    let end = url.find(['?', '#']).unwrap_or(url.len());
    let kept = &url[..end];
    let mut shown = String::with_capacity(end + REDACTED.len());
    // Every authority starts at the beginning of the text or right after a
    // `://`, and ends at the next `/`. Splitting on `://` rather than on
    // commas keeps a comma inside a password from exposing its first half.
    for (i, piece) in kept.split("://").enumerate() {
        if i > 0 {
            shown.push_str("://");
        }
        let authority_end = piece.find('/').unwrap_or(piece.len());
        let host_at = piece[..authority_end].rfind('@').map_or(0, |at| at + 1);
        shown.push_str(&piece[host_at..]);
    }
    if !kept.contains("://")
        && let Some((cut, _)) = shown.char_indices().nth(MAX_TEXT)
    {
        shown.truncate(cut);
    }
    if end < url.len() {
        shown.push_str(REDACTED);
    }
    shown
}

#[cfg(test)]
mod tests {
    use alloc::format;

    use super::redact_url;

    #[test]
    fn drops_user_info_query_and_fragment() {
        for (url, expected) in [
            (
                "https://user:pw@s3.local/b/k?X-Amz-Signature=SECRET#frag",
                "https://s3.local/b/k?<redacted>",
            ),
            ("https://files/x.bin?X-Amz-Signature=abc", "https://files/x.bin?<redacted>"),
            ("ws://u:p@h:8080/nats?token=t", "ws://h:8080/nats?<redacted>"),
            ("https://h/x#frag", "https://h/x?<redacted>"),
            ("http://h/a/b", "http://h/a/b"),
            ("nats-os://bucket/obj", "nats-os://bucket/obj"),
            ("nats://127.0.0.1:4222", "nats://127.0.0.1:4222"),
            ("nats://localhost:4222", "nats://localhost:4222"),
            ("nats://alice:s3cret@127.0.0.1:4222", "nats://127.0.0.1:4222"),
            ("tls://s3cr3t@host", "tls://host"),
            ("", ""),
        ] {
            assert_eq!(redact_url(url), expected, "{url}");
        }
    }

    #[test]
    fn an_at_sign_in_the_path_or_query_stays_or_goes_with_it() {
        assert_eq!(
            redact_url("http://u:p@files:8080/file/a/b/c@d"),
            "http://files:8080/file/a/b/c@d"
        );
        assert_eq!(redact_url("https://h?q=a@SECRET"), "https://h?<redacted>");
    }

    #[test]
    fn each_server_of_a_list_is_redacted() {
        assert_eq!(
            redact_url("nats://t0ken@host:4222,nats://u:p@other:4222"),
            "nats://host:4222,nats://other:4222"
        );
        assert_eq!(redact_url("nats://a:4222,nats://u:p@b:4222"), "nats://a:4222,nats://b:4222");
        assert_eq!(redact_url("u:p@a:4222,b:4222"), "a:4222,b:4222");
    }

    #[test]
    fn passwords_with_commas_or_at_signs_are_dropped_whole() {
        assert_eq!(redact_url("https://u:p,w@files/x"), "https://files/x");
        assert_eq!(redact_url("nats://u:p@ss,w0rd@h:4222"), "nats://h:4222");
        // A list entry and user info cannot be told apart here: less is shown.
        assert_eq!(redact_url("nats://a:4222,u:p@b:4222"), "nats://b:4222");
    }

    #[test]
    fn text_that_is_not_a_url() {
        assert_eq!(redact_url("localhost:4222"), "localhost:4222");
        assert_eq!(redact_url("u:p@h:4222"), "h:4222");
        assert_eq!(redact_url("not a url?token=SECRET"), "not a url?<redacted>");
        assert_eq!(redact_url("not a url#SECRET"), "not a url?<redacted>");
        let long = "é".repeat(300);
        assert_eq!(redact_url(&long), "é".repeat(200));
        assert_eq!(redact_url(&format!("{long}?x")), format!("{}?<redacted>", "é".repeat(200)));
    }
}
