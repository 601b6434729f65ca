//! Every example workflow (`examples/workflows/*.json`), converted by our code, enqueues on the
//! real server and completes: each output node produced images of the expected size. Image
//! inputs get an uploaded test photo; everything is deleted afterwards.

use std::path::Path;
use std::time::Duration;

use invk_run::client::{Cleanup, QueueItem, QueueItemStatus, SubmitOptions, TrackMode};
use invk_run::workflow::{InkType, WorkflowDefinition};

use super::handle::{client, photo};

/// The size each image of an output node must have.
enum Size {
    /// Always this size.
    Fixed(u32, u32),
    /// The `width` and `height` the batch substituted into the item.
    FromBatch,
}

/// What each example workflow must produce: item count, and per output label the image size.
fn expectations(file: &str) -> Option<(usize, Vec<(&'static str, Size)>)> {
    Some(match file {
        "blur-and-tint.json" => (
            1,
            vec![
                ("Blurred", Size::Fixed(64, 64)),
                ("Tinted", Size::Fixed(64, 64)),
            ],
        ),
        "framed-thumbnail.json" => (
            1,
            vec![
                ("Framed", Size::Fixed(96, 96)),
                ("Soft copy", Size::Fixed(96, 96)),
            ],
        ),
        // Blur and tint, with unconnected Seed (integer) and Prompt (string) nodes.
        "seeded-tint.json" => (
            1,
            vec![
                ("Blurred", Size::Fixed(64, 64)),
                ("Tinted", Size::Fixed(64, 64)),
            ],
        ),
        // 2 zipped sizes x 3 hues; the size is the batch's.
        "size-sweep.json" => (6, vec![("Save Image", Size::FromBatch)]),
        _ => return None,
    })
}

fn batch_size(item: &QueueItem) -> (u32, u32) {
    let field = |name: &str| {
        item.field_values
            .iter()
            .flatten()
            .find(|v| v.field_name == name)
            .and_then(|v| v.value.as_u64())
            .and_then(|v| u32::try_from(v).ok())
            .unwrap_or_else(|| panic!("item {} has no batch `{name}`", item.item_id))
    };
    (field("width"), field("height"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_example_workflow_completes_with_the_expected_outputs() {
    let client = client();
    let dir = tempfile::tempdir().expect("tempdir");
    let folder = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/workflows");
    let mut files: Vec<_> = fs_err::read_dir(&folder)
        .expect("examples/workflows")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no example workflows");
    for file in files {
        let name = file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let (count, outputs) = expectations(&name).unwrap_or_else(|| {
            panic!("add the expected outputs of `{name}` to `expectations` in tests/integration/examples.rs")
        });
        let mut handle = client
            .workflow(WorkflowDefinition::load(&file).expect("loads"))
            .await
            .expect("handle");
        let image_inputs: Vec<String> = handle
            .inputs()
            .iter()
            .filter(|i| matches!(i.ty(), InkType::Image) && i.is_missing())
            .map(|i| i.system_name.clone())
            .collect();
        for input in image_inputs {
            handle
                .set_image_file(input.as_str(), photo(dir.path(), 120, 90))
                .await
                .expect("upload");
        }
        assert_eq!(
            handle.missing_required_inputs(),
            Vec::<String>::new(),
            "{name}"
        );
        let submission = handle
            .submit(&SubmitOptions::default())
            .await
            .unwrap_or_else(|e| panic!("{name}: enqueue: {e}"));
        assert_eq!(submission.item_ids.len(), count, "{name}");
        let items = handle
            .wait(
                TrackMode::Events,
                Duration::from_secs(5),
                Some(Duration::from_secs(600)),
                |_| {},
            )
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(items.len(), count, "{name}");
        for item in &items {
            assert_eq!(
                item.status,
                QueueItemStatus::Completed,
                "{name}: item {}: {:?} {:?}",
                item.item_id,
                item.error_type,
                item.error_message
            );
            let produced = handle.outputs(item).expect("completed");
            let labels: Vec<&str> = produced.iter().map(|o| o.label.as_str()).collect();
            let wanted: Vec<&str> = outputs.iter().map(|(l, _)| *l).collect();
            assert_eq!(labels, wanted, "{name}: output nodes");
            for (output, (_, size)) in produced.iter().zip(&outputs) {
                assert_eq!(output.images.len(), 1, "{name}: {}", output.label);
                let want = match size {
                    Size::Fixed(w, h) => (*w, *h),
                    Size::FromBatch => batch_size(item),
                };
                let dto = client.images().get(&output.images[0]).await.expect("image");
                assert_eq!((dto.width, dto.height), want, "{name}: {}", output.label);
            }
        }
        handle
            .cleanup(Cleanup {
                uploads: true,
                outputs: true,
                queue_items: true,
            })
            .await
            .expect("cleanup");
    }
}
