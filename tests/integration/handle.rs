//! The workflow handle and the tracker on a real InvokeAI server (use cases 1 to 4): load a
//! workflow, list and set its inputs, upload an image, submit, follow the items (events, and
//! polling only), map and download the outputs, clean up, and check that the server keeps
//! nothing of the run. Also: a model the server does not have fails with its error surfaced, and
//! a wait that times out leaves the items to `cancel()`.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use futures_util::StreamExt;
use invk_run::client::{
    Cleanup, Client, HandleError, QueueItem, QueueItemStatus, SchemaSource, SubmitOptions,
    TrackEvent, TrackMode, Tracker, WorkflowCategory, WorkflowHandle, WorkflowListQuery,
};
use invk_run::workflow::{InkType, InkValue, WorkflowDefinition, WorkflowError};
use serde_json::json;

use crate::support;

/// Long enough for a busy shared server (it pauses about a second before every item).
const WAIT: Duration = Duration::from_secs(600);

pub(crate) fn client() -> Client {
    Client::new(support::server().url()).expect("client")
}

pub(crate) fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples/workflows")
        .join(name)
}

/// Writes a test photo into `dir` and returns its path.
pub(crate) fn photo(dir: &Path, width: u32, height: u32) -> PathBuf {
    let path = dir.join(format!("photo-{width}x{height}.png"));
    fs_err::write(&path, support::png::png(width, height, [200, 120, 40])).expect("write photo");
    path
}

/// `(output node id, image width, image height)` of every image of a completed item.
async fn output_sizes(
    client: &Client,
    handle: &WorkflowHandle,
    item: &QueueItem,
) -> Vec<(String, u32, u32)> {
    let mut sizes = Vec::new();
    for output in handle.outputs(item).expect("completed") {
        for name in &output.images {
            let dto = client
                .images()
                .get(name)
                .await
                .expect("output image exists");
            sizes.push((output.node_id.clone(), dto.width, dto.height));
        }
    }
    sizes
}

/// Every image a run touched: uploads, and everything its items produced (intermediates too).
fn produced_images(items: &[QueueItem]) -> Vec<String> {
    let mut names: Vec<String> = items
        .iter()
        .flat_map(|i| i.outputs().into_values().flat_map(|o| o.images))
        .collect();
    names.sort();
    names.dedup();
    names
}

async fn assert_gone(client: &Client, images: &[String], board: Option<&str>, items: &[i64]) {
    for name in images {
        let err = client
            .images()
            .get(name)
            .await
            .expect_err("the image was deleted");
        assert_eq!(err.status().map(|s| s.as_u16()), Some(404), "{name}: {err}");
    }
    if let Some(board) = board {
        let err = client.boards().get(board).await.expect_err("board deleted");
        assert_eq!(err.status().map(|s| s.as_u16()), Some(404), "{err}");
    }
    let left = client.queue().items_by_ids(items).await.expect("items");
    assert!(left.is_empty(), "queue items left: {left:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blur_and_tint_runs_end_to_end_with_events_and_with_polling_alike() {
    let client = client();
    let dir = tempfile::tempdir().expect("tempdir");
    let definition = WorkflowDefinition::load(example("blur-and-tint.json")).expect("loads");

    // Use case 1: the definition, the inputs, the maps, what is missing.
    let mut handle = client.workflow(definition).await.expect("handle");
    assert!(
        matches!(
            handle.schema_source(),
            SchemaSource::Live { .. } | SchemaSource::Cached { .. }
        ),
        "the live server's schemas are used: {:?}",
        handle.schema_source()
    );
    assert_eq!(handle.definition().name(), "Blur and tint (example)");
    let rows: Vec<(usize, &str, String, bool)> = handle
        .inputs()
        .iter()
        .map(|i| {
            (
                i.index,
                i.user_name.as_str(),
                i.ty().to_string(),
                i.required,
            )
        })
        .collect();
    assert_eq!(rows[0].1, "Source image");
    assert_eq!(rows[1].1, "Width");
    assert_eq!(rows.len(), 8, "{rows:?}");
    let image_input = handle.inputs()[0].system_name.clone();
    assert_eq!(
        handle.missing_required_inputs(),
        std::slice::from_ref(&image_input)
    );
    assert_eq!(handle.by_user_name().expect("unique user names").len(), 8);
    assert_eq!(handle.by_system_name().len(), 8);

    // Use case 2: by index, system name and user name; converted and checked.
    handle.set(1, "48").expect("\"48\" into an integer");
    let height = handle.inputs()[2].system_name.clone();
    handle.set(height.as_str(), 48).expect("by system name");
    handle.set("Blur radius", 3.5).expect("by user name");
    assert_eq!(
        handle.input("#1").expect("by index").value,
        Some(InkValue::Integer(48))
    );
    let refused = handle.set("Width", -5).expect_err("width must be positive");
    assert!(
        refused.to_string().contains("-5"),
        "the refusal names the value: {refused}"
    );
    let submit_early = handle
        .submit(&SubmitOptions::default())
        .await
        .expect_err("the image is missing");
    assert!(
        matches!(
            submit_early,
            HandleError::Workflow(WorkflowError::InvalidInputs { .. })
        ),
        "{submit_early}"
    );
    let uploaded = handle
        .set_image_file("Source image", photo(dir.path(), 100, 80))
        .await
        .expect("upload");
    assert_eq!(handle.uploads(), std::slice::from_ref(&uploaded));
    assert!(handle.missing_required_inputs().is_empty());
    assert!(handle.validate_inputs().is_empty());

    // Use case 3: submit to a board of our own; follow with events.
    let board_name = format!("invk-test-{}", uuid::Uuid::new_v4());
    let options = SubmitOptions {
        board: Some(board_name.clone()),
        create_board: true,
        ..SubmitOptions::default()
    };
    // Items of another handle go first, so that the item followed starts only after its event
    // stream is open: node events come only through the stream, and a stream opened after an
    // item started (the server starts an item at once when its queue is idle) misses them.
    let mut ahead = client
        .workflow(WorkflowDefinition::load(example("blur-and-tint.json")).expect("loads"))
        .await
        .expect("handle");
    ahead
        .set_image_file("Source image", photo(dir.path(), 100, 80))
        .await
        .expect("upload");
    ahead.set("Width", 1024).expect("width");
    ahead.set("Height", 1024).expect("height");
    ahead
        .submit(&SubmitOptions {
            runs: 3,
            ..SubmitOptions::default()
        })
        .await
        .expect("submit the items that go first");
    let first = handle.submit(&options).await.expect("submit");
    assert_eq!((first.enqueued, first.requested), (1, 1));
    assert_eq!(first.item_ids.len(), 1);
    let board_id = first.board_id.clone().expect("a board");
    assert_eq!(handle.created_boards(), std::slice::from_ref(&board_id));

    let events: Vec<TrackEvent> = handle
        .wait_events(Duration::from_secs(5))
        .await
        .expect("stream")
        .collect()
        .await;
    let finished: Vec<&QueueItem> = events
        .iter()
        .filter_map(|e| match e {
            TrackEvent::Finished(item) => Some(item),
            _ => None,
        })
        .collect();
    assert_eq!(finished.len(), 1, "exactly once: {events:?}");
    let event_item = finished[0].clone();
    assert_eq!(event_item.item_id, first.item_ids[0]);
    assert_eq!(
        event_item.status,
        QueueItemStatus::Completed,
        "{event_item:?}"
    );
    let completed_nodes: HashSet<&str> = events
        .iter()
        .filter_map(|e| match e {
            TrackEvent::NodeCompleted { node_id, .. } => Some(node_id.as_str()),
            _ => None,
        })
        .collect();
    let output_ids: Vec<String> = handle
        .output_nodes()
        .into_iter()
        .map(|o| o.node_id)
        .collect();
    for id in &output_ids {
        assert!(
            completed_nodes.contains(id.as_str()),
            "node events for {id}"
        );
    }

    // The same workflow again, followed by polling only: the same outputs.
    let second = handle.submit(&options).await.expect("submit again");
    let mut news = 0;
    let polled = handle
        .wait_blocking(Duration::from_secs(1), Some(WAIT), |p| {
            assert!(p.finished <= p.total);
            news += 1;
        })
        .await
        .expect("wait");
    assert!(news >= 1);
    // The wait covers every item the handle submitted: the first one (done) and the new one.
    let ids: Vec<i64> = polled.iter().map(|i| i.item_id).collect();
    assert_eq!(ids, [first.item_ids[0], second.item_ids[0]]);
    let second_item = polled[1].clone();
    let by_events = output_sizes(&client, &handle, &event_item).await;
    let by_polling = output_sizes(&client, &handle, &second_item).await;
    assert_eq!(by_events, by_polling);
    let expected: Vec<(String, u32, u32)> =
        output_ids.iter().map(|id| (id.clone(), 48, 48)).collect();
    assert_eq!(by_events, expected, "both output nodes, 48x48 each");

    // Use case 4: outputs mapped to the form's output nodes, on our board; downloads.
    let outputs = handle.outputs(&second_item).expect("outputs");
    let labels: Vec<&str> = outputs.iter().map(|o| o.label.as_str()).collect();
    assert_eq!(labels, ["Blurred", "Tinted"]);
    assert!(
        outputs
            .iter()
            .all(|o| o.board.as_deref() == Some(&board_id))
    );
    for name in outputs.iter().flat_map(|o| &o.images) {
        let dto = client.images().get(name).await.expect("image");
        assert_eq!(dto.board_id.as_deref(), Some(board_id.as_str()));
    }
    let out = dir.path().join("out");
    let files = handle.download_outputs(&out).await.expect("download");
    assert_eq!(files.len(), 4, "2 items x 2 output nodes: {files:?}");
    for file in &files {
        assert!(fs_err::read(file).expect("read").starts_with(b"\x89PNG"));
    }
    let again = handle.download_outputs(&out).await.expect("download again");
    assert!(
        again.iter().all(|f| !files.contains(f)),
        "nothing is overwritten: {again:?}"
    );
    assert!(!fs_err::read_dir(&out).expect("list").any(|e| {
        e.expect("entry")
            .file_name()
            .to_string_lossy()
            .ends_with(".part")
    }));

    // Clean-up: nothing of the run is left on the server.
    let items = handle.items().await.expect("items");
    let mut touched = produced_images(&items);
    touched.push(uploaded);
    let report = handle
        .cleanup(Cleanup {
            uploads: true,
            outputs: true,
            queue_items: true,
        })
        .await
        .expect("cleanup");
    assert_eq!(report.deleted_boards, std::slice::from_ref(&board_id));
    assert_eq!(report.kept, Vec::<String>::new());
    assert!(handle.uploads().is_empty());
    assert_gone(&client, &touched, Some(&board_id), &handle.item_ids()).await;
    ahead
        .wait_blocking(Duration::from_secs(1), Some(WAIT), |_| {})
        .await
        .expect("the items that went first end");
    ahead
        .cleanup(Cleanup {
            uploads: true,
            outputs: true,
            queue_items: true,
        })
        .await
        .expect("cleanup of the items that went first");
}

/// The built-in "Text to Image - SD1.5" workflow, from the server's library.
async fn sd15_text_to_image(client: &Client) -> WorkflowDefinition {
    let page = client
        .workflows()
        .list(&WorkflowListQuery {
            categories: vec![WorkflowCategory::Default],
            query: Some("Text to Image - SD1.5".to_owned()),
            ..WorkflowListQuery::default()
        })
        .await
        .expect("list");
    let summary = page
        .items
        .iter()
        .find(|w| w.name == "Text to Image - SD1.5")
        .expect("the default workflow is installed");
    let record = client
        .workflows()
        .get(&summary.workflow_id)
        .await
        .expect("get");
    WorkflowDefinition::from_json_value(record.workflow, "Text to Image - SD1.5").expect("loads")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_model_the_server_does_not_have_fails_with_the_server_error_surfaced() {
    let client = client();
    let mut handle = client
        .workflow(sd15_text_to_image(&client).await)
        .await
        .expect("handle");
    let model_input = handle
        .inputs()
        .iter()
        .find(|i| matches!(i.ty(), InkType::Model(_)))
        .expect("a model input")
        .system_name
        .clone();
    let key = uuid::Uuid::new_v4().to_string();
    handle
        .set(
            model_input.as_str(),
            json!({"key": key, "hash": "blake3:0000", "name": "made-up-model",
                   "base": "sd-1", "type": "main"}),
        )
        .expect("a full identifier is accepted");
    for missing in handle.missing_required_inputs() {
        handle.set(missing.as_str(), "a lighthouse").expect("fill");
    }
    // A name alone is resolved against the installed models: the server has none.
    let mut by_name = client
        .workflow(sd15_text_to_image(&client).await)
        .await
        .expect("handle");
    by_name
        .set(model_input.as_str(), "made-up-model")
        .expect("a name is kept until submit");
    let unresolved = by_name
        .submit(&SubmitOptions::default())
        .await
        .expect_err("no such model");
    assert!(
        matches!(&unresolved, HandleError::Model { model, .. } if model == "made-up-model"),
        "{unresolved}"
    );
    assert!(by_name.submissions().is_empty(), "nothing was sent");

    let submission = handle
        .submit(&SubmitOptions::default())
        .await
        .expect("the server accepts the made-up model at enqueue");
    let mut node_errors = Vec::new();
    let items = handle
        .wait(TrackMode::Events, Duration::from_secs(5), Some(WAIT), |p| {
            if let TrackEvent::NodeFailed { error_message, .. } = p.event {
                node_errors.push(error_message.clone());
            }
        })
        .await
        .expect("wait");
    assert_eq!(items.len(), 1);
    let item = &items[0];
    // The model loader fails within milliseconds of the enqueue, sometimes before `wait` has
    // subscribed to the events: the item's own error is what always arrives. An error event
    // that did arrive carries the same message.
    assert!(node_errors.len() <= 1, "{node_errors:?}");
    assert!(
        node_errors
            .iter()
            .all(|e| Some(e) == item.error_message.as_ref()),
        "the node's error event carries the item's error: {node_errors:?} vs {:?}",
        item.error_message
    );
    assert_eq!(item.item_id, submission.item_ids[0]);
    assert_eq!(item.status, QueueItemStatus::Failed);
    let error_type = item.error_type.clone().expect("error type");
    let error_message = item.error_message.clone().expect("error message");
    assert!(
        error_message.contains(&key) || error_type.to_lowercase().contains("model"),
        "a model error: {error_type}: {error_message}"
    );
    let err = handle
        .outputs(item)
        .expect_err("a failed item has no outputs");
    match &err {
        HandleError::ItemFailed {
            item_id,
            error_type: t,
            error_message: m,
            ..
        } => {
            assert_eq!(
                (*item_id, t, m),
                (item.item_id, &error_type, &error_message)
            );
        }
        other => panic!("expected ItemFailed, got {other}"),
    }
    assert!(err.to_string().contains(&error_message), "{err}");
    handle
        .cleanup(Cleanup {
            uploads: true,
            outputs: true,
            queue_items: true,
        })
        .await
        .expect("cleanup");
    assert_gone(&client, &[], None, &handle.item_ids()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wait_that_times_out_leaves_the_items_to_cancel() {
    let client = client();
    let dir = tempfile::tempdir().expect("tempdir");
    let mut handle = client
        .workflow(WorkflowDefinition::load(example("blur-and-tint.json")).expect("loads"))
        .await
        .expect("handle");
    handle
        .set_image_file(0, photo(dir.path(), 20, 20))
        .await
        .expect("upload");
    // Several runs: the server pauses about a second before each, so the last stay pending.
    let submission = handle
        .submit(&SubmitOptions {
            runs: 4,
            ..SubmitOptions::default()
        })
        .await
        .expect("submit");
    assert_eq!(submission.item_ids.len(), 4);
    let err = handle
        .wait_blocking(
            Duration::from_millis(200),
            Some(Duration::from_millis(1)),
            |_| {},
        )
        .await
        .expect_err("a tiny timeout");
    match &err {
        HandleError::Timeout { unfinished, .. } => assert!(!unfinished.is_empty(), "{err}"),
        other => panic!("expected a timeout, got {other}"),
    }
    assert!(err.to_string().contains("cancel()"), "{err}");
    let refused = handle
        .cleanup(Cleanup {
            uploads: true,
            ..Cleanup::default()
        })
        .await;
    // Either still running (refused) or already finished; never deletes under a running item.
    if let Err(e) = &refused {
        assert!(matches!(e, HandleError::StillRunning { .. }), "{e}");
    }
    let canceled = handle.cancel().await.expect("cancel");
    assert!(canceled >= 1, "at least the pending items are canceled");
    let items = handle
        .wait(
            TrackMode::Events,
            Duration::from_secs(2),
            Some(WAIT),
            |_| {},
        )
        .await
        .expect("every item ends");
    assert_eq!(items.len(), 4);
    let last = items.last().expect("items");
    assert_eq!(last.status, QueueItemStatus::Canceled, "{last:?}");
    assert!(matches!(
        handle.outputs(last),
        Err(HandleError::ItemCanceled { .. })
    ));
    let touched = produced_images(&items);
    handle
        .cleanup(Cleanup {
            uploads: true,
            outputs: true,
            queue_items: true,
        })
        .await
        .expect("cleanup");
    assert_gone(&client, &touched, None, &handle.item_ids()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tracker_reports_items_that_finished_before_they_were_watched_once() {
    let client = client();
    let mut handle = client
        .workflow(WorkflowDefinition::load(example("size-sweep.json")).expect("loads"))
        .await
        .expect("handle");
    let submission = handle
        .submit(&SubmitOptions::default())
        .await
        .expect("submit");
    assert_eq!(submission.item_ids.len(), 6, "2 zipped sizes x 3 hues");
    // Let them all finish unwatched, then watch: the first poll finds them.
    handle
        .wait_blocking(Duration::from_secs(1), Some(WAIT), |_| {})
        .await
        .expect("wait");
    for mode in [TrackMode::Events, TrackMode::PollOnly] {
        let mut tracker = Tracker::start(&client, mode, Duration::from_secs(1)).await;
        assert_eq!(tracker.uses_events(), mode == TrackMode::Events);
        tracker.watch(submission.item_ids.iter().copied());
        tracker.watch(submission.item_ids.iter().copied()); // twice: still once each
        let mut finished: BTreeMap<i64, usize> = BTreeMap::new();
        while let Some(event) = tokio::time::timeout(WAIT, tracker.next())
            .await
            .expect("in time")
        {
            if let TrackEvent::Finished(item) = event {
                assert_eq!(item.status, QueueItemStatus::Completed);
                assert!(!item.session.results.is_empty(), "the full item");
                *finished.entry(item.item_id).or_default() += 1;
            }
        }
        assert_eq!(
            finished.keys().copied().collect::<Vec<_>>(),
            submission.item_ids
        );
        assert!(finished.values().all(|n| *n == 1), "{finished:?}");
        tracker.close().await;
    }
    let items = handle.items().await.expect("items");
    let touched = produced_images(&items);
    handle
        .cleanup(Cleanup {
            uploads: true,
            outputs: true,
            queue_items: true,
        })
        .await
        .expect("cleanup");
    assert_gone(&client, &touched, None, &handle.item_ids()).await;
}

/// A server of its own, killed (`kill -9`) with items in its queue and started again on the same
/// root and port: the tracker reports the outage once, the server's return once, and every item
/// once (a restarted InvokeAI cancels the items it had not finished).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tracker_reports_a_server_restart_once_down_and_once_back() {
    use invk_run::local_server::{RunningServer, ServerConfig, free_port};

    let root = tempfile::tempdir().expect("tempdir");
    let mut config = ServerConfig::new(root.path().to_path_buf(), free_port().expect("port"));
    config.die_with_parent = true;
    // InvokeAI itself can fail its first start after a `kill -9` (its database's VACUUM at
    // startup meets the killed writer's leftovers: "sqlite3.OperationalError: not an error");
    // started again, it comes up. That is the server's setup, not what this test checks.
    let start = move |config: ServerConfig| async move {
        tokio::task::spawn_blocking(move || {
            let mut tries = 0;
            loop {
                tries += 1;
                match RunningServer::start(support::server::installation(), &config) {
                    Ok(server) => break server,
                    Err(e) if tries < 3 => eprintln!("the server did not start, again: {e}"),
                    Err(e) => panic!("server starts: {e:?}"),
                }
            }
        })
        .await
        .expect("start task")
    };
    let server = start(config.clone()).await;
    let client = Client::new(&server.url()).expect("client");
    let mut handle = client
        .workflow(WorkflowDefinition::load(example("size-sweep.json")).expect("loads"))
        .await
        .expect("handle");
    let ids = handle
        .submit(&SubmitOptions::default())
        .await
        .expect("submit")
        .item_ids;
    let mut tracker = Tracker::start(&client, TrackMode::Events, Duration::from_secs(1)).await;
    assert!(tracker.uses_events());
    tracker.watch(ids.iter().copied());
    let pid = server.pid().expect("a child process");
    let killed = std::process::Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    drop(server);

    let mut server = None;
    let mut seen: Vec<String> = Vec::new();
    let mut finished: BTreeMap<i64, Vec<QueueItemStatus>> = BTreeMap::new();
    while let Some(event) = tokio::time::timeout(WAIT, tracker.next())
        .await
        .expect("in time")
    {
        match event {
            TrackEvent::ServerDown { .. } => {
                seen.push("down".into());
                server = Some(start(config.clone()).await);
            }
            TrackEvent::ServerBack => seen.push("back".into()),
            TrackEvent::Finished(item) => {
                finished.entry(item.item_id).or_default().push(item.status);
            }
            TrackEvent::Vanished { item_id } => panic!("item {item_id} vanished"),
            _ => {}
        }
    }
    assert_eq!(seen, ["down", "back"], "one outage, reported once each way");
    assert_eq!(finished.keys().copied().collect::<Vec<_>>(), ids);
    assert!(
        finished
            .values()
            .all(|s| s.len() == 1 && s[0].is_terminal()),
        "each item finished once: {finished:?}"
    );
    assert!(
        finished.values().any(|s| s[0] == QueueItemStatus::Canceled),
        "the restart canceled what was left: {finished:?}"
    );
    tracker.close().await;
    drop(server);
}

#[tokio::test]
async fn an_unreachable_server_gives_a_snapshot_typed_handle_and_a_polling_tracker() {
    let port = invk_run::local_server::free_port().expect("free port");
    let client = Client::builder(format!("http://127.0.0.1:{port}"))
        .connect_timeout(Duration::from_secs(2))
        .build()
        .expect("client");
    let handle = client
        .workflow(WorkflowDefinition::load(example("blur-and-tint.json")).expect("loads"))
        .await
        .expect("a handle without a server");
    assert!(
        matches!(handle.schema_source(), SchemaSource::Snapshot { .. }),
        "{:?}",
        handle.schema_source()
    );
    assert_eq!(handle.inputs().len(), 8);
    let tracker = Tracker::start(&client, TrackMode::Events, Duration::from_secs(1)).await;
    assert!(!tracker.uses_events(), "falls back to polling");
    tracker.close().await;
    let err = handle.cancel().await.expect_err("nothing submitted");
    assert!(matches!(err, HandleError::NothingSubmitted { .. }), "{err}");
}

#[tokio::test]
async fn sixty_items_cost_one_status_poll_and_one_fetch() {
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    let server = MockServer::start().await;
    let ids: Vec<i64> = (100..160).collect();
    let summaries: Vec<_> = ids
        .iter()
        .map(|id| {
            json!({"item_id": id, "status": "completed", "batch_id": "b",
                         "created_at": "2026-01-01 00:00:00.000", "user_id": "system"})
        })
        .collect();
    let items: Vec<_> = ids
        .iter()
        .map(|id| {
            json!({"item_id": id, "status": "completed", "batch_id": "b",
                         "session_id": format!("s{id}"), "queue_id": "default"})
        })
        .collect();
    Mock::given(method("POST"))
        .and(path("/api/v1/queue/default/item_summaries_by_ids"))
        .respond_with(ResponseTemplate::new(200).set_body_json(summaries))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/api/v1/queue/default/items_by_ids"))
        .respond_with(ResponseTemplate::new(200).set_body_json(items))
        .expect(1)
        .mount(&server)
        .await;
    let client = Client::new(&server.uri()).expect("client");
    let mut tracker = Tracker::start(&client, TrackMode::PollOnly, Duration::from_secs(60)).await;
    tracker.watch(ids.iter().copied());
    let mut finished = Vec::new();
    while let Some(event) = tokio::time::timeout(Duration::from_secs(10), tracker.next())
        .await
        .expect("no waiting for the timer: the first poll comes at once")
    {
        if let TrackEvent::Finished(item) = event {
            finished.push(item.item_id);
        }
    }
    assert_eq!(finished, ids);
    tracker.close().await;
    // The mocks check on drop that each endpoint was called exactly once.
}
