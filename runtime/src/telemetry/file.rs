//! Local log output: JSON lines to stdout and to a size-rotated file in the log directory.
//!
//! One background thread owns both outputs; the log layer copies finished lines into a bounded
//! [`LineQueue`], so an event costs a copy, and the thread writes whatever is waiting in one
//! write. When the queue is full the logging thread waits: local logs are the operator's record
//! of last resort and are not dropped (only Logstash shipping is lossy under pressure).
//!
//! Rotation is by size: `<name>.log` is renamed `<name>.log.1` (older ones shift up to
//! `log_files_kept`, the oldest is deleted) once it would exceed `max_bytes`. `tracing-appender`
//! rotates only by time, which does not bound disk use on a busy host; hence this small writer.
//!
//! Lifecycle: [`LocalWriter::start`] spawns the thread; [`LocalWriter::flush`] waits until every
//! line sent so far is written; [`LocalWriter::shutdown`] flushes and joins it.

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{sync_channel, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use super::json::LineSink;
use super::line_queue::{Batch, CloseOnDrop, LineQueue, Wait};
use super::TelemetryError;

/// Base name of the log files; `swf-runtime logs` reads `*.log` and `*.log.N` in the directory.
pub const LOG_FILE_NAME: &str = "swf-runtime.log";

const QUEUE_LINES: usize = 16_384;
/// After the first line of a burst the thread waits this long before writing what has queued.
/// A busy process then wakes it about 20 times a second instead of once per line: on two cores
/// each wake-up preempts a worker (and costs it its caches), which costs more than the writing.
/// 10 ms meant 0.38 wake-ups per bench execution; a line still reaches the file within 50 ms,
/// and `flush` (shutdown, tests) writes at once.
const LINGER: Duration = Duration::from_millis(50);

enum Msg {
    Flush(SyncSender<()>),
    Stop,
}

/// A file that rotates itself by size.
pub struct RotatingFile {
    dir: PathBuf,
    base: String,
    max_bytes: u64,
    kept: usize,
    out: BufWriter<File>,
    size: u64,
}

impl RotatingFile {
    pub fn open(
        dir: &Path,
        base: &str,
        max_bytes: u64,
        kept: usize,
    ) -> Result<Self, TelemetryError> {
        let io_err = |source| TelemetryError::Io {
            path: dir.to_path_buf(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(io_err)?;
        let path = dir.join(base);
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|source| TelemetryError::Io {
                path: path.clone(),
                source,
            })?;
        let size = file.metadata().map(|m| m.len()).unwrap_or(0);
        Ok(RotatingFile {
            dir: dir.to_path_buf(),
            base: base.to_string(),
            max_bytes: max_bytes.max(1),
            kept,
            out: BufWriter::with_capacity(64 * 1024, file),
            size,
        })
    }

    fn rotated(&self, n: usize) -> PathBuf {
        self.dir.join(format!("{}.{n}", self.base))
    }

    fn rotate(&mut self) -> io::Result<()> {
        self.out.flush()?;
        if self.kept == 0 {
            std::fs::remove_file(self.dir.join(&self.base)).ok();
        } else {
            std::fs::remove_file(self.rotated(self.kept)).ok();
            for n in (1..self.kept).rev() {
                let from = self.rotated(n);
                if from.exists() {
                    std::fs::rename(&from, self.rotated(n + 1))?;
                }
            }
            std::fs::rename(self.dir.join(&self.base), self.rotated(1))?;
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join(&self.base))?;
        self.out = BufWriter::with_capacity(64 * 1024, file);
        self.size = 0;
        Ok(())
    }

    /// Appends whole lines, each already followed by its newline: in one write when they fit
    /// in the current file, else line by line, rotating before a line that would not fit.
    pub fn write_lines(&mut self, bytes: &[u8]) -> io::Result<()> {
        let len = bytes.len() as u64;
        if self.size + len <= self.max_bytes {
            self.out.write_all(bytes)?;
            self.size += len;
            return Ok(());
        }
        for line in bytes.split_inclusive(|&b| b == b'\n') {
            let len = line.len() as u64;
            if self.size > 0 && self.size + len > self.max_bytes {
                self.rotate()?;
            }
            self.out.write_all(line)?;
            self.size += len;
        }
        Ok(())
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// The stdout + file sink; cheap to call from any thread.
pub struct LocalWriter {
    queue: Arc<LineQueue<Msg>>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl LocalWriter {
    /// `None` when there is nothing to write to.
    pub fn start(
        stdout: bool,
        dir: Option<&Path>,
        max_bytes: u64,
        kept: usize,
    ) -> Result<Option<Self>, TelemetryError> {
        let file = match dir {
            Some(dir) => Some(RotatingFile::open(dir, LOG_FILE_NAME, max_bytes, kept)?),
            None => None,
        };
        if !stdout && file.is_none() {
            return Ok(None);
        }
        let queue = Arc::new(LineQueue::new(QUEUE_LINES));
        let thread = {
            let queue = queue.clone();
            std::thread::Builder::new()
                .name("log-writer".into())
                .spawn(move || run(&queue, stdout, file))
                .map_err(|source| TelemetryError::Io {
                    path: PathBuf::from("<log-writer thread>"),
                    source,
                })?
        };
        Ok(Some(LocalWriter {
            queue,
            thread: Mutex::new(Some(thread)),
        }))
    }

    /// Waits (at most `timeout`) until every line sent before this call is written out.
    pub fn flush(&self, timeout: Duration) -> bool {
        let (done_tx, done_rx) = sync_channel(1);
        if self.queue.send(Msg::Flush(done_tx)).is_err() {
            return false;
        }
        done_rx.recv_timeout(timeout).is_ok()
    }

    /// Flushes and stops the writer thread; later lines are discarded.
    pub fn shutdown(&self) {
        let _ = self.queue.send(Msg::Stop);
        let handle = self.thread.lock().ok().and_then(|mut t| t.take());
        if let Some(handle) = handle {
            let _ = handle.join();
        }
    }
}

impl LineSink for LocalWriter {
    fn write_line(&self, line: &str) {
        // Blocks when full on purpose: local logs are not dropped (see the module doc).
        self.queue.push(line, true);
    }
}

fn run(queue: &LineQueue<Msg>, stdout: bool, mut file: Option<RotatingFile>) {
    let mut out = stdout.then(|| BufWriter::with_capacity(64 * 1024, io::stdout()));
    let mut reported = false;
    let mut report = |err: io::Error| {
        if !reported {
            reported = true;
            eprintln!("Cannot write the local log: {err}.");
        }
    };
    // However the thread ends, a logging thread must not wait on a queue nobody drains.
    let _close = CloseOnDrop(queue);
    let mut batch = Batch::default();
    let wait = Wait::Forever { linger: LINGER };
    loop {
        batch.clear_lines();
        if !queue.take(wait, &mut batch) {
            return; // closed
        }
        // Everything taken goes out before flushing: one write per burst, not per line.
        if let Some(out) = out.as_mut() {
            if let Err(err) = out.write_all(&batch.bytes).and_then(|()| out.flush()) {
                report(err);
            }
        }
        if let Some(file) = file.as_mut() {
            if let Err(err) = file.write_lines(&batch.bytes).and_then(|()| file.flush()) {
                report(err);
            }
        }
        let mut stop = false;
        for msg in batch.control.drain(..) {
            match msg {
                Msg::Flush(done) => {
                    let _ = done.send(());
                }
                Msg::Stop => stop = true,
            }
        }
        if stop {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotates_by_size_and_keeps_n_files() {
        let dir = tempfile::tempdir().unwrap();
        let mut f = RotatingFile::open(dir.path(), "t.log", 100, 2).unwrap();
        for i in 0..20 {
            f.write_lines(format!("{{\"n\":{i:040}}}\n").as_bytes())
                .unwrap();
        }
        f.flush().unwrap();
        let mut names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, vec!["t.log", "t.log.1", "t.log.2"]);
        for name in &names {
            let len = std::fs::metadata(dir.path().join(name)).unwrap().len();
            assert!(len <= 100, "{name} is {len} bytes");
        }
        let current = std::fs::read_to_string(dir.path().join("t.log")).unwrap();
        assert!(current.ends_with(&format!("{:040}}}\n", 19)));
    }

    #[test]
    fn a_batch_that_does_not_fit_rotates_between_its_lines() {
        let dir = tempfile::tempdir().unwrap();
        let mut f = RotatingFile::open(dir.path(), "t.log", 100, 5).unwrap();
        let line = |i: usize| format!("{{\"n\":{i:040}}}\n");
        let batch: String = (0..5).map(line).collect();
        f.write_lines(batch.as_bytes()).unwrap();
        f.flush().unwrap();
        // 49 bytes a line: two per file, oldest in the highest-numbered file, none cut.
        let read = |name: &str| std::fs::read_to_string(dir.path().join(name)).unwrap();
        assert_eq!(read("t.log.2"), line(0) + &line(1));
        assert_eq!(read("t.log.1"), line(2) + &line(3));
        assert_eq!(read("t.log"), line(4));
    }
}
