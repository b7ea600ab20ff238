//! Reading `--users FILE`: one id a line (`#` comments and blank lines ignored), or a
//! CSV file whose header has a `user` column. Read as a stream, never whole, and
//! never a line longer than [`LINE_LIMIT`] into memory. And what a user id may be,
//! wherever it comes from ([`check_user_id`]).

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use anyhow::{Context, anyhow, bail};

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
    },
}

impl UsersFile {
    /// Opens `path` and works out its form from its first meaningful line.
    pub fn open(path: &Path) -> anyhow::Result<UsersFile> {
        let file = File::open(path)
            .with_context(|| format!("cannot open users file {}", path.display()))?;
        let header = first_meaningful_line(BufReader::new(LineLimit::new(file)))
            .with_context(|| format!("cannot read users file {}", path.display()))?;
        let reopen = || {
            File::open(path)
                .map(LineLimit::new)
                .with_context(|| format!("cannot open users file {}", path.display()))
        };
        let rows = match header {
            Some(line) if line.contains(',') || line.trim().eq_ignore_ascii_case("user") => {
                let fields: Vec<String> = csv::ReaderBuilder::new()
                    .has_headers(false)
                    .from_reader(line.as_bytes())
                    .records()
                    .next()
                    .transpose()?
                    .map(|r| r.iter().map(|f| f.trim().to_lowercase()).collect())
                    .unwrap_or_default();
                let Some(column) = fields.iter().position(|f| f == "user") else {
                    bail!(
                        "users file {} looks like CSV, but its header has no `user` column: name the column of user ids `user`, or give one id a line",
                        path.display()
                    );
                };
                let reader = csv::ReaderBuilder::new()
                    .comment(Some(b'#'))
                    .flexible(true)
                    .trim(csv::Trim::All)
                    .from_reader(BufReader::new(reopen()?));
                Rows::Csv {
                    records: reader.into_records(),
                    column,
                }
            }
            _ => Rows::Lines {
                lines: BufReader::new(reopen()?).lines(),
                number: 0,
            },
        };
        Ok(UsersFile {
            path: path.to_owned(),
            rows,
        })
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
                Rows::Csv { records, column } => {
                    let record = match records.next()? {
                        Ok(record) => record,
                        Err(e) => {
                            return Some(Err(anyhow!("users file {}: {e}", self.path.display())));
                        }
                    };
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

    fn read(text: &[u8]) -> anyhow::Result<Vec<String>> {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        file.write_all(text).unwrap();
        UsersFile::open(file.path())?.collect()
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
        let ids = read(b"user\nalice\nbob\n").unwrap();
        assert_eq!(ids, ["alice", "bob"]);
    }

    #[test]
    fn csv_without_a_user_column_is_refused() {
        let err = read(b"name,email\nA,a@x\n").unwrap_err();
        assert!(err.to_string().contains("no `user` column"), "{err}");
    }

    #[test]
    fn bad_bytes_name_the_line() {
        let err = read(b"alice\nb\xffb\n").unwrap_err();
        assert!(err.to_string().contains("line 2"), "{err}");
    }

    #[test]
    fn missing_files_are_named() {
        let err = UsersFile::open(Path::new("/nonexistent/users.txt"))
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
