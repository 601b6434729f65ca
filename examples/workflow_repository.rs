//! The workflow repository: list the server's workflows, upload a workflow file, download it
//! back, and delete it.
//!
//! ```text
//! cargo run --example workflow_repository -- [SERVER_URL] [WORKFLOW.json]
//! ```
//!
//! The server URL defaults to `INVK_SERVER`, else `http://127.0.0.1:9090`. Without a workflow
//! file, only the list is printed.

use std::path::PathBuf;

use invk_run::client::{Client, ClientError, DEFAULT_SERVER};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), ClientError> {
    let mut args = std::env::args().skip(1);
    let server = args
        .next()
        .or_else(|| std::env::var(invk_run::env_vars::INVK_SERVER).ok())
        .unwrap_or_else(|| DEFAULT_SERVER.to_owned());
    let file = args.next().map(PathBuf::from);

    let client = Client::new(&server)?;
    println!("InvokeAI {} at {server}", client.app().version().await?);
    for workflow in client.workflows().list_all().await? {
        println!(
            "{:<50} {:<8} {}",
            workflow.workflow_id,
            workflow.category.as_str(),
            workflow.name
        );
    }

    let Some(file) = file else { return Ok(()) };
    let id = client.workflows().upload_file(&file).await?;
    println!("uploaded {} as {id}", file.display());

    let copy = std::env::temp_dir().join(format!("{id}.json"));
    let record = client.workflows().download_to_file(&id, &copy).await?;
    println!("downloaded `{}` to {}", record.name, copy.display());

    client.workflows().delete(&id).await?;
    println!("deleted {id}");
    Ok(())
}
