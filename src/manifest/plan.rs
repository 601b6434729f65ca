//! Grouping jobs into enqueues.
//!
//! The server varies only batchable values (strings, numbers, images) inside one batch; models,
//! boards and the like need their own graph. So jobs whose non-batchable values are equal (and
//! which set the same inputs) share one enqueue. Inside it, each input whose value differs between
//! its jobs becomes one `BatchDatum`, all in ONE zip group: the server then makes exactly one
//! session per job, in job order. Values equal for all its jobs are set in the graph.

use std::fmt;

use indexmap::IndexMap;

use super::catalog::InputInfo;
use super::expansion::Expansion;
use super::job::{InputValue, Job, LocalImage};
use crate::workflow::payload::BatchDatum;

/// The jobs of a manifest, grouped into enqueues.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Plan {
    /// How many jobs the enqueues run.
    job_count: usize,
    /// The enqueues, ordered by their first job.
    pub enqueues: Vec<EnqueuePlan>,
}

/// One `enqueue_batch`: a graph with fixed values and one zip group of varying values.
#[derive(Debug, Clone, PartialEq)]
pub struct EnqueuePlan {
    /// The jobs it runs, ascending; session k of the batch is job `job_indices[k]`.
    pub job_indices: Vec<usize>,
    /// Values set in the graph, by system name (`node_id.field`).
    pub fixed: IndexMap<String, InputValue>,
    /// Values that vary, by system name; each list has one value per job, in job order.
    pub varying: IndexMap<String, Vec<InputValue>>,
}

impl Plan {
    /// Groups every job of an expansion (all in memory: for small manifests and tests; a run
    /// groups a window of jobs at a time with [`Plan::from_jobs`]).
    #[must_use]
    pub fn new(expansion: &Expansion) -> Plan {
        Plan::from_jobs(expansion.jobs().collect(), &expansion.inputs)
    }

    /// Groups `jobs`; `inputs` tells which inputs are batchable (unknown ones count as not).
    #[must_use]
    pub fn from_jobs(jobs: Vec<Job>, inputs: &IndexMap<String, InputInfo>) -> Plan {
        let mut groups: IndexMap<GroupKey, Vec<usize>> = IndexMap::new();
        for (position, job) in jobs.iter().enumerate() {
            let key = group_key(job, inputs);
            groups.entry(key).or_default().push(position);
        }
        let enqueues = groups
            .into_values()
            .map(|positions| {
                let members: Vec<&Job> = positions.iter().map(|&p| &jobs[p]).collect();
                let mut fixed = IndexMap::new();
                let mut varying = IndexMap::new();
                if let Some(first) = members.first() {
                    for (system, value) in &first.inputs {
                        let values: Vec<InputValue> = members
                            .iter()
                            .filter_map(|j| j.inputs.get(system).cloned())
                            .collect();
                        if values.iter().all(|v| v == value) {
                            fixed.insert(system.clone(), value.clone());
                        } else {
                            varying.insert(system.clone(), values);
                        }
                    }
                }
                EnqueuePlan {
                    job_indices: members.iter().map(|j| j.index).collect(),
                    fixed,
                    varying,
                }
            })
            .collect();
        Plan {
            job_count: jobs.len(),
            enqueues,
        }
    }

    /// How many jobs.
    #[must_use]
    pub fn job_count(&self) -> usize {
        self.job_count
    }

    /// How many enqueues.
    #[must_use]
    pub fn enqueue_count(&self) -> usize {
        self.enqueues.len()
    }
}

/// Which inputs a job sets, and its values of the non-batchable ones.
pub type GroupKey = Vec<(String, Option<InputValue>)>;

/// A job's [`GroupKey`]: jobs with equal keys can share an enqueue. `inputs` tells which inputs
/// are batchable (unknown ones count as not).
#[must_use]
pub fn group_key(job: &Job, inputs: &IndexMap<String, InputInfo>) -> GroupKey {
    job.inputs
        .iter()
        .map(|(system, value)| {
            let batchable = inputs.get(system).is_some_and(|i| i.batchable);
            (system.clone(), (!batchable).then(|| value.clone()))
        })
        .collect()
}

impl EnqueuePlan {
    /// The batch's `runs`: the job count when nothing varies (identical sessions), else 1.
    #[must_use]
    pub fn runs(&self) -> u32 {
        if self.varying.is_empty() {
            u32::try_from(self.job_indices.len()).unwrap_or(u32::MAX)
        } else {
            1
        }
    }

    /// The batch's `data`: one zip group with a datum per varying input (`None` when nothing
    /// varies). Local images become `{"image_name": image_name(image)}`.
    #[must_use]
    pub fn batch_data(
        &self,
        image_name: &impl Fn(&LocalImage) -> String,
    ) -> Option<Vec<Vec<BatchDatum>>> {
        if self.varying.is_empty() {
            return None;
        }
        let group = self
            .varying
            .iter()
            .map(|(system, values)| {
                let (node, field) = split_system_name(system);
                BatchDatum {
                    node_path: node.to_owned(),
                    field_name: field.to_owned(),
                    items: values.iter().map(|v| v.to_json(image_name)).collect(),
                }
            })
            .collect();
        Some(vec![group])
    }

    /// Every local image the enqueue needs uploaded (fixed and varying), without repeats.
    #[must_use]
    pub fn local_images(&self) -> Vec<&LocalImage> {
        let mut out: Vec<&LocalImage> = Vec::new();
        for v in self.fixed.values().chain(self.varying.values().flatten()) {
            if let Some(i) = v.as_local_image() {
                if !out.contains(&i) {
                    out.push(i);
                }
            }
        }
        out
    }
}

/// Splits `node_id.field` at its last dot (field names have none; node ids may have dashes).
#[must_use]
pub fn split_system_name(system: &str) -> (&str, &str) {
    system.rsplit_once('.').unwrap_or((system, ""))
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (j, e) = (self.job_count(), self.enqueue_count());
        write!(
            f,
            "{j} job{} in {e} enqueue{}",
            if j == 1 { "" } else { "s" },
            if e == 1 { "" } else { "s" }
        )
    }
}

impl fmt::Display for EnqueuePlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.job_indices.len();
        write!(f, "{n} job{}", if n == 1 { "" } else { "s" })?;
        if !self.varying.is_empty() {
            let names: Vec<String> = self.varying.keys().map(|k| format!("`{k}`")).collect();
            write!(f, ", varying {}", names.join(", "))?;
        }
        let fixed: Vec<String> = self
            .fixed
            .iter()
            .map(|(k, v)| format!("`{k}` = {}", v.display_json()))
            .collect();
        if !fixed.is_empty() {
            write!(f, ", fixed {}", fixed.join(", "))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::catalog::InputKind;
    use serde_json::{Value, json};

    fn info(index: usize, system: &str, kind: InputKind, batchable: bool) -> (String, InputInfo) {
        (
            system.into(),
            InputInfo {
                index,
                system_name: system.into(),
                user_name: system.into(),
                kind,
                batchable,
            },
        )
    }

    fn job(index: usize, values: &[(&str, Value)]) -> Job {
        Job {
            index,
            run: 0,
            inputs: values
                .iter()
                .map(|(k, v)| ((*k).to_owned(), InputValue::value(v.clone())))
                .collect(),
            sweep: IndexMap::new(),
            seeds: IndexMap::new(),
        }
    }

    fn inputs() -> IndexMap<String, InputInfo> {
        [
            info(0, "loader.model", InputKind::Model, false),
            info(1, "pos.prompt", InputKind::Other, true),
            info(2, "den.steps", InputKind::Other, true),
            info(3, "save.board", InputKind::Board, false),
        ]
        .into_iter()
        .collect()
    }

    #[test]
    fn non_batchable_values_split_enqueues_and_varying_values_zip() {
        let jobs = vec![
            job(
                0,
                &[
                    ("loader.model", json!("A")),
                    ("pos.prompt", json!("cat")),
                    ("den.steps", json!(10)),
                ],
            ),
            job(
                1,
                &[
                    ("loader.model", json!("A")),
                    ("pos.prompt", json!("dog")),
                    ("den.steps", json!(10)),
                ],
            ),
            job(
                2,
                &[
                    ("loader.model", json!("B")),
                    ("pos.prompt", json!("cat")),
                    ("den.steps", json!(10)),
                ],
            ),
            job(
                3,
                &[
                    ("loader.model", json!("B")),
                    ("pos.prompt", json!("dog")),
                    ("den.steps", json!(20)),
                ],
            ),
            job(
                4,
                &[
                    ("loader.model", json!("A")),
                    ("pos.prompt", json!("owl")),
                    ("den.steps", json!(10)),
                ],
            ),
        ];
        let plan = Plan::from_jobs(jobs, &inputs());
        assert_eq!(plan.to_string(), "5 jobs in 2 enqueues");
        let e: Vec<String> = plan.enqueues.iter().map(ToString::to_string).collect();
        assert_eq!(
            e,
            [
                "3 jobs, varying `pos.prompt`, fixed `loader.model` = \"A\", `den.steps` = 10",
                "2 jobs, varying `pos.prompt`, `den.steps`, fixed `loader.model` = \"B\"",
            ]
        );
        assert_eq!(plan.enqueues[0].job_indices, [0, 1, 4]);
        let data = plan.enqueues[1]
            .batch_data(&|_| String::new())
            .expect("varies");
        assert_eq!(data.len(), 1, "one zip group");
        assert_eq!(
            serde_json::to_value(&data[0]).expect("json"),
            json!([
                {"node_path": "pos", "field_name": "prompt", "items": ["cat", "dog"]},
                {"node_path": "den", "field_name": "steps", "items": [10, 20]},
            ])
        );
        assert_eq!(plan.enqueues[1].runs(), 1);
    }

    #[test]
    fn identical_jobs_become_runs_and_different_input_sets_split() {
        let jobs = vec![
            job(0, &[("pos.prompt", json!("cat"))]),
            job(1, &[("pos.prompt", json!("cat"))]),
            job(2, &[("pos.prompt", json!("cat")), ("den.steps", json!(4))]),
        ];
        let plan = Plan::from_jobs(jobs, &inputs());
        assert_eq!(plan.enqueue_count(), 2);
        assert_eq!(plan.enqueues[0].runs(), 2);
        assert_eq!(plan.enqueues[0].batch_data(&|_| String::new()), None);
        assert_eq!(plan.enqueues[1].job_indices, [2]);
    }

    #[test]
    fn local_images_are_listed_once_and_replaced_by_their_upload_name() {
        let img = |w: &str| {
            InputValue::LocalImage(LocalImage {
                written: w.into(),
                path: w.into(),
            })
        };
        let mut a = job(0, &[]);
        a.inputs.insert("img.image".into(), img("a.png"));
        let mut b = job(1, &[]);
        b.inputs.insert("img.image".into(), img("b.png"));
        let mut c = job(2, &[]);
        c.inputs.insert("img.image".into(), img("a.png"));
        let infos = [info(0, "img.image", InputKind::Image, true)]
            .into_iter()
            .collect();
        let plan = Plan::from_jobs(vec![a, b, c], &infos);
        assert_eq!(plan.enqueue_count(), 1);
        let e = &plan.enqueues[0];
        assert_eq!(
            e.local_images()
                .iter()
                .map(|i| i.written.as_str())
                .collect::<Vec<_>>(),
            ["a.png", "b.png"]
        );
        let data = e
            .batch_data(&|i| format!("up-{}", i.written))
            .expect("varies");
        assert_eq!(
            data[0][0].items,
            [
                json!({"image_name": "up-a.png"}),
                json!({"image_name": "up-b.png"}),
                json!({"image_name": "up-a.png"})
            ]
        );
    }

    #[test]
    fn system_names_split_at_the_last_dot() {
        assert_eq!(
            split_system_name("9c77-4f2b.num_steps"),
            ("9c77-4f2b", "num_steps")
        );
        assert_eq!(split_system_name("a.b.c"), ("a.b", "c"));
    }
}
