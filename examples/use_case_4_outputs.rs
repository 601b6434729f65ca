//! Use case 4: after completion, map each output node to the images it produced, download them,
//! then delete from the server what the run uploaded and produced.
//!
//! ```text
//! cargo run --example use_case_4_outputs -- [SERVER_URL] [WORKFLOW.json] [OUT_DIR] [IMAGE]
//! ```
//!
//! The workflow defaults to `examples/workflows/size-sweep.json`, the folder to `outputs`.
//! `IMAGE` is uploaded for every image input still empty. Existing files are never
//! overwritten.

use std::time::Duration;

use invk_run::client::{Cleanup, Client, DEFAULT_SERVER, HandleError, SubmitOptions};
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
    let out = args.next().unwrap_or_else(|| "outputs".to_owned());
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
    handle.submit(&SubmitOptions::default()).await?;
    let items = handle
        .wait_blocking(
            Duration::from_secs(1),
            Some(Duration::from_secs(600)),
            |p| {
                if p.event.is_terminal() {
                    println!("{}/{} finished", p.finished, p.total);
                }
            },
        )
        .await?;

    for item in &items {
        match handle.outputs(item) {
            Ok(outputs) => {
                for output in outputs {
                    println!(
                        "item {} node `{}` ({}): images {:?}, board {:?}",
                        item.item_id, output.label, output.node_id, output.images, output.board
                    );
                }
            }
            Err(err) => println!("{err}"),
        }
    }
    for path in handle.download_outputs(&out).await? {
        println!("wrote {}", path.display());
    }

    let report = handle
        .cleanup(Cleanup {
            uploads: true,
            outputs: true,
            queue_items: true,
        })
        .await?;
    println!(
        "deleted {} image(s), {} board(s), {} queue item(s); kept {:?}",
        report.deleted_images.len(),
        report.deleted_boards.len(),
        report.deleted_items.len(),
        report.kept
    );
    Ok(())
}
