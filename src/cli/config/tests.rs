//! Config files merged into the command line: keys, types, paths, precedence over the
//! file. (The environment's place is tested through the binary, in `tests/it`.)

use std::path::Path;

use super::*;
use crate::cli::Command as Cmd;

/// Writes `text` as `dir/config.toml` and parses `ptt-audit ARGS --config FILE`.
fn run(dir: &Path, text: &str, args: &[&str]) -> (Cli, Option<anyhow::Error>) {
    let file = dir.join("config.toml");
    std::fs::write(&file, text).unwrap();
    let mut argv: Vec<OsString> = vec!["ptt-audit".into()];
    argv.extend(args.iter().map(OsString::from));
    argv.push("--config".into());
    argv.push(file.into_os_string());
    parse_from(argv)
}

fn audit(cli: Cli) -> crate::cli::audit::AuditArgs {
    match cli.command {
        Cmd::Audit(a) => a,
        other => panic!("not audit: {other:?}"),
    }
}

fn error(dir: &Path, text: &str) -> String {
    let (_, e) = run(dir, text, &["audit"]);
    e.expect("refused").to_string()
}

#[test]
fn the_file_fills_what_the_command_line_leaves_and_paths_follow_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let text = "out = \"reports\"\nlines = [\"ids.csv\", \"/abs/more.txt\", \"-\"]\nconcurrency = 3\nrate = 0.5\nprevious = \"latest\"\nkeep = 7\nfail_on = \"high\"\ntimeout = \"2m\"\ncredentials = \"creds.toml\"\nquiet = true\nlog_format = \"json\"\n";
    let (cli, e) = run(d, text, &["audit", "--concurrency", "9"]);
    assert!(e.is_none(), "{e:?}");
    assert!(cli.quiet);
    assert_eq!(cli.log_format, crate::cli::LogFormat::Json);
    let a = audit(cli);
    assert_eq!(a.out, d.join("reports"));
    assert_eq!(
        a.lines,
        [d.join("ids.csv"), "/abs/more.txt".into(), "-".into()]
    );
    assert_eq!(a.concurrency, 9, "the command line wins");
    assert_eq!(a.rate, ptt_audit::settings::Rate::Fixed(0.5));
    assert_eq!(a.previous, Some("latest".into()));
    assert_eq!(a.keep, Some(7));
    assert_eq!(a.fail_on, ptt_audit::settings::FailOn::High);
    assert_eq!(a.timeout, std::time::Duration::from_secs(120));
    assert_eq!(a.credentials, Some(d.join("creds.toml")));
    assert_eq!(a.policies, None, "defaults stay");
}

#[test]
fn a_choice_on_the_command_line_drops_a_conflicting_one_from_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let (cli, e) = run(
        dir.path(),
        "credentials = \"creds.toml\"\nverbose = 2\n",
        &["-q", "audit", "--token-file", "tok"],
    );
    assert!(e.is_none(), "{e:?}");
    assert!(cli.quiet && cli.verbose == 0);
    let a = audit(cli);
    assert_eq!(a.token_file, Some("tok".into()));
    assert_eq!(a.credentials, None);
}

#[test]
fn unknown_keys_and_wrong_types_name_file_line_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let file = d.join("config.toml").display().to_string();
    let e = error(d, "out = \"r\"\nmax_retrys = 3\n");
    assert!(
        e.starts_with(&format!(
            "{file}:2:1: `max_retrys`: unknown key (did you mean `max_retries`?)"
        )),
        "{e}"
    );
    let e = error(d, "max-retries = 3\n");
    assert!(e.contains("did you mean `max_retries`?"), "{e}");
    let e = error(d, "concurrency = \"lots\"\n");
    assert!(
        e.starts_with(&format!("{file}:1:15: `concurrency`: invalid value 'lots'")),
        "{e}"
    );
    assert!(e.contains("is not a concurrency"), "{e}");
    let e = error(d, "\nkeep = true\n");
    assert!(
        e.starts_with(&format!(
            "{file}:2:8: `keep`: expected a string or a number, found a boolean"
        )),
        "{e}"
    );
    let e = error(d, "out = 5\n");
    assert!(
        e.contains("`out`: expected a path (a string), found an integer"),
        "{e}"
    );
    let e = error(d, "quiet = \"yes\"\n");
    assert!(
        e.contains("`quiet`: expected true or false, found a string"),
        "{e}"
    );
    let e = error(d, "fail_on = \"severe\"\n");
    assert!(e.contains("`fail_on`: invalid value 'severe'"), "{e}");
    let e = error(d, "keep = 0\n");
    assert!(e.contains("`keep`: invalid value '0'"), "{e}");
    let e = error(d, "config = \"other.toml\"\n");
    assert!(e.contains("cannot name another"), "{e}");
    let e = error(d, "[audit]\nout = \"x\"\n");
    assert!(e.contains("`audit`: unknown key"), "{e}");
    let e = error(d, "a = 1\nb = 2\nc = 3\n");
    assert!(e.contains("(and 2 more problems in this file)"), "{e}");
    let e = error(d, "out = \n");
    assert!(e.starts_with(&format!("{file}:1:")), "{e}");
    assert!(e.contains("not valid TOML"), "{e}");
    let e = error(d, "token_file = \"t\"\ncredentials = \"c\"\n");
    assert!(e.starts_with(&format!("config file {file}: ")), "{e}");
    assert!(e.contains("cannot be used with"), "{e}");
}

#[test]
fn a_missing_config_file_is_an_error_naming_it() {
    let argv: Vec<OsString> = ["ptt-audit", "audit", "--config", "/nonexistent/ptt.toml"]
        .iter()
        .map(OsString::from)
        .collect();
    let (_, e) = parse_from(argv);
    let e = e.expect("refused").to_string();
    assert!(
        e.contains("cannot read config file /nonexistent/ptt.toml"),
        "{e}"
    );
}

#[test]
fn auth_check_takes_the_audit_config_and_uses_what_it_knows() {
    let dir = tempfile::tempdir().unwrap();
    let (cli, e) = run(
        dir.path(),
        "credentials = \"creds.toml\"\nout = \"reports\"\nbase_url = \"http://127.0.0.1:9/v1\"\n",
        &["auth", "check"],
    );
    assert!(e.is_none(), "{e:?}");
    let Cmd::Auth(auth) = cli.command else {
        panic!("not auth")
    };
    let shown = format!("{auth:?}");
    assert!(
        shown.contains("creds.toml") && shown.contains("127.0.0.1:9"),
        "{shown}"
    );
}

#[test]
fn every_audit_option_can_be_a_key() {
    let mut command = Cli::command();
    command.build();
    let audit = command.find_subcommand("audit").unwrap();
    let keys: Vec<String> = keys(audit).collect();
    for key in [
        "org_id",
        "lines",
        "line",
        "policies",
        "out",
        "format",
        "rate",
        "concurrency",
        "timeout",
        "max_retries",
        "fail_on",
        "base_url",
        "token_file",
        "credentials",
        "previous",
        "keep",
        "eval_timeout",
        "quiet",
        "verbose",
        "log_format",
    ] {
        assert!(keys.iter().any(|k| k == key), "{key} missing from {keys:?}");
    }
    assert!(!keys.iter().any(|k| k == "config" || k == "help"));
}

/// The example of `audit --help` and the README's are what cron users copy: both must
/// be accepted as they are, and say the same.
#[test]
fn the_help_and_readme_examples_are_valid_configs() {
    // The first indented block of the help text.
    let from_help: String = crate::cli::audit::CONFIG_EXAMPLE
        .lines()
        .skip_while(|l| !l.starts_with("    "))
        .map_while(|l| l.strip_prefix("    "))
        .map(|l| format!("{l}\n"))
        .collect();
    let readme = include_str!("../../../README.md");
    let from_readme = readme
        .split("```toml\n")
        .map(|rest| rest.split("```").next().unwrap_or(""))
        .find(|block| block.contains("# /etc/ptt-audit/config.toml"))
        .expect("the README's config example");
    for (name, text) in [("help", from_help.as_str()), ("README", from_readme)] {
        assert!(
            text.contains("credentials = \"credentials.toml\""),
            "{name}: {text}"
        );
        let dir = tempfile::tempdir().unwrap();
        let (cli, e) = run(dir.path(), text, &["audit"]);
        assert!(e.is_none(), "{name}: {e:?}");
        let a = audit(cli);
        assert_eq!(a.keep, Some(60), "{name}");
        assert_eq!(
            a.credentials,
            Some(dir.path().join("credentials.toml")),
            "{name}"
        );
    }
}

/// `ptt-audit init` writes a config file: it must be accepted as written, and with its
/// commented-out keys switched on (those of options this build has).
#[test]
fn the_config_init_writes_is_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let template = crate::cli::init::CONFIG_TEMPLATE;
    let (_, e) = run(dir.path(), template, &["audit"]);
    assert!(e.is_none(), "{e:?}");
    let mut command = Cli::command();
    command.build();
    let schema = command.find_subcommand("audit").unwrap();
    let known: Vec<String> = keys(schema).collect();
    let switched_on: String = template
        .lines()
        .filter_map(|l| l.strip_prefix("# "))
        .filter(|l| l.contains(" = "))
        .filter(|l| known.iter().any(|k| l.starts_with(&format!("{k} "))))
        .filter(|l| !l.starts_with("token_file"))
        .map(|l| format!("{l}\n"))
        .collect();
    assert!(switched_on.contains("credentials"), "{switched_on}");
    let (cli, e) = run(dir.path(), &format!("{template}{switched_on}"), &["audit"]);
    assert!(e.is_none(), "{e:?}\n{switched_on}");
    let a = audit(cli);
    assert_eq!(a.keep, Some(30));
    assert_eq!(a.previous, Some("latest".into()));
}
