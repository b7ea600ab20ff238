//! Reading `--users FILE`: one id a line (`#` comments and blank lines ignored), or a
//! CSV file whose header names a `user` column or a column per target. Read as a
//! stream, never whole, and never a line longer than [`LINE_LIMIT`] into memory.
//! And what a user id may be, wherever it comes from ([`check_user_id`]).
//!
//! A file is CSV only when its header (its first line that is neither blank nor a
//! comment) names `user` or one of the job's targets: ids such as LDAP
//! distinguished names hold commas, so a comma alone proves nothing. In a CSV file a
//! row is one person: a target reads the column named after it when there is one
//! (an empty cell: no account there), else the `user` column; other columns (a
//! person's name, a department) are ignored.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use anyhow::{Context, anyhow};

/// The column name that holds the same id for every target.
const USER_COLUMN: &str = "user";

/// Whose ids a users file is read for.
#[derive(Debug, Clone, Copy)]
pub struct Columns<'a> {
    /// The target whose ids are wanted.
    pub target: &'a str,
    /// Every target of the job: a header naming one of them makes the file CSV.
    pub targets: &'a [String],
}

impl<'a> Columns<'a> {
    /// Reads the ids of `target`, the job's only target.
    #[cfg(test)]
    pub fn single(target: &'a str) -> Columns<'a> {
        Columns {
            target,
            targets: &[],
        }
    }

    fn names_a_column(&self, field: &str) -> bool {
        field.eq_ignore_ascii_case(USER_COLUMN)
            || field.eq_ignore_ascii_case(self.target)
            || self.targets.iter().any(|t| field.eq_ignore_ascii_case(t))
    }
}

/// The longest line a users file may have (in bytes): far longer than any id.
pub const LINE_LIMIT: usize = 8 * 1024;

/// Refuses a user id that holds a control character (a terminal escape, a
/// newline, a tab). The message shows the id escaped, never raw; the caller says
/// where it came from.
pub fn check_user_id(id: &str) -> Result<(), String> {
    match id.chars().find(|c| c.is_control()) {
        Some(c) => Err(format!(
            "user id \"{}\" holds a control character (U+{:04X}); rekey refuses such ids",
            id.escape_debug(),
            u32::from(c)
        )),
        None => Ok(()),
    }
}

/// The ids in a users file, in order, as an iterator.
pub struct UsersFile {
    path: PathBuf,
    rows: Rows,
}

enum Rows {
    Lines {
        lines: io::Lines<BufReader<LineLimit<File>>>,
        number: usize,
    },
    Csv {
        records: csv::StringRecordsIntoIter<BufReader<LineLimit<File>>>,
        column: usize,
        /// Whether the header record was passed (it is skipped by hand: a line of
        /// blanks before it must not be taken for it).
        past_header: bool,
    },
}

impl UsersFile {
    /// Opens `path` for `columns.target` and works out its form from its first
    /// meaningful line.
    pub fn open(path: &Path, columns: Columns<'_>) -> anyhow::Result<UsersFile> {
        let file = File::open(path)
            .with_context(|| format!("cannot open users file {}", path.display()))?;
        let header = first_meaningful_line(BufReader::new(LineLimit::new(file)))
            .with_context(|| format!("cannot read users file {}", path.display()))?;
        let reopen = || {
            File::open(path)
                .map(LineLimit::new)
                .with_context(|| format!("cannot open users file {}", path.display()))
        };
        let fields = match &header {
            Some(line) => csv_fields(line)
                .with_context(|| format!("cannot read users file {}", path.display()))?,
            None => Vec::new(),
        };
        let rows = if fields.iter().any(|f| columns.names_a_column(f)) {
            let column = column_of(&fields, columns.target)
                .map_err(|why| anyhow!("users file {}: {why}", path.display()))?;
            let reader = csv::ReaderBuilder::new()
                .has_headers(false)
                .comment(Some(b'#'))
                .flexible(true)
                .trim(csv::Trim::All)
                .from_reader(BufReader::new(reopen()?));
            Rows::Csv {
                records: reader.into_records(),
                column,
                past_header: false,
            }
        } else {
            if let Some(line) = header.as_deref().filter(|l| l.contains(',')) {
                tracing::info!(
                    "users file {}: its first line ({line}) names no `user` column and no target, so each line is read as one id",
                    path.display()
                );
            }
            Rows::Lines {
                lines: BufReader::new(reopen()?).lines(),
                number: 0,
            }
        };
        Ok(UsersFile {
            path: path.to_owned(),
            rows,
        })
    }
}

/// The header's fields, trimmed.
fn csv_fields(line: &str) -> anyhow::Result<Vec<String>> {
    Ok(csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(line.as_bytes())
        .records()
        .next()
        .transpose()?
        .map(|r| r.iter().map(|f| f.trim().to_owned()).collect())
        .unwrap_or_default())
}

/// The column `target` reads: its own if the header has one, else `user`.
fn column_of(fields: &[String], target: &str) -> Result<usize, String> {
    let find = |name: &str| -> Result<Option<usize>, String> {
        let mut found = fields
            .iter()
            .enumerate()
            .filter(|(_, f)| f.eq_ignore_ascii_case(name))
            .map(|(i, _)| i);
        match (found.next(), found.next()) {
            (Some(_), Some(_)) => Err(format!(
                "its header names `{name}` twice: keep one column of that name"
            )),
            (first, None) => Ok(first),
            (None, Some(_)) => unreachable!("a second match implies a first"),
        }
    };
    match find(target)? {
        Some(column) => Ok(column),
        None => find(USER_COLUMN)?.ok_or_else(|| {
            format!(
                "its header has neither a column named after target `{target}` nor a `user` column: add one (a row is a person; an empty cell means no account on that target)"
            )
        }),
    }
}

impl Iterator for UsersFile {
    type Item = anyhow::Result<String>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            match &mut self.rows {
                Rows::Lines { lines, number } => {
                    let line = lines.next()?;
                    *number += 1;
                    let line = match line {
                        Ok(line) => line,
                        Err(e) => {
                            return Some(Err(anyhow!(
                                "users file {}, line {number}: {e}",
                                self.path.display()
                            )));
                        }
                    };
                    let id = strip_bom(&line).trim();
                    if id.is_empty() || id.starts_with('#') {
                        continue;
                    }
                    if let Err(why) = check_user_id(id) {
                        return Some(Err(anyhow!(
                            "users file {}, line {number}: {why}",
                            self.path.display()
                        )));
                    }
                    return Some(Ok(id.to_owned()));
                }
                Rows::Csv {
                    records,
                    column,
                    past_header,
                } => {
                    let record = match records.next()? {
                        Ok(record) => record,
                        Err(e) => {
                            return Some(Err(anyhow!("users file {}: {e}", self.path.display())));
                        }
                    };
                    if record.iter().all(str::is_empty) {
                        continue;
                    }
                    if !*past_header {
                        *past_header = true;
                        continue;
                    }
                    // An empty cell: this person has no account on the target.
                    let id = record.get(*column).unwrap_or("").trim();
                    if id.is_empty() {
                        continue;
                    }
                    if let Err(why) = check_user_id(id) {
                        let line = record.position().map_or(0, |p| p.line());
                        return Some(Err(anyhow!(
                            "users file {}, line {line}: {why}",
                            self.path.display()
                        )));
                    }
                    return Some(Ok(id.to_owned()));
                }
            }
        }
    }
}

/// A reader that fails once a line runs longer than [`LINE_LIMIT`], so that a
/// file with no newlines is never read whole into one line's buffer.
struct LineLimit<R> {
    inner: R,
    run: usize,
}

impl<R> LineLimit<R> {
    fn new(inner: R) -> Self {
        LineLimit { inner, run: 0 }
    }
}

impl<R: Read> Read for LineLimit<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        let mut segments = buf[..n].split(|&b| b == b'\n');
        if let Some(first) = segments.next() {
            self.run += first.len();
        }
        for segment in segments {
            if self.run > LINE_LIMIT {
                break;
            }
            self.run = segment.len();
        }
        if self.run > LINE_LIMIT {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("a line is longer than {LINE_LIMIT} bytes; user ids are never that long"),
            ));
        }
        Ok(n)
    }
}

fn strip_bom(line: &str) -> &str {
    line.strip_prefix('\u{feff}').unwrap_or(line)
}

/// The first line that is neither blank nor a comment.
fn first_meaningful_line(reader: impl BufRead) -> io::Result<Option<String>> {
    for line in reader.lines() {
        let line = line?;
        let text = strip_bom(&line).trim();
        if !text.is_empty() && !text.starts_with('#') {
            return Ok(Some(text.to_owned()));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn read_for(text: &[u8], target: &str, targets: &[&str]) -> anyhow::Result<Vec<String>> {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        file.write_all(text).unwrap();
        let targets: Vec<String> = targets.iter().map(|t| (*t).to_owned()).collect();
        UsersFile::open(
            file.path(),
            Columns {
                target,
                targets: &targets,
            },
        )?
        .collect()
    }

    fn read(text: &[u8]) -> anyhow::Result<Vec<String>> {
        read_for(text, "mail", &["mail"])
    }

    #[test]
    fn plain_lists() {
        let ids =
            read(b"\xef\xbb\xbf# staff\n\nalice@example.com\n  bob@example.com  \n# carol\ndave\n")
                .unwrap();
        assert_eq!(ids, ["alice@example.com", "bob@example.com", "dave"]);
    }

    #[test]
    fn csv_with_a_user_column() {
        let ids = read(b"name,User,dept\nAlice,alice@example.com,ops\n\"Smith, Bob\",bob@example.com,hr\nNo One,,x\n").unwrap();
        assert_eq!(ids, ["alice@example.com", "bob@example.com"]);
        let ids = read(b"  \n# people\nuser\nalice\n \nbob\n").unwrap();
        assert_eq!(ids, ["alice", "bob"]);
    }

    #[test]
    fn ids_with_commas_are_not_taken_for_a_header() {
        let dns = b"CN=Smith\\, Ann,OU=Staff,DC=example,DC=com\nCN=Bo,OU=Staff,DC=example,DC=com\n";
        let ids = read(dns).unwrap();
        assert_eq!(
            ids,
            [
                "CN=Smith\\, Ann,OU=Staff,DC=example,DC=com",
                "CN=Bo,OU=Staff,DC=example,DC=com"
            ]
        );
        // A header naming no known column is an id like any other.
        let ids = read(b"name,email\nA,a@x\n").unwrap();
        assert_eq!(ids, ["name,email", "A,a@x"]);
    }

    #[test]
    fn a_column_per_target_decides_alone() {
        let file = b"name,user,mail,pbx\n\
            Ann,ann,ann@example.com,1001\n\
            Bob,bob,bob@example.com,\n\
            \"Carol, C\",carol,,1003\n";
        let targets = ["mail", "pbx", "ad"];
        assert_eq!(
            read_for(file, "mail", &targets).unwrap(),
            ["ann@example.com", "bob@example.com"]
        );
        // Bob's empty cell: no account on the PBX, whatever `user` says.
        assert_eq!(read_for(file, "pbx", &targets).unwrap(), ["1001", "1003"]);
        // No column of its own: the `user` column.
        assert_eq!(
            read_for(file, "ad", &targets).unwrap(),
            ["ann", "bob", "carol"]
        );
    }

    #[test]
    fn target_columns_without_user_need_a_column_for_every_target() {
        let file = b"Mail,PBX\nann@example.com,1001\n";
        assert_eq!(
            read_for(file, "mail", &["mail", "pbx"]).unwrap(),
            ["ann@example.com"]
        );
        let err = read_for(file, "ad", &["mail", "pbx", "ad"]).unwrap_err();
        assert!(
            err.to_string()
                .contains("neither a column named after target `ad` nor a `user` column"),
            "{err}"
        );
        let err = read_for(b"mail,user,MAIL\na,b,c\n", "mail", &["mail"]).unwrap_err();
        assert!(err.to_string().contains("names `mail` twice"), "{err}");
    }

    #[test]
    fn bad_bytes_name_the_line() {
        let err = read(b"alice\nb\xffb\n").unwrap_err();
        assert!(err.to_string().contains("line 2"), "{err}");
    }

    #[test]
    fn missing_files_are_named() {
        let err = UsersFile::open(Path::new("/nonexistent/users.txt"), Columns::single("mail"))
            .err()
            .unwrap();
        assert!(err.to_string().contains("/nonexistent/users.txt"), "{err}");
    }

    #[test]
    fn ids_with_control_characters_are_refused_escaped() {
        let err = read(b"alice\nbob\x1b[2Jx\n").unwrap_err().to_string();
        assert!(err.contains("line 2"), "{err}");
        assert!(err.contains(r"bob\u{1b}[2Jx"), "{err}");
        assert!(!err.contains('\x1b'), "never raw: {err:?}");
        let err = read(b"user,name\nal\tice,A\n").unwrap_err().to_string();
        assert!(err.contains("line 2") && err.contains(r"al\tice"), "{err}");
        assert!(check_user_id("ok@example.com").is_ok());
        assert!(check_user_id("a\u{85}b").is_err(), "C1 controls too");
    }

    #[test]
    fn overlong_lines_are_refused() {
        let mut text = b"alice\n".to_vec();
        text.extend(std::iter::repeat_n(b'x', LINE_LIMIT + 1));
        text.extend(b"\nbob\n");
        let err = read(&text).unwrap_err().to_string();
        assert!(err.contains("longer than 8192 bytes"), "{err}");
        // A file of one enormous line is refused before it is read whole.
        let err = read(&vec![b'y'; 10 * LINE_LIMIT]).unwrap_err();
        assert!(format!("{err:#}").contains("longer than"), "{err:#}");
        let ok = format!("{}\nbob\n", "z".repeat(LINE_LIMIT));
        assert_eq!(read(ok.as_bytes()).unwrap().len(), 2);
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..2048)) {
            // Whatever the file holds: ids or an error, never a panic, and never an
            // id with a control character.
            if let Ok(ids) = read(&bytes) {
                for id in ids {
                    proptest::prop_assert!(check_user_id(&id).is_ok());
                }
            }
        }

        #[test]
        fn csv_shaped_garbage_never_panics(text in "(user|name|,|\"|\n|\r|#|a|\u{1b}|\t| ){0,200}") {
            if let Ok(ids) = read(text.as_bytes()) {
                for id in ids {
                    proptest::prop_assert!(!id.is_empty());
                    proptest::prop_assert!(check_user_id(&id).is_ok());
                }
            }
        }
    }
}
