//! Reading `--users FILE`: one id a line (`#` comments and blank lines ignored), or a
//! CSV file whose header has a `user` column. Read as a stream, never whole.

use std::fs::File;
use std::io::{self, BufRead, BufReader};
use std::path::{Path, PathBuf};

use anyhow::{Context, anyhow, bail};

/// The ids in a users file, in order, as an iterator.
pub struct UsersFile {
    path: PathBuf,
    rows: Rows,
}

enum Rows {
    Lines {
        lines: io::Lines<BufReader<File>>,
        number: usize,
    },
    Csv {
        records: csv::StringRecordsIntoIter<BufReader<File>>,
        column: usize,
    },
}

impl UsersFile {
    /// Opens `path` and works out its form from its first meaningful line.
    pub fn open(path: &Path) -> anyhow::Result<UsersFile> {
        let file = File::open(path)
            .with_context(|| format!("cannot open users file {}", path.display()))?;
        let header = first_meaningful_line(BufReader::new(file))
            .with_context(|| format!("cannot read users file {}", path.display()))?;
        let reopen = || {
            File::open(path).with_context(|| format!("cannot open users file {}", path.display()))
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
                    return Some(Ok(id.to_owned()));
                }
            }
        }
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
}
