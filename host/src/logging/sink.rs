//! Log destinations that never make a request wait: events are appended to
//! an in-memory buffer, and one background thread writes every buffer out
//! every [`FLUSH_EVERY`] (and at shutdown). When a round finds nothing to
//! write, the thread sleeps until the next line comes, so an idle host
//! does not wake it 20 times a second.
//!
//! Why not `tracing-appender`'s non-blocking writer: it wakes its worker
//! thread for every line, one futex wake-up per destination per event,
//! which nearly doubled a small request's CPU (`docs/performance.md`). One
//! thread also serves every file, where the appender started one per file
//! (100 mounts, 100 threads).

use std::{
    collections::HashMap,
    io::{self, Write},
    sync::{
        Arc, Mutex, MutexGuard, OnceLock,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    thread::JoinHandle,
    time::Duration,
};

use crate::periodic::Periodic;

/// How often buffered lines are written out.
pub const FLUSH_EVERY: Duration = Duration::from_millis(50);

/// A buffer holds at most this much; further lines are dropped (and
/// counted) until the next flush, so a stuck disk cannot grow memory.
const MAX_BUFFERED: usize = 16 * 1024 * 1024;

#[derive(Default)]
struct Buffer {
    bytes: Mutex<Vec<u8>>,
    dropped: AtomicU64,
}

impl Buffer {
    fn lock(&self) -> MutexGuard<'_, Vec<u8>> {
        self.bytes
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Whether lines (or a count of dropped ones) wait to be written.
    fn pending(&self) -> bool {
        !self.lock().is_empty() || self.dropped.load(Ordering::Relaxed) > 0
    }
}

/// A writer that appends to one destination's buffer; cheap to clone.
#[derive(Clone)]
pub struct BufferedWriter {
    buffer: Arc<Buffer>,
    control: Arc<Periodic>,
}

impl BufferedWriter {
    /// Appends `bytes` (one or more whole lines), or counts them as dropped
    /// when the buffer is full.
    pub fn append(&self, bytes: &[u8]) {
        {
            let mut buffer = self.buffer.lock();
            if buffer.len() + bytes.len() > MAX_BUFFERED {
                self.buffer.dropped.fetch_add(1, Ordering::Relaxed);
            } else {
                buffer.extend_from_slice(bytes);
            }
        }
        self.control.wake();
    }
}

impl Write for BufferedWriter {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.append(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for BufferedWriter {
    type Writer = BufferedWriter;

    fn make_writer(&'a self) -> BufferedWriter {
        self.clone()
    }
}

/// Opens a destination's file anew (after logrotate moved it away).
type Reopen = Box<dyn FnMut() -> io::Result<Box<dyn Write + Send>> + Send>;

struct Destination {
    buffer: Arc<Buffer>,
    output: Box<dyn Write + Send>,
    name: String,
    /// `None` for the console.
    reopen: Option<Reopen>,
}

/// Collects destinations, then starts the one thread that writes them.
#[derive(Default)]
pub struct Sinks {
    destinations: Vec<Destination>,
    control: Arc<Periodic>,
    reopen: Arc<AtomicBool>,
}

impl Sinks {
    /// Adds a destination (a file, stderr); `name` appears in the report of
    /// dropped lines.
    pub fn add(&mut self, name: &str, output: impl Write + Send + 'static) -> BufferedWriter {
        self.add_reopenable(name, Box::new(output), None)
    }

    /// Adds a file, which `reopen` opens anew when asked (`Reopener`).
    pub fn add_reopenable(
        &mut self,
        name: &str,
        output: Box<dyn Write + Send>,
        reopen: Option<Reopen>,
    ) -> BufferedWriter {
        let buffer = Arc::new(Buffer::default());
        self.destinations.push(Destination {
            buffer: Arc::clone(&buffer),
            output,
            name: name.to_owned(),
            reopen,
        });
        BufferedWriter {
            buffer,
            control: Arc::clone(&self.control),
        }
    }

    /// Starts the writing thread; dropping the result flushes everything and
    /// stops it.
    pub fn start(self) -> io::Result<Flusher> {
        let control = self.control;
        let thread_control = Arc::clone(&control);
        let reopen = self.reopen;
        let thread_reopen = Arc::clone(&reopen);
        let mut destinations = self.destinations;
        let thread = std::thread::Builder::new()
            .name("log-writer".to_owned())
            .spawn(move || write_every_round(&thread_control, &thread_reopen, &mut destinations))?;
        Ok(Flusher {
            control,
            reopen,
            thread: Some(thread),
        })
    }
}

/// Asks the writer thread to reopen every file (nginx's `SIGUSR1`).
#[derive(Clone)]
pub struct Reopener {
    control: Arc<Periodic>,
    reopen: Arc<AtomicBool>,
}

impl Reopener {
    /// The files are reopened at the writer's next round: what was
    /// written before goes to the old files, the rest to the new.
    pub fn reopen(&self) {
        self.reopen.store(true, Ordering::Release);
        self.control.wake();
    }
}

/// The writer thread: a round every [`FLUSH_EVERY`] until told to stop,
/// asleep after a round that found nothing until a line comes.
fn write_every_round(control: &Periodic, reopen: &AtomicBool, destinations: &mut [Destination]) {
    let mut spare = Vec::new();
    loop {
        let stopping = control.wait(FLUSH_EVERY);
        let mut wrote = false;
        for destination in destinations.iter_mut() {
            wrote |= write_out(destination, &mut spare);
        }
        if reopen.swap(false, Ordering::AcqRel) {
            // what came before is in the old files now; the next round
            // writes into the new ones
            for destination in destinations.iter_mut() {
                if let Some(open) = &mut destination.reopen {
                    match open() {
                        Ok(output) => destination.output = output,
                        Err(error) => eprintln!(
                            "log-writer: cannot reopen {}: {error}; writing on to the old file",
                            destination.name
                        ),
                    }
                }
            }
        }
        if stopping {
            return;
        }
        if !wrote {
            // told to stop while asleep, the next round writes what came
            // meanwhile and ends
            control.sleep_unless(|| {
                reopen.load(Ordering::Acquire)
                    || destinations
                        .iter()
                        .any(|destination| destination.buffer.pending())
            });
        }
    }
}

/// Swaps the buffer out under the lock and writes it without holding it;
/// whether there was anything to write.
fn write_out(destination: &mut Destination, spare: &mut Vec<u8>) -> bool {
    spare.clear();
    std::mem::swap(&mut *destination.buffer.lock(), spare);
    let dropped = destination.buffer.dropped.swap(0, Ordering::Relaxed);
    if dropped > 0 {
        let note = format!(
            "log-writer: {dropped} lines for {} were dropped: the destination is too slow\n",
            destination.name
        );
        spare.extend_from_slice(note.as_bytes());
    }
    if spare.is_empty() {
        return false;
    }
    let _ = destination
        .output
        .write_all(spare)
        .and_then(|()| destination.output.flush());
    true
}

/// The running writer thread.
pub struct Flusher {
    control: Arc<Periodic>,
    reopen: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Flusher {
    /// What asks the writer to reopen the files.
    pub fn reopener(&self) -> Reopener {
        Reopener {
            control: Arc::clone(&self.control),
            reopen: Arc::clone(&self.reopen),
        }
    }
}

impl Drop for Flusher {
    fn drop(&mut self) {
        self.control.stop();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Where access lines go when they bypass the formatter.
pub(super) struct Direct {
    pub console: BufferedWriter,
    pub host: BufferedWriter,
    pub apps: HashMap<String, BufferedWriter>,
    /// Whether access lines go to the console too (`--access-log -`).
    pub access_to_console: bool,
    /// Whether the console takes the files' plain text (it is no
    /// terminal, which gets colours through the formatter).
    pub console_plain: bool,
    /// Whether lines are JSON objects (`"log_format": "json"`).
    pub json: bool,
}

static DIRECT: OnceLock<Direct> = OnceLock::new();

/// Sends access lines straight to these buffers from now on.
pub(super) fn write_directly(direct: Direct) {
    let _ = DIRECT.set(direct);
}

/// Where access lines go, once they bypass the formatter.
pub(super) fn direct() -> Option<&'static Direct> {
    DIRECT.get()
}

/// The buffer of the file of the app logger `name`, if lines bypass the
/// formatter.
pub(super) fn direct_file(name: &str) -> Option<&'static BufferedWriter> {
    DIRECT.get().and_then(|direct| direct.apps.get(name))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::periodic::tests::soon;

    /// A destination the test can read back.
    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn lines_reach_their_own_destination_by_shutdown() {
        let (first, second) = (Shared::default(), Shared::default());
        let mut sinks = Sinks::default();
        let mut a = sinks.add("a", first.clone());
        let mut b = sinks.add("b", second.clone());
        let flusher = sinks.start().unwrap();
        a.write_all(b"one\n").unwrap();
        b.write_all(b"two\n").unwrap();
        a.write_all(b"three\n").unwrap();
        drop(flusher);
        assert_eq!(&*first.0.lock().unwrap(), b"one\nthree\n");
        assert_eq!(&*second.0.lock().unwrap(), b"two\n");
    }

    #[test]
    fn the_writer_sleeps_when_there_is_nothing_to_write_and_a_line_wakes_it() {
        let out = Shared::default();
        let mut sinks = Sinks::default();
        let mut writer = sinks.add("quiet", out.clone());
        let control = Arc::clone(&sinks.control);
        let flusher = sinks.start().unwrap();
        for line in ["one\n", "two\n"] {
            assert!(soon(|| control.asleep()));
            writer.write_all(line.as_bytes()).unwrap();
            assert!(!control.asleep());
            assert!(
                soon(|| out.0.lock().unwrap().ends_with(line.as_bytes())),
                "{line:?} was written"
            );
        }
        // a line that comes as the writer goes to sleep is written at
        // shutdown
        assert!(soon(|| control.asleep()));
        writer.write_all(b"three\n").unwrap();
        drop(flusher);
        assert_eq!(&*out.0.lock().unwrap(), b"one\ntwo\nthree\n");
    }

    #[test]
    fn a_full_buffer_drops_and_reports() {
        let out = Shared::default();
        let mut sinks = Sinks::default();
        let mut writer = sinks.add("big", out.clone());
        let chunk = vec![b'x'; MAX_BUFFERED / 2 + 1];
        writer.write_all(&chunk).unwrap();
        writer.write_all(&chunk).unwrap();
        drop(sinks.start().unwrap());
        let written = out.0.lock().unwrap();
        assert_eq!(written.iter().filter(|b| **b == b'x').count(), chunk.len());
        assert!(String::from_utf8_lossy(&written).contains("1 lines for big were dropped"));
    }
}
