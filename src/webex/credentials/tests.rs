//! The credentials file: what is accepted, what is refused (naming file, line and key,
//! never a value), and how it is rewritten.

use super::*;

const SECRET: &str = "cs-4f1d9a77";
const REFRESH: &str = "rt-9b3e0c12";

fn good() -> String {
    format!("client_id = \"C1\"\nclient_secret = \"{SECRET}\"\nrefresh_token = \"{REFRESH}\"\n")
}

fn private_file(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("credentials.toml");
    fs::write(&path, text).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
    }
    path
}

fn refused(text: &str) -> String {
    let e = parse(Path::new("creds.toml"), text)
        .expect_err("refused")
        .to_string();
    assert!(!e.contains(SECRET) && !e.contains(REFRESH), "{e}");
    e
}

#[test]
fn a_person_written_file_loads_and_debug_shows_no_secret() {
    let c = parse(Path::new("creds.toml"), &good()).unwrap();
    assert_eq!(c.client_id, "C1");
    assert_eq!(c.client_secret.expose(), SECRET);
    assert_eq!(c.refresh_token.expose(), REFRESH);
    assert!(c.access_token.is_none() && c.access_token_expires_at.is_none());
    let shown = format!("{c:?} {:?}", c.client_secret);
    assert!(
        !shown.contains(SECRET) && !shown.contains(REFRESH),
        "{shown}"
    );
}

#[test]
fn times_are_rfc3339_strings_or_toml_datetimes_and_an_empty_access_token_is_none() {
    let text = format!(
        "{}access_token = \"\"\naccess_token_expires_at = 2026-01-31T02:15:00Z\nrefresh_token_expires_at = \"2026-04-30T02:15:00+02:00\"\n",
        good()
    );
    let c = parse(Path::new("c.toml"), &text).unwrap();
    assert!(c.access_token.is_none());
    assert_eq!(
        c.access_token_expires_at.unwrap().to_rfc3339(),
        "2026-01-31T02:15:00+00:00"
    );
    assert_eq!(
        c.refresh_token_expires_at.unwrap().to_rfc3339(),
        "2026-04-30T00:15:00+00:00"
    );
}

#[test]
fn bad_files_are_refused_naming_file_line_and_key() {
    let e = refused(&format!(
        "client_id = \"C1\"\nclient_secret = \"{SECRET}\"\n"
    ));
    assert!(e.contains("creds.toml has no `refresh_token`"), "{e}");
    let e = refused(&format!("{}refresh_tokn = \"x\"\n", good()));
    assert!(
        e.starts_with("creds.toml:4:1: unknown key `refresh_tokn` (did you mean `refresh_token`?)"),
        "{e}"
    );
    let e = refused(&good().replace("\"C1\"", "12"));
    assert!(
        e.starts_with("creds.toml:1:13: `client_id` must be a string, found an integer"),
        "{e}"
    );
    let e = refused(&good().replace(REFRESH, &format!("{REFRESH} x")));
    assert!(
        e.contains("creds.toml:3:17: `refresh_token` is empty"),
        "{e}"
    );
    let e = refused(&format!(
        "{}access_token_expires_at = \"tomorrow\"\n",
        good()
    ));
    assert!(
        e.contains("creds.toml:4:27: `access_token_expires_at` is not an RFC 3339"),
        "{e}"
    );
    // A broken string: the parser's message must not quote the secret around it.
    let e = refused(&format!(
        "client_secret = \"{SECRET}\nrefresh_token = \"{REFRESH}\"\n"
    ));
    assert!(e.starts_with("creds.toml:1:"), "{e}");
    assert!(e.contains("not valid TOML"), "{e}");
}

#[cfg(unix)]
#[test]
fn a_file_others_may_read_is_refused_with_the_fix() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = private_file(dir.path(), &good());
    for mode in [0o644, 0o640, 0o604, 0o660] {
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
        let e = Credentials::load(&path).expect_err("exposed").to_string();
        assert!(e.contains(&format!("mode {mode:03o}")), "{e}");
        assert!(e.contains("chmod 600"), "{e}");
    }
    fs::set_permissions(&path, fs::Permissions::from_mode(0o400)).unwrap();
    Credentials::load(&path).expect("owner-only is fine");
}

#[test]
fn a_missing_file_is_refused_with_its_name() {
    let e = Credentials::load(Path::new("/nonexistent/creds.toml"))
        .expect_err("missing")
        .to_string();
    assert!(
        e.contains("cannot read credentials file /nonexistent/creds.toml"),
        "{e}"
    );
}

#[test]
fn save_rewrites_atomically_privately_and_through_a_link() {
    let dir = tempfile::tempdir().unwrap();
    let path = private_file(dir.path(), &good());
    let link = dir.path().join("link.toml");
    #[cfg(unix)]
    std::os::unix::fs::symlink(&path, &link).unwrap();
    #[cfg(not(unix))]
    let link = path.clone();
    let mut c = Credentials::load(&link).unwrap();
    c.access_token = Secret::new("at-1");
    c.refresh_token = Secret::new("rt-2").unwrap();
    c.access_token_expires_at = Some(Utc::now());
    c.save().unwrap();
    let again = Credentials::load(&link).unwrap();
    assert_eq!(again.refresh_token.expose(), "rt-2");
    assert_eq!(again.access_token.unwrap().expose(), "at-1");
    assert_eq!(again.client_secret.expose(), SECRET);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert!(fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink());
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    let names: Vec<String> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(!names.iter().any(|n| n.ends_with(".tmp")), "{names:?}");
}

#[test]
fn a_save_that_cannot_write_leaves_the_file_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let path = private_file(dir.path(), &good());
    // Something that is not a file where the temporary file must go: the disk
    // "refuses" (root ignores permissions, so a read-only folder would not).
    fs::create_dir(dir.path().join(".credentials.toml.tmp")).unwrap();
    let mut c = Credentials::load(&path).unwrap();
    c.refresh_token = Secret::new("rt-new").unwrap();
    let e = c.save().expect_err("refused").to_string();
    assert!(e.contains("cannot save the refreshed tokens"), "{e}");
    assert!(e.contains("the file was left as it was"), "{e}");
    assert_eq!(fs::read_to_string(&path).unwrap(), good());
}

#[test]
fn a_temporary_file_a_killed_run_left_is_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let path = private_file(dir.path(), &good());
    fs::write(dir.path().join(".credentials.toml.tmp"), "half").unwrap();
    let c = Credentials::load(&path).unwrap();
    c.save().unwrap();
    assert!(!dir.path().join(".credentials.toml.tmp").exists());
    assert_eq!(
        Credentials::load(&path).unwrap().refresh_token.expose(),
        REFRESH
    );
}

#[tokio::test]
async fn one_process_at_a_time_holds_the_refresh_lock() {
    let dir = tempfile::tempdir().unwrap();
    let path = private_file(dir.path(), &good());
    let c = Credentials::load(&path).unwrap();
    let held = c.lock().await.unwrap();
    // Another open of the lock file cannot take it while `held` lives.
    let other = OpenOptions::new()
        .write(true)
        .open(dir.path().join(".credentials.toml.lock"))
        .unwrap();
    assert!(matches!(
        other.try_lock(),
        Err(fs::TryLockError::WouldBlock)
    ));
    drop(held);
    other.try_lock().expect("free once dropped");
}

#[test]
fn a_byte_order_mark_is_not_part_of_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = private_file(dir.path(), &format!("\u{feff}{}", good()));
    assert_eq!(Credentials::load(&path).unwrap().client_id, "C1");
}
