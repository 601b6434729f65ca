//! A workflow whose graph the server would refuse (edges forming a cycle, edges from or to a
//! field that does not exist, edges between types that cannot connect) is refused by us first:
//! `validate` and a run exit 2 naming the edge, its nodes and fields, and nothing is uploaded or
//! queued. Each case is first shown to the real server, raw, to check that it refuses it too.

use std::time::{Duration, Instant};

use invk_run::client::Client;
use invk_run::workflow::graph::build_graph;
use invk_run::workflow::payload::{Batch, EnqueueBatch};
use invk_run::workflow::{Workflow, WorkflowDefinition};
use serde_json::{Value, json};

use crate::runner::{Workspace, text};
use crate::support::private::PrivateServer;

const IMAGE: &str = "6513270e-269e-4d37-b2a7-4de452e6b438";
const RESIZE: &str = "d23f0824-128b-4f33-8c5c-7fd0a6a3a450";
const BLUR: &str = "9531985d-5d9d-49f8-9818-e811892f902b";
const HUE: &str = "36f675cc-81e7-4ef5-a8e2-5d940ed90475";

const MANIFEST: &str = "version: 1\nworkflow: blur-and-tint.json\ninputs:\n  Source image: photos/sunset.png\noutput:\n  dir: out\n";

/// One broken graph: how the example workflow's edges change, what the server answers, and
/// what our message must name.
struct Case {
    name: &'static str,
    /// `(edge index, key, new value)` changes to the example's edges.
    edits: &'static [(usize, &'static str, &'static str)],
    server_says: &'static str,
    we_name: &'static [&'static str],
}

const CASES: &[Case] = &[
    Case {
        name: "a node linked to itself",
        edits: &[(1, "source", BLUR)],
        server_says: "Graph contains cycles",
        we_name: &["edges[1]", "cycle", BLUR],
    },
    Case {
        name: "two nodes linked both ways",
        edits: &[(0, "source", HUE)],
        server_says: "Graph contains cycles",
        we_name: &["edges[2]", "cycle", RESIZE, HUE],
    },
    Case {
        name: "an edge from a missing output",
        edits: &[(0, "sourceHandle", "picture")],
        server_says: "Edge source field picture does not exist",
        we_name: &["edges[0]", "no output `picture`", "(image)"],
    },
    Case {
        name: "an edge to a missing input",
        edits: &[(0, "targetHandle", "picture")],
        server_says: "Edge destination field picture does not exist",
        we_name: &["edges[0]", "no input `picture`", "(img_resize)"],
    },
    Case {
        name: "an int output into an image input",
        edits: &[(1, "sourceHandle", "width")],
        server_says: "Edge source and target types do not match",
        we_name: &["edges[1]", RESIZE, "width` (int)", "(ImageField"],
    },
];

fn broken_workflow(case: &Case) -> Value {
    let text = fs_err::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("examples/workflows/blur-and-tint.json"),
    )
    .expect("example");
    let mut wf: Value = serde_json::from_str(&text).expect("json");
    for (i, key, value) in case.edits {
        wf["edges"][*i][*key] = json!(value);
    }
    wf
}

/// What the server answers when it is sent the graph of `wf` as we would build it (with a
/// value in the image input, so only the graph itself can be wrong).
async fn server_answer(client: &Client, wf: &Value) -> String {
    let def = WorkflowDefinition::from_json_value(wf.clone(), "broken.json").expect("well-formed");
    let mut graph = build_graph(&def, None);
    graph.nodes[IMAGE]["image"] = json!({"image_name": "never-uploaded.png"});
    let batch = EnqueueBatch {
        batch: Batch {
            batch_id: None,
            origin: None,
            destination: Some("invk-run-graph-checks".into()),
            data: None,
            graph,
            workflow: None,
            runs: 1,
        },
        prepend: false,
    };
    match client.queue().enqueue_batch(&batch).await {
        Ok(r) => panic!("the server queued the graph: {:?}", r.item_ids),
        Err(e) => format!("{e:?}"),
    }
}

#[test]
fn each_graph_the_server_refuses_is_refused_first_and_nothing_is_sent() {
    // A private server: at the end its queue and its images must both be empty.
    let server = PrivateServer::start(None);
    let url = server.url();
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let client = Client::builder(&url).build().expect("client");
    for case in CASES {
        let wf = broken_workflow(case);
        let answer = rt.block_on(server_answer(&client, &wf));
        assert!(
            answer.contains(case.server_says),
            "{}: the server answered {answer}",
            case.name
        );

        let def = WorkflowDefinition::from_json_value(wf.clone(), "broken.json").expect("json");
        let err = Workflow::new(def, crate::support::schemas())
            .expect_err(case.name)
            .to_string();
        for word in case.we_name {
            assert!(err.contains(word), "{}: `{word}` not in: {err}", case.name);
        }

        let ws = Workspace::new(MANIFEST);
        fs_err::write(
            ws.path("blur-and-tint.json"),
            serde_json::to_string_pretty(&wf).expect("json"),
        )
        .expect("write workflow");
        for args in [&["validate"][..], &[][..]] {
            let started = Instant::now();
            let out = crate::support::invk_run()
                .current_dir(ws.path("."))
                .args(args)
                .args(["--server", &url, "job.yaml"])
                .output()
                .expect("run");
            let stderr = text(&out.stderr);
            assert_eq!(
                out.status.code(),
                Some(2),
                "{} {args:?}: {stderr}",
                case.name
            );
            // `validate` works offline; a run first reads the server's schemas (the first
            // time, the server builds its OpenAPI document: seconds on a busy machine).
            let bound = Duration::from_secs(if args.is_empty() { 60 } else { 5 });
            assert!(
                started.elapsed() < bound,
                "{} {args:?}: {:?}",
                case.name,
                started.elapsed()
            );
            assert!(
                stderr.contains("blur-and-tint.json") && stderr.len() < 2_000,
                "{}: {stderr}",
                case.name
            );
            for word in case.we_name {
                assert!(
                    stderr.contains(word),
                    "{}: `{word}` not in: {stderr}",
                    case.name
                );
            }
        }
        assert!(
            !ws.path("out").exists(),
            "{}: the run wrote files",
            case.name
        );
    }
    let queue = server.get("/api/v1/queue/default/status").expect("status");
    assert_eq!(queue["queue"]["total"], 0, "something was queued: {queue}");
    let images = server
        .get("/api/v1/images/?limit=10&is_intermediate=false")
        .expect("images");
    assert_eq!(images["total"], 0, "something was uploaded: {images}");
    let intermediates = server
        .get("/api/v1/images/?limit=10&is_intermediate=true")
        .expect("images");
    assert_eq!(
        intermediates["total"], 0,
        "something was uploaded: {intermediates}"
    );
}
