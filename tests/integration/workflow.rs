//! The workflow core through its public API and the `inputs`/`graph` commands: loading every
//! shipped workflow, inputs in form order, setting values by every kind of name, refusals,
//! batch data, outputs.

use std::path::{Path, PathBuf};

use insta_cmd::assert_cmd_snapshot;
use invk_run::workflow::{
    ConvertOptions, InputRef, OutputBoard, Workflow, WorkflowDefinition, WorkflowError,
};
use serde_json::{Value, json};

use crate::support;

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples/workflows")
        .join(name)
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/workflows")
        .join(name)
}

fn load(path: &Path) -> Workflow {
    let def = WorkflowDefinition::load(path).unwrap_or_else(|e| panic!("{e}"));
    Workflow::new(def, crate::support::schemas()).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn every_shipped_workflow_loads_and_writes_back_unchanged() {
    let dir = support::installation()
        .default_workflows_dir()
        .expect("default workflows");
    let mut count = 0;
    for entry in fs_err::read_dir(&dir).expect("list") {
        let path = entry.expect("entry").path();
        let text = fs_err::read_to_string(&path).expect("read");
        let def = WorkflowDefinition::load(&path).unwrap_or_else(|e| panic!("{e}"));
        let original: Value = serde_json::from_str(&text).expect("json");
        assert_eq!(
            def.to_json(),
            original,
            "{} changed through load and to_json",
            path.display()
        );
        let wf = Workflow::new(def, crate::support::schemas()).unwrap_or_else(|e| panic!("{e}"));
        assert!(!wf.inputs().is_empty(), "{} has inputs", path.display());
        count += 1;
    }
    assert_eq!(count, 26);
}

#[test]
fn inputs_follow_the_form_and_are_typed_from_the_schema() {
    let wf = load(&example("blur-and-tint.json"));
    let names: Vec<&str> = wf.inputs().iter().map(|i| i.user_name.as_str()).collect();
    assert_eq!(
        names,
        [
            "Source image",
            "Width",
            "Height",
            "Blur radius",
            "Blur type",
            "Hue shift",
            "Board",
            "Tinted board"
        ]
    );
    let radius = wf
        .input(&InputRef::parse("Blur radius"))
        .expect("by user name");
    assert_eq!(radius.ty().to_string(), "float");
    assert_eq!(radius.index, 3);
    assert_eq!(
        wf.input(&InputRef::parse("#3"))
            .expect("by index")
            .system_name,
        radius.system_name
    );
    assert_eq!(
        wf.input(&InputRef::parse(&radius.system_name))
            .expect("by system name")
            .index,
        3
    );
    assert_eq!(
        wf.missing_required_inputs(),
        [wf.inputs()[0].system_name.clone()]
    );
    assert_eq!(wf.by_system_name().len(), 8);
    assert_eq!(wf.by_user_name().expect("unique names").len(), 8);
}

#[test]
fn colliding_user_names_name_the_nodes_and_fields() {
    let path = fixture("flux-image-to-image.json");
    let mut json: Value =
        serde_json::from_str(&fs_err::read_to_string(&path).expect("read")).expect("json");
    // Give the negative prompt the positive prompt's label: two inputs called `Positive Prompt`.
    for node in json["nodes"].as_array_mut().expect("nodes") {
        if node["id"] == "e87ba3b6-c98f-4644-903a-e13c421f2add" {
            node["data"]["inputs"]["prompt"]["label"] = json!("Positive Prompt");
        }
    }
    let def = WorkflowDefinition::from_json_value(json, "flux.json").expect("loads");
    let wf = Workflow::new(def, crate::support::schemas()).expect("workflow");
    let err = wf.by_user_name().expect_err("collision").to_string();
    assert_eq!(
        err,
        "workflow `flux-image-to-image`: input names repeat: `Positive Prompt` names \
         01f674f8-b3d1-4df1-acac-6cb8e0bfb63c.prompt and e87ba3b6-c98f-4644-903a-e13c421f2add.prompt"
    );
    let err = wf
        .input(&InputRef::parse("Positive Prompt"))
        .expect_err("ambiguous");
    assert!(
        matches!(err, WorkflowError::AmbiguousInput { ref candidates, .. } if candidates.len() == 2),
        "{err}"
    );
}

#[test]
fn values_are_converted_checked_and_land_in_the_graph() {
    let mut wf = load(&example("blur-and-tint.json"));
    wf.set(&InputRef::parse("Width"), json!("48"))
        .expect("string to integer");
    wf.set(&InputRef::parse("Source image"), json!("pic.png"))
        .expect("image by name");
    wf.set(&InputRef::parse("#3"), json!(0.5)).expect("radius");
    let err = wf
        .set(&InputRef::parse("Blur type"), json!("box blur"))
        .expect_err("not a member")
        .to_string();
    assert_eq!(
        err,
        format!(
            "input `Blur type` ({}): `box blur` is not one of `gaussian`, `box` (did you mean `box`?)",
            wf.inputs()[4].system_name
        )
    );
    let err = wf
        .set(&InputRef::parse("Widht"), json!(1))
        .expect_err("unknown")
        .to_string();
    assert_eq!(
        err,
        "workflow `Blur and tint (example)` has no input `Widht` (did you mean `Width`?)"
    );
    let err = wf
        .set(&InputRef::parse("#99"), json!(1))
        .expect_err("index")
        .to_string();
    assert_eq!(
        err,
        "workflow `Blur and tint (example)` has no input #99: it has 8 inputs (#0 to #7)"
    );
    assert!(
        wf.validate_inputs().is_empty(),
        "{:?}",
        wf.validate_inputs()
    );
    assert!(wf.missing_required_inputs().is_empty());

    let batch = wf
        .to_batch(&ConvertOptions {
            board: Some("b-1".into()),
            ..ConvertOptions::default()
        })
        .expect("batch");
    let resize = &batch.graph.nodes[&wf.inputs()[1].node_id];
    assert_eq!(resize["width"], json!(48));
    assert_eq!(
        batch.graph.nodes[&wf.inputs()[0].node_id]["image"],
        json!({"image_name": "pic.png"})
    );
    for output in wf.outputs() {
        assert_eq!(
            batch.graph.nodes[&output.node_id]["board"],
            json!({"board_id": "b-1"})
        );
    }
    let embedded = batch.workflow.expect("embedded workflow");
    assert!(embedded.get("id").is_none());
    assert_eq!(embedded["name"], "Blur and tint (example)");
}

#[test]
fn a_value_breaking_an_exclusive_minimum_is_refused_with_the_rule() {
    let dir = support::installation()
        .default_workflows_dir()
        .expect("default workflows");
    let mut wf = load(&dir.join("Wan 2.2 Text to Image.json"));
    let steps = wf
        .inputs()
        .iter()
        .find(|i| i.field_name == "steps")
        .map(|i| i.system_name.clone())
        .expect("a steps input");
    let err = wf
        .set(&InputRef::parse(&steps), json!(-5))
        .expect_err("refused")
        .to_string();
    assert!(
        err.ends_with("-5 is not greater than the exclusive minimum 0"),
        "{err}"
    );
    assert!(err.contains(&format!("({steps})")), "{err}");
}

#[test]
fn model_names_stay_unresolved_until_given_an_identifier() {
    let dir = support::installation()
        .default_workflows_dir()
        .expect("default workflows");
    let mut wf = load(&dir.join("Text to Image - SD1.5.json"));
    assert_eq!(
        wf.missing_required_inputs(),
        ["c8d55139-f380-4695-b7f2-8b3d1e1e3db8.model"]
    );
    wf.set(&InputRef::parse("model"), json!("Dreamshaper 8"))
        .expect("a name");
    let unresolved = wf.unresolved_models();
    assert_eq!(unresolved.len(), 1);
    assert_eq!(unresolved[0].model_name, "Dreamshaper 8");
    assert_eq!(unresolved[0].model_types, ["main"]);
    let err = wf
        .to_batch(&ConvertOptions::default())
        .expect_err("unresolved")
        .to_string();
    assert_eq!(
        err,
        "model inputs given by name must be resolved against the server first: \
         c8d55139-f380-4695-b7f2-8b3d1e1e3db8.model = `Dreamshaper 8`"
    );
    let model = json!({"key": "k1", "hash": "blake3:x", "name": "Dreamshaper 8", "base": "sd-1", "type": "main"});
    wf.set(&InputRef::parse("model"), model.clone())
        .expect("identifier");
    assert!(wf.unresolved_models().is_empty());
    let batch = wf.to_batch(&ConvertOptions::default()).expect("batch");
    assert_eq!(
        batch.graph.nodes["c8d55139-f380-4695-b7f2-8b3d1e1e3db8"]["model"],
        model
    );
}

#[test]
fn batch_nodes_become_zipped_and_product_batch_data() {
    let wf = load(&example("size-sweep.json"));
    let batch = wf
        .to_batch(&ConvertOptions {
            runs: 2,
            ..ConvertOptions::default()
        })
        .expect("batch");
    assert_eq!(
        batch.session_count(),
        12,
        "2 zipped sizes/radii x 3 hues x 2 runs"
    );
    let types: Vec<&str> = batch
        .graph
        .nodes
        .values()
        .filter_map(|n| n["type"].as_str())
        .collect();
    assert_eq!(
        types,
        ["blank_image", "img_blur", "img_hue_adjust", "save_image"]
    );
    let data = batch.data.expect("batch data");
    let fields: Vec<Vec<&str>> = data
        .iter()
        .map(|g| g.iter().map(|d| d.field_name.as_str()).collect())
        .collect();
    assert_eq!(fields, [vec!["hue"], vec!["width", "height", "radius"]]);
}

#[test]
fn outputs_are_the_non_intermediate_file_producers_with_their_boards() {
    let wf = load(&example("framed-thumbnail.json"));
    let outputs: Vec<(String, String, OutputBoard)> = wf
        .outputs()
        .into_iter()
        .map(|o| (o.label, o.node_type, o.board))
        .collect();
    assert_eq!(
        outputs,
        [
            (
                "Framed".to_string(),
                "canvas_output".to_string(),
                OutputBoard::Unset
            ),
            (
                "Soft copy".to_string(),
                "save_image".to_string(),
                OutputBoard::Auto
            )
        ]
    );
    let dir = support::installation()
        .default_workflows_dir()
        .expect("default workflows");
    let video = load(&dir.join("Text to Video - Wan 2.2 Lightning.json"));
    assert!(
        video.outputs().iter().any(|o| !o.video_fields.is_empty()),
        "{:?}",
        video.outputs()
    );
}

fn cmd() -> std::process::Command {
    let mut c = support::invk_run();
    c.current_dir(env!("CARGO_MANIFEST_DIR"));
    c
}

#[test]
fn cli_inputs_lists_a_table() {
    assert_cmd_snapshot!(cmd().args(["inputs", "examples/workflows/framed-thumbnail.json"]));
}

#[test]
fn cli_inputs_json() {
    assert_cmd_snapshot!(cmd().args(["inputs", "examples/workflows/size-sweep.json", "--json"]));
}

#[test]
fn cli_graph_prints_the_payload_with_values_set() {
    assert_cmd_snapshot!(cmd().args([
        "graph",
        "examples/workflows/size-sweep.json",
        "--json",
        "--set",
        "Hues=[10, 20]",
        "--set",
        "#3=my-board",
    ]));
}

#[test]
fn cli_graph_refuses_a_bad_value_with_exit_2() {
    assert_cmd_snapshot!(cmd().args([
        "graph",
        "examples/workflows/blur-and-tint.json",
        "--set",
        "Width=wide"
    ]));
}

#[test]
fn cli_graph_refuses_a_broken_workflow_with_exit_2() {
    assert_cmd_snapshot!(
        cmd().args(["graph", "tests/fixtures/invalid-workflows/broken-edge.json"])
    );
}
