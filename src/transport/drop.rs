//! The drop folder: brokers who deliver files put them in
//! `<drop-dir>/<PARTNER>/in/`; the hub takes each one through the same intake
//! as HTTP and moves it to `done/` (with the acknowledgement beside it as
//! `NAME.ack`) or to `failed/` (with `NAME.err` saying why, and the
//! acknowledgement when there is one). The answers that follow (a
//! declaration's CUSRES, APERAK or WCO RES at each change of status) are
//! written to `<PARTNER>/out/` by [`DropDelivery`] as the relay sends them.
//!
//! The folder name is the partner: only registered partners' folders are
//! read. Files are picked up when complete: write them under a name that
//! starts with `.` or ends with `.part`, `.tmp`, `.filepart` or
//! `.crdownload` and rename them into place. Hub instances may share a
//! drop folder: a file is claimed by a move that never replaces another
//! instance's claim, and locked while it is taken (the lock goes with the
//! process), so no file is taken by two.
//! Each file is claimed before it is read, by moving it to `work/`, so a
//! file put under the same name meanwhile is a delivery of its own. It is
//! moved out of `work/` only after its interchange is committed; if the hub
//! stops in between, the file is submitted again at the next scan (before
//! what is new in `in/`) and answered as a duplicate, so nothing is lost or
//! stored twice.
//!
//! A file that was answered but cannot be moved (done/ and failed/ both
//! unwritable, say) stays in `work/`; the watcher remembers it by size and
//! modification time and does not submit it again until it changes or the
//! hub restarts, so a folder it cannot write to does not add a duplicate
//! event to the audit trail at every scan.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use crate::diag::Code;
use crate::hub::{Intake, Submission};
use crate::store::{Partner, StoreError};

/// Settings of the drop folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DropSettings {
    pub dir: PathBuf,
    /// How often the folders are scanned.
    pub poll: Duration,
    /// Larger files are moved to `failed/` unread.
    pub max_file_bytes: u64,
    /// A file in `in/` changed more recently than this is left for a
    /// later scan: it may still be being written (a partner that writes
    /// under the final name instead of a temporary one). Zero takes files
    /// at once.
    pub settle: Duration,
}

/// What happened to one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Done(PathBuf),
    Failed(PathBuf),
    /// Answered (or refused) but not moved: the file stays where it was
    /// taken (`work/`, or `in/` when it could not be claimed) and is
    /// not taken again while it is unchanged (see [`DropFolder`]).
    Stuck(PathBuf),
}

/// What identifies an unchanged file between scans.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    len: u64,
    modified: Option<SystemTime>,
}

impl Stamp {
    fn of(path: &Path) -> Option<Stamp> {
        let meta = std::fs::metadata(path).ok()?;
        Some(Stamp {
            len: meta.len(),
            modified: meta.modified().ok(),
        })
    }
}

/// The drop folder with what the scans remember between them: files that
/// were answered but could not be moved out of `work/`.
#[derive(Debug)]
pub struct DropFolder {
    settings: DropSettings,
    stuck: HashMap<PathBuf, Stamp>,
    /// Folders found in an `in/`, each reported once.
    noticed: std::collections::HashSet<PathBuf>,
    /// Files in an `in/` whose modification time is ahead of the hub's
    /// clock, with their stamp and when it was first seen so (see
    /// [`settled`]).
    ahead: HashMap<PathBuf, (Stamp, std::time::Instant)>,
}

impl DropFolder {
    pub fn new(settings: DropSettings) -> DropFolder {
        DropFolder {
            settings,
            stuck: HashMap::new(),
            noticed: std::collections::HashSet::new(),
            ahead: HashMap::new(),
        }
    }

    /// Files answered but left in `work/` because they could not be moved.
    pub fn stuck(&self) -> usize {
        self.stuck.len()
    }

    /// One pass over every partner folder. Returns what was done, in order.
    pub async fn scan(&mut self, intake: &Intake) -> Result<Vec<Outcome>, DropError> {
        self.scan_until(intake, &AtomicBool::new(false)).await
    }

    /// [`scan`](Self::scan), stopping before the next file once `stop` is
    /// set (the file in hand is finished).
    pub async fn scan_until(
        &mut self,
        intake: &Intake,
        stop: &AtomicBool,
    ) -> Result<Vec<Outcome>, DropError> {
        // Forget files that are gone or were rewritten: those are taken
        // (again) like any other.
        self.stuck
            .retain(|path, stamp| Stamp::of(path).is_some_and(|now| now == *stamp));
        // Folders and waiting files are said once while they are there.
        self.noticed
            .retain(|path| std::fs::symlink_metadata(path).is_ok());
        self.ahead.retain(|path, _| path.exists());
        let mut state = ScanState {
            stuck: &mut self.stuck,
            noticed: &mut self.noticed,
            ahead: &mut self.ahead,
        };
        scan_folders(intake, &self.settings, &mut state, stop).await
    }
}

/// Scans until `shutdown` resolves; each scan handles every complete file.
pub async fn watch<F>(intake: Intake, settings: DropSettings, shutdown: F)
where
    F: std::future::Future<Output = ()>,
{
    tokio::pin!(shutdown);
    let mut folder = DropFolder::new(settings.clone());
    loop {
        // A stop asked for during a scan ends it after the file in hand,
        // not after the whole backlog.
        let stop = AtomicBool::new(false);
        let mut stopping = false;
        let result = {
            let scan = folder.scan_until(&intake, &stop);
            tokio::pin!(scan);
            tokio::select! {
                result = &mut scan => result,
                _ = &mut shutdown => {
                    stop.store(true, Ordering::SeqCst);
                    stopping = true;
                    scan.await
                }
            }
        };
        if let Err(e) = result {
            tracing::error!(error = %e, dir = %settings.dir.display(), "drop folder scan failed");
        }
        intake.metrics().drop_stuck.store(
            u64::try_from(folder.stuck()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
        if stopping {
            return;
        }
        tokio::select! {
            _ = &mut shutdown => return,
            _ = tokio::time::sleep(settings.poll) => {}
        }
    }
}

/// Why a scan stopped early.
#[derive(Debug, thiserror::Error)]
pub enum DropError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> DropError + '_ {
    move |source| DropError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// One pass over every partner folder, remembering nothing: a file that
/// cannot be moved is taken again by the next call ([`DropFolder::scan`]
/// remembers it). Returns what was done, in order.
pub async fn scan(intake: &Intake, settings: &DropSettings) -> Result<Vec<Outcome>, DropError> {
    let mut state = ScanState {
        stuck: &mut HashMap::new(),
        noticed: &mut std::collections::HashSet::new(),
        ahead: &mut HashMap::new(),
    };
    scan_folders(intake, settings, &mut state, &AtomicBool::new(false)).await
}

/// What a scan reads and updates of what the scans remember (see
/// [`DropFolder`]).
struct ScanState<'a> {
    stuck: &'a mut HashMap<PathBuf, Stamp>,
    noticed: &'a mut std::collections::HashSet<PathBuf>,
    ahead: &'a mut HashMap<PathBuf, (Stamp, std::time::Instant)>,
}

async fn scan_folders(
    intake: &Intake,
    settings: &DropSettings,
    state: &mut ScanState<'_>,
    stop: &AtomicBool,
) -> Result<Vec<Outcome>, DropError> {
    let stuck = &mut *state.stuck;
    let noticed = &mut *state.noticed;
    let ahead = &mut *state.ahead;
    let mut outcomes = Vec::new();
    let entries = match std::fs::read_dir(&settings.dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(outcomes),
        Err(e) => return Err(io_err(&settings.dir)(e)),
    };
    // A partner folder that is a link is not scanned (logged once): an
    // alias linked to a partner's folder would claim that partner's files
    // under its own name and refuse them as another sender's.
    let mut partners: Vec<PathBuf> = Vec::new();
    for entry in entries.filter_map(Result::ok) {
        let path = entry.path();
        match std::fs::symlink_metadata(&path) {
            Ok(m) if m.is_dir() => partners.push(path),
            Ok(m)
                if m.file_type().is_symlink() && path.is_dir() && noticed.insert(path.clone()) =>
            {
                tracing::warn!(folder = %path.display(), "a partner's drop folder is a symbolic link; not scanned (name the folder after the partner instead)");
            }
            _ => {}
        }
    }
    partners.sort();
    for folder in partners {
        let Some(id) = folder
            .file_name()
            .and_then(|n| n.to_str())
            .map(str::to_owned)
        else {
            continue;
        };
        let Some(partner) = intake.store().partner(&id).await? else {
            if noticed.insert(folder.clone()) {
                tracing::warn!(folder = %folder.display(), "drop folder of an unknown partner ignored");
            }
            continue;
        };
        // The hub moves files into done/ and failed/ and reads in/: none of
        // them may lead elsewhere (a link to another partner's in/ would
        // have a refused file submitted as that partner).
        if let Some(link) = ["in", "work", "done", "failed"].iter().find(|d| {
            std::fs::symlink_metadata(folder.join(d)).is_ok_and(|m| m.file_type().is_symlink())
        }) {
            if noticed.insert(folder.clone()) {
                tracing::warn!(folder = %folder.display(), link, "a drop folder's in/, work/, done/ or failed/ is a symbolic link; the folder is not scanned");
            }
            continue;
        }
        noticed.remove(&folder);
        let inbox = folder.join("in");
        let work = folder.join("work");
        // Files claimed earlier and not finished (the hub stopped, or their
        // answer could not be moved) come first, then what is new in in/.
        let claimed = match listing(&work, stuck, noticed, None, settings.settle) {
            Ok(files) => {
                noticed.remove(&work);
                files
            }
            Err(e) => unreadable(&work, &e, noticed),
        };
        let delivered = match listing(&inbox, stuck, noticed, Some(ahead), settings.settle) {
            Ok(files) => {
                noticed.remove(&inbox);
                files
            }
            Err(e) => unreadable(&inbox, &e, noticed),
        };
        // Each delivered file is claimed just before it is taken, once those
        // before it have left work/.
        let files = claimed
            .into_iter()
            .map(|f| (f, false))
            .chain(delivered.into_iter().map(|f| (f, true)));
        for (file, delivered) in files {
            if stop.load(Ordering::SeqCst) {
                return Ok(outcomes);
            }
            let file = if delivered {
                match claim(&work, &file, noticed) {
                    Some(file) => file,
                    None => continue,
                }
            } else {
                file
            };
            // Its size and time before it is read: a file rewritten while
            // it was taken is not mistaken for the one answered.
            let stamp = Stamp::of(&file);
            let outcome = match take(intake, settings, &partner, &folder, &file).await {
                Ok(Some(outcome)) => outcome,
                // Gone, or in another instance's hands: not this scan's.
                Ok(None) => continue,
                Err(DropError::Store(e)) if e.is_retryable() => {
                    tracing::warn!(file = %file.display(), error = %e, "drop file left for the next scan");
                    continue;
                }
                Err(e) => refuse_untaken(intake, &partner, &folder, &file, &e).await,
            };
            // Answered but not moved: not taken again while unchanged.
            if let (Outcome::Stuck(path), Some(stamp)) = (&outcome, stamp) {
                stuck.insert(path.clone(), stamp);
            }
            outcomes.push(outcome);
        }
    }
    Ok(outcomes)
}

/// A folder that cannot be read (permissions, say): the partner's files
/// are not taken until the operator fixes it, so it is said, once while it
/// lasts. Nothing to take.
fn unreadable(
    dir: &Path,
    e: &std::io::Error,
    noticed: &mut std::collections::HashSet<PathBuf>,
) -> Vec<PathBuf> {
    if noticed.insert(dir.to_path_buf()) {
        tracing::warn!(folder = %dir.display(), error = %e, "drop folder cannot be read; its files wait");
    }
    Vec::new()
}

/// Records a file the drop folder refused itself (unreadable, not a
/// file, a link, a store that refused it), as every refusal is. Bounded:
/// a store that does not answer does not hold the scan.
async fn record(intake: &Intake, partner: &Partner, code: Code, size: i64, detail: &str) {
    let now = crate::timestamp::Timestamp::now();
    let refusal = intake.refuse_unread(code, Some(&partner.id), size, None, detail, now);
    match tokio::time::timeout(Duration::from_secs(5), refusal).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "a refused drop file was not recorded");
        }
        Err(_) => tracing::warn!("a refused drop file was not recorded in time"),
    }
}

/// The entries of `dir` to take, sorted: regular files and anything else
/// but folders (a link, a FIFO: taken, and refused with the reason), not
/// those remembered as stuck, and in `in/` only complete ones. A missing
/// folder has nothing.
fn listing(
    dir: &Path,
    stuck: &HashMap<PathBuf, Stamp>,
    noticed: &mut std::collections::HashSet<PathBuf>,
    mut complete_only: Option<&mut HashMap<PathBuf, (Stamp, std::time::Instant)>>,
    settle: Duration,
) -> std::io::Result<Vec<PathBuf>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|entry| match entry {
            Ok(entry) => Some(entry.path()),
            Err(e) => {
                tracing::warn!(folder = %dir.display(), error = %e, "drop folder entry cannot be read");
                None
            }
        })
        .filter(|p| match std::fs::symlink_metadata(p) {
            // A folder is not a delivery: left where it is, said once.
            Ok(m) if m.is_dir() => {
                if noticed.insert(p.clone()) {
                    tracing::warn!(folder = %p.display(), "a folder inside a drop folder's in/ is not taken: files are delivered directly in in/");
                }
                false
            }
            Ok(m) => {
                let complete = match complete_only.as_deref_mut() {
                    None => true,
                    Some(ahead) => is_complete(p) && settled(p, &m, settle, ahead),
                };
                complete && !stuck.contains_key(p)
            }
            Err(_) => false,
        })
        .collect();
    files.sort();
    Ok(files)
}

/// Claims a delivered file by moving it from `in/` to `work/` before it is
/// read, so that what is answered and archived is what was read: a file
/// the partner puts under the same name meanwhile is a new delivery in
/// `in/`, taken at the next scan (before, it was archived unread in the
/// place of the one answered). While `work/` holds a file of that name
/// (one whose answer could not be moved), the new one waits. A file that
/// cannot be moved out of `in/` is taken where it is.
fn claim(
    work: &Path,
    file: &Path,
    noticed: &mut std::collections::HashSet<PathBuf>,
) -> Option<PathBuf> {
    let name = file.file_name()?;
    let target = work.join(name);
    if std::fs::symlink_metadata(&target).is_ok() {
        // Said once per file while it waits.
        if noticed.insert(file.to_path_buf()) {
            tracing::warn!(file = %file.display(), waiting_for = %target.display(), "a delivered file waits: work/ holds a file of its name (being taken, or answered but not movable: see tradehub_drop_files_stuck)");
        }
        return None;
    }
    noticed.remove(file);
    // Through handles on in/ and work/: neither is followed if it became a
    // link since the scan looked (see [`SubFolder`]).
    let folder = work.parent()?;
    let inbox = match SubFolder::open(folder, "in", false) {
        Ok(inbox) => inbox,
        Err(e) => {
            tracing::warn!(file = %file.display(), error = %e, "drop file not claimed: its in/ cannot be opened as a folder");
            return None;
        }
    };
    let claimed = match SubFolder::open(folder, "work", true) {
        Ok(claimed) => claimed,
        Err(e) => {
            tracing::warn!(folder = %work.display(), error = %e, "drop folder's work/ cannot be created; files are taken in in/");
            return Some(file.to_path_buf());
        }
    };
    match claimed.move_here(&inbox, name, name, false) {
        Ok(()) => Some(target),
        // Gone since it was listed (the partner took it back, or another
        // instance claimed it), or claimed into work/ by another instance
        // under this name meanwhile: nothing to take now.
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::AlreadyExists
            ) =>
        {
            None
        }
        Err(e) => {
            tracing::warn!(file = %file.display(), error = %e, "drop file cannot be moved to work/; taken in in/");
            Some(file.to_path_buf())
        }
    }
}

/// Moves `from` to `to` in one step that fails (AlreadyExists) rather than
/// replacing a file at `to` (on unix, [`rename_no_replace_at`]).
#[cfg(not(unix))]
fn rename_no_replace(from: &Path, to: &Path) -> std::io::Result<()> {
    if std::fs::symlink_metadata(to).is_ok() {
        return Err(std::io::Error::from(std::io::ErrorKind::AlreadyExists));
    }
    std::fs::rename(from, to)
}

/// Moves `from` to `to` in one step that fails (AlreadyExists) rather than
/// replacing a file at `to`: one inode moves, so a file the partner puts
/// under the same name meanwhile stays in in/, and two instances never
/// claim over each other. Each name is relative to a directory handle
/// (`CWD` for plain paths). Where the file system has no such move
/// (renameat2 with RENAME_NOREPLACE: Linux on local file systems), a plain
/// rename right after a check that `to` is free, which leaves a window a
/// second instance could hit: said once, so that operators let one hub
/// instance use that folder.
#[cfg(unix)]
fn rename_no_replace_at<F: rustix::fd::AsFd, T: rustix::fd::AsFd>(
    from_dir: F,
    from: &Path,
    to_dir: T,
    to: &Path,
) -> std::io::Result<()> {
    use rustix::fs::{AtFlags, renameat, statat};
    use rustix::io::Errno;
    #[cfg(target_os = "linux")]
    {
        use rustix::fs::{RenameFlags, renameat_with};
        match renameat_with(&from_dir, from, &to_dir, to, RenameFlags::NOREPLACE) {
            Ok(()) => return Ok(()),
            Err(Errno::INVAL | Errno::NOSYS) => {
                static SAID: std::sync::Once = std::sync::Once::new();
                SAID.call_once(|| {
                    tracing::warn!(name = %to.display(), "the drop folder's file system cannot move a file without replacing one (RENAME_NOREPLACE); claims and answers fall back to a rename after a check: let one hub instance use the drop folder");
                });
            }
            Err(e) => return Err(e.into()),
        }
    }
    match statat(&to_dir, to, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(_) => return Err(std::io::Error::from(std::io::ErrorKind::AlreadyExists)),
        Err(Errno::NOENT) => {}
        Err(e) => return Err(e.into()),
    }
    Ok(renameat(&from_dir, from, &to_dir, to)?)
}

/// Open flags that refuse a symbolic link in the last step of a path and
/// do not wait on a FIFO put in a file's place.
fn no_follow(options: &mut std::fs::OpenOptions) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK);
    }
    #[cfg(not(unix))]
    let _ = options;
}

/// A handle on the sub-folder `sub` (`in`, `work`, `done`, `failed`,
/// `out`) of the partner folder `folder`, created (0775, less the umask)
/// when missing and `create` says so. Neither the partner folder nor the
/// sub-folder is reached through a symbolic link, and what is done through
/// the handle stays in the folder it was opened on: a sub-folder swapped
/// for a link afterwards (to another partner's `in/`) is not followed.
#[cfg(unix)]
fn partner_dir(folder: &Path, sub: &str, create: bool) -> std::io::Result<rustix::fd::OwnedFd> {
    use rustix::fs::{Mode, OFlags, mkdirat, openat};
    use rustix::io::Errno;
    let directory = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let partner = openat(rustix::fs::CWD, folder, directory, Mode::empty())?;
    match openat(&partner, sub, directory, Mode::empty()) {
        Ok(dir) => Ok(dir),
        Err(Errno::NOENT) if create => {
            match mkdirat(&partner, sub, Mode::from_bits_truncate(0o775)) {
                // The new folder's name made durable before what goes in it.
                Ok(()) => rustix::fs::fsync(&partner)?,
                Err(Errno::EXIST) => {}
                Err(e) => return Err(e.into()),
            }
            Ok(openat(&partner, sub, directory, Mode::empty())?)
        }
        Err(Errno::LOOP | Errno::NOTDIR) => Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("{sub}/ is not a folder (a symbolic link or a file); not used"),
        )),
        Err(e) => Err(e.into()),
    }
}

/// A sub-folder of a partner folder (see [`partner_dir`]): on unix a
/// handle, so that what the hub does in it stays there whatever becomes of
/// its name meanwhile (a partner that may write its folder's root cannot
/// swap `failed/` for a link to another partner's `in/` while its file is
/// being taken, and so have it moved there and submitted as the other's);
/// elsewhere its path.
struct SubFolder {
    #[cfg(not(unix))]
    path: PathBuf,
    #[cfg(unix)]
    fd: rustix::fd::OwnedFd,
}

impl SubFolder {
    /// The sub-folder `sub` of the partner folder `folder`, created when
    /// missing and `create` says so.
    fn open(folder: &Path, sub: &str, create: bool) -> std::io::Result<SubFolder> {
        #[cfg(unix)]
        {
            let fd = partner_dir(folder, sub, create)?;
            Ok(SubFolder { fd })
        }
        #[cfg(not(unix))]
        {
            let path = folder.join(sub);
            if create {
                std::fs::create_dir_all(&path)?;
            }
            if !std::fs::symlink_metadata(&path)?.is_dir() {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    format!("{sub}/ is not a folder; not used"),
                ));
            }
            Ok(SubFolder { path })
        }
    }

    /// Something (a file, a folder, a link) has the name.
    fn taken(&self, name: &str) -> bool {
        #[cfg(unix)]
        {
            use rustix::fs::{AtFlags, statat};
            statat(&self.fd, name, AtFlags::SYMLINK_NOFOLLOW).is_ok()
        }
        #[cfg(not(unix))]
        {
            std::fs::symlink_metadata(self.path.join(name)).is_ok()
        }
    }

    /// The bytes of the regular file of that name; none for anything else
    /// (a link is not followed).
    fn read(&self, name: &str) -> Option<Vec<u8>> {
        use std::io::Read;
        #[cfg(unix)]
        let file = {
            use rustix::fs::{Mode, OFlags, openat};
            let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
            std::fs::File::from(openat(&self.fd, name, flags, Mode::empty()).ok()?)
        };
        #[cfg(not(unix))]
        let file = {
            let mut options = std::fs::OpenOptions::new();
            options.read(true);
            no_follow(&mut options);
            options.open(self.path.join(name)).ok()?
        };
        if !file.metadata().ok()?.is_file() {
            return None;
        }
        let mut bytes = Vec::new();
        (&file).read_to_end(&mut bytes).ok()?;
        Some(bytes)
    }

    /// Writes a companion file (`.ack`, `.err`) whole or not at all: under a
    /// hidden name of its own first, then renamed into place, so that a
    /// partner never reads half of one, and a full disk leaves no empty one
    /// behind (the rename replaces a file or a symbolic link planted at the
    /// name; nothing is written through one).
    fn write(&self, name: &str, bytes: &[u8]) -> std::io::Result<()> {
        use std::io::Write;
        // Not the file's own name: that may take the 255 bytes a name has.
        let hidden = format!(".companion-{}.part", uuid::Uuid::now_v7().simple());
        #[cfg(unix)]
        {
            use rustix::fs::{AtFlags, Mode, OFlags, openat, renameat, unlinkat};
            let flags = OFlags::WRONLY
                | OFlags::CREATE
                | OFlags::EXCL
                | OFlags::NOFOLLOW
                | OFlags::NONBLOCK
                | OFlags::CLOEXEC;
            let fd = openat(
                &self.fd,
                hidden.as_str(),
                flags,
                Mode::from_bits_truncate(0o666),
            )?;
            let mut file = std::fs::File::from(fd);
            let placed = file
                .write_all(bytes)
                .and_then(|()| file.sync_all())
                .and_then(|()| Ok(renameat(&self.fd, hidden.as_str(), &self.fd, name)?));
            if placed.is_err() {
                let _ = unlinkat(&self.fd, hidden.as_str(), AtFlags::empty());
            }
            placed
        }
        #[cfg(not(unix))]
        {
            let hidden = self.path.join(hidden);
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create_new(true);
            no_follow(&mut options);
            let written = options.open(&hidden).and_then(|mut file| {
                file.write_all(bytes)?;
                file.sync_all()
            });
            let placed = written.and_then(|()| std::fs::rename(&hidden, self.path.join(name)));
            if placed.is_err() {
                let _ = std::fs::remove_file(&hidden);
            }
            placed
        }
    }

    /// Moves the file `name` of `from` here, as `to`; with `replace`, over
    /// what has that name (else that is AlreadyExists, see
    /// [`rename_no_replace_at`]).
    fn move_here(
        &self,
        from: &SubFolder,
        name: &std::ffi::OsStr,
        to: &std::ffi::OsStr,
        replace: bool,
    ) -> std::io::Result<()> {
        #[cfg(unix)]
        {
            if replace {
                Ok(rustix::fs::renameat(&from.fd, name, &self.fd, to)?)
            } else {
                rename_no_replace_at(&from.fd, Path::new(name), &self.fd, Path::new(to))
            }
        }
        #[cfg(not(unix))]
        {
            let (from, to) = (from.path.join(name), self.path.join(to));
            if replace {
                std::fs::rename(from, to)
            } else {
                rename_no_replace(&from, &to)
            }
        }
    }
}

/// The file opened for reading and locked for this process (an advisory
/// lock, released when the handle is dropped or the process dies), so
/// that hub instances sharing a drop folder never take one file together:
/// `None` when another holds it, when it is gone, or when its name now
/// names another file (taken and archived by another instance while this
/// one waited). A symbolic link is not followed; anything but a regular
/// file (a FIFO or device put in the file's place) is refused.
fn open_locked(path: &Path) -> std::io::Result<Option<std::fs::File>> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    no_follow(&mut options);
    let file = match options.open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "not a regular file",
        ));
    }
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => return Ok(None),
        Err(std::fs::TryLockError::Error(e)) => return Err(e),
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        // Still the file the name gives: not archived by another instance
        // between this open and the lock.
        match std::fs::symlink_metadata(path) {
            Ok(now) if now.dev() == meta.dev() && now.ino() == meta.ino() => {}
            Ok(_) => return Ok(None),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        }
    }
    Ok(Some(file))
}

/// The bytes of an opened file, or `None` when it holds more than `limit`
/// (a file still growing is not read past it).
fn read_at_most(file: &std::fs::File, limit: u64) -> std::io::Result<Option<Vec<u8>>> {
    use std::io::Read;
    let mut bytes = Vec::new();
    file.take(limit.saturating_add(1)).read_to_end(&mut bytes)?;
    Ok((bytes.len() as u64 <= limit).then_some(bytes))
}

/// True when a file was last changed at least `settle` ago. A file whose
/// time is ahead of the hub's clock (a file server's clock ahead, on a
/// network share), or that has none, is settled once its size and time
/// have stayed as they are for `settle` by the hub's own clock, counted
/// from the scan that first saw them so (`ahead`): taking it at once
/// would take a file still being written.
fn settled(
    path: &Path,
    meta: &std::fs::Metadata,
    settle: Duration,
    ahead: &mut HashMap<PathBuf, (Stamp, std::time::Instant)>,
) -> bool {
    if settle.is_zero() {
        return true;
    }
    if let Some(age) = meta.modified().ok().and_then(|at| at.elapsed().ok()) {
        ahead.remove(path);
        return age >= settle;
    }
    let stamp = Stamp {
        len: meta.len(),
        modified: meta.modified().ok(),
    };
    match ahead.get(path) {
        Some((seen, since)) if *seen == stamp => since.elapsed() >= settle,
        _ => {
            ahead.insert(path.to_path_buf(), (stamp, std::time::Instant::now()));
            false
        }
    }
}

fn is_complete(path: &Path) -> bool {
    // A name that is not UTF-8 (an upload in Latin-1) is a file like any
    // other.
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    // Names upload tools write under until the file is whole (WinSCP's
    // `.filepart`, browsers' `.crdownload`) count as partial too.
    !(name.is_empty()
        || name.starts_with('.')
        || [".part", ".tmp", ".filepart", ".crdownload"]
            .iter()
            .any(|suffix| name.ends_with(suffix)))
}

/// A file that cannot be taken for good (unreadable, refused by the
/// store): recorded, and moved to failed/ with the reason.
async fn refuse_untaken(
    intake: &Intake,
    partner: &Partner,
    folder: &Path,
    file: &Path,
    e: &DropError,
) -> Outcome {
    tracing::error!(file = %file.display(), error = %e, "drop file cannot be taken");
    let code = match e {
        DropError::Store(_) => Code::StoreRefused,
        DropError::Io { .. } => Code::DropFileUnreadable,
    };
    let why = format!("refused {code}: {e}\n");
    let size =
        std::fs::symlink_metadata(file).map_or(-1, |m| i64::try_from(m.len()).unwrap_or(i64::MAX));
    record(intake, partner, code, size, &e.to_string()).await;
    finish(folder, file, false, None, &why).unwrap_or_else(|moved| {
        tracing::error!(file = %file.display(), error = %moved, "drop file cannot be moved to failed/; left where it is (work/) until it changes");
        Outcome::Stuck(file.to_path_buf())
    })
}

async fn take(
    intake: &Intake,
    settings: &DropSettings,
    partner: &Partner,
    folder: &Path,
    file: &Path,
) -> Result<Option<Outcome>, DropError> {
    let meta = match std::fs::symlink_metadata(file) {
        Ok(meta) => meta,
        // Gone since it was listed (taken by another instance, or removed
        // by the partner): nothing to answer.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err(file)(e)),
    };
    if meta.file_type().is_symlink() {
        let why = "a symbolic link is not followed; deliver the file itself";
        record(intake, partner, Code::DropFileUnreadable, -1, why).await;
        let why = format!("refused {}: {why}\n", Code::DropFileUnreadable);
        return finish(folder, file, false, None, &why).map(Some);
    }
    // Held until the file has left, whatever becomes of it: no other
    // instance takes it meanwhile.
    let Some(handle) = open_locked(file).map_err(io_err(file))? else {
        return Ok(None);
    };
    let outcome = match take_locked(intake, settings, partner, folder, file, &handle).await {
        Ok(outcome) => outcome,
        // Left for the next scan (the lock goes with the handle).
        Err(DropError::Store(e)) if e.is_retryable() => return Err(DropError::Store(e)),
        Err(e) => refuse_untaken(intake, partner, folder, file, &e).await,
    };
    drop(handle);
    Ok(Some(outcome))
}

/// [`take`] once the file is open and locked.
async fn take_locked(
    intake: &Intake,
    settings: &DropSettings,
    partner: &Partner,
    folder: &Path,
    file: &Path,
    handle: &std::fs::File,
) -> Result<Outcome, DropError> {
    let meta = handle.metadata().map_err(io_err(file))?;
    let size = meta.len();
    if size > settings.max_file_bytes {
        let why = format!(
            "file of {size} bytes exceeds the limit of {} bytes; not read",
            settings.max_file_bytes
        );
        intake
            .refuse_too_large(
                Some(&partner.id),
                i64::try_from(size).unwrap_or(i64::MAX),
                None,
                &why,
                crate::timestamp::Timestamp::now(),
            )
            .await?;
        let why = format!("refused {}: {why}\n", Code::TooLarge);
        return finish(folder, file, false, None, &why);
    }
    // Read no further than the limit (a file still growing is not read
    // past it).
    let bytes = match read_at_most(handle, settings.max_file_bytes).map_err(io_err(file))? {
        Some(bytes) => bytes,
        None => {
            let why = format!(
                "file grew beyond the limit of {} bytes while it was read; not taken",
                settings.max_file_bytes
            );
            intake
                .refuse_too_large(
                    Some(&partner.id),
                    i64::try_from(settings.max_file_bytes.saturating_add(1)).unwrap_or(i64::MAX),
                    None,
                    &why,
                    crate::timestamp::Timestamp::now(),
                )
                .await?;
            let why = format!("refused {}: {why}\n", Code::TooLarge);
            return finish(folder, file, false, None, &why);
        }
    };
    // Named on the trail with its delivery time, which may be long before
    // the hub took it (a hub that was down).
    let via = crate::hub::Via::Drop {
        file: file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        delivered_at: meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .and_then(|d| i64::try_from(d.as_secs()).ok())
            .map(crate::timestamp::Timestamp::from_unix),
    };
    let outcome = intake.submit_via(partner, bytes, via).await?;
    let name = file.display().to_string();
    // From here the file has its answer: one that cannot be moved stays
    // where it is, and is not sent to failed/ as unreadable.
    let moved = match outcome {
        Submission::Stored(r) | Submission::Duplicate(r) => {
            let ok = r.interchange.status == crate::hub::status::VALIDATED;
            let mut why = format!(
                "interchange {} {}\n",
                r.interchange.id, r.interchange.status
            );
            for issue in &r.issues {
                why.push_str(&format!("{issue}\n"));
            }
            tracing::info!(file = %name, interchange = %r.interchange.id, status = %r.interchange.status, "drop file taken");
            finish(folder, file, ok, Some(&r.interchange.acknowledgement), &why)
        }
        Submission::Refused(refused) => {
            let why = format!("refused {}: {}\n", refused.code, refused.detail);
            finish(
                folder,
                file,
                false,
                refused.acknowledgement.as_deref(),
                &why,
            )
        }
    };
    Ok(moved.unwrap_or_else(|e| {
        tracing::error!(file = %name, error = %e, "drop file answered but cannot be moved; left where it is (work/) until it changes");
        Outcome::Stuck(file.to_path_buf())
    }))
}

/// The longest name a file is archived under: room is left for a counter
/// (`.` and up to ten digits) and `.ack` or `.err` within the 255 bytes a
/// file name may have on Linux file systems (NAME_MAX).
const ARCHIVE_NAME_MAX: usize = 255 - ".4294967295.ack".len();

/// The name a delivered file is archived under: its own, or, when that
/// leaves no room for the companions' extensions, its first bytes, `~` and
/// 16 hexadecimal digits of the SHA-256 of the whole name (so two long
/// names with the same beginning stay apart).
fn archive_name(delivered: &str) -> String {
    if delivered.len() <= ARCHIVE_NAME_MAX {
        return delivered.to_owned();
    }
    let digest = crate::hub::sha256_hex(delivered.as_bytes());
    let digest = digest.get(..16).unwrap_or(&digest);
    let cut = delivered.floor_char_boundary(ARCHIVE_NAME_MAX - 1 - digest.len());
    format!("{}~{digest}", delivered.get(..cut).unwrap_or_default())
}

/// Moves the file to done/ or failed/ and writes its companions. All in
/// the partner's own folders, through handles (see [`SubFolder`]): the file
/// is moved from the folder it was taken in (work/, or in/) and not from
/// wherever its name leads by then.
fn finish(
    folder: &Path,
    file: &Path,
    ok: bool,
    ack: Option<&str>,
    why: &str,
) -> Result<Outcome, DropError> {
    let sub = if ok { "done" } else { "failed" };
    let target_path = folder.join(sub);
    let target_dir = SubFolder::open(folder, sub, true).map_err(io_err(&target_path))?;
    let source_path = file.parent().unwrap_or(folder);
    let source_sub = source_path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("work");
    let source = SubFolder::open(folder, source_sub, false).map_err(io_err(source_path))?;
    let file_name = file
        .file_name()
        .ok_or_else(|| io_err(file)(std::io::ErrorKind::InvalidInput.into()))?;
    let delivered = file_name.to_string_lossy().into_owned();
    let name = archive_name(&delivered);
    // A shortened name: the .err says which file it was.
    let why = if name == delivered {
        why.to_owned()
    } else {
        tracing::info!(file = %file.display(), archived_as = %name, "drop file's name too long for its companions; archived under a shortened name");
        format!("delivered as {delivered}\n{why}")
    };
    // A name whose file and companions are all free: a delivered file may
    // itself be named like another's companion (`z.ack` beside `z`), and
    // nothing already archived is overwritten. (Taken links count too.)
    let taken = |n: &str| target_dir.taken(n);
    let with = |n: &str, ext: &str| format!("{n}.{ext}");
    let ack_bytes = ack.map(crate::ack::to_bytes);
    let err_bytes = (!ok).then(|| why.into_bytes());
    // Companions that a move of this same file left behind when the hub
    // stopped between writing them and moving the file: the same bytes as
    // now, and no file of that name. That name is this file's, not taken
    // (else the file would be archived as `NAME.1` beside an orphaned
    // `NAME.ack`).
    let same = |n: &str, bytes: &Option<Vec<u8>>| match bytes {
        Some(bytes) => target_dir.read(n).is_some_and(|b| b == *bytes),
        None => !taken(n),
    };
    let ours = |t: &str| {
        !taken(t)
            && (taken(&with(t, "ack")) || taken(&with(t, "err")))
            && same(&with(t, "ack"), &ack_bytes)
            && same(&with(t, "err"), &err_bytes)
    };
    let candidate = |n: u64| {
        if n == 0 {
            name.clone()
        } else {
            format!("{name}.{n}")
        }
    };
    let usable =
        |t: &str| ours(t) || !(taken(t) || taken(&with(t, "ack")) || taken(&with(t, "err")));
    // The suffixes a name has had run 1, 2, 3 …: the first usable one is
    // found by doubling and then halving, a few dozen lookups however many
    // files were archived under the name before (one by one, a partner
    // that names every file CUSDEC.EDI made each archiving slower than the
    // last). Between a name in use and a usable one there is always a
    // usable one right after one in use; where the partner removed some,
    // a gap may be filled, and nothing is overwritten.
    let n = if usable(&candidate(0)) {
        0
    } else {
        let (mut used, mut free) = (0u64, 1u64);
        while !usable(&candidate(free)) {
            used = free;
            free = free.saturating_mul(2);
        }
        while free - used > 1 {
            let mid = used + (free - used) / 2;
            if usable(&candidate(mid)) {
                free = mid;
            } else {
                used = mid;
            }
        }
        free
    };
    let target = candidate(n);
    if let Some(bytes) = &ack_bytes {
        // In the repertoire its UNB names (ISO 8859-1 for UNOC), as the
        // sender reads it, not as the hub keeps the text.
        let companion = with(&target, "ack");
        target_dir
            .write(&companion, bytes)
            .map_err(io_err(&target_path.join(&companion)))?;
    }
    if let Some(bytes) = &err_bytes {
        let companion = with(&target, "err");
        target_dir
            .write(&companion, bytes)
            .map_err(io_err(&target_path.join(&companion)))?;
    }
    target_dir
        .move_here(&source, file_name, std::ffi::OsStr::new(&target), true)
        .map_err(io_err(file))?;
    let archived = target_path.join(&target);
    Ok(if ok {
        Outcome::Done(archived)
    } else {
        Outcome::Failed(archived)
    })
}

/// The answers to partners who deliver files, written where they deliver
/// them: every response the hub sends a partner (`ack.<PARTNER>` on
/// `tradehub.acks`: CUSRES, APERAK, WCO RES at each change of a
/// declaration's status) whose drop folder `<drop-dir>/<PARTNER>/` exists
/// is also written to `<PARTNER>/out/`, named after the declaration, the
/// status and the answer's number (`<id>.cleared.1.edi`), before it is
/// published as usual. A file is written under a name starting with `.`
/// and renamed into place once complete, so a broker never reads half of
/// one; one already there (the same message published again after a
/// restart) is left as it is. A folder that cannot be written fails the
/// message as one the broker refuses: it is not sent to the broker either,
/// it is tried again with growing pauses (up to 5 minutes apart) for as
/// long as it takes, the partner's later answers wait behind it (neither
/// written nor sent), and other destinations go on. It is never parked:
/// the fault is the folder's, and a parked answer let later ones overtake
/// it.
pub struct DropDelivery<P: ?Sized> {
    inner: std::sync::Arc<P>,
    dir: PathBuf,
}

impl<P: ?Sized> std::fmt::Debug for DropDelivery<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DropDelivery")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

impl<P: ?Sized> DropDelivery<P> {
    pub fn new(inner: std::sync::Arc<P>, dir: PathBuf) -> Self {
        DropDelivery { inner, dir }
    }

    /// Where `message` is delivered in the drop folder, if anywhere.
    fn target(&self, message: &crate::store::OutboxMessage) -> Option<AnswerPlace> {
        if message.exchange != crate::hub::clearance::ACKS_EXCHANGE {
            return None;
        }
        let partner = message.routing_key.strip_prefix("ack.")?;
        let plain = !partner.is_empty()
            && partner != "."
            && partner != ".."
            && !partner.contains(['/', '\\', '\0']);
        if !plain {
            return None;
        }
        let folder = self.dir.join(partner);
        // The partner's own folder, not a link to elsewhere.
        if !std::fs::symlink_metadata(&folder).is_ok_and(|m| m.is_dir()) {
            return None;
        }
        let id = message
            .message_id
            .strip_suffix("/response")
            .unwrap_or(&message.message_id);
        let stem: String = id
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '.'
                }
            })
            .collect();
        let [edi, xml, json] = ANSWER_EXTENSIONS;
        let extension = match message.content_type.as_str() {
            "application/edifact" => edi,
            "application/xml" => xml,
            _ => json,
        };
        Some((folder, format!("{stem}.{extension}")))
    }
}

/// The extensions of answers in `out/`: EDIFACT, WCO XML, JSON.
const ANSWER_EXTENSIONS: [&str; 3] = ["edi", "xml", "json"];

/// Where an answer is written: the partner's folder, and the answer's
/// name in its `out/`.
type AnswerPlace = (PathBuf, String);

/// Writes `bytes` as `out/NAME` of the partner's `folder` through a
/// hidden file renamed into place, unless `out/NAME` exists already.
///
/// Every step after the partner's folder is opened works on directory
/// handles, never on paths: a partner with write access to its folder who
/// swaps `out/` for a link between the hub's checks and its writes only
/// makes the write fail (the handle is the directory that was checked, and
/// `out` is opened without following a link). The hidden file's name is
/// this write's own ([`part_name`]), so two hub instances writing the same
/// answer never touch each other's; the rename never replaces a file
/// (RENAME_NOREPLACE where the file system has it), so the first complete
/// copy stays. Files and `out/` are created for owner and group (0664,
/// 0775, less the umask), never writable by others.
#[cfg(unix)]
fn deliver_file(folder: &Path, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    use rustix::fs::{AtFlags, Mode, OFlags, openat, statat, unlinkat};
    use rustix::io::Errno;
    let out = partner_dir(folder, "out", true)?;
    remove_stale_parts(folder, &out);
    match statat(&out, name, AtFlags::SYMLINK_NOFOLLOW) {
        // Written before (by this instance before a restart, or another):
        // made durable before the message counts as sent.
        Ok(_) => return Ok(rustix::fs::fsync(&out)?),
        Err(Errno::NOENT) => {}
        Err(e) => return Err(e.into()),
    }
    let part = part_name(name);
    // A name no one else uses: a link or file planted under it makes the
    // create fail (EXCL, NOFOLLOW), and the write is tried again.
    let file = openat(
        &out,
        part.as_str(),
        OFlags::WRONLY
            | OFlags::CREATE
            | OFlags::EXCL
            | OFlags::NOFOLLOW
            | OFlags::NONBLOCK
            | OFlags::CLOEXEC,
        Mode::from_bits_truncate(0o664),
    )?;
    let published = {
        use std::io::Write;
        let mut file = std::fs::File::from(file);
        file.write_all(bytes)
            .and_then(|()| file.sync_all())
            .and_then(|()| rename_no_replace_at(&out, Path::new(&part), &out, Path::new(name)))
    };
    if let Err(e) = published {
        let _ = unlinkat(&out, part.as_str(), AtFlags::empty());
        // Written meanwhile by another hub instance (the same answer, the
        // same bytes): ours is not needed.
        if e.kind() != std::io::ErrorKind::AlreadyExists {
            return Err(e);
        }
    }
    // The rename (ours or the other's) made durable before the message
    // counts as sent.
    rustix::fs::fsync(&out)?;
    Ok(())
}

/// The hidden name an answer is written under before it is renamed into
/// place: `.NAME.` then this process and a random number, then `.part`,
/// so that no other write (of this hub instance or another sharing the
/// folder) uses it.
fn part_name(name: &str) -> String {
    let mut random = [0u8; 8];
    // Without randomness the process id and a counter still tell this
    // instance's writes apart.
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let random = match getrandom::getrandom(&mut random) {
        Ok(()) => u64::from_le_bytes(random),
        Err(_) => n,
    };
    format!(".{name}.{}-{n}-{random:016x}.part", std::process::id())
}

/// How old a hidden part file must be before a write takes it for one a
/// crashed write left: writing an answer takes milliseconds.
#[cfg(unix)]
const STALE_PART: std::time::Duration = std::time::Duration::from_secs(600);

/// True for the names the hub writes answers under before renaming them:
/// `.NAME.<pid>-<n>-<16 hex>.part` ([`part_name`]), or `.NAME.part`, the
/// single name of earlier versions (NAME an answer's: ending `.edi`,
/// `.xml` or `.json`).
#[cfg(unix)]
fn is_part_name(file: &str) -> bool {
    let Some(inner) = file.strip_prefix('.').and_then(|f| f.strip_suffix(".part")) else {
        return false;
    };
    let answer = |name: &str| {
        name.rsplit_once('.')
            .is_some_and(|(_, extension)| ANSWER_EXTENSIONS.contains(&extension))
    };
    if answer(inner) {
        return true;
    }
    let Some((name, tag)) = inner.rsplit_once('.') else {
        return false;
    };
    let number = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
    let tag: Vec<&str> = tag.split('-').collect();
    answer(name)
        && matches!(tag.as_slice(), [pid, n, random]
            if number(pid) && number(n)
                && random.len() == 16 && random.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Removes from `out/` the hidden part files crashed writes left (of any
/// answer, older than [`STALE_PART`]); a part another write is still
/// filling is young and stays, and so does every file not named as the
/// hub names its parts. Swept at most once per [`STALE_PART`] per folder,
/// so that a large `out/` is not listed at every answer. Whatever they are
/// (a link included), they are removed, never followed.
#[cfg(unix)]
fn remove_stale_parts(folder: &Path, out: &rustix::fd::OwnedFd) {
    use rustix::fs::{AtFlags, Dir, statat, unlinkat};
    static SWEPT: std::sync::Mutex<std::collections::BTreeMap<PathBuf, std::time::Instant>> =
        std::sync::Mutex::new(std::collections::BTreeMap::new());
    {
        let Ok(mut swept) = SWEPT.lock() else {
            return;
        };
        let now = std::time::Instant::now();
        if swept
            .get(folder)
            .is_some_and(|at| now.duration_since(*at) < STALE_PART)
        {
            return;
        }
        swept.insert(folder.to_path_buf(), now);
    }
    let Ok(dir) = Dir::read_from(out) else {
        return;
    };
    let now = std::time::SystemTime::now();
    for entry in dir.flatten() {
        let file = entry.file_name().to_string_lossy().into_owned();
        if !is_part_name(&file) {
            continue;
        }
        let Ok(stat) = statat(out, file.as_str(), AtFlags::SYMLINK_NOFOLLOW) else {
            continue;
        };
        let modified = std::time::UNIX_EPOCH
            + std::time::Duration::from_secs(u64::try_from(stat.st_mtime).unwrap_or(0));
        if now.duration_since(modified).unwrap_or_default() >= STALE_PART {
            let _ = unlinkat(out, file.as_str(), AtFlags::empty());
        }
    }
}

/// Writes `bytes` as `out/NAME` of the partner's `folder` through a
/// hidden file of its own renamed into place, unless `out/NAME` exists
/// already; `out/` must be a folder, not a link.
#[cfg(not(unix))]
fn deliver_file(folder: &Path, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    let out = folder.join("out");
    match std::fs::symlink_metadata(&out) {
        Ok(meta) if meta.is_dir() => {}
        Ok(_) => {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "out/ is not a folder (a symbolic link or a file); not written through",
            ));
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => match std::fs::create_dir(&out) {
            Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => return Err(e),
            _ => {}
        },
        Err(e) => return Err(e),
    }
    let path = out.join(name);
    if std::fs::symlink_metadata(&path).is_ok() {
        return Ok(());
    }
    let part = out.join(part_name(name));
    {
        use std::io::Write;
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        no_follow(&mut options);
        let mut file = options.open(&part)?;
        let written = file.write_all(bytes).and_then(|()| file.sync_all());
        if let Err(e) = written {
            let _ = std::fs::remove_file(&part);
            return Err(e);
        }
    }
    match rename_no_replace(&part, &path) {
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            let _ = std::fs::remove_file(&part);
            Ok(())
        }
        other => other,
    }
}

impl<P: crate::hub::outbox::Publish + ?Sized> crate::hub::outbox::Publish for DropDelivery<P> {
    fn ready<'a>(&'a self) -> crate::hub::outbox::Ready<'a> {
        self.inner.ready()
    }

    fn broker(&self) -> Option<&str> {
        self.inner.broker()
    }

    fn publish<'a>(
        &'a self,
        message: &'a crate::store::PendingMessage,
    ) -> crate::hub::outbox::Sent<'a> {
        Box::pin(async move {
            let mut results = self.publish_all(std::slice::from_ref(message)).await;
            results.pop().unwrap_or(Ok(()))
        })
    }

    fn publish_all<'a>(
        &'a self,
        messages: &'a [crate::store::PendingMessage],
    ) -> crate::hub::outbox::Published<'a> {
        Box::pin(async move {
            use crate::hub::outbox::RelayError;
            // The files first, in order (off the runtime's threads): once
            // one to a partner fails, that partner's later answers are
            // neither written nor sent, so that they keep their order.
            let files: Vec<(usize, String, Option<AnswerPlace>, Vec<u8>)> = messages
                .iter()
                .enumerate()
                .map(|(n, m)| {
                    let path = self.target(&m.message);
                    let bytes = if path.is_some() {
                        m.message.payload.clone()
                    } else {
                        Vec::new()
                    };
                    (n, m.message.routing_key.clone(), path, bytes)
                })
                .collect();
            let count = messages.len();
            let failed: Vec<Option<String>> = tokio::task::spawn_blocking(move || {
                let mut failed: Vec<Option<String>> = vec![None; count];
                let mut stopped: Vec<String> = Vec::new();
                for (n, key, path, bytes) in files {
                    let why = if stopped.contains(&key) {
                        Some("held behind an earlier answer to the same partner".to_owned())
                    } else if let Some((folder, name)) = path {
                        deliver_file(&folder, &name, &bytes).err().map(|e| {
                            let path = folder.join("out").join(&name);
                            tracing::warn!(file = %path.display(), error = %e, "answer not written to the drop folder; tried again");
                            format!("drop folder {}: {e}", path.display())
                        })
                    } else {
                        None
                    };
                    if why.is_some() && !stopped.contains(&key) {
                        stopped.push(key);
                    }
                    if let Some(slot) = failed.get_mut(n) {
                        *slot = why;
                    }
                }
                failed
            })
            .await
            .unwrap_or_else(|e| vec![Some(format!("drop folder writer failed: {e}")); count]);
            // Only what was written (or needs no file) goes to the broker;
            // the rest is undelivered: tried again in a later round (not at
            // once) with growing pauses, later answers to the partner
            // behind it, never parked.
            if failed.iter().all(Option::is_none) {
                return self.inner.publish_all(messages).await;
            }
            let sendable: Vec<crate::store::PendingMessage> = messages
                .iter()
                .zip(&failed)
                .filter(|(_, f)| f.is_none())
                .map(|(m, _)| m.clone())
                .collect();
            let mut sent = if sendable.is_empty() {
                Vec::new()
            } else {
                self.inner.publish_all(&sendable).await
            }
            .into_iter();
            failed
                .into_iter()
                .map(|f| match f {
                    Some(why) => Err(RelayError::Undelivered(why)),
                    None => sent.next().unwrap_or_else(|| {
                        Err(RelayError::Publish("no result from the broker".into()))
                    }),
                })
                .collect()
        })
    }
}

#[cfg(all(test, target_os = "linux"))]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    /// A fresh partner folder with `out/`, removed when dropped.
    struct Folder(PathBuf);

    impl Folder {
        fn new(test: &str) -> Folder {
            let path = std::env::temp_dir().join(format!(
                "tradehub-drop-{test}-{}-{}",
                std::process::id(),
                uuid::Uuid::now_v7().simple()
            ));
            std::fs::create_dir_all(path.join("out")).unwrap();
            Folder(path)
        }
    }

    impl Drop for Folder {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    /// Two instances writing the same answer at the same moment: each
    /// succeeds, the answer is one of the two copies whole (never a part
    /// file another write was still filling), and no part file is left.
    #[test]
    fn two_writers_of_one_answer_never_publish_a_half_written_copy() {
        let folder = Folder::new("race");
        let size = 256 * 1024;
        for i in 0..150 {
            let name = format!("answer-{i}.edi");
            let writers: Vec<_> = [b'a', b'b']
                .into_iter()
                .map(|fill| {
                    let (dir, name) = (folder.0.clone(), name.clone());
                    std::thread::spawn(move || deliver_file(&dir, &name, &vec![fill; size]))
                })
                .collect();
            for w in writers {
                w.join().unwrap().unwrap();
            }
            let got = std::fs::read(folder.0.join("out").join(&name)).unwrap();
            assert_eq!(got.len(), size, "{name}");
            assert!(got.iter().all(|b| *b == got[0]), "{name} mixes two copies");
        }
        let left: Vec<String> = names(&folder.0.join("out"))
            .into_iter()
            .filter(|n| n.starts_with('.'))
            .collect();
        assert!(left.is_empty(), "{left:?}");
    }

    /// A partner swapping `out/` for a link to another folder and back, as
    /// fast as it can, while answers are written: some writes fail, none
    /// lands in the other folder, and each one that succeeded is in out/.
    #[test]
    fn out_swapped_for_a_link_while_writing_is_never_written_through() {
        let folder = Folder::new("swap");
        let elsewhere = folder.0.join("elsewhere");
        std::fs::create_dir(&elsewhere).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let swapper = {
            let (dir, stop) = (folder.0.clone(), stop.clone());
            std::thread::spawn(move || {
                use rustix::fs::{CWD, RenameFlags, renameat_with};
                // out/ and a link exchanged in one step each way, so out/
                // is never missing (the hub would create it again).
                let (out, link) = (dir.join("out"), dir.join("out.link"));
                std::os::unix::fs::symlink("elsewhere", &link).unwrap();
                let mut swaps = 0u32;
                // A file system without the exchange: nothing to race.
                if renameat_with(CWD, &out, CWD, &link, RenameFlags::EXCHANGE).is_err() {
                    return None;
                }
                renameat_with(CWD, &out, CWD, &link, RenameFlags::EXCHANGE).unwrap();
                while !stop.load(Ordering::Relaxed) {
                    renameat_with(CWD, &out, CWD, &link, RenameFlags::EXCHANGE).unwrap();
                    std::thread::yield_now();
                    renameat_with(CWD, &out, CWD, &link, RenameFlags::EXCHANGE).unwrap();
                    swaps += 1;
                }
                Some(swaps)
            })
        };
        let mut delivered = Vec::new();
        let mut failed = 0;
        // At least 3,000 writes, and on until both outcomes have happened
        // (on a machine busy with other work the swapper may be held
        // between its two exchanges, so that thousands of writes in a row
        // all fail, or all succeed), for at most 20 s.
        let started = std::time::Instant::now();
        let mut i = 0;
        while i < 3000
            || ((failed == 0 || delivered.is_empty())
                && started.elapsed() < std::time::Duration::from_secs(20))
        {
            let name = format!("answer-{i}.edi");
            match deliver_file(&folder.0, &name, b"UNA:+.? 'UNB+UNOC:3'") {
                Ok(()) => delivered.push(name),
                Err(_) => failed += 1,
            }
            i += 1;
        }
        stop.store(true, Ordering::Relaxed);
        let Some(swaps) = swapper.join().unwrap() else {
            eprintln!("the temporary folder's file system cannot exchange names: not run");
            return;
        };
        assert!(swaps > 0);
        assert!(names(&elsewhere).is_empty(), "{:?}", names(&elsewhere));
        let out = names(&folder.0.join("out"));
        for name in &delivered {
            assert!(
                out.contains(name),
                "{name} counted as written but not in out/"
            );
        }
        // Both outcomes happened: the swaps did race the writes.
        assert!(failed > 0 && !delivered.is_empty(), "{failed} failed");
    }

    /// Part files crashes left (older than [`STALE_PART`]), of any answer
    /// and under the single name of earlier versions too, go with the next
    /// write to the folder, even one whose answer is already there; a young
    /// one (another write's) stays, as does every file not named as the
    /// hub names its parts.
    #[test]
    fn part_files_a_crash_left_are_removed_by_the_next_write() {
        let folder = Folder::new("stale");
        let out = folder.0.join("out");
        std::fs::write(out.join("a.edi"), b"answer").unwrap();
        let old = std::time::SystemTime::now() - STALE_PART - std::time::Duration::from_secs(5);
        for (part, stale) in [
            (".a.edi.17-0-00000000000000ff.part", true),
            (".c.edi.part", true),
            (".a.edi.18-3-0000000000000abc.part", false),
            (".b.xml.17-1-00000000000000ff.part", true),
            (".mine.txt.part", true),
            (".b.edi.my-own.part", true),
        ] {
            let file = std::fs::File::create(out.join(part)).unwrap();
            if stale {
                file.set_modified(old).unwrap();
            }
        }
        deliver_file(&folder.0, "a.edi", b"answer").unwrap();
        assert_eq!(
            names(&out),
            [
                ".a.edi.18-3-0000000000000abc.part",
                ".b.edi.my-own.part",
                ".mine.txt.part",
                "a.edi"
            ]
        );
        assert_eq!(std::fs::read(out.join("a.edi")).unwrap(), b"answer");
    }
}

#[cfg(test)]
mod companion_tests {
    use super::*;

    /// A partner that may write its folder's root swaps failed/ for a link
    /// to another partner's in/ while its file is being taken: the refused
    /// file is still archived in its own failed/ (the handle opened before
    /// the swap), and never lands in the other's in/. And a sub-folder
    /// that is a link when the file is finished or claimed is not used.
    #[cfg(unix)]
    #[test]
    fn a_sub_folder_swapped_for_a_link_is_not_followed() -> std::io::Result<()> {
        let root =
            std::env::temp_dir().join(format!("tradehub-swap-{}", uuid::Uuid::now_v7().simple()));
        let att = root.join("ATT");
        let victim_in = root.join("VICTIM/in");
        std::fs::create_dir_all(att.join("work"))?;
        std::fs::create_dir_all(att.join("in"))?;
        std::fs::create_dir_all(att.join("failed"))?;
        std::fs::create_dir_all(&victim_in)?;
        let names = |dir: &Path| -> Vec<String> {
            let mut names: Vec<String> = std::fs::read_dir(dir)
                .map(|d| {
                    d.filter_map(Result::ok)
                        .map(|e| e.file_name().to_string_lossy().into_owned())
                        .collect()
                })
                .unwrap_or_default();
            names.sort();
            names
        };

        // Opened, then swapped: what goes through the handle stays home.
        let failed = SubFolder::open(&att, "failed", true)?;
        std::fs::rename(att.join("failed"), att.join("failed.real"))?;
        std::os::unix::fs::symlink(&victim_in, att.join("failed"))?;
        failed.write("x.edi.err", b"refused")?;
        let work = SubFolder::open(&att, "work", false)?;
        std::fs::write(att.join("work/x.edi"), b"UNB+UNOC:3+VICTIM'")?;
        failed.move_here(&work, "x.edi".as_ref(), "x.edi".as_ref(), true)?;
        assert_eq!(names(&att.join("failed.real")), ["x.edi", "x.edi.err"]);
        assert_eq!(names(&victim_in), Vec::<String>::new());

        // A link by the time the file is finished: not used, the file
        // stays where it was taken.
        std::fs::write(att.join("work/y.edi"), b"UNB+UNOC:3+VICTIM'")?;
        let finished = finish(&att, &att.join("work/y.edi"), false, None, "HUB201");
        assert!(finished.is_err(), "{finished:?}");
        assert_eq!(names(&att.join("work")), ["y.edi"]);
        assert_eq!(names(&victim_in), Vec::<String>::new());

        // in/ a link to the other's in/ when a file is claimed: the
        // other's file is not taken.
        std::fs::write(victim_in.join("z.edi"), b"UNB+UNOC:3+VICTIM'")?;
        std::fs::rename(att.join("in"), att.join("in.real"))?;
        std::os::unix::fs::symlink(&victim_in, att.join("in"))?;
        let mut noticed = std::collections::HashSet::new();
        let claimed = claim(&att.join("work"), &att.join("in/z.edi"), &mut noticed);
        assert_eq!(claimed, None);
        assert_eq!(names(&victim_in), ["z.edi"]);
        assert_eq!(names(&att.join("work")), ["y.edi"]);
        std::fs::remove_dir_all(&root)
    }

    /// A name archived many times before takes the next suffix, found in a
    /// few lookups; where the partner removed some archived files, a gap
    /// may be filled, and nothing archived is overwritten.
    #[test]
    fn a_name_archived_many_times_takes_a_free_suffix() -> std::io::Result<()> {
        let folder =
            std::env::temp_dir().join(format!("tradehub-names-{}", uuid::Uuid::now_v7().simple()));
        let done = folder.join("done");
        std::fs::create_dir_all(&done)?;
        std::fs::create_dir_all(folder.join("work"))?;
        std::fs::write(done.join("CUSDEC.EDI"), b"0")?;
        for n in 1..=40 {
            std::fs::write(done.join(format!("CUSDEC.EDI.{n}")), n.to_string())?;
        }
        let deliver = |content: &str| -> std::io::Result<PathBuf> {
            let file = folder.join("work/CUSDEC.EDI");
            std::fs::write(&file, content)?;
            match finish(&folder, &file, true, Some("UNB'"), "") {
                Ok(Outcome::Done(path)) => Ok(path),
                other => panic!("{other:?}"),
            }
        };
        assert_eq!(deliver("41")?, done.join("CUSDEC.EDI.41"));
        std::fs::remove_file(done.join("CUSDEC.EDI.17"))?;
        let placed = deliver("again")?;
        assert_eq!(std::fs::read_to_string(&placed)?, "again");
        // Every earlier file is as it was.
        for n in (1..=41).filter(|n| *n != 17) {
            assert_eq!(
                std::fs::read_to_string(done.join(format!("CUSDEC.EDI.{n}")))?,
                n.to_string()
            );
        }
        assert_eq!(std::fs::read_to_string(done.join("CUSDEC.EDI"))?, "0");
        std::fs::remove_dir_all(&folder)
    }

    /// A companion is written whole under a hidden name and renamed into
    /// place: a symbolic link planted at its name is replaced, not written
    /// through, and a write that fails leaves neither the companion nor
    /// the hidden file behind (a full disk used to leave an empty `.ack`).
    #[test]
    fn a_companion_is_placed_whole_or_not_at_all() -> std::io::Result<()> {
        let dir = std::env::temp_dir().join(format!(
            "tradehub-companion-{}",
            uuid::Uuid::now_v7().simple()
        ));
        std::fs::create_dir_all(&dir)?;
        let leftovers = |dir: &Path| -> std::io::Result<Vec<String>> {
            Ok(std::fs::read_dir(dir)?
                .filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with(".companion-"))
                .collect())
        };
        let failed = SubFolder::open(&dir, "failed", true)?;
        let ack = dir.join("failed/f1.edi.ack");
        failed.write("f1.edi.ack", b"UNB+UNOC:3'")?;
        assert_eq!(std::fs::read(&ack)?, b"UNB+UNOC:3'");
        assert_eq!(
            failed.read("f1.edi.ack").as_deref(),
            Some(&b"UNB+UNOC:3'"[..])
        );

        let victim = dir.join("victim");
        std::fs::write(&victim, b"keep")?;
        let planted = dir.join("failed/f2.edi.ack");
        #[cfg(unix)]
        std::os::unix::fs::symlink(&victim, &planted)?;
        assert_eq!(failed.read("f2.edi.ack"), None, "not read through a link");
        failed.write("f2.edi.ack", b"answer")?;
        assert_eq!(std::fs::read(&victim)?, b"keep");
        assert_eq!(std::fs::read(&planted)?, b"answer");

        // A folder in the way (not empty): the rename fails.
        let blocked = dir.join("failed/f3.edi.ack");
        std::fs::create_dir_all(blocked.join("inside"))?;
        assert!(failed.write("f3.edi.ack", b"answer").is_err());
        assert!(blocked.is_dir());
        assert_eq!(leftovers(&dir.join("failed"))?, Vec::<String>::new());
        std::fs::remove_dir_all(&dir)
    }
}
