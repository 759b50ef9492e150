//! The on-disk spool in front of Logstash: lines wait here, in order, while Logstash is
//! unreachable, and survive a restart of the runtime.
//!
//! Layout: a directory of append-only segment files `seg-<20-digit number>.log` holding one JSON
//! line each, and a file `offset` holding `<segment number> <byte offset>` of the first line not
//! yet delivered (written to a temporary file and renamed, so a crash leaves the old or the new
//! offset, never a torn one). Segments wholly delivered are deleted. A line is accepted only while
//! the undelivered bytes stay under `max_bytes`; the caller counts what is refused as dropped.
//!
//! Delivery is at-least-once across a crash: lines sent after the last persisted offset are sent
//! again on restart. Only the shipper thread uses a spool; it is not shared.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

const OFFSET_FILE: &str = "offset";

/// Where the next undelivered line starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    pub segment: u64,
    pub offset: u64,
}

pub struct Spool {
    dir: PathBuf,
    max_bytes: u64,
    segment_max_bytes: u64,
    /// Segment numbers present, oldest first; the last one is appended to.
    segments: VecDeque<u64>,
    /// Size of each segment in `segments`, same order.
    sizes: VecDeque<u64>,
    read: Cursor,
    writer: Option<BufWriter<File>>,
}

impl Spool {
    /// Opens (or creates) the spool in `dir`, resuming from the persisted offset.
    pub fn open(dir: &Path, max_bytes: u64) -> io::Result<Spool> {
        std::fs::create_dir_all(dir)?;
        let mut numbers: Vec<u64> = std::fs::read_dir(dir)?
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let name = e.file_name();
                let name = name.to_str()?;
                name.strip_prefix("seg-")?
                    .strip_suffix(".log")?
                    .parse::<u64>()
                    .ok()
            })
            .collect();
        numbers.sort_unstable();
        let read = std::fs::read_to_string(dir.join(OFFSET_FILE))
            .ok()
            .and_then(|s| {
                let mut parts = s.split_whitespace();
                Some(Cursor {
                    segment: parts.next()?.parse().ok()?,
                    offset: parts.next()?.parse().ok()?,
                })
            });
        let mut segments = VecDeque::new();
        let mut sizes = VecDeque::new();
        for n in numbers {
            let path = segment_path(dir, n);
            if read.is_some_and(|r| n < r.segment) {
                std::fs::remove_file(&path)?;
                continue;
            }
            sizes.push_back(std::fs::metadata(&path)?.len());
            segments.push_back(n);
        }
        let read = match (read, segments.front()) {
            (Some(r), Some(&first)) if r.segment == first => r,
            (_, Some(&first)) => Cursor {
                segment: first,
                offset: 0,
            },
            (Some(r), None) => Cursor {
                segment: r.segment + 1,
                offset: 0,
            },
            (None, None) => Cursor {
                segment: 1,
                offset: 0,
            },
        };
        // A crash mid-append leaves a torn last line: never append after it.
        if let (Some(&last), Some(&size)) = (segments.back(), sizes.back()) {
            if size > 0 && !ends_with_newline(&segment_path(dir, last), size)? {
                segments.push_back(last + 1);
                sizes.push_back(0);
            }
        }
        Ok(Spool {
            dir: dir.to_path_buf(),
            max_bytes,
            segment_max_bytes: (max_bytes / 8).clamp(4 * 1024, 64 * 1024 * 1024),
            segments,
            sizes,
            read,
            writer: None,
        })
    }

    /// Bytes written and not yet delivered.
    pub fn pending_bytes(&self) -> u64 {
        let total: u64 = self.sizes.iter().sum();
        total.saturating_sub(self.read.offset)
    }

    pub fn is_empty(&self) -> bool {
        self.pending_bytes() == 0
    }

    /// Appends lines in order until one would exceed the size bound; returns how many were taken
    /// (the rest are the caller's to count as dropped).
    pub fn append<'a>(&mut self, lines: impl IntoIterator<Item = &'a str>) -> io::Result<usize> {
        let mut taken = 0;
        let mut pending = self.pending_bytes();
        for line in lines {
            let len = line.len() as u64 + 1;
            if pending + len > self.max_bytes {
                break;
            }
            self.ensure_writer(len)?;
            let writer = self.writer.as_mut().expect("ensure_writer opened it");
            writer.write_all(line.as_bytes())?;
            writer.write_all(b"\n")?;
            *self.sizes.back_mut().expect("a segment is open") += len;
            pending += len;
            taken += 1;
        }
        if let Some(writer) = self.writer.as_mut() {
            writer.flush()?;
        }
        Ok(taken)
    }

    fn ensure_writer(&mut self, len: u64) -> io::Result<()> {
        let full = self
            .sizes
            .back()
            .is_none_or(|&size| size > 0 && size + len > self.segment_max_bytes);
        if self.writer.is_none() || full {
            if full {
                if let Some(mut w) = self.writer.take() {
                    w.flush()?;
                }
                let next = self
                    .segments
                    .back()
                    .map_or(self.read.segment, |&last| last + 1);
                self.segments.push_back(next);
                self.sizes.push_back(0);
            }
            let n = *self.segments.back().expect("just ensured");
            let file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(segment_path(&self.dir, n))?;
            self.writer = Some(BufWriter::with_capacity(64 * 1024, file));
        }
        Ok(())
    }

    /// Reads up to about `max_bytes` of whole lines from the read position, without consuming
    /// them; returns the lines and the cursor to [`commit`](Self::commit) once they are delivered.
    pub fn peek(&mut self, max_bytes: usize) -> io::Result<Option<(Vec<String>, Cursor)>> {
        loop {
            let Some(index) = self.segments.iter().position(|&n| n == self.read.segment) else {
                return Ok(None);
            };
            let size = self.sizes[index];
            let is_last = index + 1 == self.segments.len();
            if self.read.offset >= size {
                if is_last {
                    return Ok(None);
                }
                self.advance_segment(index)?;
                continue;
            }
            let mut file = File::open(segment_path(&self.dir, self.read.segment))?;
            file.seek(SeekFrom::Start(self.read.offset))?;
            let want = ((size - self.read.offset) as usize).min(max_bytes.max(1));
            let mut buf = Vec::with_capacity(want);
            (&mut file).take(want as u64).read_to_end(&mut buf)?;
            let complete = match buf.iter().rposition(|&b| b == b'\n') {
                Some(pos) => pos + 1,
                None if want < (size - self.read.offset) as usize => {
                    // One line longer than `max_bytes`: read it whole.
                    let mut rest = Vec::new();
                    let mut line = buf;
                    io::BufReader::new(file).read_until(b'\n', &mut rest)?;
                    line.extend_from_slice(&rest);
                    if line.last() != Some(&b'\n') {
                        // A torn last line (crash mid-append): skip it.
                        self.skip_torn(index, is_last)?;
                        continue;
                    }
                    buf = line;
                    buf.len()
                }
                None => {
                    self.skip_torn(index, is_last)?;
                    continue;
                }
            };
            let lines = String::from_utf8_lossy(&buf[..complete])
                .lines()
                .filter(|l| !l.is_empty())
                .map(str::to_string)
                .collect();
            let cursor = Cursor {
                segment: self.read.segment,
                offset: self.read.offset + complete as u64,
            };
            return Ok(Some((lines, cursor)));
        }
    }

    fn skip_torn(&mut self, index: usize, is_last: bool) -> io::Result<()> {
        if is_last {
            // Start a fresh segment so the torn bytes are never glued to a new line.
            self.sizes[index] = self.read.offset;
            self.writer = None;
            let next = self.segments.back().copied().unwrap_or(0) + 1;
            self.segments.push_back(next);
            self.sizes.push_back(0);
        }
        self.advance_segment(index)
    }

    fn advance_segment(&mut self, index: usize) -> io::Result<()> {
        let done = self.segments[index];
        let next = self.segments.get(index + 1).copied().unwrap_or(done + 1);
        self.read = Cursor {
            segment: next,
            offset: 0,
        };
        self.persist()?;
        for _ in 0..=index {
            if let (Some(n), Some(_)) = (self.segments.pop_front(), self.sizes.pop_front()) {
                std::fs::remove_file(segment_path(&self.dir, n)).ok();
            }
        }
        if self.segments.is_empty() {
            self.writer = None;
        }
        Ok(())
    }

    /// Marks everything before `cursor` delivered and persists it.
    pub fn commit(&mut self, cursor: Cursor) -> io::Result<()> {
        self.read = cursor;
        self.persist()?;
        if let Some(index) = self.segments.iter().position(|&n| n == cursor.segment) {
            let is_last = index + 1 == self.segments.len();
            if !is_last && cursor.offset >= self.sizes[index] {
                self.advance_segment(index)?;
            }
        }
        Ok(())
    }

    fn persist(&self) -> io::Result<()> {
        let tmp = self.dir.join("offset.tmp");
        std::fs::write(
            &tmp,
            format!("{} {}\n", self.read.segment, self.read.offset),
        )?;
        std::fs::rename(&tmp, self.dir.join(OFFSET_FILE))
    }
}

use std::io::BufRead as _;

fn ends_with_newline(path: &Path, size: u64) -> io::Result<bool> {
    let mut file = File::open(path)?;
    file.seek(SeekFrom::Start(size - 1))?;
    let mut last = [0u8; 1];
    file.read_exact(&mut last)?;
    Ok(last[0] == b'\n')
}

fn segment_path(dir: &Path, n: u64) -> PathBuf {
    dir.join(format!("seg-{n:020}.log"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(spool: &mut Spool) -> Vec<String> {
        let mut all = Vec::new();
        while let Some((lines, cursor)) = spool.peek(100).unwrap() {
            all.extend(lines);
            spool.commit(cursor).unwrap();
        }
        all
    }

    #[test]
    fn lines_come_back_in_order_across_segments_and_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::open(dir.path(), 64 * 1024).unwrap();
        let lines: Vec<String> = (0..2000).map(|i| format!("{{\"seq\":{i}}}")).collect();
        assert_eq!(
            spool
                .append(lines[..1000].iter().map(String::as_str))
                .unwrap(),
            1000
        );
        let (first, cursor) = spool.peek(50).unwrap().unwrap();
        spool.commit(cursor).unwrap();
        drop(spool);

        let mut spool = Spool::open(dir.path(), 64 * 1024).unwrap();
        spool
            .append(lines[1000..].iter().map(String::as_str))
            .unwrap();
        let mut got = first;
        got.extend(drain(&mut spool));
        assert_eq!(got, lines);
        assert!(spool.is_empty());
        let segments = std::fs::read_dir(dir.path())
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .starts_with("seg-")
            })
            .count();
        assert!(segments <= 1, "delivered segments are deleted");
    }

    #[test]
    fn refuses_lines_beyond_max_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::open(dir.path(), 100).unwrap();
        let line = "x".repeat(19); // 20 bytes with its newline
        let taken = spool
            .append(std::iter::repeat_n(line.as_str(), 10))
            .unwrap();
        assert_eq!(taken, 5);
        assert_eq!(spool.pending_bytes(), 100);
    }

    #[test]
    fn a_torn_last_line_is_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::open(dir.path(), 64 * 1024).unwrap();
        spool.append(["{\"a\":1}"]).unwrap();
        drop(spool);
        let seg = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.to_string_lossy().contains("seg-"))
            .unwrap();
        let mut f = OpenOptions::new().append(true).open(&seg).unwrap();
        f.write_all(b"{\"torn\":").unwrap();
        let mut spool = Spool::open(dir.path(), 64 * 1024).unwrap();
        spool.append(["{\"b\":2}"]).unwrap();
        assert_eq!(drain(&mut spool), vec!["{\"a\":1}", "{\"b\":2}"]);
    }
}
