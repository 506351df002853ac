//! Where connection settings come from when psql would find them: the
//! password file (`PGPASSFILE`, else `~/.pgpass`) and the connection
//! service file (`PGSERVICE` in `PGSERVICEFILE`, else `~/.pg_service.conf`,
//! else `$PGSYSCONFDIR/pg_service.conf`), in libpq's formats. Pure text
//! handling; `config` in the crate root applies them.

/// The password `.pgpass` text gives for a connection: the first line
/// whose fields (`host:port:database:user:password`, `*` matching
/// anything, `\:` and `\\` escaped) match. A Unix socket connection
/// matches the host `localhost`, as in libpq.
pub fn pgpass_password(text: &str, host: &str, port: u16, database: &str, user: &str) -> Option<String> {
    let host = if host.starts_with('/') { "localhost" } else { host };
    let port = port.to_string();
    for line in text.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let fields = split_escaped(line);
        if fields.len() < 5 {
            continue;
        }
        let matches = |field: &str, value: &str| field == "*" || field == value;
        if matches(&fields[0], host) && matches(&fields[1], &port) && matches(&fields[2], database) && matches(&fields[3], user) {
            // A password may itself contain (escaped) colons: the rest of the line.
            return Some(fields[4..].join(":"));
        }
    }
    None
}

/// A `.pgpass` line's fields, with `\:` and `\\` unescaped.
fn split_escaped(line: &str) -> Vec<String> {
    let mut fields = vec![String::new()];
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(n) = chars.next() {
                    fields.last_mut().expect("one field at least").push(n);
                }
            }
            ':' => fields.push(String::new()),
            _ => fields.last_mut().expect("one field at least").push(c),
        }
    }
    fields
}

/// The `key=value` settings of service `name` in a service file (INI:
/// `[name]` sections, `#` comments), or `None` when it has no such section.
pub fn service_settings(text: &str, name: &str) -> Option<Vec<(String, String)>> {
    let mut found = None;
    let mut current: Option<&str> = None;
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(section) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            current = Some(section.trim());
            if current == Some(name) && found.is_none() {
                found = Some(Vec::new());
            }
            continue;
        }
        if current == Some(name) {
            if let (Some(settings), Some((k, v))) = (found.as_mut(), line.split_once('=')) {
                let settings: &mut Vec<(String, String)> = settings;
                settings.push((k.trim().to_string(), v.trim().to_string()));
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pgpass_lines_match_as_libpq_matches_them() {
        let text = "# comment\n\
                    db.example.com:5432:prod:app:first\n\
                    *:5433:*:app:sec\\:ond\n\
                    localhost:*:*:*:for-sockets\n\
                    *:*:*:*:anything\n";
        assert_eq!(pgpass_password(text, "db.example.com", 5432, "prod", "app").as_deref(), Some("first"));
        assert_eq!(pgpass_password(text, "db.example.com", 5433, "other", "app").as_deref(), Some("sec:ond"));
        assert_eq!(pgpass_password(text, "/tmp", 5432, "x", "y").as_deref(), Some("for-sockets"));
        assert_eq!(pgpass_password(text, "10.0.0.1", 6000, "x", "y").as_deref(), Some("anything"));
        assert_eq!(pgpass_password("a:1:b:c:d", "a", 2, "b", "c"), None);
        assert_eq!(pgpass_password("a:1:b:c:back\\\\slash", "a", 1, "b", "c").as_deref(), Some("back\\slash"));
    }

    #[test]
    fn services_are_ini_sections() {
        let text = "[other]\nhost=elsewhere\n\n# ours\n[prod]\nhost = db.example.com\nport=6432\ndbname=app\n[next]\nhost=x\n";
        assert_eq!(
            service_settings(text, "prod").unwrap(),
            [("host".to_string(), "db.example.com".to_string()), ("port".into(), "6432".into()), ("dbname".into(), "app".into())]
        );
        assert!(service_settings(text, "missing").is_none());
    }
}
