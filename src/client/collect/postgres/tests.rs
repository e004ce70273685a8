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
fn times_never_panic() {
    assert_eq!(time(0), UNIX_EPOCH);
    assert_eq!(time(-1_000_000), UNIX_EPOCH - Duration::from_secs(1));
    let _ = time(i64::MIN);
    let _ = time(i64::MAX);
}
