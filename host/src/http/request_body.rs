//! Reading a request body for an app: within the mount's size limit, with
//! at most `body_read_timeout_ms` between two reads (nginx's
//! `client_body_timeout`), in memory while it is small and the site's body
//! budget has room, else spooled to an unnamed temporary file under the data
//! folder (nginx's `client_body_buffer_size`). A spooled body comes back
//! into memory only once all of it has arrived and the budget has room, just
//! before its handler runs: slow or stalled uploads hold disk, never memory,
//! and the memory all bodies hold together stays within `body_memory_bytes`.

use std::{
    io::SeekFrom,
    os::unix::fs::DirBuilderExt as _,
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use http_body_util::BodyExt;
use hyper::body::Incoming;
use tokio::{
    fs::File,
    io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt},
    sync::{OwnedSemaphorePermit, Semaphore},
};

use crate::table::Limits;

/// The budget counts kibibytes: a semaphore's permits are taken 2³² at
/// most at once, and bodies may be larger than 4 GiB bytes.
const UNIT: u64 = 1024;

/// The site's request bodies: where they spool, and the memory budget they
/// share.
pub(super) struct Bodies {
    budget: Arc<Semaphore>,
    spool_dir: PathBuf,
    /// Bodies larger than this spool.
    buffer: u64,
    read_timeout: Duration,
}

/// A body that arrived whole, and its share of the memory budget (given
/// back when this is dropped).
pub(super) struct Received {
    pub(super) bytes: Vec<u8>,
    _held: Option<OwnedSemaphorePermit>,
}

/// Why a body was not received.
#[derive(Debug)]
pub(super) enum Refusal {
    /// Larger than the mount's limit (this many bytes): 413.
    TooLarge(u64),
    /// The client sent nothing for `body_read_timeout_ms`: 408.
    TimedOut,
    /// The client's stream broke: 400.
    Unreadable,
    /// The memory budget stayed full while the request could wait: 503.
    NoRoom,
    /// The spool file could not be written or read back: 500.
    Spool(std::io::Error),
}

impl From<std::io::Error> for Refusal {
    fn from(error: std::io::Error) -> Refusal {
        Refusal::Spool(error)
    }
}

/// `bytes` in budget units, rounded up.
fn units(bytes: u64) -> u32 {
    u32::try_from(bytes.div_ceil(UNIT)).unwrap_or(u32::MAX)
}

impl Bodies {
    /// Bodies within `limits`, spooled under `spool_dir` (created when first
    /// needed, private to the host's user).
    pub(super) fn new(limits: &Limits, spool_dir: &Path) -> Bodies {
        let budget = usize::try_from(limits.body_memory_bytes.div_ceil(UNIT)).unwrap_or(usize::MAX);
        Bodies {
            budget: Arc::new(Semaphore::new(budget.min(Semaphore::MAX_PERMITS))),
            spool_dir: spool_dir.to_owned(),
            buffer: limits.body_buffer_bytes,
            read_timeout: Duration::from_millis(limits.body_read_timeout_ms),
        }
    }

    /// Receives `body`, which says it is `declared` bytes long (if it does),
    /// refusing more than `limit` bytes. A body that spooled waits up to
    /// `wait` for room in memory.
    pub(super) async fn receive(
        &self,
        mut body: Incoming,
        declared: Option<u64>,
        limit: u64,
        wait: Duration,
    ) -> Result<Received, Refusal> {
        if declared.is_some_and(|length| length > limit) {
            return Err(Refusal::TooLarge(limit));
        }
        let mut memory = Vec::new();
        let mut held: Option<OwnedSemaphorePermit> = None;
        // a body declared too large for memory goes to a file from its
        // first byte
        let mut spool = match declared {
            Some(length) if length > self.buffer => Some(self.spool().await?),
            Some(length) if self.grow(&mut held, length) => {
                memory.reserve_exact(usize::try_from(length).unwrap_or(0));
                None
            }
            _ => None,
        };
        let mut total: u64 = 0;
        loop {
            let frame = match tokio::time::timeout(self.read_timeout, body.frame()).await {
                Err(_) => return Err(Refusal::TimedOut),
                Ok(None) => break,
                Ok(Some(Err(error))) => {
                    tracing::debug!(%error, "could not read the request body");
                    return Err(Refusal::Unreadable);
                }
                Ok(Some(Ok(frame))) => frame,
            };
            // trailers carry nothing an app reads
            let Ok(data) = frame.into_data() else {
                continue;
            };
            total += data.len() as u64;
            if total > limit {
                return Err(Refusal::TooLarge(limit));
            }
            match &mut spool {
                Some(file) => file.write_all(&data).await?,
                None if total <= self.buffer && self.grow(&mut held, total) => {
                    memory.extend_from_slice(&data);
                }
                None => {
                    let mut file = self.spool().await?;
                    file.write_all(&memory).await?;
                    file.write_all(&data).await?;
                    memory = Vec::new();
                    held = None;
                    spool = Some(file);
                }
            }
        }
        let Some(file) = spool else {
            return Ok(Received {
                bytes: memory,
                _held: held,
            });
        };
        let room = Arc::clone(&self.budget).acquire_many_owned(units(total));
        let held = match tokio::time::timeout(wait, room).await {
            Ok(Ok(held)) => held,
            _ => return Err(Refusal::NoRoom),
        };
        Ok(Received {
            bytes: read_back(file, total).await?,
            _held: Some(held),
        })
    }

    /// Makes `held` cover `total` bytes, if the budget has room now.
    fn grow(&self, held: &mut Option<OwnedSemaphorePermit>, total: u64) -> bool {
        let have = held.as_ref().map_or(0, OwnedSemaphorePermit::num_permits);
        let need = units(total) as usize;
        if need <= have {
            return true;
        }
        let more = u32::try_from(need - have).unwrap_or(u32::MAX);
        let Ok(permit) = Arc::clone(&self.budget).try_acquire_many_owned(more) else {
            return false;
        };
        match held {
            Some(held) => held.merge(permit),
            None => *held = Some(permit),
        }
        true
    }

    /// A new spool file: unnamed (`O_TMPFILE`, or unlinked at once), so
    /// nothing is left behind whatever happens to the request or the host.
    async fn spool(&self) -> std::io::Result<File> {
        let dir = self.spool_dir.clone();
        let file = tokio::task::spawn_blocking(move || {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&dir)?;
            tempfile::tempfile_in(&dir)
        })
        .await
        .map_err(std::io::Error::other)??;
        Ok(File::from_std(file))
    }
}

/// The `length` bytes written to `file`.
async fn read_back(mut file: File, length: u64) -> std::io::Result<Vec<u8>> {
    file.flush().await?;
    file.seek(SeekFrom::Start(0)).await?;
    let mut bytes = Vec::with_capacity(usize::try_from(length).unwrap_or(0));
    file.read_to_end(&mut bytes).await?;
    Ok(bytes)
}
