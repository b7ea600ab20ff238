use super::*;

fn write_rows(writer: &mut ResultsWriter, target: &str, kind: CredentialKind) {
    let password = Secret::from("p,\"q");
    let rows = [
        ResultRow {
            target,
            user: "a@x",
            kind,
            status: Status::Reset,
            password: Some(&password),
            detail: "",
        },
        ResultRow {
            target,
            user: "b@x",
            kind,
            status: Status::Failed,
            password: None,
            detail: "User does not exist.",
        },
    ];
    for row in &rows {
        writer.write(row).unwrap();
    }
}

#[test]
fn csv_rows_are_quoted() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.csv");
    let mut writer = ResultsWriter::create(&path, Format::Csv, &Recipients::default()).unwrap();
    write_rows(&mut writer, "mail", CredentialKind::Password);
    writer.finish().unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(
        text,
        "target,user,kind,status,password,detail\nmail,a@x,password,reset,\"p,\"\"q\",\nmail,b@x,password,failed,,User does not exist.\n"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    let err = ResultsWriter::create(&path, Format::Csv, &Recipients::default())
        .err()
        .unwrap();
    assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
}

#[test]
fn jsonl_rows_have_the_same_keys() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.jsonl");
    let mut writer = ResultsWriter::create(&path, Format::Jsonl, &Recipients::default()).unwrap();
    write_rows(&mut writer, "pbx", CredentialKind::Sip);
    writer.finish().unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines[0]["password"], "p,\"q");
    assert_eq!(lines[0]["kind"], "sip");
    assert_eq!(lines[1]["password"], "");
    assert_eq!(lines[1]["detail"], "User does not exist.");
    assert_eq!(lines[1]["target"], "pbx");
}

#[test]
fn identities_tell_files_apart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.csv");
    assert_eq!(FileIdentity::of(&path).unwrap(), None);
    ResultsWriter::create(&path, Format::Csv, &Recipients::default())
        .unwrap()
        .finish()
        .unwrap();
    let first = FileIdentity::of(&path).unwrap().unwrap();
    assert_eq!(FileIdentity::of(&path).unwrap(), Some(first));
    let other = dir.path().join("other.csv");
    std::fs::write(&other, "x").unwrap();
    std::fs::rename(&other, &path).unwrap();
    assert_ne!(FileIdentity::of(&path).unwrap(), Some(first));
    // Deleted and created again (often with the same inode number).
    let second = FileIdentity::of(&path).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(5));
    std::fs::remove_file(&path).unwrap();
    std::fs::write(&path, "y").unwrap();
    assert_ne!(FileIdentity::of(&path).unwrap(), second);
}

fn decrypt(bytes: &[u8], identity: &age::x25519::Identity) -> String {
    let decryptor = age::Decryptor::new(bytes).unwrap();
    let mut reader = decryptor
        .decrypt(std::iter::once(identity as &dyn age::Identity))
        .unwrap();
    let mut text = String::new();
    std::io::Read::read_to_string(&mut reader, &mut text).unwrap();
    text
}

#[test]
fn encrypted_results_are_written_aside_and_moved_into_place_whole() {
    let identity = age::x25519::Identity::generate();
    let recipients = Recipients::parse([identity.to_public().to_string()], "test").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.csv.age");
    let mut writer = ResultsWriter::create(&path, Format::Csv, &recipients).unwrap();
    write_rows(&mut writer, "mail", CredentialKind::Password);
    assert!(
        !path.exists(),
        "nothing at the path until the file is whole"
    );
    let aside = files_aside(&path);
    assert_eq!(aside.len(), 1);
    let identity_written = writer.identity().unwrap();
    writer.finish().unwrap();
    assert!(files_aside(&path).is_empty());
    assert_eq!(FileIdentity::of(&path).unwrap(), Some(identity_written));
    let bytes = std::fs::read(&path).unwrap();
    assert!(bytes.starts_with(b"age-encryption.org/v1\n"));
    assert!(!bytes.windows(4).any(|w| w == b"a@x,"), "no plaintext");
    assert!(decrypt(&bytes, &identity).starts_with(
        "target,user,kind,status,password,detail\nmail,a@x,password,reset,\"p,\"\"q\",\n"
    ));

    // An existing file is never replaced by a new job's results...
    let err = ResultsWriter::create(&path, Format::Csv, &recipients)
        .err()
        .unwrap();
    assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
    // ...even one that appears while they are written.
    let other = dir.path().join("other.csv.age");
    let writer = ResultsWriter::create(&other, Format::Csv, &recipients).unwrap();
    std::fs::write(&other, "someone else's").unwrap();
    let err = writer.finish().unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
    assert_eq!(std::fs::read_to_string(&other).unwrap(), "someone else's");
    assert!(
        files_aside(&other).is_empty(),
        "the unfinished file is removed"
    );

    // A rewrite replaces the file, encrypted again.
    let mut writer = ResultsWriter::replace(&path, Format::Jsonl, &recipients).unwrap();
    write_rows(&mut writer, "mail", CredentialKind::Password);
    writer.finish().unwrap();
    let text = decrypt(&std::fs::read(&path).unwrap(), &identity);
    assert!(text.starts_with("{\"target\":\"mail\""), "{text}");
}

#[test]
fn a_failed_write_leaves_no_file_aside() {
    let recipients = Recipients::parse(
        [age::x25519::Identity::generate().to_public().to_string()],
        "test",
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.csv");
    let mut writer = ResultsWriter::replace(&path, Format::Csv, &recipients).unwrap();
    writer.broken = Some(io::ErrorKind::StorageFull);
    assert!(
        writer
            .write(&ResultRow {
                target: "t",
                user: "u",
                kind: CredentialKind::Password,
                status: Status::Failed,
                password: None,
                detail: "",
            })
            .is_err()
    );
    assert!(writer.finish().is_err());
    assert!(!path.exists());
    assert!(files_aside(&path).is_empty());
}

#[test]
fn csv_cells_that_begin_a_formula_are_quoted_but_passwords_never() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.csv");
    let mut writer = ResultsWriter::create(&path, Format::Csv, &Recipients::default()).unwrap();
    let password = Secret::from("=SUM(A1)");
    writer
        .write(&ResultRow {
            target: "+t",
            user: "@evil",
            kind: CredentialKind::Password,
            status: Status::Reset,
            password: Some(&password),
            detail: "-1+2",
        })
        .unwrap();
    for detail in ["=cmd|' /C calc'!A0", "\tx", "\rx", "plain - text"] {
        writer
            .write(&ResultRow {
                target: "t",
                user: "u",
                kind: CredentialKind::Password,
                status: Status::Failed,
                password: None,
                detail,
            })
            .unwrap();
    }
    writer.finish().unwrap();
    let rows: Vec<csv::StringRecord> = csv::Reader::from_path(&path)
        .unwrap()
        .records()
        .map(Result::unwrap)
        .collect();
    assert_eq!(&rows[0][0], "'+t");
    assert_eq!(&rows[0][1], "'@evil");
    assert_eq!(
        &rows[0][4], "=SUM(A1)",
        "the password is exactly the one set"
    );
    assert_eq!(&rows[0][5], "'-1+2");
    assert_eq!(&rows[1][5], "'=cmd|' /C calc'!A0");
    assert_eq!(&rows[2][5], "'\tx");
    assert_eq!(&rows[3][5], "'\rx");
    assert_eq!(&rows[4][5], "plain - text");
}
