"""`python -m scratch.verify.examples [PNG]`: verify the broken example, save its heatmap.

Regenerates the README's picture (default `docs/verify_heatmap.png`).
"""

import sys

from scratch.verify.api import verify
from scratch.verify.examples.conv_numpy_broken import Conv2d

if __name__ == "__main__":
    report = verify(Conv2d, "Conv2d", examples=10)
    print(report.table())
    print(
        f"wrote {report.heatmap(sys.argv[1] if len(sys.argv) > 1 else 'docs/verify_heatmap.png')}"
    )
