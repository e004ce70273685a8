use super::*;

#[test]
fn urls() {
    let t = DatabaseTarget::parse("postgres://u:secret@db.example:5433/meters").unwrap();
    assert_eq!(t.label(), "db.example:5433/meters");
    assert!(!std::format!("{t:?}").contains("secret"));
    let t = DatabaseTarget::parse("host=/run/postgresql dbname=x").unwrap();
    assert_eq!(t.label(), "/run/postgresql:5432/x");
    assert!(matches!(
        DatabaseTarget::parse("postgres://h:notaport/x"),
        Err(PostgresError::Url(_))
    ));
    assert!(matches!(
        DatabaseTarget::parse("http://x"),
        Err(PostgresError::Url(_))
    ));
}

#[test]
fn tls_parameters_of_libpq() {
    let take = |u: &str| take_tls_params(u).unwrap();
    let ca = |p: &str| TlsFiles {
        ca: Some(p.into()),
        ..TlsFiles::default()
    };
    let plain = "postgres://u@h/db?sslmode=prefer&application_name=x";
    assert_eq!(take(plain), (plain.to_string(), TlsFiles::default()));
    assert_eq!(
        take("postgres://u@h/db?sslmode=verify-full&sslrootcert=%2Fetc%2Fca%20x.pem"),
        (
            "postgres://u@h/db?sslmode=require".to_string(),
            ca("/etc/ca x.pem")
        )
    );
    assert_eq!(
        take("postgresql://h/db?sslrootcert=ca.pem"),
        ("postgresql://h/db".to_string(), ca("ca.pem"))
    );
    assert_eq!(
        take("host=h sslmode=verify-ca sslrootcert='/c.pem' dbname=d"),
        ("host=h sslmode=require dbname=d".to_string(), ca("/c.pem"))
    );
    assert_eq!(
        take("postgres://h/db?sslcert=me.pem&sslmode=require&sslkey=me.key"),
        (
            "postgres://h/db?sslmode=require".to_string(),
            TlsFiles {
                ca: None,
                client_cert: Some("me.pem".into()),
                client_key: Some("me.key".into()),
            }
        )
    );
    assert!(matches!(
        take_tls_params("postgres://h/db?sslrootcert=%zz"),
        Err(PostgresError::Url(_))
    ));
    // a CA file without TLS would be unused: refused; TLS without a readable CA file: refused
    assert!(matches!(
        DatabaseTarget::parse("postgres://h/db?sslrootcert=ca.pem"),
        Err(PostgresError::Url(m)) if m.contains("sslmode=require")
    ));
    assert!(matches!(
        DatabaseTarget::parse("postgres://h/db?sslmode=require&sslrootcert=/nonexistent.pem"),
        Err(PostgresError::Connect { reason, .. }) if reason.contains("/nonexistent.pem")
    ));
    match DatabaseTarget::parse("postgres://h/db?sslmode=verify-full") {
        Ok(t) => assert!(t.tls.is_some()),
        // a machine without ca-certificates
        Err(PostgresError::Connect { reason, .. }) => {
            assert!(reason.contains("no trusted certificates"), "{reason}")
        }
        Err(e) => panic!("{e}"),
    }
    assert!(
        DatabaseTarget::parse("postgres://h/db")
            .unwrap()
            .tls
            .is_none()
    );
}

#[test]
fn times_never_panic() {
    assert_eq!(time(0), UNIX_EPOCH);
    assert_eq!(time(-1_000_000), UNIX_EPOCH - Duration::from_secs(1));
    let _ = time(i64::MIN);
    let _ = time(i64::MAX);
}
