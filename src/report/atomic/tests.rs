use super::*;
use std::io::Read;

#[test]
fn commit_renames_and_leaves_no_temp() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut f = AtomicFile::create(dir.path(), "r.json").expect("create");
    let tmp = f.temp_path().to_path_buf();
    assert_eq!(
        tmp.file_name().and_then(|n| n.to_str()),
        Some(".r.json.tmp")
    );
    f.write_all(b"hello").expect("write");
    assert!(tmp.exists());
    assert!(!dir.path().join("r.json").exists());
    let out = f.seal().expect("seal").commit().expect("commit");
    assert_eq!(out, dir.path().join("r.json"));
    assert_eq!(fs::read_to_string(&out).expect("read"), "hello");
    assert!(!tmp.exists());
}

#[test]
fn drop_without_commit_removes_temp() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut f = AtomicFile::create(dir.path(), "r.csv").expect("create");
    let tmp = f.temp_path().to_path_buf();
    f.write_all(b"partial").expect("write");
    drop(f);
    assert!(!tmp.exists());
    assert!(!dir.path().join("r.csv").exists());
    assert_eq!(fs::read_dir(dir.path()).expect("ls").count(), 0);
}

#[test]
fn second_create_of_same_name_fails_with_already_exists() {
    let dir = tempfile::tempdir().expect("tempdir");
    let _first = AtomicFile::create(dir.path(), "r.csv").expect("create");
    match AtomicFile::create(dir.path(), "r.csv") {
        Err(ReportError::Io { source, .. }) => {
            assert_eq!(source.kind(), io::ErrorKind::AlreadyExists)
        }
        other => panic!("expected AlreadyExists, got {other:?}"),
    }
}

/// Sets the last-written time of `path` to `age` ago.
fn age(path: &Path, age: Duration) {
    let f = File::options().write(true).open(path).expect("open");
    f.set_modified(SystemTime::now() - age).expect("set mtime");
}

#[test]
fn a_fixed_name_left_by_a_killed_run_is_taken_over_once_stale() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let left = d.join(".lines.csv.tmp");
    fs::write(&left, "half a file").expect("write");
    let err = AtomicFile::create(d, "lines.csv").expect_err("too young to take over");
    assert!(err.to_string().contains("a killed run left it"), "{err}");
    assert!(left.exists());
    age(&left, STALE_TEMP_AGE + Duration::from_secs(1));
    let mut file = AtomicFile::create(d, "lines.csv").expect("stale: taken over");
    file.write_all(b"new").expect("write");
    file.seal().expect("seal").commit().expect("commit");
    assert_eq!(
        fs::read_to_string(d.join("lines.csv")).expect("read"),
        "new"
    );
    assert!(!left.exists());
    // A live run's file is never taken, however old.
    let live = AtomicFile::create(d, "other.csv").expect("create");
    age(live.temp_path(), STALE_TEMP_AGE * 2);
    assert!(AtomicFile::create(d, "other.csv").is_err());
}

#[test]
fn stale_temps_of_dead_runs_go_and_everything_else_stays() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let old = STALE_TEMP_AGE + Duration::from_secs(60);
    let stem = "ptt-audit-20200101T000000Z";
    // Left by a killed run: unlocked, old.
    let dead = [
        format!(".{stem}.json.tmp"),
        format!(".{stem}.json.lines.tmp"),
        format!(".{stem}-2-lines.csv.tmp"),
    ];
    // Not ours, or not stale.
    let kept = [
        format!("{stem}.json"),
        format!(".{stem}.json"),
        format!("{stem}.json.tmp"),
        ".ptt-audit-notes.tmp".to_string(),
        ".ptt-audit.lock".to_string(),
        "notes.tmp".to_string(),
    ];
    for name in dead.iter().chain(&kept) {
        fs::write(d.join(name), "x").expect("write");
        age(&d.join(name), old);
    }
    let fresh = d.join(format!(".{stem}-findings.csv.tmp"));
    fs::write(&fresh, "x").expect("write");
    // A live run's files, written long ago: locked while open, also once sealed.
    let mut live = AtomicFile::create(d, "ptt-audit-20200101T000001Z.json").expect("create");
    live.write_all(b"x").expect("write");
    let live_path = live.temp_path().to_path_buf();
    let live_sealed = AtomicFile::create(d, "ptt-audit-20200101T000001Z-lines.csv")
        .expect("create")
        .seal()
        .expect("seal");
    age(&live_path, old);
    age(&d.join(".ptt-audit-20200101T000001Z-lines.csv.tmp"), old);

    let cleanup = remove_stale_temps(d);

    let mut removed: Vec<_> = cleanup
        .removed
        .iter()
        .map(|p| p.file_name().expect("name").to_string_lossy().into_owned())
        .collect();
    removed.sort();
    let mut want = dead.to_vec();
    want.sort();
    assert_eq!(removed, want);
    assert!(cleanup.failed.is_empty(), "{:?}", cleanup.failed);
    for name in &kept {
        assert!(d.join(name).exists(), "{name} was removed");
    }
    assert!(fresh.exists(), "a fresh temporary file was removed");
    assert!(live_path.exists(), "a live run's file was removed");
    let committed = live_sealed.commit().expect("the live run still commits");
    assert!(committed.exists());
    drop(live);
    assert!(!live_path.exists());
}

#[test]
fn temp_file_reads_back_what_was_written() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut t = TempFile::create_new(dir.path().join(".spool.tmp")).expect("create");
    t.write_all(b"abc").expect("write");
    t.write_all(b"def").expect("write");
    let mut s = String::new();
    t.reader()
        .expect("reader")
        .read_to_string(&mut s)
        .expect("read");
    assert_eq!(s, "abcdef");
    let p = t.path().to_path_buf();
    drop(t);
    assert!(!p.exists());
}
