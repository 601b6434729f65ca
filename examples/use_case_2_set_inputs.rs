//! Use case 2: set a workflow's inputs by user name, system name (`node.field`) or index
//! (`#2`); values are checked and converted on assignment. `NAME=@photo.png` uploads a local
//! image for an image input (it is deleted again at the end).
//!
//! ```text
//! cargo run --example use_case_2_set_inputs -- [SERVER_URL] [WORKFLOW.json] [NAME=VALUE ...]
//! cargo run --example use_case_2_set_inputs -- http://127.0.0.1:9090 \
//!     examples/workflows/blur-and-tint.json "Blur radius=4" "#1=30" "Source image=@photo.png"
//! ```
//!
//! A value is read as JSON when it parses (`4`, `true`, `{"r":1,...}`), else as text.

use invk_run::client::{Cleanup, Client, DEFAULT_SERVER, HandleError};
use invk_run::workflow::WorkflowDefinition;
use serde_json::Value;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), HandleError> {
    let mut args = std::env::args().skip(1);
    let server = args
        .next()
        .or_else(|| std::env::var(invk_run::env_vars::INVK_SERVER).ok())
        .unwrap_or_else(|| DEFAULT_SERVER.to_owned());
    let file = args
        .next()
        .unwrap_or_else(|| "examples/workflows/blur-and-tint.json".to_owned());
    let assignments: Vec<String> = args.collect();

    let client = Client::new(&server)?;
    let mut handle = client.workflow(WorkflowDefinition::load(&file)?).await?;
    for assignment in &assignments {
        let Some((name, raw)) = assignment.split_once('=') else {
            eprintln!("skipping `{assignment}`: write NAME=VALUE");
            continue;
        };
        let result = match raw.strip_prefix('@') {
            Some(path) => handle
                .set_image_file(name, path)
                .await
                .map(|image| format!("uploaded as {image}")),
            None => {
                let value = serde_json::from_str::<Value>(raw)
                    .unwrap_or_else(|_| Value::String(raw.to_owned()));
                handle.set(name, value).map(|()| "set".to_owned())
            }
        };
        match result {
            Ok(what) => {
                let input = handle.input(name)?;
                let shown = input
                    .value
                    .as_ref()
                    .map(|v| v.display())
                    .unwrap_or_default();
                println!("{name}: {what}: {} = {shown}", input.system_name);
            }
            Err(err) => println!("refused: {err}"),
        }
    }

    let problems = handle.validate_inputs();
    if problems.is_empty() {
        println!("all inputs are valid");
    }
    for problem in problems {
        println!("invalid: {problem}");
    }
    println!("missing: {:?}", handle.missing_required_inputs());

    let report = handle
        .cleanup(Cleanup {
            uploads: true,
            ..Cleanup::default()
        })
        .await?;
    if !report.deleted_images.is_empty() {
        println!("deleted the uploads again: {:?}", report.deleted_images);
    }
    Ok(())
}
