//! The drop folder on real files: complete files are taken, moved to done/
//! or failed/ with their acknowledgement and reasons; partial files and
//! unknown partners' folders are left alone; a file whose interchange was
//! already stored (a crash between commit and move) ends as a duplicate.

// Test helpers may panic: a panic is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::fixture;

use std::path::PathBuf;
use std::time::Duration;

use tradehub::edifact::Limits;
use tradehub::hub::{Intake, new_token};
use tradehub::store::{Store, Table};
use tradehub::timestamp::Timestamp;
use tradehub::transport::drop::{self, DropSettings, Outcome};

async fn setup() -> (PathBuf, Intake, DropSettings) {
    let dir = std::env::temp_dir().join(format!("tradehub-drop-{}", uuid::Uuid::now_v7().simple()));
    let store = Store::open(&Store::embedded_url(&dir).unwrap())
        .await
        .unwrap();
    let (_, hash) = new_token().unwrap();
    store
        .add_partner(
            "KRBROKER01",
            "Hanbit Customs Brokers",
            &hash,
            Timestamp::now(),
        )
        .await
        .unwrap();
    let settings = DropSettings {
        dir: dir.join("drop"),
        poll: Duration::from_millis(20),
        max_file_bytes: 64 * 1024,
        settle: Duration::ZERO,
    };
    std::fs::create_dir_all(settings.dir.join("KRBROKER01/in")).unwrap();
    std::fs::create_dir_all(settings.dir.join("STRANGER/in")).unwrap();
    (dir, Intake::new(store, Limits::default()), settings)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_are_taken_and_sorted() {
    let (dir, intake, settings) = setup().await;
    let inbox = settings.dir.join("KRBROKER01/in");
    std::fs::write(inbox.join("a-good.edi"), fixture("ok/cusdec-d96b-unoc.edi")).unwrap();
    // Delivered long before the hub takes it (a hub that was down).
    let delivered = Timestamp::parse("2026-11-24T10:30:00Z").unwrap();
    std::fs::File::options()
        .write(true)
        .open(inbox.join("a-good.edi"))
        .unwrap()
        .set_modified(
            std::time::UNIX_EPOCH + Duration::from_secs(u64::try_from(delivered.unix()).unwrap()),
        )
        .unwrap();
    let bad = String::from_utf8(fixture("err/unt-count.edi"))
        .unwrap()
        .replace("20261124001", "20261124777");
    std::fs::write(inbox.join("b-bad.edi"), bad).unwrap();
    std::fs::write(inbox.join("c-partial.edi.part"), b"UNA:+.? 'UNB+").unwrap();
    std::fs::write(inbox.join("d-big.edi"), vec![b'A'; 100 * 1024]).unwrap();
    std::fs::write(
        settings.dir.join("STRANGER/in/x.edi"),
        fixture("ok/cusdec-d96b-unoc.edi"),
    )
    .unwrap();

    let outcomes = drop::scan(&intake, &settings).await.unwrap();
    let folder = settings.dir.join("KRBROKER01");
    assert_eq!(
        outcomes,
        vec![
            Outcome::Done(folder.join("done/a-good.edi")),
            Outcome::Failed(folder.join("failed/b-bad.edi")),
            Outcome::Failed(folder.join("failed/d-big.edi")),
        ]
    );
    let ack = std::fs::read_to_string(folder.join("done/a-good.edi.ack")).unwrap();
    assert!(
        ack.contains("UCI+20261124001+KRBROKER01:ZZZ+TRADEHUB:ZZZ+7'"),
        "{ack}"
    );
    let err = std::fs::read_to_string(folder.join("failed/b-bad.edi.err")).unwrap();
    assert!(err.contains("rejected") && err.contains("E0029"), "{err}");
    let ack = std::fs::read_to_string(folder.join("failed/b-bad.edi.ack")).unwrap();
    assert!(ack.contains("UCM+1+CUSDEC:D:96B:UN+4+29+UNT+2'"), "{ack}");
    let err = std::fs::read_to_string(folder.join("failed/d-big.edi.err")).unwrap();
    assert!(
        err.contains("refused HUB413: file of 102400 bytes exceeds the limit"),
        "{err}"
    );
    // … and recorded, as every refusal is.
    let refusals = intake.store().refusals("KRBROKER01", 10).await.unwrap();
    assert!(
        refusals
            .iter()
            .any(|(code, detail)| code == "HUB413" && detail.contains("102400 bytes")),
        "{refusals:?}"
    );
    // The trail names the file and when it was delivered; a refusal names
    // the file.
    let good = intake
        .store()
        .interchange_by_reference("KRBROKER01", "20261124001")
        .await
        .unwrap()
        .unwrap();
    let events = intake.store().events(&good.id).await.unwrap();
    assert!(
        events[0].kind == "received"
            && events[0]
                .detail
                .ends_with("; drop file \"a-good.edi\" delivered 2026-11-24T10:30:00Z"),
        "{events:?}"
    );
    // Left alone: the partial file and the unknown partner's folder.
    assert!(inbox.join("c-partial.edi.part").exists());
    assert!(settings.dir.join("STRANGER/in/x.edi").exists());
    assert_eq!(intake.store().count(Table::Interchanges).await.unwrap(), 2);

    // The same file again (as after a crash between commit and move): a
    // duplicate, moved to done/ under a new name, nothing stored twice.
    std::fs::write(inbox.join("a-good.edi"), fixture("ok/cusdec-d96b-unoc.edi")).unwrap();
    let outcomes = drop::scan(&intake, &settings).await.unwrap();
    assert_eq!(
        outcomes,
        vec![Outcome::Done(folder.join("done/a-good.edi.1"))]
    );
    assert_eq!(intake.store().count(Table::Interchanges).await.unwrap(), 2);
    let events = intake.store().events(&good.id).await.unwrap();
    assert!(
        events.iter().any(|e| e.kind == "duplicate_received"
            && e.detail.contains("; drop file \"a-good.edi\" delivered 20")),
        "{events:?}"
    );

    // A file named like another's companion: `z.ack` is archived as it is,
    // and the answer to a later `z` does not overwrite it.
    let numbered = |reference: &str| {
        String::from_utf8(fixture("ok/cusdec-d96b-unoc.edi"))
            .unwrap()
            .replace("20261124001", reference)
    };
    std::fs::write(inbox.join("z.ack"), numbered("20261124901")).unwrap();
    let outcomes = drop::scan(&intake, &settings).await.unwrap();
    assert_eq!(outcomes, vec![Outcome::Done(folder.join("done/z.ack"))]);
    std::fs::write(inbox.join("z"), numbered("20261124902")).unwrap();
    let outcomes = drop::scan(&intake, &settings).await.unwrap();
    assert_eq!(outcomes, vec![Outcome::Done(folder.join("done/z.1"))]);
    let archived = std::fs::read_to_string(folder.join("done/z.ack")).unwrap();
    assert!(
        archived.contains("UNH+1+CUSDEC") && archived.contains("20261124901"),
        "{archived}"
    );
    let answer = std::fs::read_to_string(folder.join("done/z.1.ack")).unwrap();
    assert!(answer.contains("UCI+20261124902"), "{answer}");
    intake.store().close().await;
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_with_the_longest_name_is_archived_under_a_shorter_one() {
    let (dir, intake, settings) = setup().await;
    let inbox = settings.dir.join("KRBROKER01/in");
    let folder = settings.dir.join("KRBROKER01");
    // 255 bytes, the most a file name may have: `NAME.ack` could not exist.
    let long = |c: char| format!("{}.edi", c.to_string().repeat(251));
    std::fs::write(inbox.join(long('a')), fixture("ok/cusdec-d96b-unoc.edi")).unwrap();
    let bad = String::from_utf8(fixture("err/unt-count.edi"))
        .unwrap()
        .replace("20261124001", "20261124777");
    std::fs::write(inbox.join(long('b')), bad).unwrap();
    let outcomes = drop::scan(&intake, &settings).await.unwrap();
    assert_eq!(outcomes.len(), 2, "{outcomes:?}");
    let (Outcome::Done(done), Outcome::Failed(failed)) = (&outcomes[0], &outcomes[1]) else {
        panic!("{outcomes:?}");
    };
    for (path, c) in [(done, 'a'), (failed, 'b')] {
        let name = path.file_name().unwrap().to_str().unwrap();
        assert_eq!(name.len(), 240, "{name}");
        assert!(name.starts_with(&c.to_string().repeat(223)), "{name}");
        assert!(name.contains('~'), "{name}");
    }
    let ack = std::fs::read_to_string(format!("{}.ack", done.display())).unwrap();
    assert!(ack.contains("UCI+20261124001+KRBROKER01"), "{ack}");
    let err = std::fs::read_to_string(format!("{}.err", failed.display())).unwrap();
    assert!(
        err.starts_with(&format!("delivered as {}\n", long('b'))),
        "{err}"
    );
    assert!(err.contains("E0029"), "{err}");
    // Nothing left in work/ or in/.
    for sub in ["in", "work"] {
        let left: Vec<_> = std::fs::read_dir(folder.join(sub)).unwrap().collect();
        assert!(left.is_empty(), "{sub}: {left:?}");
    }
    intake.store().close().await;
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_polls_until_stopped() {
    let (dir, intake, settings) = setup().await;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(drop::watch(intake.clone(), settings.clone(), async move {
        let _ = stopped.await;
    }));
    let inbox = settings.dir.join("KRBROKER01/in");
    // Written under a temporary name, then renamed into place.
    std::fs::write(inbox.join(".incoming"), fixture("ok/cusdec-d96b-unoc.edi")).unwrap();
    std::fs::rename(inbox.join(".incoming"), inbox.join("late.edi")).unwrap();
    let done = settings.dir.join("KRBROKER01/done/late.edi");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !done.exists() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "file not taken within 10 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .unwrap()
        .unwrap();
    intake.store().close().await;
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A file the store refuses for good (a trigger of the test aborts its
/// insert) goes to failed/ with the reason, and the files after it are
/// still taken.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_the_store_refuses_does_not_hold_up_the_others() {
    let (dir, intake, settings) = setup().await;
    let db = common::refuse_interchange(&dir, "20261124666").await;
    let inbox = settings.dir.join("KRBROKER01/in");
    let poison = String::from_utf8(fixture("ok/cusdec-d96b-unoc.edi"))
        .unwrap()
        .replace("20261124001", "20261124666");
    std::fs::write(inbox.join("a-poison.edi"), poison).unwrap();
    std::fs::write(inbox.join("b-good.edi"), fixture("ok/cusdec-d96b-unoc.edi")).unwrap();

    let outcomes = drop::scan(&intake, &settings).await.unwrap();
    let folder = settings.dir.join("KRBROKER01");
    assert_eq!(
        outcomes,
        vec![
            Outcome::Failed(folder.join("failed/a-poison.edi")),
            Outcome::Done(folder.join("done/b-good.edi")),
        ]
    );
    let err = std::fs::read_to_string(folder.join("failed/a-poison.edi.err")).unwrap();
    assert!(
        err.contains("HUB501") && err.contains("refused by the test"),
        "{err}"
    );
    assert_eq!(intake.store().count(Table::Interchanges).await.unwrap(), 1);
    db.close().await;
    intake.store().close().await;
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A file whose answer cannot be moved (here done/ and failed/ are plain
/// files, so neither can be created) is answered once: it stays in work/,
/// where it was claimed, and the folder remembers it and does not submit it
/// again, so no duplicate event is added at every scan, until the file
/// changes. A new file of that name waits in in/ meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_that_cannot_be_moved_is_answered_once() {
    let (dir, intake, settings) = setup().await;
    let folder = settings.dir.join("KRBROKER01");
    std::fs::write(folder.join("done"), b"not a folder").unwrap();
    std::fs::write(folder.join("failed"), b"not a folder").unwrap();
    let delivered = folder.join("in/a-good.edi");
    let file = folder.join("work/a-good.edi");
    std::fs::write(&delivered, fixture("ok/cusdec-d96b-unoc.edi")).unwrap();

    let mut drop_folder = drop::DropFolder::new(settings.clone());
    let outcomes = drop_folder.scan(&intake).await.unwrap();
    assert_eq!(outcomes, vec![Outcome::Stuck(file.clone())]);
    assert_eq!(drop_folder.stuck(), 1);
    let events = intake.store().count(Table::Events).await.unwrap();
    assert_eq!(intake.store().count(Table::Interchanges).await.unwrap(), 1);

    // The same name delivered again waits while work/ holds the first.
    std::fs::write(&delivered, fixture("ok/cusdec-d96b-unoc.edi")).unwrap();
    for _ in 0..3 {
        assert_eq!(drop_folder.scan(&intake).await.unwrap(), vec![]);
    }
    assert_eq!(intake.store().count(Table::Events).await.unwrap(), events);
    assert!(file.exists(), "the file stays in work/");
    assert!(delivered.exists(), "the new one waits in in/");

    // Once done/ can be written and the stuck file is touched (what
    // OPERATIONS.md tells the operator), it is moved, and then the one
    // waiting is taken: both duplicates of the first, nothing new stored.
    std::fs::remove_file(folder.join("done")).unwrap();
    let later = std::time::SystemTime::now() + Duration::from_secs(5);
    std::fs::File::options()
        .write(true)
        .open(&file)
        .unwrap()
        .set_modified(later)
        .unwrap();
    let outcomes = drop_folder.scan(&intake).await.unwrap();
    assert_eq!(
        outcomes,
        vec![
            Outcome::Done(folder.join("done/a-good.edi")),
            Outcome::Done(folder.join("done/a-good.edi.1")),
        ]
    );
    assert_eq!(drop_folder.stuck(), 0);
    assert_eq!(intake.store().count(Table::Interchanges).await.unwrap(), 1);

    // The stateless scan has no memory: a stuck file is taken each time.
    std::fs::write(&delivered, fixture("ok/cusdec-d96b-unoc.edi")).unwrap();
    std::fs::remove_dir_all(folder.join("done")).unwrap();
    std::fs::write(folder.join("done"), b"not a folder").unwrap();
    for _ in 0..2 {
        assert_eq!(
            drop::scan(&intake, &settings).await.unwrap(),
            vec![Outcome::Stuck(file.clone())]
        );
    }
    intake.store().close().await;
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A file is claimed (moved to work/) before it is read, so one the
/// partner puts under the same name while the first is being taken is a
/// delivery of its own: both are answered and archived, neither is lost.
/// (Before, the file was read in in/ and whatever was at that path when
/// the answer came was moved to done/: the second file, unread.) Files left
/// in work/ by a stop are taken first at the next scan.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_delivered_again_under_its_name_while_taken_is_not_lost() {
    let (dir, intake, settings) = setup().await;
    let folder = settings.dir.join("KRBROKER01");
    let first = fixture("ok/cusdec-d96b-unoc.edi");
    let second = String::from_utf8(first.clone())
        .unwrap()
        .replace("20261124001", "20261124002")
        .into_bytes();
    // A stop left the first in work/; the partner then delivered the
    // second under the same name.
    std::fs::create_dir_all(folder.join("work")).unwrap();
    std::fs::write(folder.join("work/CUSDEC.EDI"), &first).unwrap();
    std::fs::write(folder.join("in/CUSDEC.EDI"), &second).unwrap();
    let outcomes = drop::scan(&intake, &settings).await.unwrap();
    assert_eq!(
        outcomes,
        vec![
            Outcome::Done(folder.join("done/CUSDEC.EDI")),
            Outcome::Done(folder.join("done/CUSDEC.EDI.1")),
        ]
    );
    assert_eq!(
        std::fs::read(folder.join("done/CUSDEC.EDI")).unwrap(),
        first
    );
    assert_eq!(
        std::fs::read(folder.join("done/CUSDEC.EDI.1")).unwrap(),
        second
    );
    let ack = std::fs::read_to_string(folder.join("done/CUSDEC.EDI.1.ack")).unwrap();
    assert!(ack.contains("UCI+20261124002+"), "{ack}");
    assert_eq!(intake.store().count(Table::Interchanges).await.unwrap(), 2);
    assert!(
        std::fs::read_dir(folder.join("work"))
            .unwrap()
            .next()
            .is_none()
    );
    intake.store().close().await;
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A symbolic link in a partner's in/ is refused, not followed: it could
/// point at another partner's files (here another broker's delivered
/// declaration), which would then be filed under this partner's name.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_symbolic_link_is_refused_not_followed() {
    let (dir, intake, settings) = setup().await;
    let victim = settings.dir.join("OTHERBROKER/done");
    std::fs::create_dir_all(&victim).unwrap();
    std::fs::write(victim.join("decl.edi"), fixture("ok/cusdec-d96b-unoc.edi")).unwrap();
    let inbox = settings.dir.join("KRBROKER01/in");
    std::os::unix::fs::symlink(victim.join("decl.edi"), inbox.join("theirs.edi")).unwrap();

    let outcomes = drop::scan(&intake, &settings).await.unwrap();
    let folder = settings.dir.join("KRBROKER01");
    assert_eq!(
        outcomes,
        vec![Outcome::Failed(folder.join("failed/theirs.edi"))]
    );
    let err = std::fs::read_to_string(folder.join("failed/theirs.edi.err")).unwrap();
    assert!(err.starts_with("refused HUB502: "), "{err}");
    assert!(err.contains("symbolic link"), "{err}");
    assert_eq!(intake.store().count(Table::Interchanges).await.unwrap(), 0);
    // Recorded, as every refusal is.
    let refusals = intake.store().refusals("KRBROKER01", 10).await.unwrap();
    assert_eq!(refusals.len(), 1, "{refusals:?}");
    assert_eq!(refusals[0].0, "HUB502");
    assert!(
        victim.join("decl.edi").is_file(),
        "the link's target is untouched"
    );
    intake.store().close().await;
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A partner folder whose failed/ (or in/, done/) is a symbolic link is not
/// scanned: a refused file moved there could land in another partner's
/// in/ and be submitted as that partner.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_folder_whose_failed_is_a_link_is_not_scanned() {
    let (dir, intake, settings) = setup().await;
    let elsewhere = settings.dir.join("OTHERBROKER/in");
    std::fs::create_dir_all(&elsewhere).unwrap();
    let folder = settings.dir.join("KRBROKER01");
    std::os::unix::fs::symlink(&elsewhere, folder.join("failed")).unwrap();
    std::fs::write(folder.join("in/theirs.edi"), b"not an interchange").unwrap();

    let outcomes = drop::scan(&intake, &settings).await.unwrap();
    assert!(outcomes.is_empty(), "{outcomes:?}");
    assert!(folder.join("in/theirs.edi").is_file(), "left where it was");
    assert_eq!(std::fs::read_dir(&elsewhere).unwrap().count(), 0);
    intake.store().close().await;
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A partner folder that is itself a symbolic link (an alias an operator
/// linked to another partner's folder) is not scanned: it would claim the
/// other's files under its own name and refuse them as another sender's.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partner_folder_that_is_a_link_is_not_scanned() {
    let (dir, intake, settings) = setup().await;
    let folder = settings.dir.join("KRBROKER01");
    let real = settings.dir.join("elsewhere");
    std::fs::rename(&folder, &real).unwrap();
    std::os::unix::fs::symlink(&real, &folder).unwrap();
    std::fs::write(
        real.join("in/cusdec.edi"),
        fixture("ok/cusdec-d96b-unoc.edi"),
    )
    .unwrap();
    let outcomes = drop::scan(&intake, &settings).await.unwrap();
    assert!(outcomes.is_empty(), "{outcomes:?}");
    assert!(real.join("in/cusdec.edi").is_file(), "left where it was");
    assert_eq!(
        intake
            .store()
            .count(tradehub::store::Table::Interchanges)
            .await
            .unwrap(),
        0
    );
    intake.store().close().await;
    std::fs::remove_dir_all(&dir).unwrap();
}

/// What a partner's tools may leave in in/ beside plain files: a file whose
/// name is not UTF-8 (an upload named in Latin-1) is taken like any other;
/// a FIFO is refused to failed/ with the reason, without the scan waiting
/// on it; a folder is left where it is. Nothing stays in in/ unanswered.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn odd_entries_are_taken_refused_or_left_but_never_ignored() {
    use std::os::unix::ffi::OsStrExt;
    let (dir, intake, settings) = setup().await;
    let inbox = settings.dir.join("KRBROKER01/in");
    let latin1 = std::ffi::OsStr::from_bytes(b"d\xe9claration.edi");
    std::fs::write(inbox.join(latin1), fixture("ok/cusdec-d96b-unoc.edi")).unwrap();
    let fifo = inbox.join("pipe.edi");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    std::fs::create_dir_all(inbox.join("sub")).unwrap();
    std::fs::write(
        inbox.join("sub/inner.edi"),
        fixture("ok/cusdec-d96b-unoc.edi"),
    )
    .unwrap();

    let outcomes = tokio::time::timeout(Duration::from_secs(10), drop::scan(&intake, &settings))
        .await
        .expect("the scan waited on the FIFO")
        .unwrap();
    let folder = settings.dir.join("KRBROKER01");
    assert_eq!(outcomes.len(), 2, "{outcomes:?}");
    assert!(
        outcomes.contains(&Outcome::Done(folder.join("done/d\u{FFFD}claration.edi"))),
        "{outcomes:?}"
    );
    assert!(
        outcomes.contains(&Outcome::Failed(folder.join("failed/pipe.edi"))),
        "{outcomes:?}"
    );
    let err = std::fs::read_to_string(folder.join("failed/pipe.edi.err")).unwrap();
    assert!(
        err.contains("HUB502") && err.contains("not a regular file"),
        "{err}"
    );
    assert_eq!(intake.store().count(Table::Interchanges).await.unwrap(), 1);
    assert!(
        inbox.join("sub/inner.edi").is_file(),
        "a folder is left alone"
    );
    let left: Vec<_> = std::fs::read_dir(&inbox)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left, ["sub"]);
    intake.store().close().await;
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The hub stopped after writing a file's `.ack` in done/ but before moving
/// the file there: at the next scan the file (still in work/) is answered
/// again as a duplicate, with the same acknowledgement, and archived under
/// its own name beside that `.ack`, not as `NAME.1` beside an orphan.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_move_cut_short_is_finished_under_the_files_own_name() {
    let (dir, intake, settings) = setup().await;
    let folder = settings.dir.join("KRBROKER01");
    std::fs::write(
        folder.join("in/CUSDEC.EDI"),
        fixture("ok/cusdec-d96b-unoc.edi"),
    )
    .unwrap();
    let outcomes = drop::scan(&intake, &settings).await.unwrap();
    assert_eq!(
        outcomes,
        vec![Outcome::Done(folder.join("done/CUSDEC.EDI"))]
    );
    // As if the move had not happened.
    std::fs::rename(
        folder.join("done/CUSDEC.EDI"),
        folder.join("work/CUSDEC.EDI"),
    )
    .unwrap();
    let outcomes = drop::scan(&intake, &settings).await.unwrap();
    assert_eq!(
        outcomes,
        vec![Outcome::Done(folder.join("done/CUSDEC.EDI"))]
    );
    let mut archived: Vec<String> = std::fs::read_dir(folder.join("done"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    archived.sort();
    assert_eq!(archived, ["CUSDEC.EDI", "CUSDEC.EDI.ack"]);
    assert_eq!(intake.store().count(Table::Interchanges).await.unwrap(), 1);
    // A different file of that name is not put beside another's answer.
    std::fs::write(
        folder.join("in/CUSDEC.EDI"),
        String::from_utf8(fixture("ok/cusdec-d96b-unoc.edi"))
            .unwrap()
            .replace("20261124001", "20261124003"),
    )
    .unwrap();
    let outcomes = drop::scan(&intake, &settings).await.unwrap();
    assert_eq!(
        outcomes,
        vec![Outcome::Done(folder.join("done/CUSDEC.EDI.1"))]
    );
    intake.store().close().await;
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Hub instances sharing a drop folder never take one file together: a
/// file another holds (locked while it is taken) is left to it, and taken
/// by this one only once the other let it go unfinished (a crash). Before,
/// each scan took every file in work/ as left by a crash, and a file was
/// submitted twice, with an orphaned answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_another_instance_holds_is_left_to_it() {
    let (dir, intake, settings) = setup().await;
    let work = settings.dir.join("KRBROKER01/work");
    std::fs::create_dir_all(&work).unwrap();
    std::fs::write(work.join("held.edi"), fixture("ok/cusdec-d96b-unoc.edi")).unwrap();
    let other = std::fs::File::open(work.join("held.edi")).unwrap();
    other.try_lock().unwrap();

    assert_eq!(drop::scan(&intake, &settings).await.unwrap(), vec![]);
    assert!(work.join("held.edi").is_file());
    assert_eq!(intake.store().count(Table::Interchanges).await.unwrap(), 0);
    assert!(
        !settings.dir.join("KRBROKER01/failed").exists(),
        "no answer written for a file in another's hands"
    );

    drop(other);
    let folder = settings.dir.join("KRBROKER01");
    assert_eq!(
        drop::scan(&intake, &settings).await.unwrap(),
        vec![Outcome::Done(folder.join("done/held.edi"))]
    );
    assert_eq!(intake.store().count(Table::Interchanges).await.unwrap(), 1);
    intake.store().close().await;
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A stop asked for during a scan ends it after the file in hand: the
/// backlog waits in in/ for the next start (before, the whole backlog was
/// taken first, beyond an orchestrator's grace period).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_ends_the_scan_after_the_file_in_hand() {
    let (dir, intake, settings) = setup().await;
    let inbox = settings.dir.join("KRBROKER01/in");
    let text = String::from_utf8(fixture("ok/cusdec-d96b-unoc.edi")).unwrap();
    for i in 0..30 {
        std::fs::write(
            inbox.join(format!("f{i:02}.edi")),
            text.replace("20261124001", &format!("STOP{i:02}")),
        )
        .unwrap();
    }
    tokio::time::timeout(
        Duration::from_secs(30),
        drop::watch(intake.clone(), settings.clone(), std::future::ready(())),
    )
    .await
    .unwrap();
    let left = std::fs::read_dir(&inbox).unwrap().count();
    let stored = intake.store().count(Table::Interchanges).await.unwrap();
    assert!(left >= 28, "{left} files left in in/, {stored} stored");
    assert_eq!(left as u64 + stored as u64, 30);
    intake.store().close().await;
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A publisher that counts the messages published one at a time
/// ([`Publish::publish`]) and passes everything on.
struct Counted<'p, P> {
    inner: &'p P,
    singles: std::sync::atomic::AtomicUsize,
}

impl<P: tradehub::hub::outbox::Publish> tradehub::hub::outbox::Publish for Counted<'_, P> {
    fn publish<'a>(
        &'a self,
        message: &'a tradehub::store::PendingMessage,
    ) -> tradehub::hub::outbox::Sent<'a> {
        self.singles
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.inner.publish(message)
    }

    fn publish_all<'a>(
        &'a self,
        messages: &'a [tradehub::store::PendingMessage],
    ) -> tradehub::hub::outbox::Published<'a> {
        self.inner.publish_all(messages)
    }
}

/// The answers to a partner who delivers files are written to its
/// `out/` folder as the relay publishes them (whole files only, named
/// after the declaration and status); a folder that cannot be written
/// holds the answer back until it can, and nothing is written twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_are_delivered_to_the_partners_out_folder() {
    use tradehub::hub::outbox::{self, InProcess};
    use tradehub::transport::drop::DropDelivery;
    let (dir, intake, settings) = setup().await;
    let inbox = settings.dir.join("KRBROKER01/in");
    std::fs::write(inbox.join("a.edi"), fixture("ok/cusdec-d96b-unoc.edi")).unwrap();
    drop::scan(&intake, &settings).await.unwrap();
    let out = settings.dir.join("KRBROKER01/out");
    let inproc = std::sync::Arc::new(InProcess::new(64));
    let publisher = DropDelivery::new(inproc.clone(), settings.dir.clone());

    // out/ is a file: no answer can be written. They stay due; the other
    // messages (the events) go on.
    std::fs::write(&out, b"in the way").unwrap();
    let mut sent = inproc.subscribe();
    let backlog = intake.store().outbox_backlog().await.unwrap();
    let counted = Counted {
        inner: &publisher,
        singles: Default::default(),
    };
    // However often it is tried (one attempt allowed here), an answer the
    // folder cannot take is not parked: the fault is the folder's, and a
    // parked answer let the partner's later ones overtake it.
    let once = outbox::RelaySettings {
        max_attempts: 1,
        ..Default::default()
    };
    outbox::drain_with(intake.store(), &counted, &once)
        .await
        .unwrap();
    let held = intake.store().outbox_backlog().await.unwrap();
    assert!(held > 0 && held < backlog, "{held} of {backlog} held back");
    let counts = intake.store().outbox_counts().await.unwrap();
    assert_eq!(counts.parked, 0, "{counts:?}");
    assert!(counts.waiting > 0, "{counts:?}");
    // An answer that cannot be written is its own failure, not a channel
    // the broker closed: the batch is not sent again one message at a
    // time (which tried each file a second time in the same round).
    assert_eq!(
        counted.singles.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "messages of the batch published again one at a time"
    );
    // What could not be written was not sent to the broker either.
    let mut keys = Vec::new();
    while let Ok(m) = sent.try_recv() {
        keys.push(m.message.routing_key);
    }
    assert_eq!(keys.len(), backlog as usize - held as usize, "{keys:?}");
    assert!(!keys.iter().any(|k| k.starts_with("ack.")), "{keys:?}");
    // Each declaration's answer is recorded as not published yet.
    let declarations = intake
        .store()
        .declarations(None, Some("KRBROKER01"), 10)
        .await
        .unwrap();
    for d in &declarations {
        let responses = intake.store().responses_of(&d.id).await.unwrap();
        assert!(!responses.is_empty());
        for r in &responses {
            assert_eq!(r.published_at, None, "{r:?}");
            assert!(
                r.message_id
                    .as_deref()
                    .is_some_and(|m| m.starts_with(&d.id)),
                "{r:?}"
            );
        }
    }

    // Once it can be written, every answer is there, complete (after the
    // pause of a declined message).
    std::fs::remove_file(&out).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while intake.store().outbox_backlog().await.unwrap() > 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "answers not delivered"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
        outbox::drain(intake.store(), &publisher).await.unwrap();
    }
    let mut names: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let declarations = intake
        .store()
        .declarations(None, Some("KRBROKER01"), 10)
        .await
        .unwrap();
    assert!(!declarations.is_empty());
    // Each declaration's first answer, named by its status then.
    for d in &declarations {
        assert!(
            names
                .iter()
                .any(|n| n.starts_with(&format!("{}.", d.id)) && n.ends_with(".0.edi")),
            "{names:?} {}",
            d.id
        );
    }
    assert!(
        names.iter().all(|n| declarations
            .iter()
            .any(|d| n.starts_with(&format!("{}.", d.id)) && n.ends_with(".edi"))),
        "{names:?}"
    );
    for name in &names {
        let text = std::fs::read_to_string(out.join(name)).unwrap();
        assert!(
            text.starts_with("UNA")
                && text.contains("UNH+")
                && (text.contains("CUSRES") || text.contains("APERAK")),
            "{name}: {text}"
        );
    }
    // Written, each answer is recorded published with its declaration,
    // under the message id its file is named by.
    for d in &declarations {
        for r in intake.store().responses_of(&d.id).await.unwrap() {
            assert!(r.published_at.is_some(), "{r:?}");
            let stem: String = r
                .message_id
                .as_deref()
                .unwrap()
                .trim_end_matches("/response")
                .replace('/', ".");
            assert!(
                names.iter().any(|n| n.starts_with(&stem)),
                "{stem} {names:?}"
            );
        }
    }
    // A partner without a folder gets nothing written; STRANGER's folder
    // holds no answer, and no hidden part file is left anywhere.
    assert!(!settings.dir.join("STRANGER/out").exists());
    assert!(names.iter().all(|n| !n.starts_with('.')), "{names:?}");
    // An answer published again (after a restart) leaves the file as it
    // was (a broker may have taken it already); a new one is written.
    use tradehub::hub::outbox::Publish;
    let again = |message_id: String| tradehub::store::PendingMessage {
        seq: 1,
        message: tradehub::store::OutboxMessage {
            exchange: "tradehub.acks".into(),
            routing_key: "ack.KRBROKER01".into(),
            message_id,
            content_type: "application/edifact".into(),
            payload: b"again".to_vec(),
            correlation_id: None,
        },
        created_at: String::new(),
        attempts: 0,
    };
    let first = names[0].strip_suffix(".edi").unwrap().replace('.', "/");
    std::fs::write(out.join(&names[0]), b"kept").unwrap();
    publisher
        .publish(&again(format!("{first}/response")))
        .await
        .unwrap();
    assert_eq!(std::fs::read(out.join(&names[0])).unwrap(), b"kept");
    publisher
        .publish(&again("x/cleared/7/response".into()))
        .await
        .unwrap();
    assert_eq!(
        std::fs::read(out.join("x.cleared.7.edi")).unwrap(),
        b"again"
    );
    // A link planted under the single part name earlier versions used is
    // left alone (a young file, of a name the writer no longer uses) and
    // the answer is written beside it. (That the writer's own part name
    // cannot be hijacked, nor out/ swapped for a link mid-write, is tested
    // in the drop module's unit tests.)
    let elsewhere_file = dir.join("elsewhere");
    std::fs::write(&elsewhere_file, b"untouched").unwrap();
    std::os::unix::fs::symlink(&elsewhere_file, out.join(".x2.cleared.1.edi.part")).unwrap();
    publisher
        .publish(&again("x2/cleared/1/response".into()))
        .await
        .unwrap();
    assert_eq!(
        std::fs::read(out.join("x2.cleared.1.edi")).unwrap(),
        b"again"
    );
    assert_eq!(std::fs::read(&elsewhere_file).unwrap(), b"untouched");
    let planted = out.join(".x2.cleared.1.edi.part");
    assert!(planted.symlink_metadata().unwrap().is_symlink());
    std::fs::remove_file(&planted).unwrap();
    // out/ swapped for a link to a folder elsewhere: nothing is written
    // through it, and the answer fails (tried again, then parked).
    let moved = dir.join("out-moved");
    std::fs::rename(&out, &moved).unwrap();
    let elsewhere_dir = dir.join("elsewhere-dir");
    std::fs::create_dir(&elsewhere_dir).unwrap();
    std::os::unix::fs::symlink(&elsewhere_dir, &out).unwrap();
    let err = publisher
        .publish(&again("x3/cleared/1/response".into()))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("not a folder"), "{err}");
    assert_eq!(std::fs::read_dir(&elsewhere_dir).unwrap().count(), 0);
    std::fs::remove_file(&out).unwrap();
    std::fs::rename(&moved, &out).unwrap();
    // Another exchange, or a partner without a folder: no file.
    let mut event = again("y/cleared/1/event".into());
    event.message.exchange = "tradehub.events".into();
    publisher.publish(&event).await.unwrap();
    let mut elsewhere = again("z/cleared/1/response".into());
    elsewhere.message.routing_key = "ack.NOFOLDER".into();
    publisher.publish(&elsewhere).await.unwrap();
    let mut escape = again("w/cleared/1/response".into());
    escape.message.routing_key = "ack...".into();
    publisher.publish(&escape).await.unwrap();
    assert_eq!(std::fs::read_dir(&out).unwrap().count(), names.len() + 2);
    assert!(!settings.dir.join("NOFOLDER").exists());
    intake.store().close().await;
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A file written under its final name is not taken while it is still
/// changing: one changed within `settle` waits for a later scan (the hub
/// took the first bytes of a file still being written, rejected them, and
/// the whole file sent again was refused as a reused reference).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_still_being_written_waits() {
    let (dir, intake, mut settings) = setup().await;
    settings.settle = Duration::from_secs(5);
    let inbox = settings.dir.join("KRBROKER01/in");
    let file = inbox.join("slow.edi");
    let bytes = fixture("ok/cusdec-d96b-unoc.edi");
    let (first, rest) = bytes.split_at(bytes.len() / 2);
    std::fs::write(&file, first).unwrap();
    assert!(drop::scan(&intake, &settings).await.unwrap().is_empty());
    assert!(file.exists(), "taken while being written");
    // The rest arrives; once the file has not changed for the settle time
    // (its modification time set back here, instead of waiting), it is
    // taken whole.
    let mut whole = first.to_vec();
    whole.extend_from_slice(rest);
    std::fs::write(&file, &whole).unwrap();
    assert!(drop::scan(&intake, &settings).await.unwrap().is_empty());
    let past = std::time::SystemTime::now() - Duration::from_secs(6);
    std::fs::File::options()
        .append(true)
        .open(&file)
        .unwrap()
        .set_modified(past)
        .unwrap();
    let outcomes = drop::scan(&intake, &settings).await.unwrap();
    assert_eq!(outcomes.len(), 1, "{outcomes:?}");
    assert!(
        matches!(&outcomes[0], drop::Outcome::Done(_)),
        "{outcomes:?}"
    );
    // A time in the future (a file server's clock ahead of the hub's): the
    // file is taken once its size and time have stayed as they are for the
    // settle time by the hub's own clock, not at once (it may still be
    // being written), and a change starts the wait again.
    settings.settle = Duration::from_millis(400);
    let mut folder = drop::DropFolder::new(settings.clone());
    let ahead = inbox.join("ahead.edi");
    let text = String::from_utf8(bytes.clone())
        .unwrap()
        .replace("+20261124001'", "+20261124009'");
    let head = &text[..text.len() / 2];
    let later = std::time::SystemTime::now() + Duration::from_secs(3600);
    let write_ahead = |content: &str| {
        std::fs::write(&ahead, content).unwrap();
        std::fs::File::options()
            .append(true)
            .open(&ahead)
            .unwrap()
            .set_modified(later)
            .unwrap();
    };
    write_ahead(head);
    assert!(folder.scan(&intake).await.unwrap().is_empty());
    tokio::time::sleep(Duration::from_millis(500)).await;
    // The rest arrives (same time ahead, another size): waited for again.
    write_ahead(&text);
    assert!(folder.scan(&intake).await.unwrap().is_empty());
    assert!(ahead.exists(), "taken while being written");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let outcomes = folder.scan(&intake).await.unwrap();
    assert_eq!(outcomes.len(), 1, "{outcomes:?}");
    assert!(
        matches!(&outcomes[0], drop::Outcome::Done(_)),
        "{outcomes:?}"
    );
    intake.store().close().await;
    std::fs::remove_dir_all(&dir).unwrap();
}
