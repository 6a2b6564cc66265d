//! Which hosts this helper serves, decided from the string alone.
//!
//! Pure functions: no I/O, no network, no clock. Matching is anchored and label-wise, so that
//! `evil.azurecr.io.attacker.com`, `x.azurecr.io@attacker` or an IP literal can never be mistaken
//! for a registry (the flaw that sent AAD tokens to attackers in an older helper). Which extra
//! suffixes and registries count comes from the configuration, which calls in here
//! (`Config::serves`); this module does not know the configuration.

/// The login-server suffixes of the Azure clouds: public, China, US Government.
pub const BUILTIN_SUFFIXES: [&str; 3] = [".azurecr.io", ".azurecr.cn", ".azurecr.us"];

/// Turns what a client sent into a host key: strip `https://`/`http://` (any case), cut at the first
/// `/`, drop a `:443` port, lowercase. Whitespace around the input is ignored.
pub fn normalize(input: &str) -> String {
    let s = input.trim();
    let s = strip_prefix_ignore_case(s, "https://")
        .or_else(|| strip_prefix_ignore_case(s, "http://"))
        .unwrap_or(s);
    let s = s.split('/').next().unwrap_or("").trim();
    let s = match s.strip_suffix(":443") {
        Some(host) if !host.contains(':') => host.trim(),
        _ => s,
    };
    s.to_ascii_lowercase()
}

fn strip_prefix_ignore_case<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

/// `<name>.azurecr.<tld>`, `<name>-<hash>.azurecr.<tld>`, `<name>.<region>.geo.azurecr.<tld>`, or
/// `<name>` / `<name>-<hash>` under a configured suffix. No port (ACR serves on 443 only).
pub fn is_login_server(host: &str, extra_suffixes: &[String]) -> bool {
    if host.len() > 253 || !host.split('.').all(is_dns_label) {
        return false;
    }
    for suffix in BUILTIN_SUFFIXES {
        if let Some(head) = host.strip_suffix(suffix) {
            return match head.split_once('.') {
                None => is_registry_label(head),
                Some((name, rest)) => {
                    is_registry_label(name) && rest.strip_suffix(".geo").is_some_and(is_region)
                }
            };
        }
    }
    extra_suffixes.iter().any(|suffix| {
        host.strip_suffix(suffix.as_str())
            .is_some_and(is_registry_label)
    })
}

/// Why `host` is not an ACR login server, in the user's words (for `doctor` and `configure`).
pub fn why_not_login_server(host: &str, extra_suffixes: &[String]) -> String {
    let suffixes = BUILTIN_SUFFIXES
        .iter()
        .copied()
        .chain(extra_suffixes.iter().map(String::as_str));
    for suffix in suffixes {
        if let Some(head) = host.strip_suffix(suffix) {
            let name = head.split(['.', '-']).next().unwrap_or(head);
            return if !(5..=50).contains(&name.len()) {
                format!(
                    "the registry name {name:?} has {} characters; ACR names have 5 to 50",
                    name.len()
                )
            } else {
                format!(
                    "{head:?} before {suffix} is not <name>, <name>-<hash> or <name>.<region>.geo of lowercase letters and digits"
                )
            };
        }
    }
    if host.contains(':') {
        return "it has a port; ACR login servers serve on 443 only (list other registries under `registries`)".into();
    }
    "it does not end in .azurecr.io, .azurecr.cn, .azurecr.us or a configured `login_server_suffixes` entry".into()
}

/// A registry name (5–50 letters and digits, as ACR requires), optionally `-<hash>` for
/// registries with a domain-name-label scope.
fn is_registry_label(label: &str) -> bool {
    let (name, hash) = match label.split_once('-') {
        Some((name, hash)) => (name, Some(hash)),
        None => (label, None),
    };
    let alnum = |s: &str| {
        s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    };
    (5..=50).contains(&name.len())
        && alnum(name)
        && hash.is_none_or(|h| !h.is_empty() && h.len() <= 16 && alnum(h))
}

fn is_region(label: &str) -> bool {
    !label.is_empty()
        && label.len() <= 40
        && label
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

/// An RFC 1123 label: 1–63 of `[a-z0-9-]`, not starting or ending with `-`.
pub fn is_dns_label(label: &str) -> bool {
    !label.is_empty()
        && label.len() <= 63
        && !label.starts_with('-')
        && !label.ends_with('-')
        && label
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a configuration with one extra suffix and three listed registries serves.
    fn is_served(host: &str, listed: bool) -> bool {
        (listed && ["localhost:8443", "10.0.0.5:5000", "mirror.corp.example"].contains(&host))
            || is_login_server(host, &[".azurecr.example.local".to_string()])
    }

    #[test]
    fn normalizes_every_client_form() {
        for (input, want) in [
            ("myreg.azurecr.io", "myreg.azurecr.io"),
            ("myreg.azurecr.io\n", "myreg.azurecr.io"),
            ("  myreg.azurecr.io \r\n", "myreg.azurecr.io"),
            ("https://myreg.azurecr.io", "myreg.azurecr.io"),
            ("HTTPS://MyReg.AzureCR.io/", "myreg.azurecr.io"),
            ("http://myreg.azurecr.io:443", "myreg.azurecr.io"),
            ("myreg.azurecr.io:443", "myreg.azurecr.io"),
            ("https://myreg.azurecr.io:443/v2/", "myreg.azurecr.io"),
            ("myreg.azurecr.io/team/app", "myreg.azurecr.io"),
            ("localhost:8443", "localhost:8443"),
            ("https://index.docker.io/v1/", "index.docker.io"),
            ("myreg.azurecr.io:443:443", "myreg.azurecr.io:443:443"),
            ("[::1]:443", "[::1]:443"),
            ("", ""),
        ] {
            assert_eq!(normalize(input), want, "{input:?}");
        }
    }

    #[test]
    fn host_table() {
        let served = [
            "myreg.azurecr.io",
            "myreg.azurecr.cn",
            "myreg.azurecr.us",
            "myreg01.azurecr.io",
            "12345.azurecr.io",
            "myreg-abc123.azurecr.io",
            "myreg-h4sh.azurecr.us",
            "myreg.eastus.geo.azurecr.io",
            "myreg.westeurope2.geo.azurecr.cn",
            "myreg.azurecr.example.local",
            "myreg-abc.azurecr.example.local",
            "localhost:8443",
            "10.0.0.5:5000",
            "mirror.corp.example",
            "a2345678901234567890123456789012345678901234567890.azurecr.io",
        ];
        let not_served = [
            "",
            "docker.io",
            "index.docker.io",
            "azurecr.io",
            ".azurecr.io",
            "myreg.azurecr.io.attacker.com",
            "evil.azurecr.io.attacker.com",
            "myreg.azurecr.io@attacker.com",
            "x.azurecr.io@attacker",
            "attacker.com#.azurecr.io",
            "attacker.com?.azurecr.io",
            "myreg.azurecr.io:5000",
            "myreg.azurecr.io:",
            "my_reg.azurecr.io",
            "my.reg.azurecr.io",
            "a.b.c.azurecr.io",
            "abcd.azurecr.io",
            "a23456789012345678901234567890123456789012345678901.azurecr.io",
            "-myreg.azurecr.io",
            "myreg-.azurecr.io",
            "myreg--x.azurecr.io",
            "myreg.eastus.data.azurecr.io",
            "myreg.geo.azurecr.io",
            "myreg..geo.azurecr.io",
            "myreg.azurecr.de",
            "myreg.azurecr.iox",
            "myregazurecr.io",
            "10.0.0.5",
            "169.254.169.254",
            "[::1]",
            "127.0.0.1:8443",
            "localhost",
            "localhost:8444",
            "myreg.azurecr.example.local.evil",
            "x.myreg.azurecr.example.local",
            "myreg.azurecr.io\u{0}",
            "myreg.azurecr.io%2f",
            "myreg.azurecr.io ",
            "myrég.azurecr.io",
        ];
        for host in served {
            assert!(is_served(host, true), "should serve {host:?}");
        }
        for host in not_served {
            assert!(!is_served(host, true), "must not serve {host:?}");
        }
        assert!(served.len() + not_served.len() >= 30);
        assert!(not_served.len() * 2 >= served.len() + not_served.len());
    }

    #[test]
    fn normalized_hostile_inputs_stay_unserved() {
        for input in [
            "https://evil.azurecr.io.attacker.com/",
            "https://myreg.azurecr.io@attacker.com/",
            "http://attacker.com/myreg.azurecr.io",
            "myreg.azurecr.io:8443",
            "https://127.0.0.1/",
        ] {
            assert!(!is_served(&normalize(input), false), "{input:?}");
        }
    }

    #[test]
    fn reasons_name_the_broken_rule() {
        let extra = [".azurecr.example.local".to_string()];
        assert!(why_not_login_server("abc.azurecr.example.local", &extra).contains("3 characters"));
        assert!(why_not_login_server("abcd.azurecr.io", &[]).contains("5 to 50"));
        assert!(why_not_login_server("myreg.azurecr.io:5000", &[]).contains("port"));
        assert!(why_not_login_server("docker.io", &[]).contains(".azurecr.io"));
        assert!(why_not_login_server("my_reg.azurecr.io", &[]).contains("lowercase"));
    }
}
