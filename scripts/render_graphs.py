"""Render each bundled job's flow into docs/flow.md, below its ``<!-- graph: jobs/<job>.py ARGS -->`` line.

    python scripts/render_graphs.py          # rewrite docs/flow.md's graph blocks (make graphs)
    python scripts/render_graphs.py --check  # exit 1 if a block differs from the job's declared flow
"""

from __future__ import annotations

import re
import shlex
import sys
from pathlib import Path

from spark_flows.apps.graphs import job_graph
from spark_flows.flow.render import to_mermaid

ROOT = Path(__file__).resolve().parent.parent
FLOW_PAGE = ROOT / "docs" / "flow.md"
BLOCK = re.compile(r"(<!-- graph: (?P<job>\S+)(?P<args>[^>]*?) -->\n)```mermaid\n.*?```", re.S)


def rendered(text: str) -> str:
    """``text`` with every marked graph block replaced by the job's declared flow, rendered as Mermaid."""
    def block(match: re.Match[str]) -> str:
        flow = job_graph(str(ROOT / match["job"]), shlex.split(match["args"]))
        return f"{match.group(1)}```mermaid\n{to_mermaid(flow)}\n```"

    return BLOCK.sub(block, text)


def main(argv: list[str]) -> int:
    text = FLOW_PAGE.read_text()
    fresh = rendered(text)
    if "--check" in argv:
        if fresh != text:
            print("docs/flow.md's job graphs differ from the jobs' declared flows: run `make graphs`", file=sys.stderr)
            return 1
        return 0
    FLOW_PAGE.write_text(fresh)
    print(f"{len(BLOCK.findall(text))} graph(s) rendered into {FLOW_PAGE}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
