//! Use case 1: load a workflow exported from the InvokeAI web UI and list its inputs.
//!
//! ```text
//! cargo run --example use_case_1_inputs -- [SERVER_URL] [WORKFLOW.json]
//! ```
//!
//! The server URL defaults to `INVK_SERVER`, else `http://127.0.0.1:9090`; the workflow to
//! `examples/workflows/blur-and-tint.json`. The input types come from the server's schemas (or
//! the shipped snapshot when the server cannot be reached).

use invk_run::client::{Client, DEFAULT_SERVER, HandleError};
use invk_run::workflow::WorkflowDefinition;

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

    let definition = WorkflowDefinition::load(&file)?;
    println!("name:        {}", definition.name());
    println!("description: {}", definition.description());
    println!("version:     {}", definition.version());
    println!("author:      {}", definition.author());

    let client = Client::new(&server)?;
    let handle = client.workflow(definition).await?;
    println!("types from:  {:?}\n", handle.schema_source());

    println!(
        "{:<3} {:<20} {:<50} {:<22} {:<8} value",
        "#", "user name", "system name", "type", "required"
    );
    for row in handle.input_summaries() {
        println!(
            "{:<3} {:<20} {:<50} {:<22} {:<8} {}",
            row.index, row.user_name, row.system_name, row.ty, row.required, row.value
        );
    }

    match handle.by_user_name() {
        Ok(map) => println!("\nuser names are unique: {} inputs", map.len()),
        Err(err) => println!("\n{err}"),
    }
    let missing = handle.missing_required_inputs();
    if missing.is_empty() {
        println!("every required input has a value");
    } else {
        println!("still needed: {}", missing.join(", "));
    }
    Ok(())
}
