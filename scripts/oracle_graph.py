#!/usr/bin/env python3
"""Print the graph InvokeAI's own builder makes from workflow files (the conformance oracle).

Run it with the python of the virtual environment InvokeAI is installed in:

    python scripts/oracle_graph.py WORKFLOW.json            prints the graph as JSON
    python scripts/oracle_graph.py A.json B.json ...        prints {"A.json": graph, ...}

It calls `build_graph_from_workflow` from `invokeai.app.services.shared.workflow_graph_builder`
(the server's builder for saved workflows called from other workflows), without its check that
the workflow is callable (that check wants exactly one `workflow_return` node, which ordinary
workflows do not have), and without its last step, `Graph.model_validate`: the graph is printed
as the builder assembled it. Validation would refuse most shipped workflows for reasons that
have nothing to do with the conversion (their model fields are empty until a user picks a
model, some use node types later versions removed, `prompt_from_file` checks that its file
exists), and it would also rewrite values (`0` into `0.0` for float fields).
A workflow the builder refuses prints as `{"error": "..."}`.
"""

import contextlib
import json
import sys


def main(paths):
    # Importing the invocations logs to stdout; keep stdout for the JSON.
    with contextlib.redirect_stdout(sys.stderr):
        from invokeai.app.services.shared import workflow_graph_builder as builder

        builder._validate_callable_workflow_nodes = lambda nodes: None

        class RawGraph:
            """Stands in for `Graph` in the builder: returns what it was given."""

            @staticmethod
            def model_validate(data):
                return data

        builder.Graph = RawGraph

    out = {}
    for path in paths:
        with open(path, encoding="utf-8") as f:
            workflow = json.load(f)
        try:
            with contextlib.redirect_stdout(sys.stderr):
                graph = builder.build_graph_from_workflow(workflow)
            edges = [e.model_dump(mode="json") for e in graph["edges"]]
            out[path] = {"nodes": graph["nodes"], "edges": edges}
        except Exception as e:  # noqa: BLE001 - report any refusal as data
            out[path] = {"error": f"{type(e).__name__}: {e}"}
    result = out[paths[0]] if len(paths) == 1 else out
    json.dump(result, sys.stdout, indent=1)
    sys.stdout.write("\n")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    main(sys.argv[1:])
