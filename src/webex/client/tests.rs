use super::*;

#[test]
fn base_url_rules() {
    assert!(parse_base_url("https://webexapis.com/v1").is_ok());
    assert!(parse_base_url("http://127.0.0.1:8080/v1").is_ok());
    assert!(parse_base_url("http://127.9.9.9/v1").is_ok());
    assert!(parse_base_url("http://localhost:1/v1").is_ok());
    assert!(parse_base_url("http://[::1]:1/v1").is_ok());
    let err = parse_base_url("http://example.com/v1")
        .unwrap_err()
        .to_string();
    assert!(err.contains("loopback"), "{err}");
    assert!(parse_base_url("http://10.0.0.1/v1").is_err());
    assert!(parse_base_url("ftp://x/v1").is_err());
    assert!(parse_base_url("not a url").is_err());
}

#[test]
fn a_user_or_password_in_the_base_url_is_refused_without_showing_it() {
    for raw in [
        "https://admin:hunter2@webexapis.com/v1",
        "https://admin@webexapis.com/v1",
        "https://:hunter2@webexapis.com/v1",
        "http://u:hunter2@127.0.0.1:8080/v1",
        "https://u:hunter2@exa mple.com/v1",
        "u:hunter2@webexapis.com/v1",
    ] {
        let err = parse_base_url(raw).expect_err(raw).to_string();
        assert!(!err.contains("hunter2"), "{err}");
        assert!(!err.contains("admin"), "{err}");
    }
    let err = parse_base_url("https://admin:hunter2@webexapis.com/v1")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("`https://***@webexapis.com/v1`") && err.contains("user name or password"),
        "{err}"
    );
    assert_eq!(hide_userinfo("https://x.com/a@b"), "https://x.com/a@b");
}

#[test]
fn ids_are_one_encoded_segment_and_org_id_is_sent() {
    let config = ClientConfig {
        base_url: parse_base_url("https://webexapis.com/v1/").unwrap(),
        org_id: Some("org/1 &x".into()),
        timeout: Duration::from_secs(1),
        max_retries: 0,
        rate: Rate::Off,
        max_body: 1024,
        max_stall: Duration::from_secs(60),
    };
    let token = Token::new("t", "test").unwrap().into();
    let c = WebexClient::new(&config, &token, Stop::default()).unwrap();
    assert_eq!(
        c.ptt_url("a/b?c#d%e é").as_str(),
        "https://webexapis.com/v1/telephony/config/virtualLines/a%2Fb%3Fc%23d%25e%20%C3%A9/pushToTalk?orgId=org%2F1+%26x"
    );
    // `auth check`'s request: `max=1` first, the org after it.
    assert_eq!(
        c.probe_url(),
        "https://webexapis.com/v1/telephony/config/virtualLines?max=1&orgId=org%2F1+%26x"
    );
}
