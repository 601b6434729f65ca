//! The client and the `workflows`/`boards` commands against a real InvokeAI server. Everything a
//! test creates has a unique name, is deleted at the end, and is checked to be gone.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use insta_cmd::assert_cmd_snapshot;
use invk_run::client::{
    BoardChanges, BoardListQuery, Client, ClientError, ImageCategory, ImageNamesFilter,
    ModelFilter, QueueItem, QueueItemStatus, UploadOptions, WorkflowCategory, WorkflowListQuery,
};
use invk_run::workflow::payload::{Batch, BatchDatum, Edge, EdgeEnd, EnqueueBatch, Graph};
use reqwest::StatusCode;
use serde_json::{Map, Value, json};

use crate::support;

/// A built-in workflow of InvokeAI 6.14 ("Text to Image - SDXL").
const DEFAULT_WORKFLOW_ID: &str = "default_5e8b008d-c697-45d0-8883-085a954c6ace";

fn block_on<F: Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(future)
}

fn client() -> Client {
    Client::new(support::server().url()).expect("client")
}

fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4())
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// A workflow file from the fixtures, renamed to `name`, written into `dir`.
fn workflow_file(dir: &Path, name: &str) -> PathBuf {
    let text =
        fs_err::read_to_string(fixture("workflows/flux-image-to-image.json")).expect("fixture");
    let mut workflow: Value = serde_json::from_str(&text).expect("fixture json");
    workflow["name"] = json!(name);
    let path = dir.join(format!("{name}.json"));
    fs_err::write(
        &path,
        serde_json::to_string_pretty(&workflow).expect("json"),
    )
    .expect("write");
    path
}

fn status_of(err: &ClientError) -> Option<u16> {
    err.status().map(|s| s.as_u16())
}

/// `blank_image` → `img_blur` → `save_image` (32×32, no models), with the blur radius swept over
/// `radii` as batch data.
fn blur_batch(radii: &[f64], runs: u32, destination: &str) -> EnqueueBatch {
    let mut nodes = Map::new();
    nodes.insert(
        "blank".into(),
        json!({"id": "blank", "type": "blank_image", "width": 32, "height": 32, "mode": "RGB",
                    "color": {"r": 200, "g": 30, "b": 30, "a": 255}, "is_intermediate": true, "use_cache": false}),
    );
    nodes.insert(
        "blur".into(),
        json!({"id": "blur", "type": "img_blur", "radius": 1.0, "blur_type": "gaussian",
                    "is_intermediate": true, "use_cache": false}),
    );
    nodes.insert(
        "save".into(),
        json!({"id": "save", "type": "save_image", "is_intermediate": false, "use_cache": false}),
    );
    let edge = |from: &str, to: &str| Edge {
        source: EdgeEnd {
            node_id: from.into(),
            field: "image".into(),
        },
        destination: EdgeEnd {
            node_id: to.into(),
            field: "image".into(),
        },
    };
    let data = (!radii.is_empty()).then(|| {
        vec![vec![BatchDatum {
            node_path: "blur".into(),
            field_name: "radius".into(),
            items: radii.iter().map(|r| json!(r)).collect(),
        }]]
    });
    EnqueueBatch {
        batch: Batch {
            batch_id: Some(uuid::Uuid::new_v4().to_string()),
            origin: Some("invk-run-tests".into()),
            destination: Some(destination.into()),
            data,
            graph: Graph {
                id: None,
                nodes,
                edges: vec![edge("blank", "blur"), edge("blur", "save")],
            },
            workflow: None,
            runs,
        },
        prepend: false,
    }
}

/// Polls until every item is finished (or panics after `limit`).
async fn wait_finished(client: &Client, ids: &[i64], limit: Duration) -> Vec<QueueItem> {
    let start = Instant::now();
    loop {
        let items = client
            .queue()
            .items_by_ids(ids)
            .await
            .expect("items_by_ids");
        if items.len() == ids.len() && items.iter().all(|i| i.status.is_terminal()) {
            return items;
        }
        assert!(
            start.elapsed() < limit,
            "items not finished after {limit:?}: {items:?}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// Deletes the items and every image (outputs and intermediates) they produced; checks both are gone.
async fn clean_up_items(client: &Client, items: &[QueueItem]) {
    let images: Vec<String> = items
        .iter()
        .flat_map(|i| i.outputs().into_values().flat_map(|o| o.images))
        .collect();
    let deleted = client
        .images()
        .delete_many(&images)
        .await
        .expect("delete images");
    assert_eq!(deleted.deleted_images.len(), images.len(), "{deleted:?}");
    for name in &images {
        let err = client.images().get(name).await.expect_err("image gone");
        assert_eq!(status_of(&err), Some(404));
    }
    for item in items {
        client
            .queue()
            .delete_item(item.item_id)
            .await
            .expect("delete item");
        let err = client
            .queue()
            .item(item.item_id)
            .await
            .expect_err("item gone");
        assert_eq!(status_of(&err), Some(404));
    }
}

#[test]
fn workflows_round_trip_through_the_library() {
    let client = client();
    let dir = tempfile::tempdir().expect("tempdir");
    let name = unique("invk-run-test-workflow");
    block_on(async {
        let id = client
            .workflows()
            .upload_file(&workflow_file(dir.path(), &name))
            .await
            .expect("upload");

        let record = client.workflows().get(&id).await.expect("get");
        assert_eq!(record.name, name);
        assert_eq!(record.category(), WorkflowCategory::User);
        let by_name = client.workflows().find(&name).await.expect("find by name");
        assert_eq!(by_name.workflow_id, id);
        assert_eq!(
            client.workflows().find(&id).await.expect("find by id").name,
            name
        );

        let query = WorkflowListQuery {
            categories: vec![WorkflowCategory::User],
            query: Some(name.clone()),
            ..WorkflowListQuery::default()
        };
        let page = client.workflows().list(&query).await.expect("list");
        assert_eq!(
            page.items
                .iter()
                .map(|w| w.workflow_id.as_str())
                .collect::<Vec<_>>(),
            [id.as_str()]
        );

        let mut changed = record.workflow.clone();
        changed["description"] = json!("changed by a test");
        let updated = client
            .workflows()
            .update(&id, &changed)
            .await
            .expect("update");
        assert_eq!(updated.workflow["description"], "changed by a test");

        let out = dir.path().join("downloaded/wf.json");
        client
            .workflows()
            .download_to_file(&id, &out)
            .await
            .expect("download");
        let written: Value =
            serde_json::from_str(&fs_err::read_to_string(&out).expect("read")).expect("json");
        let original: Value = serde_json::from_str(
            &fs_err::read_to_string(fixture("workflows/flux-image-to-image.json"))
                .expect("fixture"),
        )
        .expect("json");
        assert_eq!(written["name"], json!(name));
        assert_eq!(written["nodes"], original["nodes"]);
        assert_eq!(written["edges"], original["edges"]);
        assert_eq!(written["form"], original["form"]);

        client.workflows().delete(&id).await.expect("delete");
        let err = client.workflows().get(&id).await.expect_err("gone");
        assert_eq!(status_of(&err), Some(404), "{err}");
        assert!(matches!(
            client.workflows().find(&name).await,
            Err(ClientError::NotFound { .. })
        ));
    });
}

#[test]
fn workflow_names_that_repeat_are_ambiguous_and_list_their_ids() {
    let client = client();
    let dir = tempfile::tempdir().expect("tempdir");
    let name = unique("invk-run-test-twin");
    let file = workflow_file(dir.path(), &name);
    block_on(async {
        let first = client
            .workflows()
            .upload_file(&file)
            .await
            .expect("upload 1");
        let second = client
            .workflows()
            .upload_file(&file)
            .await
            .expect("upload 2");
        let err = client.workflows().find(&name).await.expect_err("ambiguous");
        let ClientError::Ambiguous { candidates, .. } = &err else {
            panic!("not ambiguous: {err}")
        };
        assert_eq!(candidates.len(), 2);
        assert!(
            err.to_string().contains(&first) && err.to_string().contains(&second),
            "{err}"
        );
        for id in [first, second] {
            client.workflows().delete(&id).await.expect("delete");
            assert_eq!(
                status_of(&client.workflows().get(&id).await.expect_err("gone")),
                Some(404)
            );
        }
    });
}

#[test]
fn unknown_workflows_are_not_found_with_suggestions() {
    block_on(async {
        let err = client()
            .workflows()
            .find("Text to Image SDXL")
            .await
            .expect_err("no such name");
        insta::assert_snapshot!(err.to_string(), @r"no workflow has the id or name `Text to Image SDXL`; known: `Text to Image - SDXL`, `Text to Image - SD1.5`, `Text to Image - SD3.5`, `Text to Image - FLUX`, `Text to Image - SD1.5, LoRA`");
    });
}

#[test]
fn boards_round_trip() {
    let client = client();
    let name = unique("invk-run-test-board");
    block_on(async {
        let board = client.boards().create(&name).await.expect("create");
        assert_eq!(board.board_name, name);
        assert_eq!(
            client
                .boards()
                .get(&board.board_id)
                .await
                .expect("get")
                .board_name,
            name
        );
        assert_eq!(
            client
                .boards()
                .find(&name)
                .await
                .expect("find by name")
                .board_id,
            board.board_id
        );

        let renamed = format!("{name}-renamed");
        let changes = BoardChanges {
            board_name: Some(renamed.clone()),
            archived: Some(true),
        };
        let updated = client
            .boards()
            .update(&board.board_id, &changes)
            .await
            .expect("update");
        assert_eq!(updated.board_name, renamed);
        assert!(updated.archived);
        let visible = client
            .boards()
            .list(&BoardListQuery::default())
            .await
            .expect("list");
        assert!(
            !visible.iter().any(|b| b.board_id == board.board_id),
            "archived boards are hidden by default"
        );
        let all = client
            .boards()
            .list(&BoardListQuery {
                include_archived: true,
                ..BoardListQuery::default()
            })
            .await
            .expect("list all");
        assert!(all.iter().any(|b| b.board_id == board.board_id));
        let names = client
            .boards()
            .image_names(&board.board_id, &ImageNamesFilter::default())
            .await
            .expect("names");
        assert!(names.is_empty());

        let result = client
            .boards()
            .delete(&board.board_id, true)
            .await
            .expect("delete");
        assert_eq!(result.board_id, board.board_id);
        assert_eq!(
            status_of(
                &client
                    .boards()
                    .get(&board.board_id)
                    .await
                    .expect_err("gone")
            ),
            Some(404)
        );
    });
}

#[test]
fn images_upload_download_and_delete() {
    let client = client();
    let dir = tempfile::tempdir().expect("tempdir");
    let png = support::png::png(3, 2, [10, 200, 30]);
    let file = dir.path().join("tiny.png");
    fs_err::write(&file, &png).expect("write png");
    let not_image = dir.path().join("notes.png");
    fs_err::write(&not_image, "just text").expect("write text");
    block_on(async {
        let err = client
            .images()
            .upload(&not_image, &UploadOptions::default())
            .await
            .expect_err("not an image");
        assert!(matches!(err, ClientError::NotAnImage { .. }), "{err:?}");
        assert!(
            err.to_string().contains("notes.png` is not an image"),
            "{err}"
        );

        let board = client
            .boards()
            .create(&unique("invk-run-test-images"))
            .await
            .expect("board");
        let options = UploadOptions {
            board_id: Some(board.board_id.clone()),
            ..UploadOptions::default()
        };
        let image = client
            .images()
            .upload(&file, &options)
            .await
            .expect("upload");
        assert_eq!((image.width, image.height), (3, 2));
        assert_eq!(image.image_category, ImageCategory::User);
        assert_eq!(image.board_id.as_deref(), Some(board.board_id.as_str()));
        assert!(!image.is_intermediate);
        assert_eq!(
            client
                .images()
                .get(&image.image_name)
                .await
                .expect("get")
                .image_name,
            image.image_name
        );
        let on_board = client
            .boards()
            .image_names(
                &board.board_id,
                &ImageNamesFilter {
                    categories: vec![ImageCategory::User],
                    is_intermediate: None,
                },
            )
            .await
            .expect("board images");
        assert_eq!(on_board, std::slice::from_ref(&image.image_name));
        assert_eq!(
            client
                .images()
                .metadata(&image.image_name)
                .await
                .expect("metadata"),
            None
        );

        let dest = dir.path().join("out/copy.png");
        let bytes = client
            .images()
            .download(&image.image_name, &dest)
            .await
            .expect("download");
        let downloaded = fs_err::read(&dest).expect("read");
        assert_eq!(bytes, downloaded.len() as u64);
        assert!(
            downloaded.starts_with(b"\x89PNG\r\n\x1a\n"),
            "a PNG came back"
        );

        let second = client
            .images()
            .upload(&file, &UploadOptions::default())
            .await
            .expect("upload 2");
        assert_eq!(second.board_id, None);
        let one = client
            .images()
            .delete(&image.image_name)
            .await
            .expect("delete one");
        assert_eq!(one.deleted_images, std::slice::from_ref(&image.image_name));
        let many = client
            .images()
            .delete_many(std::slice::from_ref(&second.image_name))
            .await
            .expect("delete many");
        assert_eq!(
            many.deleted_images,
            std::slice::from_ref(&second.image_name)
        );
        for name in [&image.image_name, &second.image_name] {
            assert_eq!(
                status_of(&client.images().get(name).await.expect_err("gone")),
                Some(404)
            );
        }
        client
            .boards()
            .delete(&board.board_id, true)
            .await
            .expect("delete board");
        assert_eq!(
            status_of(
                &client
                    .boards()
                    .get(&board.board_id)
                    .await
                    .expect_err("gone")
            ),
            Some(404)
        );
    });
}

#[test]
fn model_names_that_are_not_installed_are_reported_with_the_candidates() {
    let client = client();
    block_on(async {
        let models = client
            .models()
            .list(&ModelFilter::default())
            .await
            .expect("list");
        let by_key = client
            .models()
            .get("no-such-key-0000")
            .await
            .expect_err("unknown key");
        assert_eq!(status_of(&by_key), Some(404), "{by_key}");
        let err = client
            .models()
            .resolve("no-such-model-anywhere", Some("sdxl"), Some("main"))
            .await
            .expect_err("unknown");
        let ClientError::NotFound { candidates, .. } = &err else {
            panic!("not NotFound: {err}")
        };
        if models.is_empty() {
            assert!(candidates.is_empty());
            assert_eq!(
                err.to_string(),
                "no model has the id or name `no-such-model-anywhere` among the `sdxl` `main` models; there are none"
            );
        } else {
            assert!(
                !candidates.is_empty(),
                "installed models are suggested: {err}"
            );
        }
    });
}

#[test]
fn a_batch_runs_and_its_outputs_map_to_downloadable_images() {
    let client = client();
    let dir = tempfile::tempdir().expect("tempdir");
    block_on(async {
        let batch = blur_batch(&[1.0, 2.0], 1, &unique("invk-run-test"));
        let result = client.queue().enqueue_batch(&batch).await.expect("enqueue");
        assert_eq!((result.requested, result.enqueued), (2, 2));
        assert_eq!(
            result.batch_id(),
            batch.batch.batch_id.as_deref().expect("id")
        );
        assert!(
            result.item_ids.windows(2).all(|w| w[0] < w[1]),
            "ids ascend: {:?}",
            result.item_ids
        );

        let items = wait_finished(&client, &result.item_ids, Duration::from_secs(180)).await;
        let status = client
            .queue()
            .batch_status(result.batch_id())
            .await
            .expect("batch status");
        assert_eq!((status.total, status.completed), (2, 2), "{items:?}");
        assert!(status.is_done());
        for (item, radius) in items.iter().zip([1.0, 2.0]) {
            assert_eq!(item.status, QueueItemStatus::Completed, "{item:?}");
            let values = item.field_values.as_ref().expect("field values");
            assert_eq!(values[0].node_path, "blur");
            assert_eq!(values[0].value, json!(radius));
            let outputs = item.outputs();
            assert_eq!(
                outputs.keys().map(String::as_str).collect::<Vec<_>>(),
                ["blank", "blur", "save"]
            );
            assert!(outputs["blur"].is_intermediate && !outputs["save"].is_intermediate);
            let saved = &outputs["save"].images;
            assert_eq!(saved.len(), 1);
            let dto = client.images().get(&saved[0]).await.expect("output image");
            assert_eq!((dto.width, dto.height), (32, 32));
            assert_eq!(dto.session_id.as_deref(), Some(item.session_id.as_str()));
            let dest = dir.path().join(format!("{}.png", item.item_id));
            client
                .images()
                .download(&saved[0], &dest)
                .await
                .expect("download");
            assert!(fs_err::read(&dest).expect("read").starts_with(b"\x89PNG"));
        }
        let single = client.queue().item(items[0].item_id).await.expect("item");
        assert_eq!(single.outputs(), items[0].outputs());
        clean_up_items(&client, &items).await;
    });
}

#[test]
fn a_canceled_batch_stops_its_pending_items() {
    let client = client();
    block_on(async {
        let result = client
            .queue()
            .enqueue_batch(&blur_batch(&[], 4, &unique("invk-run-test")))
            .await
            .expect("enqueue");
        let canceled = client
            .queue()
            .cancel_batches(&[result.batch_id().to_owned()])
            .await
            .expect("cancel");
        assert!(canceled >= 1, "nothing was canceled");
        let items = wait_finished(&client, &result.item_ids, Duration::from_secs(120)).await;
        let count = |s: QueueItemStatus| items.iter().filter(|i| i.status == s).count();
        assert_eq!(
            count(QueueItemStatus::Canceled) + count(QueueItemStatus::Completed),
            4,
            "{items:?}"
        );
        assert!(count(QueueItemStatus::Canceled) >= 1);
        let status = client.queue().status().await.expect("queue status");
        assert!(status.processor.is_started);
        clean_up_items(&client, &items).await;
    });
}

#[test]
fn invalid_graphs_are_refused_naming_node_and_field() {
    let client = client();
    block_on(async {
        let mut batch = blur_batch(&[], 1, &unique("invk-run-test"));
        batch.batch.graph.nodes["blank"]["width"] = json!("wide");
        let err = client.queue().enqueue_batch(&batch).await.expect_err("422");
        assert_eq!(err.status(), Some(StatusCode::UNPROCESSABLE_ENTITY));
        let issue = &err.validation_issues()[0];
        assert_eq!(
            (issue.node_id.as_deref(), issue.field.as_deref()),
            (Some("blank"), Some("width"))
        );
        let status = client
            .queue()
            .batch_status(batch.batch.batch_id.as_deref().expect("id"))
            .await
            .expect("status");
        assert_eq!(status.total, 0, "nothing was enqueued");
        let err = client
            .queue()
            .item(i64::from(i32::MAX))
            .await
            .expect_err("no such item");
        assert_eq!(status_of(&err), Some(404));
    });
}

#[test]
fn the_server_reports_its_version_and_single_user_mode() {
    let client = client();
    block_on(async {
        assert_eq!(
            client.app().version().await.expect("version"),
            invk_run::local_server::wanted_version()
        );
        let status = client.auth().status().await.expect("auth status");
        assert!(!status.multiuser_enabled);
        let err = client
            .auth()
            .login("a@b.c", "x")
            .await
            .expect_err("no login on a single-user server");
        assert_eq!(status_of(&err), Some(403), "{err}");
        assert!(client.token().is_none());
    });
}

#[test]
fn multiuser_login_sends_the_bearer_token_and_unauthenticated_calls_get_401() {
    let server = support::multiuser_server();
    let anonymous = Client::new(server.url()).expect("client");
    block_on(async {
        let status = anonymous.auth().status().await.expect("status");
        assert!(status.multiuser_enabled && !status.setup_required);
        let err = anonymous
            .boards()
            .list(&BoardListQuery::default())
            .await
            .expect_err("401");
        assert_eq!(status_of(&err), Some(401), "{err}");
        assert!(
            err.to_string()
                .contains("pass `--token`, or `--email` with `INVK_PASSWORD`"),
            "{err}"
        );

        let client = Client::new(server.url()).expect("client");
        let login = client
            .auth()
            .login(&server.admin_email, &server.admin_password)
            .await
            .expect("login");
        assert!(login.user.is_admin);
        assert!(
            !format!("{login:?}").contains(login.token.expose()),
            "the token is redacted"
        );
        assert_eq!(client.token().as_ref(), Some(&login.token));
        assert_eq!(
            client.auth().me().await.expect("me").email,
            server.admin_email
        );

        // A change answers with a refreshed token, which later calls use.
        let board = client
            .boards()
            .create(&unique("invk-run-test-mu"))
            .await
            .expect("create as admin");
        assert!(client.token().is_some());
        client
            .boards()
            .get(&board.board_id)
            .await
            .expect("get with the current token");
        client
            .boards()
            .delete(&board.board_id, true)
            .await
            .expect("delete");
        assert_eq!(
            status_of(
                &client
                    .boards()
                    .get(&board.board_id)
                    .await
                    .expect_err("gone")
            ),
            Some(404)
        );

        let forged = Client::builder(server.url())
            .token("not-a-jwt")
            .build()
            .expect("client");
        assert_eq!(
            status_of(&forged.auth().me().await.expect_err("forged token")),
            Some(401)
        );
    });
}

fn cli_settings() -> insta::Settings {
    let mut settings = insta::Settings::clone_current();
    settings.add_filter(r"http://127\.0\.0\.1:\d+", "[SERVER]");
    settings.add_filter(
        r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
        "[UUID]",
    );
    settings.add_filter(r"/[^\s`]*/invk-run-cli-[^/\s`]*", "[TEMP]");
    settings
}

#[test]
fn workflow_commands_upload_download_and_delete() {
    let server = support::server();
    let dir = tempfile::Builder::new()
        .prefix("invk-run-cli-")
        .tempdir()
        .expect("tempdir");
    let name = unique("invk-run-test-cli");
    let file = workflow_file(dir.path(), &name);
    let upload = support::invk_run()
        .args(["workflows", "upload"])
        .arg(&file)
        .args(["--server", server.url()])
        .output()
        .expect("run");
    assert_eq!(
        upload.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&upload.stderr)
    );
    let id = String::from_utf8(upload.stdout)
        .expect("utf8")
        .trim()
        .to_owned();
    assert!(
        uuid::Uuid::parse_str(&id).is_ok(),
        "the new id is printed: {id}"
    );

    let out = dir.path().join("downloaded.json");
    let _guard = cli_settings().bind_to_scope();
    assert_cmd_snapshot!(
        support::invk_run().args(["workflows", "download", &name]).arg(&out).env("INVK_SERVER", server.url()),
        @r"
    success: true
    exit_code: 0
    ----- stdout -----

    ----- stderr -----
    wrote workflow `invk-run-test-cli-[UUID]` (`[UUID]`) to `[TEMP]/downloaded.json`
    "
    );
    let written: Value =
        serde_json::from_str(&fs_err::read_to_string(&out).expect("read")).expect("json");
    assert_eq!(written["name"], json!(name));

    assert_cmd_snapshot!(support::invk_run().args(["workflows", "delete", &id, "--server", server.url()]), @r"
    success: true
    exit_code: 0
    ----- stdout -----

    ----- stderr -----
    deleted workflow `invk-run-test-cli-[UUID]` (`[UUID]`)
    ");
    let again = support::invk_run()
        .args(["workflows", "delete", &id, "--server", server.url()])
        .output()
        .expect("run");
    assert_eq!(again.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(
        stderr.starts_with(&format!("error: no workflow has the id or name `{id}`")),
        "{stderr}"
    );
    assert_cmd_snapshot!(
        support::invk_run().args(["workflows", "delete", DEFAULT_WORKFLOW_ID, "--server", server.url()]),
        @r"
    success: false
    exit_code: 1
    ----- stdout -----

    ----- stderr -----
    error: workflow `default_[UUID]` is read-only: it is built into the server
    "
    );
    let still_there = block_on(client().workflows().get(DEFAULT_WORKFLOW_ID));
    assert!(still_there.is_ok(), "the built-in workflow is untouched");
}

#[test]
fn board_commands_delete_by_name() {
    let server = support::server();
    let client = client();
    let name = unique("invk-run-test-cli-board");
    let board = block_on(client.boards().create(&name)).expect("create");
    let _guard = cli_settings().bind_to_scope();
    let list = support::invk_run()
        .args(["boards", "list", "--json", "--server", server.url()])
        .output()
        .expect("run");
    assert_eq!(list.status.code(), Some(0));
    let listed: Value = serde_json::from_slice(&list.stdout).expect("json");
    assert!(
        listed
            .as_array()
            .expect("array")
            .iter()
            .any(|b| b["board_id"] == json!(board.board_id))
    );

    assert_cmd_snapshot!(support::invk_run().args(["boards", "delete", &name, "--server", server.url()]), @r"
    success: true
    exit_code: 0
    ----- stdout -----

    ----- stderr -----
    deleted board `invk-run-test-cli-board-[UUID]` (`[UUID]`); 0 images are now uncategorized
    ");
    assert_eq!(
        status_of(&block_on(client.boards().get(&board.board_id)).expect_err("gone")),
        Some(404)
    );
    let again = support::invk_run()
        .args(["boards", "delete", &name, "--server", server.url()])
        .output()
        .expect("run");
    assert_eq!(again.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(
        stderr.starts_with(&format!("error: no board has the id or name `{name}`")),
        "{stderr}"
    );
}
