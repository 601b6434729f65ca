//! Use cases 1 and 2, offline: load a workflow, list its inputs, set values by user name,
//! system name and index, see a value refused, see what is still missing, print the payload.
//!
//! Run with `cargo run --example workflow_inputs [WORKFLOW.json]`.

use invk_run::workflow::{
    ConvertOptions, InputRef, SchemaSet, Workflow, WorkflowDefinition, WorkflowError,
};
use serde_json::json;

fn main() -> Result<(), WorkflowError> {
    let path = std::env::args().nth(1).unwrap_or_else(|| {
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/examples/workflows/blur-and-tint.json"
        )
        .to_string()
    });

    // Use case 1: load the definition, make a handle typed by the shipped schemas, list inputs.
    let definition = WorkflowDefinition::load(&path)?;
    println!(
        "{} {} by {}: {}",
        definition.name(),
        definition.version(),
        definition.author(),
        definition.description()
    );
    let mut workflow = Workflow::new(definition, &SchemaSet::snapshot())?;
    for input in workflow.inputs() {
        let value = input
            .value
            .as_ref()
            .map(|v| v.display())
            .unwrap_or_default();
        println!(
            "  #{} {:<14} {:<50} {:<8} required={} value={value}",
            input.index,
            input.user_name,
            input.system_name,
            input.ty().to_string(),
            input.required
        );
    }
    match workflow.by_user_name() {
        Ok(map) => println!("{} distinct user names", map.len()),
        Err(e) => println!("no map by user name: {e}"),
    }
    println!("missing before: {:?}", workflow.missing_required_inputs());

    // Use case 2: set values by user name, system name and index; values are converted.
    if workflow.input(&InputRef::parse("Source image")).is_ok() {
        workflow.set(
            &InputRef::parse("Source image"),
            json!({"image_name": "uploaded-by-the-board-repository.png"}),
        )?;
        workflow.set(&InputRef::parse("Width"), json!("48"))?; // "48" becomes 48
        let radius = workflow
            .input(&InputRef::parse("Blur radius"))?
            .system_name
            .clone();
        workflow.set(&InputRef::parse(&radius), json!("0.5"))?; // by system name
        workflow.set(&InputRef::Index(5), json!(45))?; // "Hue shift", by index

        // A refused value says which input, which value and which rule.
        if let Err(e) = workflow.set(&InputRef::parse("Blur type"), json!("motion")) {
            println!("refused: {e}");
        }
        if let Err(e) = workflow.check(&InputRef::parse("Widht"), &json!(1)) {
            println!("refused: {e}");
        }
    }
    println!("missing after: {:?}", workflow.missing_required_inputs());
    for problem in workflow.validate_inputs() {
        println!("invalid: {problem}");
    }
    for output in workflow.outputs() {
        println!(
            "output: {} ({}) board {:?}",
            output.label, output.node_type, output.board
        );
    }

    // The payload the web UI would enqueue (offline: nothing is sent).
    let payload = workflow.to_enqueue(&ConvertOptions {
        board: Some("my-board-id".into()),
        ..ConvertOptions::default()
    })?;
    println!(
        "graph: {}",
        serde_json::to_string_pretty(&payload.batch.graph).unwrap_or_default()
    );
    println!("sessions: {}", payload.batch.session_count());
    Ok(())
}
