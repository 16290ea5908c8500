"""``python -m agent.simulator install-bin DIR``: write the simulated tools into DIR."""

import sys
from pathlib import Path

from agent.simulator import install_bin

if len(sys.argv) != 3 or sys.argv[1] != "install-bin":
    sys.exit("usage: python -m agent.simulator install-bin DIR")
for script in install_bin(Path(sys.argv[2])):
    print(script)
