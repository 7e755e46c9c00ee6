#!/usr/bin/env python3
"""Generates a Python client from the committed API document with openapi-python-client, an
independent generator, and fails when it skips or warns about anything: every operation must
come out as a function a client can call.

Usage: generated_client.py <openapi-python-client executable> <openapi.json>
"""

import json
import pathlib
import subprocess
import sys
import tempfile


def main():
    generator, document = sys.argv[1], pathlib.Path(sys.argv[2]).resolve()
    operations = {
        op["operationId"]
        for item in json.loads(document.read_text())["paths"].values()
        for op in item.values()
    }
    with tempfile.TemporaryDirectory() as out:
        run = subprocess.run(
            [generator, "generate", "--path", str(document), "--meta", "none"],
            cwd=out, capture_output=True, text=True,
        )
        # The formatter it runs afterwards is not installed, and need not be.
        complaints = [
            line for line in (run.stdout + run.stderr).splitlines()
            if line.strip() and "ruff" not in line and "Skipping Integration" not in line
            and not line.startswith("Generating ")
            and "Warning(s) encountered" not in line
            and "open an issue" not in line
        ]
        generated = {
            path.stem
            for path in pathlib.Path(out).glob("*/api/*/*.py")
            if path.stem != "__init__"
        }
    missing = sorted(operations - generated)
    if run.returncode or complaints or missing:
        print("\n".join(complaints), file=sys.stderr)
        print(f"operations the generated client lacks: {missing}", file=sys.stderr)
        return 1
    print(f"generated client: all {len(operations)} operations, no warnings")
    return 0


if __name__ == "__main__":
    sys.exit(main())
