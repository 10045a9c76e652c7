//! Where log lines go: standard output through one buffer, written when it fills and every
//! `FLUSH_EVERY` by a thread that does nothing else. A request's line is copied into the buffer
//! under a lock held for that copy, so a busy instance writes its lines a buffer at a time, with
//! no write call and no wake-up of another thread per line. (A writer thread fed by a channel,
//! tracing-appender's, was tried: waking it for each line cost more context switches per
//! cached hit than the write it saved.)

use std::io::{self, BufWriter, Stdout, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use parking_lot::{Mutex, MutexGuard};
use tracing_subscriber::fmt::MakeWriter;

/// How long a line may wait in the buffer: a quiet instance's lines still show at once to
/// whoever tails them.
const FLUSH_EVERY: Duration = Duration::from_millis(100);
const BUFFER: usize = 64 * 1024;

/// Standard output, buffered. Cheap to clone; clones share the buffer.
#[derive(Clone)]
pub struct Output {
    shared: Arc<Shared>,
}

struct Shared {
    buffer: Mutex<BufWriter<Stdout>>,
    stopped: AtomicBool,
}

impl Output {
    /// The buffer and its flushing thread; what is buffered is written when `Flush` is dropped.
    pub fn start() -> (Self, Flush) {
        let shared = Arc::new(Shared {
            buffer: Mutex::new(BufWriter::with_capacity(BUFFER, io::stdout())),
            stopped: AtomicBool::new(false),
        });
        let flusher = shared.clone();
        let thread = std::thread::Builder::new()
            .name("log-flush".to_owned())
            .spawn(move || {
                while !flusher.stopped.load(Ordering::Relaxed) {
                    std::thread::park_timeout(FLUSH_EVERY);
                    // A pipe nobody reads is not the service's failure: the line is dropped.
                    let _ = flusher.buffer.lock().flush();
                }
            })
            .ok();
        (Self { shared: shared.clone() }, Flush { shared, thread })
    }
}

impl<'a> MakeWriter<'a> for Output {
    type Writer = Line<'a>;

    fn make_writer(&'a self) -> Self::Writer {
        Line(self.shared.buffer.lock())
    }
}

/// One line's hold on the buffer (the formatter writes a line in one call).
pub struct Line<'a>(MutexGuard<'a, BufWriter<Stdout>>);

impl Write for Line<'_> {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.0.write(bytes)
    }

    fn flush(&mut self) -> io::Result<()> {
        // Flushed by the thread or a full buffer, not per line.
        Ok(())
    }
}

/// Keeps the flushing thread; dropping it stops the thread and writes what is buffered. Hold
/// it until exit.
#[must_use = "what is buffered is written when this is dropped"]
pub struct Flush {
    shared: Arc<Shared>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Flush {
    fn drop(&mut self) {
        self.shared.stopped.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            thread.thread().unpark();
            let _ = thread.join();
        }
        let _ = self.shared.buffer.lock().flush();
    }
}
