//! Which enqueues of different runs can share one batch, and the batch they share: the same
//! graph except for the values of some node fields (an image input, a value made from the
//! image's name), the same batch data, one run each. The fields that differ become one zip group
//! with an item per enqueue, put first: the server takes the product of the zip groups with the
//! first one varying slowest, so each enqueue's sessions are a run of consecutive items of the
//! shared batch (`first`, `first + 1`, ...).

use std::collections::BTreeSet;

use serde_json::Value;

use crate::workflow::{Batch, BatchDatum};

/// A node field of a graph: node id and field name.
pub(super) type NodeField = (String, String);

/// Keys of a graph node that say what the node is rather than hold a value: they must be equal
/// for two graphs to merge.
const NODE_KEYS: [&str; 4] = ["id", "type", "is_intermediate", "use_cache"];

/// The kinds of value the server takes as batch data (all items of a datum of one kind).
#[derive(Debug, PartialEq, Eq)]
enum Kind {
    Text,
    Number,
    Image,
}

fn kind(value: &Value) -> Option<Kind> {
    match value {
        Value::String(_) => Some(Kind::Text),
        Value::Number(_) => Some(Kind::Number),
        Value::Object(map)
            if map.len() == 1 && map.get("image_name").is_some_and(Value::is_string) =>
        {
            Some(Kind::Image)
        }
        _ => None,
    }
}

/// The node fields whose values differ between `a` and `b`, when `b` can share `a`'s batch:
/// one run each, the same origin and batch data, the same graph except for the values of these
/// fields (text, numbers or images, of one kind on both sides, none of them batch data
/// already), and the same embedded workflow once these fields' values are left out of it.
/// `None` when they cannot, or when nothing differs (two equal enqueues stay apart).
#[must_use]
pub(super) fn differing_fields(a: &Batch, b: &Batch) -> Option<BTreeSet<NodeField>> {
    if a.runs != 1
        || b.runs != 1
        || a.origin != b.origin
        || a.data != b.data
        || a.graph.id != b.graph.id
        || a.graph.edges != b.graph.edges
        || a.graph.nodes.len() != b.graph.nodes.len()
    {
        return None;
    }
    let batched: BTreeSet<(&str, &str)> = a
        .data
        .iter()
        .flatten()
        .flatten()
        .map(|d| (d.node_path.as_str(), d.field_name.as_str()))
        .collect();
    let mut fields = BTreeSet::new();
    for (id, node_a) in &a.graph.nodes {
        let (Value::Object(fa), Some(Value::Object(fb))) = (node_a, b.graph.nodes.get(id)) else {
            return None;
        };
        if fa.len() != fb.len() {
            return None;
        }
        for (field, va) in fa {
            let vb = fb.get(field)?;
            if va == vb {
                continue;
            }
            let mergeable = !NODE_KEYS.contains(&field.as_str())
                && !batched.contains(&(id.as_str(), field.as_str()))
                && kind(va).is_some()
                && kind(va) == kind(vb);
            if !mergeable {
                return None;
            }
            fields.insert((id.clone(), field.clone()));
        }
    }
    let same_workflow = workflow_without(a.workflow.as_ref(), &fields)
        == workflow_without(b.workflow.as_ref(), &fields);
    (same_workflow && !fields.is_empty()).then_some(fields)
}

/// The embedded workflow with the values of `fields` left out: one workflow goes with every
/// session of a batch, and these fields' values differ from session to session (each session's
/// graph, also embedded in its images, has its own).
fn workflow_without(workflow: Option<&Value>, fields: &BTreeSet<NodeField>) -> Option<Value> {
    let mut workflow = workflow?.clone();
    if let Some(Value::Array(nodes)) = workflow.get_mut("nodes") {
        for node in nodes {
            let Some(id) = node.get("id").and_then(Value::as_str).map(str::to_owned) else {
                continue;
            };
            let Some(Value::Object(inputs)) = node.pointer_mut("/data/inputs") else {
                continue;
            };
            for (_, field) in fields.iter().filter(|(n, _)| *n == id) {
                if let Some(Value::Object(input)) = inputs.get_mut(field) {
                    input.remove("value");
                }
            }
        }
    }
    Some(workflow)
}

/// Sorts enqueues into groups that can share a batch, in the order they came: each joins the
/// first group of its server whose first enqueue it can share a batch with
/// ([`differing_fields`]) and that has room for its sessions under `cap`; else it starts a
/// group. `enqueues` are (server, batch) pairs; the groups list their indexes.
#[must_use]
pub(super) fn groups(enqueues: &[(&str, &Batch)], cap: usize) -> Vec<Vec<usize>> {
    let mut groups: Vec<(Vec<usize>, u64)> = Vec::new();
    for (i, (server, batch)) in enqueues.iter().enumerate() {
        let sessions = batch.session_count();
        let fits = |(members, used): &&mut (Vec<usize>, u64)| {
            let (first_server, first) = enqueues[members[0]];
            first_server == *server
                && used + sessions <= cap as u64
                && differing_fields(first, batch).is_some()
        };
        match groups.iter_mut().find(|g| fits(g)) {
            Some((members, used)) => {
                members.push(i);
                *used += sessions;
            }
            None => groups.push((vec![i], sessions)),
        }
    }
    groups.into_iter().map(|(members, _)| members).collect()
}

/// One batch for several enqueues, and where each one's sessions start in it.
#[derive(Debug, Clone)]
pub(super) struct Merged {
    /// The shared batch.
    pub batch: Batch,
    /// Each enqueue's first session in it, in the order given.
    pub firsts: Vec<usize>,
}

/// Merges `batches` (a group of [`groups`]: each can share the first one's batch) into one batch
/// with the id `batch_id`: the first one's graph, origin, destination and workflow (without the
/// values that differ), and as batch data one zip group of the differing fields, an item per
/// batch, followed by the shared batch data.
#[must_use]
pub(super) fn merge(batches: &[&Batch], batch_id: &str) -> Merged {
    let base = batches[0];
    let mut fields = BTreeSet::new();
    for batch in &batches[1..] {
        fields.extend(differing_fields(base, batch).unwrap_or_default());
    }
    let group: Vec<BatchDatum> = fields
        .iter()
        .map(|(node, field)| BatchDatum {
            node_path: node.clone(),
            field_name: field.clone(),
            items: batches
                .iter()
                .map(|b| b.graph.nodes[node.as_str()][field.as_str()].clone())
                .collect(),
        })
        .collect();
    let mut batch = base.clone();
    batch.batch_id = Some(batch_id.to_owned());
    batch.workflow = workflow_without(base.workflow.as_ref(), &fields);
    let mut data = vec![group];
    data.extend(base.data.clone().unwrap_or_default());
    batch.data = Some(data);
    let per = usize::try_from(base.session_count()).unwrap_or(usize::MAX);
    Merged {
        batch,
        firsts: (0..batches.len()).map(|i| i * per).collect(),
    }
}

/// An enqueue's own items among the item ids (ascending) of its shared batch: `count` from
/// `first` on; fewer, or none, when a full queue took only the batch's first sessions.
#[must_use]
pub(super) fn slice(item_ids: &[i64], first: usize, count: usize) -> Vec<i64> {
    item_ids.iter().skip(first).take(count).copied().collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::workflow::Graph;

    /// A batch of the blur graph for one image, with a sweep of blur radii as batch data.
    fn batch(image: &str, radii: &[f64]) -> Batch {
        let graph: Graph = serde_json::from_value(json!({
            "nodes": {
                "load": {"id": "load", "type": "image", "is_intermediate": true,
                         "image": {"image_name": image}},
                "blur": {"id": "blur", "type": "img_blur", "is_intermediate": false,
                         "radius": 1.0, "blur_type": "gaussian"},
            },
            "edges": [{"source": {"node_id": "load", "field": "image"},
                       "destination": {"node_id": "blur", "field": "image"}}],
        }))
        .expect("graph");
        let workflow = json!({"nodes": [
            {"id": "load", "data": {"inputs": {
                "image": {"name": "image", "value": {"image_name": image}}}}},
            {"id": "blur", "data": {"inputs": {"radius": {"name": "radius", "value": 1.0}}}},
        ]});
        Batch {
            batch_id: Some(format!("own-{image}")),
            origin: Some("invk-run".into()),
            destination: Some(format!("invk-run:{image}")),
            data: Some(vec![vec![BatchDatum {
                node_path: "blur".into(),
                field_name: "radius".into(),
                items: radii.iter().map(|r| json!(r)).collect(),
            }]]),
            graph,
            workflow: Some(workflow),
            runs: 1,
        }
    }

    fn image_field() -> BTreeSet<NodeField> {
        BTreeSet::from([("load".to_owned(), "image".to_owned())])
    }

    #[test]
    fn batches_that_differ_only_in_an_image_merge() {
        let (a, b) = (batch("a.png", &[1.0, 3.0]), batch("b.png", &[1.0, 3.0]));
        assert_eq!(differing_fields(&a, &b), Some(image_field()));
    }

    #[test]
    fn batches_that_differ_otherwise_do_not_merge() {
        let a = batch("a.png", &[1.0, 3.0]);
        let mut cases: Vec<(&str, Batch)> = Vec::new();
        cases.push(("other batch data", batch("b.png", &[1.0, 6.0])));
        let mut b = batch("b.png", &[1.0, 3.0]);
        b.runs = 2;
        cases.push(("two runs", b));
        let mut b = batch("b.png", &[1.0, 3.0]);
        b.graph.nodes["blur"]["type"] = json!("img_sharpen");
        cases.push(("another node type", b));
        let mut b = batch("b.png", &[1.0, 3.0]);
        b.graph.edges.clear();
        cases.push(("other edges", b));
        let mut b = batch("b.png", &[1.0, 3.0]);
        b.graph.nodes["blur"]["blur_type"] = json!(true);
        cases.push(("a boolean, which cannot be batch data", b));
        let mut b = batch("b.png", &[1.0, 3.0]);
        b.graph.nodes["blur"]["blur_type"] = json!({"board_id": "x"});
        cases.push(("an object, which cannot be batch data", b));
        let mut b = batch("b.png", &[1.0, 3.0]);
        b.graph.nodes["blur"]["blur_type"] = json!(3);
        cases.push(("a value of another kind", b));
        let mut b = batch("b.png", &[1.0, 3.0]);
        b.graph.nodes["blur"]["radius"] = json!(9.0);
        cases.push(("a field that is batch data already", b));
        let mut b = batch("b.png", &[1.0, 3.0]);
        b.workflow.as_mut().expect("workflow")["name"] = json!("another");
        cases.push(("another workflow", b));
        let mut b = batch("b.png", &[1.0, 3.0]);
        b.graph.nodes["load"]
            .as_object_mut()
            .expect("node")
            .insert("extra".into(), json!(1));
        cases.push(("a field only one has", b));
        cases.push(("the same batch", batch("a.png", &[1.0, 3.0])));
        for (what, b) in cases {
            assert_eq!(differing_fields(&a, &b), None, "{what}");
        }
        // Values the server takes as batch data: text and numbers, not only images.
        let mut b = batch("b.png", &[1.0, 3.0]);
        b.graph.nodes["blur"]["blur_type"] = json!("box");
        assert_eq!(
            differing_fields(&a, &b).map(|f| f.len()),
            Some(2),
            "an image and a text"
        );
    }

    #[test]
    fn a_merged_batch_gives_each_enqueue_consecutive_sessions() {
        let batches: Vec<Batch> = ["a.png", "b.png", "c.png"]
            .iter()
            .map(|i| batch(i, &[1.0, 3.0]))
            .collect();
        let refs: Vec<&Batch> = batches.iter().collect();
        let merged = merge(&refs, "shared");
        assert_eq!(merged.firsts, [0, 2, 4]);
        assert_eq!(merged.batch.batch_id.as_deref(), Some("shared"));
        assert_eq!(merged.batch.session_count(), 6);
        let data = merged.batch.data.as_ref().expect("data");
        assert_eq!(data.len(), 2, "the images' group, then the shared sweep");
        assert_eq!(
            (
                data[0][0].node_path.as_str(),
                data[0][0].field_name.as_str()
            ),
            ("load", "image")
        );
        assert_eq!(
            data[0][0].items,
            [
                json!({"image_name": "a.png"}),
                json!({"image_name": "b.png"}),
                json!({"image_name": "c.png"})
            ]
        );
        assert_eq!(data[1], batches[0].data.as_ref().expect("data")[0]);
        // The sessions in the server's order: the first group varies slowest.
        let sessions: Vec<(String, f64)> = data[0][0]
            .items
            .iter()
            .flat_map(|image| {
                data[1][0].items.iter().map(move |r| {
                    (
                        image["image_name"].as_str().expect("name").to_owned(),
                        r.as_f64().expect("radius"),
                    )
                })
            })
            .collect();
        let b = &sessions[merged.firsts[1]..merged.firsts[2]];
        assert_eq!(b, [("b.png".to_owned(), 1.0), ("b.png".to_owned(), 3.0)]);
        // The one workflow of the batch names no image: each session's graph has its own.
        let workflow = merged.batch.workflow.as_ref().expect("workflow");
        assert_eq!(
            workflow["nodes"][0]["data"]["inputs"]["image"],
            json!({"name": "image"})
        );
        assert_eq!(
            workflow["nodes"][1]["data"]["inputs"]["radius"]["value"],
            json!(1.0)
        );
    }

    #[test]
    fn groups_keep_to_their_server_their_kind_and_the_cap() {
        let a = batch("a.png", &[1.0, 3.0]);
        let b = batch("b.png", &[1.0, 3.0]);
        let c = batch("c.png", &[1.0, 6.0]);
        let d = batch("d.png", &[1.0, 3.0]);
        let e = batch("e.png", &[1.0, 3.0]);
        let f = batch("f.png", &[1.0, 3.0]);
        let enqueues = [
            ("s1", &a),
            ("s1", &b),
            ("s1", &c),
            ("s2", &d),
            ("s1", &e),
            ("s1", &f),
        ];
        assert_eq!(
            groups(&enqueues, 6),
            [vec![0, 1, 4], vec![2], vec![3], vec![5]],
            "c has another sweep, d another server; f finds the first group full"
        );
        assert_eq!(
            groups(&enqueues, 1).len(),
            6,
            "none fits a cap of one session"
        );
    }

    #[test]
    fn a_slice_is_the_enqueues_own_items_or_what_a_full_queue_took_of_them() {
        let ids = [10, 11, 12, 13, 14, 15];
        assert_eq!(slice(&ids, 2, 2), [12, 13]);
        assert_eq!(
            slice(&ids[..3], 2, 2),
            [12],
            "the queue took three sessions"
        );
        assert_eq!(slice(&ids[..2], 2, 2), Vec::<i64>::new());
    }
}
