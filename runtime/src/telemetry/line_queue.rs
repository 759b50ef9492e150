//! The queue between the threads that log and one consumer thread (the local writer or the
//! Logstash shipper): finished lines are copied into one byte buffer, which the consumer takes
//! whole and replaces with its own emptied one.
//!
//! Why not a channel of lines: every line then needed its own allocation, made on a worker thread
//! and freed on the consumer's. In the bench (18 lines of ~700 bytes per execution) profiles of
//! the "on" slices showed the allocator's paths slower everywhere, not only in telemetry
//! (mimalloc collecting blocks freed by another thread, cold memory for the next allocation).
//! Here a line costs a copy under an uncontended lock; the two buffers are reused, so the steady
//! state allocates nothing.
//!
//! Control messages (flush, stop, shutdown) queue beside the lines and are taken with them: a
//! message is always taken in the same batch as every line queued before it, or a later one.
//!
//! Lifecycle: created by the sink, shared with its consumer thread; the consumer calls
//! [`LineQueue::close`] when it exits, after which pushes are refused and blocked producers
//! return.

use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// A buffer this large (after a burst) is not kept for reuse.
const KEEP_BYTES: usize = 4 * 1024 * 1024;

pub struct LineQueue<C> {
    state: Mutex<State<C>>,
    /// The consumer waits here for lines or a message.
    ready: Condvar,
    /// Producers wait here for room (only those that asked to block when full).
    room: Condvar,
    max_lines: usize,
}

struct State<C> {
    /// Lines, each followed by `\n`.
    buf: Vec<u8>,
    lines: usize,
    control: Vec<C>,
    /// Set by the consumer before it waits, cleared by the producer that wakes it: one wake-up
    /// per batch, because on Linux every `notify` is a system call whether anyone waits or not.
    consumer_waiting: bool,
    producers_waiting: usize,
    closed: bool,
}

/// What became of a pushed line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Push {
    Queued,
    /// The queue held `max_lines` already and the caller did not want to wait.
    Full,
    /// The consumer has exited.
    Closed,
}

/// How long [`LineQueue::take`] waits when nothing is queued.
#[derive(Debug, Clone, Copy)]
pub enum Wait {
    /// Until something is queued; then, if the first thing was a line, `linger` longer so a burst
    /// is taken as one batch.
    Forever { linger: Duration },
    /// Not at all.
    Never,
    /// At most this long.
    For(Duration),
}

/// What the consumer took: lines (each followed by `\n`) and the messages queued with them.
pub struct Batch<C> {
    pub bytes: Vec<u8>,
    pub lines: usize,
    pub control: Vec<C>,
}

impl<C> Default for Batch<C> {
    fn default() -> Self {
        Batch {
            bytes: Vec::new(),
            lines: 0,
            control: Vec::new(),
        }
    }
}

impl<C> Batch<C> {
    pub fn is_empty(&self) -> bool {
        self.lines == 0 && self.control.is_empty()
    }

    /// Each line, without its newline. Lines are whole UTF-8 strings (they were pushed as
    /// `&str`), so the check cannot fail; a line that somehow did is skipped, not a panic.
    pub fn lines(&self) -> impl Iterator<Item = &str> {
        self.bytes
            .split(|&b| b == b'\n')
            .take(self.lines)
            .filter_map(|l| std::str::from_utf8(l).ok())
    }

    /// Empties the lines, keeping the buffer unless a burst made it unusually large.
    pub fn clear_lines(&mut self) {
        if self.bytes.capacity() > KEEP_BYTES {
            self.bytes = Vec::new();
        } else {
            self.bytes.clear();
        }
        self.lines = 0;
    }
}

impl<C> LineQueue<C> {
    pub fn new(max_lines: usize) -> Self {
        LineQueue {
            state: Mutex::new(State {
                buf: Vec::new(),
                lines: 0,
                control: Vec::new(),
                consumer_waiting: false,
                producers_waiting: 0,
                closed: false,
            }),
            ready: Condvar::new(),
            room: Condvar::new(),
            max_lines: max_lines.max(1),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State<C>> {
        // A panic while holding this lock can only come from an allocation failure in a copy;
        // the state is still consistent, so keep going rather than lose every later line.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues one line (without a newline; lines must not contain one). When the queue is full,
    /// waits for room if `block` (local logs are not dropped), else refuses the line.
    pub fn push(&self, line: &str, block: bool) -> Push {
        let mut st = self.lock();
        while st.lines >= self.max_lines && !st.closed {
            if !block {
                return Push::Full;
            }
            st.producers_waiting += 1;
            st = self.room.wait(st).unwrap_or_else(|e| e.into_inner());
            st.producers_waiting -= 1;
        }
        if st.closed {
            return Push::Closed;
        }
        st.buf.extend_from_slice(line.as_bytes());
        st.buf.push(b'\n');
        st.lines += 1;
        self.wake_consumer(st);
        Push::Queued
    }

    /// Queues a message behind every line queued so far. Refused (returned) once closed.
    pub fn send(&self, msg: C) -> Result<(), C> {
        let mut st = self.lock();
        if st.closed {
            return Err(msg);
        }
        st.control.push(msg);
        self.wake_consumer(st);
        Ok(())
    }

    fn wake_consumer(&self, mut st: MutexGuard<'_, State<C>>) {
        if st.consumer_waiting {
            st.consumer_waiting = false;
            drop(st);
            self.ready.notify_one();
        }
    }

    /// Takes everything queued into `into` (whose lines must have been cleared), handing the
    /// queue `into`'s emptied buffer in exchange. Returns whether anything was taken (nothing:
    /// the wait ended empty, or the queue is closed).
    pub fn take(&self, wait: Wait, into: &mut Batch<C>) -> bool {
        debug_assert_eq!(
            into.lines, 0,
            "take into a batch whose lines were not cleared"
        );
        let mut st = self.lock();
        let empty = |st: &State<C>| st.lines == 0 && st.control.is_empty();
        if empty(&st) {
            match wait {
                Wait::Never => return false,
                Wait::Forever { linger } => {
                    while empty(&st) && !st.closed {
                        st.consumer_waiting = true;
                        st = self.ready.wait(st).unwrap_or_else(|e| e.into_inner());
                    }
                    st.consumer_waiting = false;
                    if st.control.is_empty() && !linger.is_zero() {
                        drop(st);
                        std::thread::sleep(linger);
                        st = self.lock();
                    }
                }
                Wait::For(timeout) => {
                    let deadline = Instant::now() + timeout;
                    while empty(&st) && !st.closed {
                        let left = deadline.saturating_duration_since(Instant::now());
                        if left.is_zero() {
                            break;
                        }
                        st.consumer_waiting = true;
                        st = self
                            .ready
                            .wait_timeout(st, left)
                            .unwrap_or_else(|e| e.into_inner())
                            .0;
                    }
                    st.consumer_waiting = false;
                }
            }
        }
        into.bytes.clear();
        std::mem::swap(&mut st.buf, &mut into.bytes);
        into.lines = std::mem::take(&mut st.lines);
        into.control.append(&mut st.control);
        let wake_producers = st.producers_waiting > 0;
        drop(st);
        if wake_producers {
            self.room.notify_all();
        }
        !into.is_empty()
    }

    /// Refuses every later push and message and releases blocked producers. Called by the
    /// consumer when it exits; what is still queued is dropped with the queue.
    pub fn close(&self) {
        self.lock().closed = true;
        self.room.notify_all();
        self.ready.notify_all();
    }
}

/// Closes the queue when dropped: held by a consumer thread so that however it ends (a panic
/// included), no logging thread waits on a queue nobody drains.
pub struct CloseOnDrop<'a, C>(pub &'a LineQueue<C>);

impl<C> Drop for CloseOnDrop<'_, C> {
    fn drop(&mut self) {
        self.0.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn lines_and_messages_are_taken_in_order_with_one_buffer_each_way() {
        let q: LineQueue<u32> = LineQueue::new(10);
        assert_eq!(q.push("a", false), Push::Queued);
        assert_eq!(q.push("{\"b\":1}", false), Push::Queued);
        q.send(7).unwrap();
        let mut batch = Batch::default();
        assert!(q.take(Wait::Never, &mut batch));
        assert_eq!(batch.bytes, b"a\n{\"b\":1}\n");
        assert_eq!(batch.lines().collect::<Vec<_>>(), ["a", "{\"b\":1}"]);
        assert_eq!(batch.control, [7]);
        // The consumer's buffer goes back to the queue; nothing else was queued.
        batch.clear_lines();
        batch.control.clear();
        assert!(!q.take(Wait::Never, &mut batch));
        assert!(!q.take(Wait::For(Duration::from_millis(1)), &mut batch));
        assert_eq!(q.push("c", false), Push::Queued);
        assert!(q.take(Wait::Never, &mut batch));
        assert_eq!(batch.lines().collect::<Vec<_>>(), ["c"]);
    }

    #[test]
    fn a_full_queue_refuses_or_blocks_and_a_closed_one_refuses() {
        let q = Arc::new(LineQueue::<()>::new(2));
        assert_eq!(q.push("1", false), Push::Queued);
        assert_eq!(q.push("2", false), Push::Queued);
        assert_eq!(q.push("3", false), Push::Full);
        // A blocking push waits until the consumer takes the batch, then goes in.
        let producer = {
            let q = q.clone();
            std::thread::spawn(move || q.push("3", true))
        };
        let mut batch = Batch::default();
        let mut taken = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(10);
        while taken.len() < 3 {
            assert!(Instant::now() < deadline, "took only {taken:?}");
            batch.clear_lines();
            if q.take(Wait::For(Duration::from_millis(100)), &mut batch) {
                taken.extend(batch.lines().map(str::to_string));
            }
        }
        assert_eq!(producer.join().unwrap(), Push::Queued);
        assert_eq!(taken, ["1", "2", "3"]);
        q.close();
        assert_eq!(q.push("4", true), Push::Closed);
        assert!(q.send(()).is_err());
    }

    #[test]
    fn a_waiting_consumer_is_woken_by_a_line_from_another_thread() {
        let q = Arc::new(LineQueue::<()>::new(8));
        let consumer = {
            let q = q.clone();
            std::thread::spawn(move || {
                let mut batch = Batch::default();
                q.take(
                    Wait::Forever {
                        linger: Duration::ZERO,
                    },
                    &mut batch,
                );
                batch.lines().map(str::to_string).collect::<Vec<_>>()
            })
        };
        // Whether the consumer waits already or not, the line must reach it.
        assert_eq!(q.push("x", true), Push::Queued);
        assert_eq!(consumer.join().unwrap(), ["x"]);
    }
}
