#!/usr/bin/env python3
"""Ask the installed InvokeAI which edge types it accepts, for `tests/fixtures/edge-types.json`.

For every distinct output field annotation and input field annotation among the server's
invocations, records one representative node type and field, and for each pair whether the
server's own `are_connection_types_compatible` accepts the edge. The Rust check
(`src/workflow/check.rs`) is compared against this table by a unit test.

Usage: VENV/bin/python scripts/oracle_edge_types.py > tests/fixtures/edge-types.json
"""
import json
import sys

import invokeai.app.invocations  # noqa: F401  (registers the invocations)
from invokeai.app.invocations.baseinvocation import InvocationRegistry
from invokeai.app.services.shared.graph import are_connection_types_compatible

SKIP_IN = {"id", "type", "is_intermediate", "use_cache"}
SKIP_OUT = {"type", "output_meta"}


def main() -> None:
    outs: dict[str, tuple[str, str, object]] = {}
    ins: dict[str, tuple[str, str, object]] = {}
    for cls in sorted(InvocationRegistry.get_invocation_classes(), key=lambda c: c.get_type()):
        t = cls.get_type()
        if t in ("iterate", "collect", "if"):
            continue
        for name, f in sorted(cls.model_fields.items()):
            if name not in SKIP_IN:
                ins.setdefault(repr(f.annotation), (t, name, f.annotation))
        for name, f in sorted(cls.get_output_annotation().model_fields.items()):
            if name not in SKIP_OUT:
                outs.setdefault(repr(f.annotation), (t, name, f.annotation))
    out_list = [outs[k] for k in sorted(outs)]
    in_list = [ins[k] for k in sorted(ins)]
    table = {
        "outputs": [[t, f] for t, f, _ in out_list],
        "inputs": [[t, f] for t, f, _ in in_list],
        # One row per output, one character per input: 1 when the server accepts the edge.
        "compatible": [
            "".join("1" if are_connection_types_compatible(oa, ia) else "0" for _, _, ia in in_list)
            for _, _, oa in out_list
        ],
    }
    json.dump(table, sys.stdout, indent=0)
    print()
    print(f"{len(outs)} output types x {len(ins)} input types", file=sys.stderr)


if __name__ == "__main__":
    main()
