//! Use case 3: submit a workflow and follow its queue items through the server's Socket.IO
//! events (per-node progress), with polling as the safety net; on timeout, cancel.
//!
//! ```text
//! cargo run --example use_case_3_submit_and_track -- [SERVER_URL] [WORKFLOW.json] [IMAGE]
//! ```
//!
//! The workflow defaults to `examples/workflows/size-sweep.json` (6 items, no image needed).
//! `IMAGE` is uploaded for every image input still empty. Everything the run made is deleted
//! at the end.

use std::time::Duration;

use futures_util::StreamExt;
use invk_run::client::{Cleanup, Client, DEFAULT_SERVER, HandleError, SubmitOptions, TrackEvent};
use invk_run::workflow::{InkType, WorkflowDefinition};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), HandleError> {
    let mut args = std::env::args().skip(1);
    let server = args
        .next()
        .or_else(|| std::env::var(invk_run::env_vars::INVK_SERVER).ok())
        .unwrap_or_else(|| DEFAULT_SERVER.to_owned());
    let file = args
        .next()
        .unwrap_or_else(|| "examples/workflows/size-sweep.json".to_owned());
    let image = args.next();

    let client = Client::new(&server)?;
    let mut handle = client.workflow(WorkflowDefinition::load(&file)?).await?;
    if let Some(image) = &image {
        let empty: Vec<String> = handle
            .inputs()
            .iter()
            .filter(|i| matches!(i.ty(), InkType::Image) && i.is_missing())
            .map(|i| i.system_name.clone())
            .collect();
        for input in empty {
            handle.set_image_file(input.as_str(), image).await?;
        }
    }

    let submission = handle.submit(&SubmitOptions::default()).await?;
    println!(
        "batch {}: {} of {} sessions enqueued, items {:?}",
        submission.batch_id, submission.enqueued, submission.requested, submission.item_ids
    );
    let first = handle.item(submission.item_ids[0]).await?;
    println!(
        "item {}: session {}, status {}, created {}",
        first.item_id,
        first.session_id,
        first.status.as_str(),
        first.created_at
    );

    let events = handle.wait_events(Duration::from_secs(5)).await?;
    let followed = tokio::time::timeout(
        Duration::from_secs(600),
        events.for_each(|event| async move {
            match event {
                TrackEvent::Started { item_id } => println!("item {item_id} started"),
                TrackEvent::Progress {
                    item_id,
                    node_id,
                    message,
                    percentage,
                    ..
                } => println!("item {item_id} {node_id}: {message} {percentage:?}"),
                TrackEvent::NodeCompleted { item_id, node_id } => {
                    println!("item {item_id}: node {node_id} done");
                }
                TrackEvent::Finished(item) => println!(
                    "item {} {} {}",
                    item.item_id,
                    item.status.as_str(),
                    item.error_message.unwrap_or_default()
                ),
                other => println!("{other:?}"),
            }
        }),
    )
    .await;
    if followed.is_err() {
        println!("timed out: canceled {} item(s)", handle.cancel().await?);
        handle
            .wait_blocking(
                Duration::from_secs(1),
                Some(Duration::from_secs(60)),
                |_| {},
            )
            .await?;
    }

    let report = handle
        .cleanup(Cleanup {
            uploads: true,
            outputs: true,
            queue_items: true,
        })
        .await?;
    println!(
        "cleaned up {} image(s) and {} queue item(s)",
        report.deleted_images.len(),
        report.deleted_items.len()
    );
    Ok(())
}
