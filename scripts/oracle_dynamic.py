"""Oracle for dynamic prompts: the combinatorial expansion of the `dynamicprompts` library
that InvokeAI ships, for conformance tests.

Reads JSON on stdin: {"wildcards": FOLDER or null, "limit": N, "templates": [TEMPLATE, ...]}.
Prints a JSON list, one entry per template: the list of prompts, or {"error": MESSAGE}.
"""

import json
import logging
import sys

from dynamicprompts.generators import CombinatorialPromptGenerator
from dynamicprompts.wildcards import WildcardManager


def main() -> None:
    logging.disable(logging.CRITICAL)
    request = json.load(sys.stdin)
    manager = WildcardManager(request["wildcards"]) if request.get("wildcards") else WildcardManager()
    generator = CombinatorialPromptGenerator(manager)
    results = []
    for template in request["templates"]:
        try:
            results.append(generator.generate(template, max_prompts=request["limit"]))
        except Exception as e:  # noqa: BLE001 - every failure is an answer here
            results.append({"error": f"{type(e).__name__}: {e}"})
    json.dump(results, sys.stdout)


if __name__ == "__main__":
    main()
