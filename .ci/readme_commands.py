"""Print the N-th (1-based) command of the first code block of README.rst."""

import sys
from pathlib import Path


def readme_commands(path="README.rst"):
    lines = Path(path).read_text().splitlines()
    start = lines.index(".. code-block:: bash")
    cmds = []
    for line in lines[start + 1:]:
        if not line.strip():
            if cmds:
                break
            continue
        if not line.startswith("    "):
            break
        cmds.append(line.strip())
    return cmds


if __name__ == "__main__":
    print(readme_commands()[int(sys.argv[1]) - 1])
