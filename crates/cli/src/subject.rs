//! Subjects checked before anything is sent or uploaded, and the inbox
//! round trips that are not messages.

use crate::exit::BadInput;

/// Checks a subject a message is published to (`send`, `request`, a
/// `--reply-to`): tokens separated by dots, none empty, no white space, no
/// wildcard token (`*`, `>`: the server would deliver the message to a
/// literal `*` nobody subscribes to). The error names the subject and the
/// rule, and is bad input.
pub(crate) fn check_publish(subject: &str) -> anyhow::Result<()> {
    match publish_rule_broken(subject).or_else(|| reads_as_payload(subject)) {
        None => Ok(()),
        Some(rule) => {
            Err(anyhow::anyhow!("invalid subject {subject:?} to publish to: {rule}")
                .context(BadInput))
        }
    }
}

/// Checks a subject to subscribe to (`listen`, `reply`): as
/// [`check_publish`], except that `*` may stand for a token and `>`, as
/// the last token, for the rest.
pub(crate) fn check_subscribe(subject: &str) -> anyhow::Result<()> {
    match token_rule_broken(subject)
        .or_else(|| {
            let mut tokens = subject.split('.').peekable();
            while let Some(token) = tokens.next() {
                if token == ">" && tokens.peek().is_some() {
                    return Some("`>` stands for the rest of the subject, so it comes last");
                }
            }
            None
        })
        .or_else(|| reads_as_payload(subject))
    {
        None => Ok(()),
        Some(rule) => Err(anyhow::anyhow!("invalid subject {subject:?} to subscribe to: {rule}")
            .context(BadInput)),
    }
}

/// The rule `subject` breaks as a subject to publish to, if any.
fn publish_rule_broken(subject: &str) -> Option<&'static str> {
    token_rule_broken(subject).or_else(|| {
        subject
            .split('.')
            .any(|t| t == "*" || t == ">")
            .then_some("wildcards (`*`, `>`) only subscribe; a message is published to one subject")
    })
}

/// Refuses a subject written as a payload argument (`TYPE:NAME=VALUE`
/// with a payload type the command line knows): NATS would take it, but
/// it is the arguments swapped (`reply text:a=b svc.x` would answer on a
/// subject named `text:a=b` with the text `svc.x`).
fn reads_as_payload(subject: &str) -> Option<&'static str> {
    let (type_name, rest) = subject.split_once(':')?;
    (rest.contains('=') && natsbridge::PayloadType::known(type_name).is_some())
        .then_some("it reads as a payload argument (TYPE:NAME=VALUE); the subject comes first")
}

/// The rule `subject` breaks as a list of tokens, if any.
fn token_rule_broken(subject: &str) -> Option<&'static str> {
    if subject.is_empty() {
        return Some("it is empty");
    }
    if subject.chars().any(char::is_whitespace) {
        return Some("it holds white space");
    }
    if subject.starts_with('.') || subject.ends_with('.') {
        return Some("it starts or ends with a dot (an empty token)");
    }
    if subject.split('.').any(str::is_empty) {
        return Some("two dots in a row (an empty token)");
    }
    None
}

/// NATS clients' inbox prefix, unless one is configured.
const DEFAULT_INBOX_PREFIX: &str = "_INBOX";

/// Whether a message is a client's round trip to the server rather than
/// a message anyone sent: an empty body on an inbox subject (`_INBOX.`,
/// or `inbox_prefix` followed by a dot). `listen` does not show nor count
/// these.
pub(crate) fn is_inbox_probe(subject: &str, body: &[u8], inbox_prefix: Option<&str>) -> bool {
    body.is_empty()
        && std::iter::once(DEFAULT_INBOX_PREFIX)
            .chain(inbox_prefix)
            .any(|prefix| subject.strip_prefix(prefix).is_some_and(|rest| rest.starts_with('.')))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publish_subjects() {
        for good in ["a", "chat.room1", "a.b-c_d.e", "$SRV.PING", "a*b.c"] {
            assert_eq!(publish_rule_broken(good), None, "{good}");
        }
        for (bad, rule) in [
            ("", "empty"),
            ("a b", "white space"),
            ("a\tb", "white space"),
            (".a", "starts or ends"),
            ("a.", "starts or ends"),
            ("a..b", "two dots"),
            ("chat.*", "wildcards"),
            (">", "wildcards"),
            ("a.>.b", "wildcards"),
        ] {
            let broken = publish_rule_broken(bad).unwrap_or_else(|| panic!("{bad:?} accepted"));
            assert!(broken.contains(rule), "{bad:?}: {broken}");
        }
        // Colons and equal signs are a subject's right, unless the whole
        // reads as a payload argument.
        assert!(check_publish("urn:a=b.c").is_ok() && check_publish("json:ld").is_ok());
        assert!(check_publish("binary:blob=@file.bin").is_err());
        let err = check_publish("chat..x").unwrap_err();
        assert!(format!("{err:#}").contains("\"chat..x\""), "{err:#}");
    }

    #[test]
    fn subscribe_subjects() {
        for good in [">", "a.*", "a.*.c", "a.>", "_INBOX.>", "$JS.API.>"] {
            assert!(check_subscribe(good).is_ok(), "{good}");
        }
        for bad in ["", "a b", "a..b", ".a", "a.", ">.a", "a.>.b"] {
            let err = check_subscribe(bad).unwrap_err();
            assert!(format!("{err:#}").contains(&format!("{bad:?}")), "{err:#}");
        }
    }

    #[test]
    fn inbox_probes() {
        assert!(is_inbox_probe("_INBOX.abc.1", b"", None));
        assert!(is_inbox_probe("_MY.abc", b"", Some("_MY")));
        assert!(is_inbox_probe("_INBOX.abc", b"", Some("_MY")));
        assert!(!is_inbox_probe("_INBOX.abc", b"{}", None));
        assert!(!is_inbox_probe("chat.room", b"", None));
        assert!(!is_inbox_probe("_INBOXES.a", b"", None));
    }
}
