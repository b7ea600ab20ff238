//! Operator trust, through the real binary against the SmarterMail simulator:
//! results encrypted to age recipients (and no plaintext copy anywhere),
//! spreadsheet-safe passwords, trust checks on the config, recipients and secret
//! files, and hostile user ids.

use std::io::Read as _;
use std::path::Path;
use std::time::{Duration, Instant};

use rekey_sim::smartermail::{SmarterMailConfig, SmarterMailSim};
use rekey_sim::{Behaviour, Faults};
use rekey_tests::{ResultRecord, Scratch, runtime, with_status};

const ADMIN_PASSWORD: &str = "Admin-Passw0rd!";

fn sim(users: usize, latency_ms: u64) -> (tokio::runtime::Runtime, SmarterMailSim) {
    let rt = runtime();
    let sim = rt
        .block_on(SmarterMailSim::start(SmarterMailConfig {
            users,
            behaviour: Behaviour {
                latency: Duration::from_millis(latency_ms),
                faults: Faults::default(),
                ..Behaviour::default()
            },
            ..SmarterMailConfig::default()
        }))
        .unwrap();
    (rt, sim)
}

/// A scratch directory whose config has `[rekey]` lines `rekey` and the target
/// `mail` with lines `extra`.
fn scratch(sim: &SmarterMailSim, rekey: &str, extra: &str) -> Scratch {
    let mut scratch = Scratch::new();
    scratch.env("SM_ADMIN_PASSWORD", ADMIN_PASSWORD);
    scratch.config(&format!(
        "[rekey]\n{rekey}\n[targets.mail]\nconnector = \"smartermail\"\nurl = \"{}\"\nusername = \"{}\"\npassword = {{ env = \"SM_ADMIN_PASSWORD\" }}\n{extra}\n",
        sim.url(),
        sim.domain_admin()
    ));
    scratch
}

/// A new age key: its recipient (public key) and identity.
fn age_key() -> (String, age::x25519::Identity) {
    let identity = age::x25519::Identity::generate();
    (identity.to_public().to_string(), identity)
}

/// Decrypts `bytes` with `identity` and reads them as results.
fn decrypt(bytes: &[u8], identity: &age::x25519::Identity) -> Vec<ResultRecord> {
    let decryptor = age::Decryptor::new(bytes).expect("an age file");
    let mut plain = String::new();
    decryptor
        .decrypt(std::iter::once(identity as &dyn age::Identity))
        .expect("decryptable with the key")
        .read_to_string(&mut plain)
        .expect("a whole age file");
    let mut reader = csv::Reader::from_reader(plain.as_bytes());
    assert_eq!(
        reader.headers().unwrap().iter().collect::<Vec<_>>(),
        ["target", "user", "kind", "status", "password", "detail"]
    );
    reader.deserialize().map(Result::unwrap).collect()
}

fn decrypt_file(path: &Path, identity: &age::x25519::Identity) -> Vec<ResultRecord> {
    decrypt(&std::fs::read(path).unwrap(), identity)
}

/// Every user is reset, with the password the simulator holds.
fn assert_all_reset(sim: &SmarterMailSim, rows: &[ResultRecord], users: usize) {
    let reset = with_status(rows, "reset");
    assert_eq!(reset.len(), users, "every user is reset");
    for row in reset {
        assert_eq!(
            Some(row.password.clone()),
            sim.password(&row.user),
            "{}",
            row.user
        );
    }
}

/// Scans every byte of every file under `dir` for the rows' passwords.
fn assert_no_plaintext_under(dir: &Path, rows: &[ResultRecord]) {
    let passwords: Vec<&str> = rows
        .iter()
        .map(|r| r.password.as_str())
        .filter(|p| !p.is_empty())
        .collect();
    assert!(!passwords.is_empty());
    let mut paths = vec![dir.to_owned()];
    let mut scanned = 0;
    while let Some(path) = paths.pop() {
        if path.is_dir() {
            paths.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
            continue;
        }
        let bytes = std::fs::read(&path).unwrap();
        scanned += 1;
        for password in &passwords {
            assert!(
                !bytes
                    .windows(password.len())
                    .any(|w| w == password.as_bytes()),
                "a new password in plaintext in {}",
                path.display()
            );
        }
    }
    assert!(
        scanned >= 3,
        "the config, the journal and the results were scanned"
    );
}

#[cfg(unix)]
fn chmod(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[test]
fn encrypted_results_decrypt_to_the_passwords_set_and_no_plaintext_is_left() {
    let (_rt, sim) = sim(40, 0);
    let scratch = scratch(&sim, "", "");
    let (recipient, identity) = age_key();
    scratch
        .run(&[
            "reset",
            "mail",
            "--all",
            "--out",
            "results.csv.age",
            "--recipient",
            &recipient,
            "--yes",
        ])
        .expect_code(0);
    let path = scratch.path("results.csv.age");
    let bytes = std::fs::read(&path).unwrap();
    assert!(
        bytes.starts_with(b"age-encryption.org/v1\n"),
        "age's format"
    );
    let rows = decrypt(&bytes, &identity);
    assert_eq!(rows.len(), 41, "every user and the admin");
    assert_all_reset(&sim, &rows, 40);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // The job is complete: the journal holds no password any more, and nothing
    // under the scratch directory, state directory included, holds one in plain.
    assert_no_plaintext_under(scratch.dir(), &rows);
    let names: Vec<String> = std::fs::read_dir(scratch.dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        !names.iter().any(|n| n.ends_with(".tmp")),
        "no temporary file left: {names:?}"
    );
}

#[test]
fn an_encrypted_job_stopped_by_ctrl_c_then_resumed_yields_one_whole_file() {
    let (_rt, sim) = sim(300, 40);
    let (first, first_identity) = age_key();
    let (second, second_identity) = age_key();
    // The recipients come from the config's default; they are journaled with the
    // job, so resume encrypts to them even once the config names another key.
    let scratch = scratch(
        &sim,
        &format!("recipients = [\"{first}\", \"{second}\"]"),
        "",
    );
    let running = scratch.spawn(&[
        "reset",
        "mail",
        "--all",
        "--out",
        "results.csv.age",
        "--yes",
        "--concurrency",
        "4",
    ]);
    let job = running.job_id();
    let deadline = Instant::now() + Duration::from_secs(60);
    while sim
        .users()
        .iter()
        .filter(|u| !sim.history(u).is_empty())
        .count()
        < 40
    {
        assert!(Instant::now() < deadline, "timed out waiting");
        std::thread::sleep(Duration::from_millis(10));
    }
    running.signal("INT");
    let (code, stderr) = running.wait();
    assert_eq!(code, 3, "{stderr}");

    // Stopped, the file is whole and decryptable: what is known, and the rest
    // marked for resume.
    let path = scratch.path("results.csv.age");
    let rows = decrypt_file(&path, &first_identity);
    let reset = with_status(&rows, "reset");
    assert!(
        !reset.is_empty() && reset.len() < 300,
        "{} reset",
        reset.len()
    );
    for row in &reset {
        assert_eq!(Some(row.password.clone()), sim.password(&row.user));
    }
    assert!(
        with_status(&rows, "skipped")
            .iter()
            .any(|r| r.detail.contains("resume"))
    );

    let (other, _) = age_key();
    scratch.config(&format!(
        "[rekey]\nrecipients = [\"{other}\"]\n[targets.mail]\nconnector = \"smartermail\"\nurl = \"{}\"\nusername = \"{}\"\npassword = {{ env = \"SM_ADMIN_PASSWORD\" }}\n",
        sim.url(),
        sim.domain_admin()
    ));
    scratch.run(&["resume", &job]).expect_code(0);
    let rows = decrypt_file(&path, &second_identity);
    assert_eq!(rows.len(), 301);
    assert_all_reset(&sim, &rows, 300);
    assert_eq!(decrypt_file(&path, &first_identity), rows);
    assert_no_plaintext_under(scratch.dir(), &rows);
}

#[test]
fn recipients_files_and_standard_output() {
    let (_rt, sim) = sim(10, 0);
    let scratch = scratch(&sim, "", "");
    let (recipient, identity) = age_key();
    let file = scratch.path("admins.txt");
    std::fs::write(
        &file,
        format!(
            "# who may read the results\n\n{recipient}\nssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHsKLqeplhpW+uObz5dvMgjz1OxfM/XXUB+VHtZ6isGN alice@rust\n"
        ),
    )
    .unwrap();
    let output = scratch
        .command(&[
            "reset",
            "mail",
            "--all",
            "--out",
            "-",
            "--recipients-file",
            "admins.txt",
            "--yes",
        ])
        .output()
        .unwrap();
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let rows = decrypt(&output.stdout, &identity);
    assert_all_reset(&sim, &rows, 10);
}

#[test]
fn bad_recipients_are_refused_before_anything_is_sent() {
    let (_rt, sim) = sim(5, 0);
    let scratch = scratch(&sim, "", "");
    let run = scratch.run(&[
        "reset",
        "mail",
        "--all",
        "--out",
        "r.csv",
        "--recipient",
        "age1bogus",
        "--yes",
    ]);
    run.expect_code(2);
    assert!(
        run.stderr.contains("--recipient") && run.stderr.contains("`age1bogus`"),
        "{}",
        run.stderr
    );

    // A secret key given by mistake is refused without being echoed.
    use age::secrecy::ExposeSecret as _;
    let secret = age::x25519::Identity::generate().to_string();
    let run = scratch.run(&[
        "reset",
        "mail",
        "--all",
        "--out",
        "r.csv",
        "--recipient",
        secret.expose_secret(),
        "--yes",
    ]);
    run.expect_code(2);
    assert!(
        run.stderr.contains("secret key, not a recipient"),
        "{}",
        run.stderr
    );
    assert!(
        !run.stderr.contains(&secret.expose_secret()[15..]),
        "{}",
        run.stderr
    );

    std::fs::write(scratch.path("keys.txt"), "age1bogus\n").unwrap();
    let run = scratch.run(&[
        "reset",
        "mail",
        "--all",
        "--out",
        "r.csv",
        "--recipients-file",
        "keys.txt",
        "--yes",
    ]);
    run.expect_code(2);
    assert!(run.stderr.contains("keys.txt, line 1"), "{}", run.stderr);

    let bad_config = self::scratch(&sim, "recipients = [\"nope\"]", "");
    let run = bad_config.run(&["reset", "mail", "--all", "--out", "r.csv", "--yes"]);
    run.expect_code(2);
    assert!(run.stderr.contains("[rekey] recipients"), "{}", run.stderr);
    assert!(!scratch.path("r.csv").exists() && !bad_config.path("r.csv").exists());
    assert!(
        sim.users().iter().all(|u| sim.history(u).is_empty()),
        "nothing was sent"
    );
}

#[test]
fn a_thousand_generated_passwords_never_begin_a_formula() {
    let (_rt, sim) = sim(1000, 0);
    let scratch = scratch(
        &sim,
        "",
        "[targets.mail.policy]\nlength = 10\nmin_symbol = 3\nsymbols = \"=+-@#\"",
    );
    scratch
        .run(&["reset", "mail", "--all", "--out", "results.csv", "--yes"])
        .expect_code(0);
    let rows = scratch.results("results.csv");
    assert_all_reset(&sim, &rows, 1000);
    let passwords: Vec<&str> = with_status(&rows, "reset")
        .iter()
        .map(|r| r.password.as_str())
        .collect();
    for password in &passwords {
        assert!(
            !password.starts_with(['=', '+', '-', '@']),
            "{password} begins a formula"
        );
    }
    // The formula characters are still used, just never first.
    assert!(passwords.iter().any(|p| p.contains('=')) && passwords.iter().any(|p| p.contains('@')));
}

#[cfg(unix)]
#[test]
fn untrusted_configs_and_recipients_files_are_refused_naming_them() {
    let (_rt, sim) = sim(5, 0);
    let scratch = scratch(&sim, "", "");
    let config = scratch.path("rekey.toml");
    let reset = ["reset", "mail", "--all", "--out", "r.csv", "--yes"];

    chmod(&config, 0o666);
    let run = scratch.run(&reset);
    run.expect_code(2);
    assert!(
        run.stderr.contains("config file rekey.toml is not trusted")
            && run.stderr.contains(&config.display().to_string()),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("mode 666"), "{}", run.stderr);
    chmod(&config, 0o600);

    // A config in a directory the group can write, reached through a symbolic link.
    let shared = scratch.path("shared");
    std::fs::create_dir(&shared).unwrap();
    std::fs::copy(&config, shared.join("rekey.toml")).unwrap();
    chmod(&shared, 0o775);
    std::os::unix::fs::symlink(shared.join("rekey.toml"), scratch.path("link.toml")).unwrap();
    let run = scratch.run(&["--config", "link.toml", "check"]);
    run.expect_code(2);
    assert!(
        run.stderr.contains("link.toml is not trusted"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains(&format!("the directory {} above it", shared.display())),
        "{}",
        run.stderr
    );

    let (recipient, _) = age_key();
    let keys = scratch.path("keys.txt");
    std::fs::write(&keys, format!("{recipient}\n")).unwrap();
    chmod(&keys, 0o646);
    let run = scratch.run(&[
        "reset",
        "mail",
        "--all",
        "--out",
        "r.csv",
        "--recipients-file",
        "keys.txt",
        "--yes",
    ]);
    run.expect_code(2);
    assert!(
        run.stderr
            .contains("recipients file keys.txt is not trusted"),
        "{}",
        run.stderr
    );
    assert!(!scratch.path("r.csv").exists());
    assert!(
        sim.users().iter().all(|u| sim.history(u).is_empty()),
        "nothing was sent"
    );
}

#[cfg(unix)]
#[test]
fn secret_files_others_can_read_are_refused_naming_them() {
    let (_rt, sim) = sim(5, 0);
    let scratch = Scratch::new();
    scratch.config(&format!(
        "[targets.mail]\nconnector = \"smartermail\"\nurl = \"{}\"\nusername = \"{}\"\npassword = {{ file = \"admin.pw\" }}\n",
        sim.url(),
        sim.domain_admin()
    ));
    let admin = scratch.path("admin.pw");
    std::fs::write(&admin, format!("{ADMIN_PASSWORD}\n")).unwrap();
    chmod(&admin, 0o644);
    let run = scratch.run(&["check", "mail"]);
    run.expect_code(2);
    assert!(run.stderr.contains("admin.pw"), "{}", run.stderr);
    assert!(
        run.stderr.contains("read by group or others"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains(ADMIN_PASSWORD), "{}", run.stderr);
    chmod(&admin, 0o600);
    scratch.run(&["check", "mail"]).expect_code(0);

    let known = scratch.path("new.pw");
    std::fs::write(&known, "Known-Value-2024\n").unwrap();
    chmod(&known, 0o640);
    let run = scratch.run(&[
        "reset",
        "mail",
        "--all",
        "--password-file",
        "new.pw",
        "--out",
        "r.csv",
        "--yes",
    ]);
    run.expect_code(2);
    assert!(run.stderr.contains("new.pw"), "{}", run.stderr);
    assert!(!run.stderr.contains("Known-Value-2024"), "{}", run.stderr);
}

#[test]
fn user_ids_with_control_characters_are_refused_escaped() {
    let (_rt, sim) = sim(5, 0);
    let scratch = scratch(&sim, "", "");
    let run = scratch.run(&[
        "reset",
        "mail",
        "--user",
        "evil\u{1b}]0;owned\u{7}@example.com",
        "--out",
        "r.csv",
        "--yes",
    ]);
    run.expect_code(2);
    assert!(run.stderr.contains("--user"), "{}", run.stderr);
    assert!(
        run.stderr.contains("evil\\u{1b}]0;owned\\u{7}"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains('\u{1b}'), "never raw on the terminal");

    std::fs::write(
        scratch.path("users.txt"),
        "user00001@example.com\nuser\r00002@example.com\n",
    )
    .unwrap();
    let run = scratch.run(&[
        "reset",
        "mail",
        "--users",
        "users.txt",
        "--out",
        "r.csv",
        "--yes",
    ]);
    run.expect_code(2);
    assert!(run.stderr.contains("users.txt, line 2"), "{}", run.stderr);
    assert!(!run.stderr.contains('\r'), "{}", run.stderr);
    assert!(
        sim.users().iter().all(|u| sim.history(u).is_empty()),
        "nothing was sent"
    );
}

/// The SHA-256 of a file, as `sha256sum` prints it.
fn sha256sum(path: &Path) -> String {
    let output = std::process::Command::new("sha256sum")
        .arg(path)
        .output()
        .expect("run sha256sum");
    String::from_utf8_lossy(&output.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned()
}

#[test]
fn untrusted_connector_libraries_are_refused_and_pinned_ones_load() {
    use rekey_tests::connector_file_name;
    let (_rt, sim) = sim(3, 0);
    let mut scratch = scratch(&sim, "", "");
    let plugins = scratch.plugin_copy("rekey_smartermail", &connector_file_name("smartermail"));
    scratch.env("REKEY_PLUGIN_PATH", plugins.to_str().unwrap());
    let library = plugins.join(connector_file_name("smartermail"));

    // The library's directory writable by others: refused, naming it and why, and
    // `rekey connectors` shows it skipped instead of loading it.
    chmod(&plugins, 0o777);
    let run = scratch.run(&["check", "mail"]);
    run.expect_code(2);
    assert!(
        run.stderr.contains(&plugins.display().to_string()),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("written by group or others"),
        "{}",
        run.stderr
    );
    let listed = scratch.run(&["connectors"]);
    let line = listed
        .stdout
        .lines()
        .find(|l| l.contains(&library.display().to_string()))
        .unwrap_or_else(|| panic!("{}", listed.stdout));
    assert!(line.contains("skipped: not trusted"), "{line}");
    chmod(&plugins, 0o700);

    // The library itself group-writable: refused.
    chmod(&library, 0o664);
    let run = scratch.run(&["check", "mail"]);
    run.expect_code(2);
    assert!(
        run.stderr.contains(&library.display().to_string()),
        "{}",
        run.stderr
    );
    chmod(&library, 0o644);

    // Pinned: the right digest loads, another is refused.
    let digest = sha256sum(&library);
    let pinned = |pin: &str| {
        scratch.config(&format!(
            "[targets.mail]\nconnector = \"smartermail\"\nconnector_sha256 = \"{pin}\"\nurl = \"{}\"\nusername = \"{}\"\npassword = {{ env = \"SM_ADMIN_PASSWORD\" }}\n",
            sim.url(),
            sim.domain_admin()
        ));
    };
    pinned(&digest);
    scratch.run(&["check", "mail"]).expect_code(0);
    pinned(&"ab".repeat(32));
    let run = scratch.run(&["check", "mail"]);
    run.expect_code(2);
    assert!(run.stderr.contains("connector_sha256"), "{}", run.stderr);
    assert!(run.stderr.contains(&digest), "{}", run.stderr);
}
