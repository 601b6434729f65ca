//! The checks the server makes on a graph before it queues it (`Graph.validate_self`), made on
//! our side so that a graph it would refuse is refused before anything is uploaded or queued:
//! edges between existing fields (an output of the source node, an input of the destination
//! node), no cycle (a node linked to itself included), and field types that may be connected.
//!
//! Types follow the server's rule (`are_connection_types_compatible`), restated over the
//! types its OpenAPI schema gives: equal types, `Any` on either side, a type and a union or
//! list holding it (either way round), `int` to `float`, `int`/`float` to `str`, `bool` to
//! `int`, a subclass to its base class, a literal to a literal holding its members, and a
//! union whose members all belong to the other union. Nodes whose type the schemas do not know (custom nodes) are not checked.

use std::collections::{HashMap, HashSet};

use super::definition::WorkflowDefinition;
use super::error::WorkflowError;
use super::ink::InkType;
use super::payload::{Edge, Graph};
use super::schema::SchemaSet;

/// Fields every invocation has besides those its schema lists.
const NODE_ATTRIBUTES: [&str; 4] = ["id", "type", "is_intermediate", "use_cache"];
/// Fields every invocation output has besides those its schema lists.
const OUTPUT_ATTRIBUTES: [&str; 2] = ["type", "output_meta"];
/// Field classes that derive from another one (read from the server's field classes): the only
/// class-to-class connections between different classes the server allows.
const SUBCLASSES: [(&str, &str); 1] = [("ControlLoRAField", "LoRAField")];
/// At most this many names are listed when a field is missing.
const MAX_LISTED: usize = 12;

/// Checks the graph the workflow converts to as the server will: every edge joins an output
/// of its source node to an input of its destination node, the edges form no cycle, and the
/// types at both ends of each edge may be connected.
///
/// # Errors
/// [`WorkflowError::Invalid`] naming the workflow, the edge (`edges[N]`) and its nodes and
/// fields.
pub fn check_graph(
    def: &WorkflowDefinition,
    graph: &Graph,
    schemas: &SchemaSet,
) -> Result<(), WorkflowError> {
    let node_type = |id: &str| -> Option<&str> {
        graph
            .nodes
            .get(id)
            .and_then(|n| n.get("type"))
            .and_then(serde_json::Value::as_str)
    };
    for edge in &graph.edges {
        let (from, to) = (&edge.source, &edge.destination);
        if let Some(ty) = node_type(&from.node_id)
            && let Some(s) = schemas.invocation(ty)
            // A schema set read without output types (an older cache) cannot tell.
            && !s.output.fields.is_empty()
            && s.output_field(&from.field).is_none()
            && !OUTPUT_ATTRIBUTES.contains(&from.field.as_str())
        {
            let names: Vec<&str> = s.output.fields.iter().map(|f| f.name.as_str()).collect();
            return Err(invalid(
                def,
                edge,
                format!(
                    "node `{}` ({ty}) has no output `{}`; its outputs are {}",
                    from.node_id,
                    from.field,
                    list(&names)
                ),
            ));
        }
        if let Some(ty) = node_type(&to.node_id)
            && let Some(s) = schemas.invocation(ty)
            && s.field(&to.field).is_none()
            && !NODE_ATTRIBUTES.contains(&to.field.as_str())
        {
            let names: Vec<&str> = s.fields.iter().map(|f| f.name.as_str()).collect();
            return Err(invalid(
                def,
                edge,
                format!(
                    "node `{}` ({ty}) has no input `{}`; its inputs are {}",
                    to.node_id,
                    to.field,
                    list(&names)
                ),
            ));
        }
    }
    if let Some((edge, cycle)) = find_cycle(&graph.edges) {
        return Err(invalid(
            def,
            edge,
            format!(
                "the edges form a cycle ({}); the server refuses a graph with a cycle: remove one of its edges",
                name_cycle(&cycle)
            ),
        ));
    }
    for edge in &graph.edges {
        let (from, to) = (&edge.source, &edge.destination);
        let (Some(from_ty), Some(to_ty)) = (node_type(&from.node_id), node_type(&to.node_id))
        else {
            continue;
        };
        let (Some(out), Some(input)) = (
            schemas
                .invocation(from_ty)
                .and_then(|s| s.output_field(&from.field)),
            schemas.invocation(to_ty).and_then(|s| s.field(&to.field)),
        ) else {
            continue;
        };
        if !compatible(&out.ty, out.nullable, &input.ty, input.nullable) {
            return Err(invalid(
                def,
                edge,
                format!(
                    "the output `{}.{}` ({}) cannot feed the input `{}.{}` ({}): the server refuses edges between these types",
                    from.node_id,
                    from.field,
                    describe(&out.ty, out.nullable),
                    to.node_id,
                    to.field,
                    describe(&input.ty, input.nullable)
                ),
            ));
        }
    }
    Ok(())
}

fn list(names: &[&str]) -> String {
    if names.is_empty() {
        return "none".into();
    }
    let mut s = names
        .iter()
        .take(MAX_LISTED)
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ");
    if names.len() > MAX_LISTED {
        s.push_str(&format!(" and {} more", names.len() - MAX_LISTED));
    }
    s
}

fn invalid(def: &WorkflowDefinition, edge: &Edge, message: String) -> WorkflowError {
    // The workflow edge this graph edge came from: the one into the same input.
    let index = def.edges().iter().position(|e| {
        e.is_default()
            && e.target == edge.destination.node_id
            && e.target_handle.as_deref() == Some(edge.destination.field.as_str())
    });
    WorkflowError::Invalid {
        source_name: def.source().to_string(),
        json_path: index.map_or_else(|| "edges".into(), |i| format!("edges[{i}]")),
        message: format!(
            "edge `{}.{}` -> `{}.{}`: {message}",
            edge.source.node_id,
            edge.source.field,
            edge.destination.node_id,
            edge.destination.field
        ),
    }
}

/// A cycle (its node ids, the first repeated at the end) as a message names it: whole when it
/// is short, else its first nodes, how many are left out, and its last.
fn name_cycle(cycle: &[String]) -> String {
    const SHOWN: usize = 4;
    if cycle.len() <= 2 * SHOWN {
        return cycle.join(" -> ");
    }
    let (head, tail) = (&cycle[..SHOWN], &cycle[cycle.len() - 2..]);
    format!(
        "{} -> … {} more … -> {}; {} nodes in all",
        head.join(" -> "),
        cycle.len() - SHOWN - 2,
        tail.join(" -> "),
        cycle.len() - 1
    )
}

/// The first cycle of the edges, if any: an edge on it and the node ids around it (the first
/// repeated at the end).
fn find_cycle(edges: &[Edge]) -> Option<(&Edge, Vec<String>)> {
    let mut out: HashMap<&str, Vec<&Edge>> = HashMap::new();
    let mut nodes: Vec<&str> = Vec::new();
    let mut seen = HashSet::new();
    for e in edges {
        out.entry(e.source.node_id.as_str()).or_default().push(e);
        for id in [e.source.node_id.as_str(), e.destination.node_id.as_str()] {
            if seen.insert(id) {
                nodes.push(id);
            }
        }
    }
    // Iterative depth-first search: 1 = on the current path, 2 = done.
    let mut state: HashMap<&str, u8> = HashMap::new();
    for &start in &nodes {
        if state.contains_key(start) {
            continue;
        }
        let mut path: Vec<(&str, usize, Option<&Edge>)> = vec![(start, 0, None)];
        state.insert(start, 1);
        while let Some((node, next, _)) = path.last_mut() {
            let node: &str = node;
            let succ = out.get(node).and_then(|v| v.get(*next)).copied();
            *next += 1;
            let Some(edge) = succ else {
                state.insert(node, 2);
                path.pop();
                continue;
            };
            let to = edge.destination.node_id.as_str();
            match state.get(to) {
                Some(1) => {
                    let from = path.iter().position(|(n, _, _)| *n == to).unwrap_or(0);
                    let mut cycle: Vec<String> = path[from..]
                        .iter()
                        .map(|(n, _, _)| (*n).to_string())
                        .collect();
                    cycle.push(to.to_string());
                    return Some((edge, cycle));
                }
                Some(_) => {}
                None => {
                    state.insert(to, 1);
                    path.push((to, 0, Some(edge)));
                }
            }
        }
    }
    None
}

/// A field type as the server's Python annotation sees it: a single type, a list, or a union.
#[derive(Debug, Clone, PartialEq)]
enum Kind {
    Int,
    Float,
    Str,
    Bool,
    Class(String),
    /// A `Literal[...]`, or an enum class.
    Enum(Vec<serde_json::Value>),
}

#[derive(Debug, Clone, PartialEq)]
enum Alt {
    One(Kind),
    List(Kind),
}

#[derive(Debug)]
struct PyType {
    alts: Vec<Alt>,
    nullable: bool,
}

impl PyType {
    /// `None` for `Any` (and for nested lists, which are not told apart from it here).
    fn of(ty: &InkType, nullable: bool) -> Option<PyType> {
        let alts = match ty {
            InkType::Collection(item) => vec![Alt::List(kind(item)?)],
            InkType::OneOrMany(item) => {
                let k = kind(item)?;
                vec![Alt::One(k.clone()), Alt::List(k)]
            }
            other => vec![Alt::One(kind(other)?)],
        };
        Some(PyType { alts, nullable })
    }

    fn single(&self) -> Option<&Alt> {
        match self.alts.as_slice() {
            [one] if !self.nullable => Some(one),
            _ => None,
        }
    }

    /// `typing.get_args`: the members of a union (`None` as `None`), the item of a list.
    fn args(&self) -> Vec<Option<Alt>> {
        match self.single() {
            Some(Alt::List(k)) => vec![Some(Alt::One(k.clone()))],
            Some(Alt::One(_)) => Vec::new(),
            None => {
                let mut a: Vec<Option<Alt>> = self.alts.iter().cloned().map(Some).collect();
                if self.nullable {
                    a.push(None);
                }
                a
            }
        }
    }

    fn same(&self, other: &PyType) -> bool {
        self.nullable == other.nullable
            && self.alts.iter().all(|a| other.alts.contains(a))
            && other.alts.iter().all(|a| self.alts.contains(a))
    }
}

fn kind(ty: &InkType) -> Option<Kind> {
    Some(match ty {
        InkType::String => Kind::Str,
        InkType::Integer => Kind::Int,
        InkType::Float => Kind::Float,
        InkType::Boolean => Kind::Bool,
        InkType::Image => Kind::Class("ImageField".into()),
        InkType::Video => Kind::Class("VideoField".into()),
        InkType::Board => Kind::Class("BoardField".into()),
        InkType::Color => Kind::Class("ColorField".into()),
        InkType::Model(_) => Kind::Class("ModelIdentifierField".into()),
        InkType::Object(name) => Kind::Class(name.clone()),
        InkType::Enum(members) => Kind::Enum(members.clone()),
        InkType::Collection(_) | InkType::OneOrMany(_) | InkType::Any => {
            return None;
        }
    })
}

/// Whether the server accepts an edge from an output of type `from` to an input of type `to`.
pub(crate) fn compatible(from: &InkType, from_null: bool, to: &InkType, to_null: bool) -> bool {
    let (Some(f), Some(t)) = (PyType::of(from, from_null), PyType::of(to, to_null)) else {
        return true;
    };
    if f.same(&t) {
        return true;
    }
    if let Some(fa) = f.single()
        && t.args().contains(&Some(fa.clone()))
    {
        return true;
    }
    if let Some(ta) = t.single()
        && f.args().contains(&Some(ta.clone()))
    {
        return true;
    }
    if let (Some(Alt::One(fk)), Some(Alt::One(tk))) = (f.single(), t.single()) {
        return match (fk, tk) {
            (Kind::Int | Kind::Bool, Kind::Int) => true,
            (Kind::Int, Kind::Float) | (Kind::Int | Kind::Float, Kind::Str) => true,
            (Kind::Class(a), Kind::Class(b)) => a == b || SUBCLASSES.contains(&(a, b)),
            // A literal reaches a literal holding all its members. The schema does not tell a
            // literal from a `str` enum class (which does reach `str`): let those through.
            (Kind::Enum(a), Kind::Enum(b)) => a.iter().all(|m| b.contains(m)),
            (Kind::Enum(_), Kind::Str) => true,
            _ => false,
        };
    }
    if matches!(f.single(), Some(Alt::One(_))) {
        return false;
    }
    let to_args = t.args();
    f.args().iter().all(|a| to_args.contains(a))
}

fn describe(ty: &InkType, nullable: bool) -> String {
    fn base(ty: &InkType) -> String {
        match ty {
            InkType::String => "str".into(),
            InkType::Integer => "int".into(),
            InkType::Float => "float".into(),
            InkType::Boolean => "bool".into(),
            InkType::Image => "ImageField".into(),
            InkType::Video => "VideoField".into(),
            InkType::Board => "BoardField".into(),
            InkType::Color => "ColorField".into(),
            InkType::Model(_) => "ModelIdentifierField".into(),
            InkType::Object(n) => n.clone(),
            InkType::Enum(_) => "Literal".into(),
            InkType::Any => "Any".into(),
            InkType::Collection(i) => format!("list[{}]", base(i)),
            InkType::OneOrMany(i) => format!("{0} | list[{0}]", base(i)),
        }
    }
    let b = base(ty);
    if nullable { format!("{b} | None") } else { b }
}

#[cfg(test)]
mod tests {
    use super::*;
    use InkType::{Float, Image, Integer, String as Str};

    fn c(from: &InkType, to: &InkType) -> bool {
        compatible(from, false, to, false)
    }

    #[test]
    fn types_follow_the_servers_rule() {
        assert!(c(&Integer, &Float));
        assert!(!c(&Float, &Integer));
        assert!(c(&Integer, &Str));
        assert!(c(&Float, &Str));
        assert!(!c(&Str, &Integer));
        assert!(c(&InkType::Boolean, &Integer));
        assert!(!c(&Image, &Integer));
        assert!(!c(&InkType::Object("LatentsField".into()), &Image));
        assert!(c(
            &InkType::Object("ControlLoRAField".into()),
            &InkType::Object("LoRAField".into())
        ));
        // A type and a list of it connect either way; a union takes its members.
        let list = InkType::Collection(Box::new(Image));
        assert!(c(&Image, &list));
        assert!(c(&list, &Image));
        let one_or_many = InkType::OneOrMany(Box::new(Float));
        assert!(c(&Float, &one_or_many));
        assert!(c(&one_or_many, &Float));
        // `int` reaches a plain `float`, not a union holding one.
        assert!(!c(&Integer, &one_or_many));
        assert!(compatible(&Image, false, &Image, true));
        assert!(compatible(&Image, true, &Image, false));
        assert!(!compatible(&Integer, true, &Float, false));
        assert!(c(&InkType::Any, &Image));
        assert!(c(&Image, &InkType::Any));
    }

    /// The server's own answers (`scripts/oracle_edge_types.py` run against InvokeAI 6.14.2)
    /// for every distinct pair of output and input field types: we refuse no edge it accepts,
    /// and accept one it refuses only where our schema types cannot tell (a literal into `str`).
    #[test]
    fn types_agree_with_the_servers_answers_for_every_pair_of_field_types() {
        let table: serde_json::Value =
            serde_json::from_str(include_str!("../../tests/fixtures/edge-types.json"))
                .expect("json");
        let set = SchemaSet::snapshot();
        let ends = |key: &str| -> Vec<(String, String)> {
            table[key]
                .as_array()
                .expect("array")
                .iter()
                .map(|p| {
                    (
                        p[0].as_str().expect("type").to_string(),
                        p[1].as_str().expect("field").to_string(),
                    )
                })
                .collect()
        };
        let (outs, ins) = (ends("outputs"), ends("inputs"));
        let (mut checked, mut refused_wrongly, mut accepted_wrongly) = (0, Vec::new(), 0);
        for (row, (ot, of)) in table["compatible"]
            .as_array()
            .expect("rows")
            .iter()
            .zip(&outs)
        {
            let Some(out) = set.invocation(ot).and_then(|s| s.output_field(of)) else {
                continue;
            };
            for (answer, (it, inf)) in row.as_str().expect("row").chars().zip(&ins) {
                let Some(input) = set.invocation(it).and_then(|s| s.field(inf)) else {
                    continue;
                };
                checked += 1;
                let ours = compatible(&out.ty, out.nullable, &input.ty, input.nullable);
                match (answer == '1', ours) {
                    (true, false) => refused_wrongly.push(format!("{ot}.{of} -> {it}.{inf}")),
                    (false, true) => {
                        // Only a literal into `str`, which the schema cannot tell from a
                        // `str` enum class.
                        assert!(
                            matches!((&out.ty, &input.ty), (InkType::Enum(_), InkType::String)),
                            "accepted {ot}.{of} -> {it}.{inf}"
                        );
                        accepted_wrongly += 1;
                    }
                    _ => {}
                }
            }
        }
        assert!(checked > 10_000, "{checked} pairs checked");
        assert!(refused_wrongly.is_empty(), "{refused_wrongly:#?}");
        assert!(accepted_wrongly <= 4, "{accepted_wrongly} of {checked}");
    }

    fn edge(a: &str, b: &str) -> Edge {
        Edge {
            source: super::super::payload::EdgeEnd {
                node_id: a.into(),
                field: "value".into(),
            },
            destination: super::super::payload::EdgeEnd {
                node_id: b.into(),
                field: "a".into(),
            },
        }
    }

    #[test]
    fn a_long_cycle_is_named_by_a_few_of_its_nodes() {
        let ids: Vec<String> = (0..10_000).map(|i| format!("n{i}")).collect();
        let edges: Vec<Edge> = ids
            .iter()
            .zip(ids.iter().cycle().skip(1))
            .map(|(a, b)| edge(a, b))
            .collect();
        let (_, cycle) = find_cycle(&edges).expect("cycle");
        assert_eq!(cycle.len(), 10_001);
        assert_eq!(
            name_cycle(&cycle),
            "n0 -> n1 -> n2 -> n3 -> … 9995 more … -> n9999 -> n0; 10000 nodes in all"
        );
        assert_eq!(name_cycle(&cycle[..3]), "n0 -> n1 -> n2");
    }

    #[test]
    fn cycles_are_found_with_their_path() {
        assert!(find_cycle(&[edge("a", "b"), edge("b", "c"), edge("a", "c")]).is_none());
        let edges = [
            edge("x", "a"),
            edge("a", "b"),
            edge("b", "c"),
            edge("c", "a"),
        ];
        let (_, cycle) = find_cycle(&edges).expect("cycle");
        assert_eq!(cycle, ["a", "b", "c", "a"]);
        let edges = [edge("a", "a")];
        assert_eq!(find_cycle(&edges).expect("self loop").1, ["a", "a"]);
    }
}
