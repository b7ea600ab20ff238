//! Reading a program's standard output line by line into buffers that are wiped
//! when dropped: its replies carry passwords.

use std::io::{self, Read};

use zeroize::Zeroizing;

/// Splits a byte stream into lines (without their `\n`), each at most `max` bytes.
pub(super) struct LineReader<R> {
    inner: R,
    buf: Zeroizing<Vec<u8>>,
    start: usize,
    end: usize,
    max: usize,
}

impl<R: Read> LineReader<R> {
    /// A reader of lines of at most `max` bytes.
    pub(super) fn new(inner: R, max: usize) -> Self {
        LineReader {
            inner,
            buf: Zeroizing::new(vec![0; 64 * 1024]),
            start: 0,
            end: 0,
            max,
        }
    }

    /// The next line; `None` at the end of the stream. A last line without its
    /// `\n` is still a line. A line longer than `max` is an error.
    pub(super) fn next_line(&mut self) -> io::Result<Option<Zeroizing<Vec<u8>>>> {
        // Bytes after `start` already known to hold no `\n`.
        let mut checked = 0;
        loop {
            let from = self.start + checked;
            if let Some(at) = self.buf[from..self.end].iter().position(|&b| b == b'\n') {
                let line = Zeroizing::new(self.buf[self.start..from + at].to_vec());
                self.start = from + at + 1;
                return Ok(Some(line));
            }
            checked = self.end - self.start;
            if checked > self.max {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("a line longer than {} bytes", self.max),
                ));
            }
            if self.end == self.buf.len() {
                self.make_room();
            }
            let read = self.inner.read(&mut self.buf[self.end..])?;
            if read == 0 {
                if self.end == self.start {
                    return Ok(None);
                }
                let line = Zeroizing::new(self.buf[self.start..self.end].to_vec());
                self.start = self.end;
                return Ok(Some(line));
            }
            self.end += read;
        }
    }

    /// Moves the unread bytes to the front, and doubles the buffer if they fill
    /// it (the old one is wiped as it is dropped).
    fn make_room(&mut self) {
        let unread = self.end - self.start;
        if unread == self.buf.len() {
            let mut bigger = Zeroizing::new(vec![0; self.buf.len() * 2]);
            bigger[..unread].copy_from_slice(&self.buf[self.start..self.end]);
            self.buf = bigger;
        } else {
            self.buf.copy_within(self.start..self.end, 0);
        }
        self.start = 0;
        self.end = unread;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stream that hands out its bytes a few at a time.
    struct Trickle<'a>(&'a [u8], usize);

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = self.0.len().min(self.1).min(buf.len());
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    fn lines(input: &[u8], chunk: usize, max: usize) -> io::Result<Vec<String>> {
        let mut reader = LineReader::new(Trickle(input, chunk), max);
        reader.buf = Zeroizing::new(vec![0; 8]);
        let mut out = Vec::new();
        while let Some(line) = reader.next_line()? {
            out.push(String::from_utf8(line.to_vec()).unwrap());
        }
        Ok(out)
    }

    #[test]
    fn splits_lines_across_reads_and_growth() {
        let input = b"{\"id\":1}\n\n{\"id\":2,\"status\":\"ok\",\"reply\":{\"values\":[]}}\nlast";
        for chunk in [1, 3, 7, 100] {
            assert_eq!(
                lines(input, chunk, 1024).unwrap(),
                [
                    "{\"id\":1}",
                    "",
                    "{\"id\":2,\"status\":\"ok\",\"reply\":{\"values\":[]}}",
                    "last"
                ],
                "chunks of {chunk}"
            );
        }
    }

    #[test]
    fn refuses_a_line_past_the_limit() {
        let err = lines(&[b'x'; 100], 9, 50).unwrap_err();
        assert!(err.to_string().contains("longer than 50 bytes"), "{err}");
        assert_eq!(lines(&[b'x'; 50], 9, 50).unwrap().len(), 1);
    }
}
