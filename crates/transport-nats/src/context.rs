//! natscli's contexts: the JSON files `nats context save` writes, read so
//! that a deployment configured once for `nats` works here too.

use std::path::{Path, PathBuf};

use crate::{ConnectOptions, Error, ErrorKind, Result};

/// The server URL used when neither the context nor the caller names one.
pub const DEFAULT_URL: &str = "nats://localhost:4222";

/// A natscli context: the connection settings `nats context save NAME`
/// stores in `$XDG_CONFIG_HOME/nats/context/NAME.json` (else
/// `~/.config/nats/context/NAME.json`).
///
/// Plain data: [`NatsContext::load`] reads one, a caller may override any
/// field (a command line's flags win over the context), and
/// [`NatsContext::connect_options`] turns it into [`ConnectOptions`].
/// Fields natscli has and this crate does not use (`description`,
/// `jetstream_domain`, `socks_proxy`, `nsc`, the Windows certificate store
/// ...) are ignored; values are taken literally (natscli's `op://` and
/// `env://` secret references are not resolved). `Debug` shows only
/// whether a secret is set.
#[derive(Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct NatsContext {
    /// The context's name, when it was read from the context directory.
    pub name: Option<String>,
    /// Server URL, or several separated by commas (`url`).
    pub url: Option<String>,
    /// User name (`user`). Without a password it is used as a token, as
    /// natscli's `--user` is.
    pub user: Option<String>,
    /// Password (`password`).
    pub password: Option<String>,
    /// Token (`token`).
    pub token: Option<String>,
    /// `.creds` file: a user JWT and its nkey seed (`creds`).
    pub creds: Option<PathBuf>,
    /// File holding a user nkey seed, `SU...` (`nkey`).
    pub nkey: Option<PathBuf>,
    /// Client certificate for mutual TLS, PEM (`cert`).
    pub cert: Option<PathBuf>,
    /// The client certificate's private key, PEM (`key`).
    pub key: Option<PathBuf>,
    /// CA certificates to trust for the server's TLS, PEM (`ca`).
    pub ca: Option<PathBuf>,
    /// Start TLS before the server's INFO (`tls_first`).
    pub tls_first: bool,
    /// The prefix of this connection's inboxes instead of `_INBOX`
    /// (`inbox_prefix`; see [`ConnectOptions::inbox_prefix`]).
    pub inbox_prefix: Option<String>,
}

impl std::fmt::Debug for NatsContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsContext")
            .field("name", &self.name)
            .field("url", &self.url.as_deref().map(crate::redact_url))
            .field("user", &self.user.as_ref().map(|_| "<set>"))
            .field("password", &self.password.as_ref().map(|_| "<set>"))
            .field("token", &self.token.as_ref().map(|_| "<set>"))
            .field("creds", &self.creds)
            .field("nkey", &self.nkey)
            .field("cert", &self.cert)
            .field("key", &self.key)
            .field("ca", &self.ca)
            .field("tls_first", &self.tls_first)
            .field("inbox_prefix", &self.inbox_prefix)
            .finish()
    }
}

impl NatsContext {
    /// Reads the context `name`, or, with `None`, the one selected in
    /// `nats/context.txt` (natscli's `nats context select`). `Ok(None)`
    /// when no name is given and none is selected.
    ///
    /// Fails with [`ErrorKind::InvalidConfig`] when the named or selected
    /// context does not exist or is not valid JSON, or the name is not a
    /// plain file name.
    pub fn load(name: Option<&str>) -> Result<Option<NatsContext>> {
        match config_dir() {
            Some(root) => Self::load_from(&root, name),
            None if name.is_some() => Err(Error::new(
                ErrorKind::InvalidConfig,
                "cannot find the NATS context directory: neither XDG_CONFIG_HOME nor HOME is set",
            )),
            None => Ok(None),
        }
    }

    /// [`NatsContext::load`] with `root` in place of `$XDG_CONFIG_HOME`:
    /// reads `root/nats/context/NAME.json` and `root/nats/context.txt`.
    pub fn load_from(root: &Path, name: Option<&str>) -> Result<Option<NatsContext>> {
        let dir = root.join("nats");
        let name = match name.filter(|n| !n.is_empty()) {
            Some(name) => name.to_owned(),
            None => match std::fs::read_to_string(dir.join("context.txt")) {
                Ok(selected) if !selected.trim().is_empty() => selected.trim().to_owned(),
                _ => return Ok(None),
            },
        };
        if name.contains(['/', '\\']) || name.starts_with('.') {
            return Err(Error::new(
                ErrorKind::InvalidConfig,
                format!("NATS context name {name:?} is not a plain name"),
            ));
        }
        let path = dir.join("context").join(format!("{name}.json"));
        let mut context = Self::from_file(&path).map_err(|e| {
            if path.exists() {
                e
            } else {
                Error::new(
                    ErrorKind::InvalidConfig,
                    format!("no NATS context named {name:?} ({} does not exist)", path.display()),
                )
            }
        })?;
        context.name = Some(name);
        Ok(Some(context))
    }

    /// Reads a context file.
    pub fn from_file(path: &Path) -> Result<NatsContext> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            Error::with_source(
                ErrorKind::InvalidConfig,
                format!("reading NATS context {}", path.display()),
                e,
            )
        })?;
        parse(&text).map_err(|why| {
            Error::new(ErrorKind::InvalidConfig, format!("NATS context {}: {why}", path.display()))
        })
    }

    /// Parses a context file's JSON. Empty strings count as absent, and
    /// `~` and `$VAR` are expanded in the file fields, as natscli does.
    pub fn parse(json: &str) -> Result<NatsContext> {
        parse(json).map_err(|why| Error::new(ErrorKind::InvalidConfig, why))
    }

    /// The server URLs: `url` split at commas, or [`DEFAULT_URL`].
    pub fn servers(&self) -> Vec<String> {
        let servers: Vec<String> = self
            .url
            .as_deref()
            .unwrap_or(DEFAULT_URL)
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
        if servers.is_empty() { vec![DEFAULT_URL.to_owned()] } else { servers }
    }

    /// Connection options as natscli would connect with this context: one
    /// way of authenticating, the first of user (with password; a user
    /// alone is a token), `.creds` file and nkey, plus `token` if set; the
    /// client certificate when both `cert` and `key` are set; TLS required
    /// when a CA or a client certificate is given.
    ///
    /// Fails with [`ErrorKind::InvalidConfig`] when the nkey file cannot
    /// be read or holds no seed, or when only one of `cert` and `key` is
    /// set. `tls_first` starts TLS before the server's INFO.
    pub fn connect_options(&self) -> Result<ConnectOptions> {
        let mut servers = self.servers().into_iter();
        let mut options = ConnectOptions::new(servers.next().unwrap_or_default());
        for server in servers {
            options = options.server(server);
        }
        match (&self.user, &self.password, &self.creds, &self.nkey) {
            (Some(user), Some(password), _, _) => {
                options = options.user_password(user.clone(), password.clone());
            }
            (Some(token), None, _, _) => options = options.token(token.clone()),
            (None, _, Some(creds), _) => options = options.creds_file(creds.clone()),
            (None, _, None, Some(nkey)) => options = options.nkey(read_nkey_seed(nkey)?),
            (None, _, None, None) => {}
        }
        if let Some(token) = &self.token {
            options = options.token(token.clone());
        }
        match (&self.cert, &self.key) {
            (Some(cert), Some(key)) => {
                options = options.client_certificate(cert.clone(), key.clone()).require_tls(true);
            }
            (None, None) => {}
            _ => {
                return Err(Error::new(
                    ErrorKind::InvalidConfig,
                    "a TLS client certificate needs both a certificate and a key file",
                ));
            }
        }
        if let Some(ca) = &self.ca {
            options = options.root_certificates(ca.clone()).require_tls(true);
        }
        if self.tls_first {
            options = options.tls_first(true);
        }
        if let Some(prefix) = &self.inbox_prefix {
            options = options.inbox_prefix(prefix.clone());
        }
        Ok(options)
    }
}

/// A context file's fields, or why they cannot be read. The reason never
/// quotes the document (serde's errors say where the JSON is broken, not
/// what it holds), so it cannot show a password.
fn parse(json: &str) -> std::result::Result<NatsContext, String> {
    let value: serde_json::Value =
        serde_json::from_str(json).map_err(|e| format!("not valid JSON: {e}"))?;
    let Some(fields) = value.as_object() else {
        return Err("not a JSON object".to_owned());
    };
    let text = |key: &str| match fields.get(key) {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::String(s)) if s.is_empty() => Ok(None),
        Some(serde_json::Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(format!("field {key:?} is not a string")),
    };
    let path = |key: &str| Ok::<_, String>(text(key)?.map(|p| PathBuf::from(expand_path(&p))));
    Ok(NatsContext {
        name: None,
        url: text("url")?,
        user: text("user")?,
        password: text("password")?,
        token: text("token")?,
        creds: path("creds")?,
        nkey: path("nkey")?,
        cert: path("cert")?,
        key: path("key")?,
        ca: path("ca")?,
        tls_first: fields.get("tls_first").and_then(serde_json::Value::as_bool).unwrap_or(false),
        inbox_prefix: text("inbox_prefix")?,
    })
}

impl ConnectOptions {
    /// Options from natscli's context `name`, or from the selected context
    /// with `None` (see [`NatsContext::load`]); with no name and none
    /// selected, the defaults for [`DEFAULT_URL`].
    ///
    /// ```no_run
    /// # async fn example() -> natsbridge_transport_nats::Result<()> {
    /// use natsbridge_transport_nats::ConnectOptions;
    ///
    /// // The context `nats context save synadia ...` wrote.
    /// let conn = ConnectOptions::from_context(Some("synadia"))?.connect().await?;
    /// # let _ = conn; Ok(()) }
    /// ```
    pub fn from_context(name: Option<&str>) -> Result<ConnectOptions> {
        NatsContext::load(name)?.unwrap_or_default().connect_options()
    }
}

/// Where natscli keeps its configuration: `$XDG_CONFIG_HOME`, else
/// `~/.config`.
fn config_dir() -> Option<PathBuf> {
    let non_empty = |name| std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    non_empty("XDG_CONFIG_HOME").or_else(|| non_empty("HOME").map(|home| home.join(".config")))
}

/// `~` at the start and `$VAR` / `${VAR}` anywhere replaced, as natscli
/// expands the file fields of a context.
fn expand_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    let mut rest = path;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        let (name, tail) = match after.strip_prefix('{') {
            Some(braced) => match braced.find('}') {
                Some(end) => (&braced[..end], &braced[end + 1..]),
                None => ("", after),
            },
            None => {
                let end = after
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .unwrap_or(after.len());
                (&after[..end], &after[end..])
            }
        };
        if name.is_empty() {
            out.push('$');
            rest = after;
        } else {
            out.push_str(&std::env::var(name).unwrap_or_default());
            rest = tail;
        }
    }
    out.push_str(rest);
    match out.strip_prefix('~') {
        Some(tail) if tail.is_empty() || tail.starts_with('/') => {
            match std::env::var_os("HOME").filter(|h| !h.is_empty()) {
                Some(home) => format!("{}{tail}", PathBuf::from(home).display()),
                None => out,
            }
        }
        _ => out,
    }
}

/// The seed in an nkey file: the first word that looks like a user seed
/// (`SU...`), as nats.go's `NkeyOptionFromSeed` finds it in a file that
/// may hold comments; else the whole trimmed text.
fn read_nkey_seed(path: &Path) -> Result<String> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        Error::with_source(
            ErrorKind::InvalidConfig,
            format!("reading nkey file {}", path.display()),
            e,
        )
    })?;
    let seed = text.split_whitespace().find(|word| word.starts_with("SU")).or_else(|| {
        Some(text.trim()).filter(|t| !t.is_empty() && !t.contains(char::is_whitespace))
    });
    seed.map(str::to_owned).ok_or_else(|| {
        Error::new(ErrorKind::InvalidConfig, format!("nkey file {} holds no seed", path.display()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(root: &Path, rel: &str, text: &str) {
        let path = root.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    #[test]
    fn a_named_context_is_read_with_its_fields() {
        let root = tempfile::tempdir().unwrap();
        write(
            root.path(),
            "nats/context/prod.json",
            r#"{"description":"prod","url":"nats://a:4222,nats://b:4222","user":"alice",
                "password":"pw","token":"","creds":"","nkey":"","cert":"/c.pem",
                "key":"/k.pem","ca":"/ca.pem","jetstream_domain":"hub","tls_first":false,
                "inbox_prefix":"_INBOX_ops"}"#,
        );
        let context = NatsContext::load_from(root.path(), Some("prod")).unwrap().unwrap();
        assert_eq!(context.name.as_deref(), Some("prod"));
        assert_eq!(context.servers(), ["nats://a:4222", "nats://b:4222"]);
        assert_eq!(context.user.as_deref(), Some("alice"));
        assert_eq!(context.password.as_deref(), Some("pw"));
        assert_eq!(context.token, None, "an empty string is absent");
        assert_eq!(context.creds, None);
        assert_eq!(context.cert.as_deref(), Some(Path::new("/c.pem")));
        assert_eq!(context.ca.as_deref(), Some(Path::new("/ca.pem")));
        let shown = format!("{context:?}");
        assert!(!shown.contains("pw") && !shown.contains("alice"), "{shown}");
        assert_eq!(context.inbox_prefix.as_deref(), Some("_INBOX_ops"));
        let options = context.connect_options().unwrap();
        assert!(format!("{options:?}").contains("nats://a:4222"));
        assert!(format!("{options:?}").contains(r#"inbox_prefix: Some("_INBOX_ops")"#));
    }

    #[test]
    fn the_selected_context_is_used_when_no_name_is_given() {
        let root = tempfile::tempdir().unwrap();
        assert_eq!(NatsContext::load_from(root.path(), None).unwrap(), None);
        write(root.path(), "nats/context/dev.json", r#"{"url":"nats://dev:4222"}"#);
        write(root.path(), "nats/context.txt", "dev\n");
        let context = NatsContext::load_from(root.path(), None).unwrap().unwrap();
        assert_eq!(context.name.as_deref(), Some("dev"));
        assert_eq!(context.url.as_deref(), Some("nats://dev:4222"));
    }

    #[test]
    fn a_missing_or_broken_context_is_an_invalid_config_error() {
        let root = tempfile::tempdir().unwrap();
        let err = NatsContext::load_from(root.path(), Some("nope")).unwrap_err();
        assert_eq!(err.kind(), &ErrorKind::InvalidConfig);
        assert!(err.to_string().contains("no NATS context named \"nope\""), "{err}");
        write(root.path(), "nats/context/bad.json", r#"{"url": "x", "password": "s3cret""#);
        let err = NatsContext::load_from(root.path(), Some("bad")).unwrap_err();
        assert_eq!(err.kind(), &ErrorKind::InvalidConfig);
        assert!(!format!("{err} {err:?}").contains("s3cret"), "{err}");
        let err = NatsContext::load_from(root.path(), Some("../etc/x")).unwrap_err();
        assert_eq!(err.kind(), &ErrorKind::InvalidConfig);
    }

    #[test]
    fn file_fields_expand_home_and_variables() {
        let home = std::env::var("HOME").unwrap_or_default();
        if !home.is_empty() {
            assert_eq!(expand_path("~/x.creds"), format!("{home}/x.creds"));
            assert_eq!(expand_path("$HOME/x"), format!("{home}/x"));
            assert_eq!(expand_path("${HOME}/x"), format!("{home}/x"));
        }
        assert_eq!(expand_path("/a/b~c"), "/a/b~c");
        assert_eq!(expand_path("/a/$"), "/a/$");
    }

    #[test]
    fn nkey_files_may_hold_comments_around_the_seed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("user.nk");
        std::fs::write(&path, "# my key\nSUAFAKESEED\n").unwrap();
        assert_eq!(read_nkey_seed(&path).unwrap(), "SUAFAKESEED");
        std::fs::write(&path, "\n").unwrap();
        assert_eq!(read_nkey_seed(&path).unwrap_err().kind(), &ErrorKind::InvalidConfig);
    }

    #[test]
    fn a_certificate_without_its_key_is_refused() {
        let context = NatsContext { cert: Some("/c.pem".into()), ..NatsContext::default() };
        assert_eq!(context.connect_options().unwrap_err().kind(), &ErrorKind::InvalidConfig);
    }
}
